"""Health figures on request: ``GET /health`` on loopback, ``health.json``, ``--health-port``.

Real sockets and worker threads: real clock everywhere (TRIO_IDIOMS.md section 7).
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import urllib.request
from decimal import Decimal
from enum import Enum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import attrs
import pytest
import trio

from bot.app import BotHandle, VenueUrls, run_bot
from bot.config import Config, LogLevel
from bot.runtime_cli import demo_discovery
from bot.shell import health_http
from bot.shell.health_http import serve_health, write_health_file
from bot.sim.venue import open_sim_venue

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

HEALTH_KEYS = {"markets", "tokens", "feed", "strategies", "loop_lag", "log"}


class Colour(Enum):
    RED = "red"


def figures() -> Mapping[str, Any]:
    return {
        "events": 12,
        "lag": math.inf,
        "state": Colour.RED,
        "gaps": MappingProxyType({"a": 1}),
        "pnl": Decimal("1.50"),
        "tags": ("x",),
    }


async def request(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``raw``, read to EOF; the status, the headers (lower-case) and the body."""
    with trio.fail_after(5):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(raw)
            data = b""
            while chunk := await stream.receive_some(65_536):
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("ascii").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split(" ")[1]), headers, body


def get(path: str, method: str = "GET") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


async def test_get_health_answers_the_figures_as_json() -> None:
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_health, figures, 0)
        status, headers, body = await request(port, get("/health?pretty=0"))
        assert status == 200
        assert headers["content-type"] == "application/json"
        assert headers["connection"] == "close"
        assert int(headers["content-length"]) == len(body)
        assert json.loads(body) == {
            "events": 12,
            "lag": None,
            "state": "red",
            "gaps": {"a": 1},
            "pnl": "1.50",
            "tags": ["x"],
        }
        status, headers, body = await request(port, get("/health", "HEAD"))
        assert (status, body) == (200, b"")
        assert int(headers["content-length"]) > 0
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("raw", "status", "text"),
    [
        (get("/metrics"), 404, b"no such path: /metrics"),
        (get("/health", "POST"), 405, b"method POST not allowed"),
        (b"hello there\r\n\r\n", 400, b"not an HTTP/1.x request line"),
        (b"GET /health HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n", 431, b"too large"),
    ],
)
async def test_other_requests_get_a_clear_error(raw: bytes, status: int, text: bytes) -> None:
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_health, figures, 0)
        got, headers, body = await request(port, raw)
        assert got == status
        assert text in body
        assert headers["content-type"].startswith("text/plain")
        nursery.cancel_scope.cancel()


async def test_a_failing_figure_is_a_500_and_the_server_keeps_serving() -> None:
    calls = []

    def broken() -> Mapping[str, Any]:
        calls.append(1)
        if len(calls) == 1:
            raise ZeroDivisionError("boom")
        return {"ok": True}

    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_health, broken, 0)
        status, _, body = await request(port, get("/health"))
        assert status == 500
        assert b"ZeroDivisionError" in body
        status, _, body = await request(port, get("/health"))
        assert (status, json.loads(body)) == (200, {"ok": True})
        nursery.cancel_scope.cancel()


async def test_a_silent_client_is_dropped_after_the_request_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(health_http, "REQUEST_TIMEOUT_S", 0.2)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_health, figures, 0)
        with trio.fail_after(3):
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            async with stream:
                await stream.send_all(b"GET /hea")  # and then nothing
                assert await stream.receive_some(100) == b""  # the server hung up
        nursery.cancel_scope.cancel()


async def test_a_port_in_use_is_named_in_the_error() -> None:
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_health, figures, 0)
        with pytest.raises(OSError, match=f"health endpoint: cannot listen on 127.0.0.1:{port}"):
            await serve_health(figures, port)
        nursery.cancel_scope.cancel()


async def test_health_file_is_rewritten_atomically_every_interval(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "health.json"
    counter = iter(range(100))

    def counting() -> Mapping[str, Any]:
        return {"n": next(counter)}

    async with trio.open_nursery() as nursery:
        await nursery.start(write_health_file, counting, path, 0.05)
        with trio.fail_after(5):
            while not path.exists() or json.loads(path.read_bytes())["n"] < 3:  # noqa: ASYNC110
                await trio.sleep(0.01)  # polling a file written by a worker thread
        nursery.cancel_scope.cancel()
    assert sorted(p.name for p in path.parent.iterdir()) == ["health.json"]  # no temp left


async def test_the_endpoint_serves_a_running_bots_health(tmp_path: Path) -> None:
    cfg = Config()
    cfg = attrs.evolve(
        cfg,
        sim=attrs.evolve(cfg.sim, binary_markets=4, temperature_events=0, election_events=1),
        log=attrs.evolve(cfg.log, dir=tmp_path, level=LogLevel.INFO),
        execution=attrs.evolve(cfg.execution, journal=tmp_path / "journal.sqlite"),
    )
    async with (
        open_sim_venue(cfg.sim, start_epoch_ms=1_790_000_000_000) as venue,
        trio.open_nursery() as nursery,
    ):
        urls = VenueUrls(venue.gamma_url, venue.clob_url, venue.ws_market_url)
        handle: BotHandle = await nursery.start(
            lambda task_status: run_bot(
                cfg,
                urls,
                discovery=demo_discovery(cfg.discovery),
                console=False,
                task_status=task_status,
            )
        )
        port = await nursery.start(serve_health, handle.health, 0)
        status, _, body = await request(port, get("/health"))
        assert status == 200
        data = json.loads(body)
        assert data.keys() >= HEALTH_KEYS
        assert data["tokens"] == len(handle.universe.token_ids())
        assert set(data["strategies"]) == set(handle.strategies)
        assert data["feed"]["tokens"] == data["tokens"]
        nursery.cancel_scope.cancel()


def test_demo_with_health_port_answers_while_it_runs(tmp_path: Path) -> None:
    """The CLI flag end to end: ``polybot demo --health-port 0`` in a real process."""
    (tmp_path / "config.toml").write_text("[sim]\nbinary_markets = 4\nelection_events = 1\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLY_")}
    with subprocess.Popen(
        [
            *(sys.executable, "-m", "bot", "demo", "--quiet", "--duration", "30"),
            *("--health-port", "0", "--status-interval", "0.5"),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stderr is not None
            url = None
            for line in process.stderr:
                if line.startswith("health: "):
                    url = line.removeprefix("health: ").strip()
                    break
            assert url is not None
            assert url.startswith("http://127.0.0.1:")
            with urllib.request.urlopen(url, timeout=5) as response:
                assert response.status == 200
                data = json.loads(response.read())
            assert data.keys() >= HEALTH_KEYS
            assert data["tokens"] > 0
            process.send_signal(signal.SIGINT)  # Ctrl-C: a clean stop, exit 0
            rest = process.stderr.read()
            assert process.wait(timeout=30) == 0, rest
        finally:
            process.kill()
    on_disk = json.loads((tmp_path / "logs" / "health.json").read_bytes())
    assert on_disk.keys() >= HEALTH_KEYS

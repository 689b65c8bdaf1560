"""The web dashboard over real HTTP: page, snapshot, event stream, metrics, and control.

A demo bot on the sim venue with the dashboard served by hypercorn on a free port; requests
through httpx. Real sockets: real clock (TRIO_IDIOMS.md section 7).
"""

from __future__ import annotations

import re
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import attrs
import httpx
import orjson
import pytest
import trio

from bot.cli import main
from bot.config import Config
from bot.runtime_cli import CommandError, choose_dashboard, dashboard_token
from bot.shell.dashboard_web import serve_dashboard
from bot.shell.snapshot import take_snapshot
from tests.shell.dashboard_helpers import dashboard_config, running_demo, wait_until

if TYPE_CHECKING:
    from pathlib import Path

    from bot.app import BotHandle

TOKEN = "t0ken-for-tests"

SNAPSHOT_KEYS = {
    "now",
    "status",
    "alerts",
    "summary",
    "shards",
    "refresh_gaps",
    "strategies",
    "decisions",
    "orders",
    "positions",
    "pnl",
    "risk",
    "execution",
    "live",
    "control",
}


async def read_events(url: str, snapshots: int) -> list[tuple[str, Any]]:
    """The first events of the stream at ``url`` up to ``snapshots`` snapshot events, as
    ``(name, data)``. Raw HTTP/1.0 (close-delimited, no chunks), and the stream is cut by
    closing the socket, as a browser tab does."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    stream = await trio.open_tcp_stream(parts.hostname, parts.port)
    async with stream:
        await stream.send_all(f"GET {parts.path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
        data = b""
        while data.count(b"event: snapshot\n") < snapshots or not data.endswith(b"\n\n"):
            chunk = await stream.receive_some()
            assert chunk, data[-500:]
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200") or head.startswith(b"HTTP/1.1 200"), head
    assert b"content-type: text/event-stream" in head.lower()
    events: list[tuple[str, Any]] = []
    for block in body.decode().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            events.append((fields["event"], orjson.loads(fields["data"])))
    return events


async def test_read_only_dashboard_serves_page_snapshot_events_and_metrics(
    tmp_path: Path,
) -> None:
    cfg = dashboard_config(tmp_path)
    async with (
        running_demo(cfg) as handle,
        trio.open_nursery() as nursery,
        httpx.AsyncClient(timeout=5) as client,
    ):
        url: str = await nursery.start(serve_dashboard, handle, cfg.dashboard)
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url)

        page = await client.get(url)
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        html = page.text
        assert '<canvas id="pnl-chart">' in html
        assert '<canvas id="gap-chart">' in html
        assert 'new EventSource("/events")' in html
        # Self-contained: nothing is loaded from anywhere else (no CDN, no font, no image).
        assert not re.search(r"""(src|href)\s*=|@import|url\(""", html)

        first = (await client.get(f"{url}api/snapshot")).json()
        assert set(first) == SNAPSHOT_KEYS
        assert first["control"] is False
        assert {s["name"] for s in first["strategies"]} == set(handle.strategies)
        await wait_until(lambda: handle.feed.statistics(per_token=False).events > 0)
        await trio.sleep(3 * cfg.dashboard.refresh_s)
        second = (await client.get(f"{url}api/snapshot")).json()
        assert second["now"] > first["now"]
        assert second["summary"]["events"] > first["summary"]["events"]

        events = await read_events(f"{url}events", snapshots=3)
        names = [name for name, _ in events]
        assert names == ["history", "snapshot", "snapshot", "snapshot"]
        history = events[0][1]
        assert len(history["t"]) == len(history["pnl"]) >= 3
        assert history["t"] == sorted(history["t"])
        stamps = [data["now"] for name, data in events[1:]]
        assert stamps == sorted(stamps)
        assert len(set(stamps)) == 3

        metrics = await client.get(f"{url}metrics")
        assert metrics.status_code == 200
        assert metrics.headers["content-type"].startswith("text/plain")

        # Read-only: every control action is refused and changes nothing, token or not.
        for action in ("pause", "resume", "cancel-all"):
            for headers in ({}, {"Authorization": f"Bearer {TOKEN}"}):
                refused = await client.post(f"{url}api/{action}", headers=headers)
                assert refused.status_code == 403, action
                assert "read-only" in refused.text
        assert pause_reason(handle) is None

        assert (await client.get(f"{url}nope")).status_code == 404
        wrong_method = await client.get(f"{url}api/pause")
        assert wrong_method.status_code == 405
        assert wrong_method.headers["allow"] == "POST"
        # A DNS-rebinding page's requests carry its own host name: refused on a loopback bind.
        rebound = await client.get(f"{url}api/snapshot", headers={"Host": "evil.example:5000"})
        assert rebound.status_code == 421
        nursery.cancel_scope.cancel()
    assert operator_cancels(tmp_path) == 0


def operator_cancels(log_dir: Path) -> int:
    """Orders the log shows cancelled by the operator's cancel-all (read after the bot stopped)."""
    records = [orjson.loads(line) for line in (log_dir / "polybot.jsonl").read_bytes().splitlines()]
    return sum(
        1 for r in records if r.get("kind") == "order" and r.get("reason") == "operator_cancel_all"
    )


async def test_control_with_the_token_pauses_resumes_and_cancels_all(tmp_path: Path) -> None:
    cfg = dashboard_config(tmp_path)
    async with (
        running_demo(cfg) as handle,
        trio.open_nursery() as nursery,
        httpx.AsyncClient(timeout=5) as client,
    ):
        url: str = await nursery.start(partial(serve_dashboard, handle, cfg.dashboard, token=TOKEN))
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            refused = await client.post(f"{url}api/pause", headers=headers)
            assert refused.status_code == 403
            assert "Authorization: Bearer" in refused.text
        assert pause_reason(handle) is None
        assert (await client.get(f"{url}api/snapshot")).json()["control"] is True

        # The market maker quotes: wait for resting orders to cancel.
        await wait_until(lambda: len(handle.engine.all_open_orders()) > 0)
        paused = await client.post(f"{url}api/pause", headers=bearer)
        assert paused.json() == {"paused": True}
        assert pause_reason(handle) is not None
        cancelled = await client.post(f"{url}api/cancel-all", headers=bearer)
        assert cancelled.status_code == 200
        # Whatever rested at that moment (a fill or the maker's own requote may have ended one
        # since the wait above).
        assert cancelled.json()["cancelled"] > 0
        assert len(handle.engine.all_open_orders()) == 0

        # Paused: the strategies' new orders are refused with the operator's reason (journaled
        # and told to the strategy like any refusal), and none rests.
        assert handle.executor is not None
        executor = handle.executor

        def refused_for_pause() -> bool:
            return any(
                d.kind == "order.rejected" and d.detail.get("reason", "").startswith("paused")
                for _, d in executor.recent_decisions
            )

        await wait_until(refused_for_pause)
        assert len(handle.engine.all_open_orders()) == 0
        snap = take_snapshot(handle, trio.current_time())
        assert snap["risk"]["paused"] is True
        assert any(a["text"].startswith("trading paused") for a in snap["alerts"])
        assert {s["state"] for s in snap["strategies"]} <= {"paused", "disabled"}

        resumed = await client.post(f"{url}api/resume", headers=bearer)
        assert resumed.json() == {"paused": False}
        assert pause_reason(handle) is None
        await wait_until(lambda: len(handle.engine.all_open_orders()) > 0)  # quoting again
        nursery.cancel_scope.cancel()
    assert operator_cancels(tmp_path) == cancelled.json()["cancelled"]


def pause_reason(handle: BotHandle) -> str | None:
    """The gate's pause (a call, so the type checker does not carry a narrowing across the
    requests that change it)."""
    return handle.engine.risk.paused


def test_dashboard_choice_and_control_token() -> None:
    assert choose_dashboard(None, tty=True) == "tui"
    assert choose_dashboard(None, tty=False) == "none"
    assert choose_dashboard("web", tty=True) == "web"
    assert choose_dashboard("none", tty=True) == "none"
    cfg = Config()
    assert cfg.dashboard.host == "127.0.0.1"
    assert cfg.dashboard.port == 5000
    assert dashboard_token(cfg, {"POLYBOT_DASHBOARD_TOKEN": "x"}) is None  # control is off
    on = attrs.evolve(cfg, dashboard=attrs.evolve(cfg.dashboard, control=True))
    assert dashboard_token(on, {"POLYBOT_DASHBOARD_TOKEN": " s3cret "}) == "s3cret"
    with pytest.raises(CommandError, match="POLYBOT_DASHBOARD_TOKEN"):
        dashboard_token(on, {})


def demo_config_file(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[log]\ndir = "{tmp_path}"\n\n[execution]\njournal = "{tmp_path}/journal.sqlite"\n\n'
        f"[sim]\nbinary_markets = 4\ntemperature_events = 0\nelection_events = 1\n\n{extra}",
        encoding="utf-8",
    )
    return path


def test_polybot_demo_dashboard_web_serves_and_stops_with_the_bot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--help"]) == 0
    assert "--dashboard {tui,web,none}" in capsys.readouterr().out
    config = demo_config_file(tmp_path)
    argv = ["demo", "--config", str(config), "--quiet", "--duration", "2"]
    assert main([*argv, "--dashboard", "web", "--dashboard-port", "0"]) == 0
    err = capsys.readouterr().err
    assert re.search(r"dashboard: http://127\.0\.0\.1:\d+/ \(read-only\)", err), err

    # Control enabled without its token: the operator hears why, exit 2, nothing served.
    monkeypatch.delenv("POLYBOT_DASHBOARD_TOKEN", raising=False)
    config = demo_config_file(tmp_path, "[dashboard]\ncontrol = true\n")
    assert main([*argv, "--dashboard", "web", "--dashboard-port", "0"]) == 2
    err = capsys.readouterr().err
    assert "POLYBOT_DASHBOARD_TOKEN" in err
    assert "dashboard: http" not in err

"""Throughput of the sim venue's market channel: how many events it pushes to one client.

Setup: a venue with about 10,000 assets (4,900 binaries, two temperature and two election
events) and the pump in ``max_rate`` mode (it generates as fast as the slowest client reads, so
nothing is dropped). A plain trio-websocket client subscribes to every asset in frames of at most
100 ids (PROTOCOL.md 1.3) with custom features on, drains the initial dump, and then counts the
events it receives (objects inside the frames; a ``price_change`` counts once) for a fixed time.

Figures:

* ``sim.events_to_one_client``: the client runs in a subprocess (its own core), so this is the
  venue's ceiling on one core: model steps, filtering, encoding and the socket writes.
  Target (issue): at least 20,000 events/s.
* ``sim.events_to_one_client.same_core``: the client runs in the venue's own trio loop, sharing
  its core: a conservative figure, with the client's decoding in the budget.
* ``sim.initial_dump``: snapshots per second while answering the subscription of every asset.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import orjson
import trio
from trio_websocket import open_websocket_url

from benchmarks.common import Result
from bot.config import SimConfig
from bot.sim.venue import open_sim_venue

if TYPE_CHECKING:
    from collections.abc import Iterator

    from trio_websocket import WebSocketConnection

START_MS: Final = 1_782_864_000_000
TARGET: Final = 20_000
_CLIENT_OPTIONS: Final[dict[str, Any]] = {
    "max_message_size": 2**26,
    "receive_buffer_size": None,  # let trio pick (64 KiB); the 4 KiB default costs throughput
    "message_queue_size": 4,
    "connect_timeout": 30,
    "disconnect_timeout": 5,
}


def _config(quick: bool) -> SimConfig:
    return SimConfig(
        binary_markets=1_900 if quick else 4_900,
        temperature_events=2,
        election_events=2,
        max_rate=True,
        opportunity_rate=0.0,
        max_assets_per_connection=20_000,
        outbox_frames=64,
    )


async def _subscribe_all(ws: WebSocketConnection, tokens: list[str]) -> float:
    """Subscribe in frames of at most 100 ids, read the whole initial dump; its seconds."""
    start = time.perf_counter()
    for index in range(0, len(tokens), 100):
        message = {
            "assets_ids": tokens[index : index + 100],
            "type": "market",
            "custom_feature_enabled": True,
        }
        await ws.send_message(orjson.dumps(message).decode())
    books = 0
    while books < len(tokens):
        books += len(orjson.loads(await ws.get_message()))
    return time.perf_counter() - start


async def _count(ws: WebSocketConnection, seconds: float) -> tuple[int, float]:
    """Events received in ``seconds`` (decoded with orjson, as any client must)."""
    events = 0
    start = time.perf_counter()
    with trio.move_on_after(seconds):
        while True:
            data = orjson.loads(await ws.get_message())
            events += len(data) if type(data) is list else 1
    return events, time.perf_counter() - start


async def _client_main(url: str, tokens_path: str, seconds: float) -> None:
    """The subprocess client: ``ready`` once subscribed, then one JSON line of counts."""
    tokens = orjson.loads(await trio.Path(tokens_path).read_bytes())
    async with open_websocket_url(url, **_CLIENT_OPTIONS) as ws:
        dump_s = await _subscribe_all(ws, tokens)
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        events, elapsed = await _count(ws, seconds)
    sys.stdout.write(
        orjson.dumps({"events": events, "elapsed": elapsed, "dump_s": dump_s}).decode()
    )
    sys.stdout.write("\n")
    sys.stdout.flush()


async def _separate_process(config: SimConfig, seconds: float) -> dict[str, Any]:
    async with open_sim_venue(config, start_epoch_ms=START_MS, pump=False) as venue:
        with tempfile.TemporaryDirectory() as tmp:
            tokens_path = Path(tmp) / "tokens.json"
            await trio.Path(tokens_path).write_bytes(orjson.dumps(venue.universe.token_ids()))
            argv = [sys.executable, "-m", "benchmarks.sim_venue", venue.ws_market_url]
            argv += [str(tokens_path), str(seconds)]
            process = await trio.lowlevel.open_process(argv, stdout=subprocess.PIPE)
            assert process.stdout is not None
            output = b""
            with trio.fail_after(120):
                while b"ready\n" not in output:
                    chunk = await process.stdout.receive_some()
                    if not chunk:
                        raise RuntimeError("benchmark client exited before subscribing")
                    output += chunk
                venue.resume_pump()
                while True:
                    chunk = await process.stdout.receive_some()
                    if not chunk:
                        break
                    output += chunk
                await process.wait()
            steps = venue.statistics().steps
    result: dict[str, Any] = orjson.loads(output.split(b"ready\n", 1)[1])
    result["steps"] = steps
    result["assets"] = len(venue.universe.token_ids())
    return result


async def _same_process(config: SimConfig, seconds: float) -> dict[str, Any]:
    async with open_sim_venue(config, start_epoch_ms=START_MS, pump=False) as venue:
        tokens = venue.universe.token_ids()
        async with open_websocket_url(venue.ws_market_url, **_CLIENT_OPTIONS) as ws:
            dump_s = await _subscribe_all(ws, tokens)
            venue.resume_pump()
            events, elapsed = await _count(ws, seconds)
            venue.pause_pump()
    return {"events": events, "elapsed": elapsed, "dump_s": dump_s, "assets": len(tokens)}


def run(*, quick: bool, only: str) -> Iterator[Result]:
    config = _config(quick)
    seconds = 1.5 if quick else 5.0
    wanted_separate = only in "sim.events_to_one_client" or only in "sim.initial_dump"
    if wanted_separate:
        result = trio.run(_separate_process, config, seconds)
        rate = result["events"] / result["elapsed"]
        if only in "sim.events_to_one_client":
            extra = {"target": TARGET, "assets": result["assets"], "client": "subprocess"}
            yield Result("sim.events_to_one_client", round(rate), "events/s", extra)
        if only in "sim.initial_dump":
            dump_rate = result["assets"] / result["dump_s"]
            yield Result(
                "sim.initial_dump", round(dump_rate), "snapshots/s", {"assets": result["assets"]}
            )
    if only in "sim.events_to_one_client.same_core":
        result = trio.run(_same_process, config, seconds)
        rate = result["events"] / result["elapsed"]
        extra = {"target": TARGET, "assets": result["assets"], "client": "same trio loop"}
        yield Result("sim.events_to_one_client.same_core", round(rate), "events/s", extra)


if __name__ == "__main__":
    # The subprocess client: python -m benchmarks.sim_venue URL TOKENS_FILE SECONDS
    trio.run(_client_main, sys.argv[1], sys.argv[2], float(sys.argv[3]))

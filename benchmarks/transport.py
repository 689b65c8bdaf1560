"""Receive throughput of the two WebSocket transports, bare and through the whole feed pipeline.

The venue runs in a **subprocess** (``polybot sim``), so it has its own core and the figures are
the client's, not a client sharing a core with the venue's model and encoder. The client runs
here, one trio loop, one core.

Two venues:

* **sim, max rate** (``polybot sim --max-rate --assets 400``): the sim venue's pump generates as
  fast as the slowest client reads. It batches a pump round's events into one frame per
  connection, so frames are big (hundreds of events): this measures per-*byte* cost, and the
  venue's own ceiling on its core (model, filtering, encoding) may be what is measured.
* **blast, small frames** (``python -m benchmarks.transport serve FILE``): one event per frame,
  the shape of the real venue's live traffic (the sim's order flow, initial snapshots first),
  pre-encoded as WebSocket frames and written with ``send_all`` in 1 MiB chunks after the
  handshake. The server costs next to nothing, so this measures the client's per-*frame* cost.
  (The sim's replay server is not used here: hypercorn's per-message cost caps it near 7k
  frames/s, below both transports.)

Figures, per transport (``trio-websocket``, ``websockets``):

* ``feed.bare.<transport>``: events/s read by a bare loop over the transport seam
  (``Connection.receive``), counting events without decoding them (a substring count); extras:
  frames/s. ``feed.bare.small_frames.<transport>``: the same against the blast server.
* ``feed.pipeline.<transport>``: events/s through ``MarketFeed`` -- receive, decode, apply to
  the books, build views, publish to a bus with 4 subscriber tasks that take every delivery and
  drop it. ``feed.pipeline.small_frames.<transport>``: the same against the blast server.
* ``feed.pipeline_ratio.<transport>`` (and ``.small_frames``): pipeline / bare.

Usage: ``just bench --only feed.`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import math
import random
import subprocess
import sys
import tempfile
import time
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import attrs
import httpx
import orjson
import trio
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from benchmarks.common import Result
from bot.config import FeedConfig, SimConfig
from bot.config import Transport as TransportKind
from bot.core.backoff import Backoff
from bot.shell.bus import Bus, Subscription
from bot.shell.feed import MarketFeed
from bot.shell.rest import RestClient
from bot.shell.transport import transport_for
from bot.sim.exchange import SimExchange
from bot.sim.universe import generate_universe
from bot.sim.venue import flow_config, universe_config

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from bot.shell.feed_events import FeedEvent

START_MS: Final = 1_782_864_000_000
SUBSCRIBERS: Final = 4
SIM_ASSETS: Final = 400
"""One socket's worth (``assets_per_socket`` up to 500), so bare and pipeline read one socket."""

_FEED = FeedConfig(assets_per_socket=500)


@attrs.frozen
class Urls:
    gamma_url: str
    clob_url: str
    ws_market_url: str


@asynccontextmanager
async def venue_process(*args: str, python: bool = False) -> AsyncIterator[Urls]:
    """Run ``polybot sim ARGS`` (``python ARGS`` with ``python``) in a subprocess; yields its
    URLs (its first stdout line)."""
    if python:
        argv = [sys.executable, *args]
    else:
        argv = [sys.executable, "-m", "bot", "sim", "--port", "0", *args]
    process = await trio.lowlevel.open_process(
        argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        assert process.stdout is not None
        output = b""
        with trio.fail_after(60):
            while b"\n" not in output:
                chunk = await process.stdout.receive_some()
                if not chunk:
                    raise RuntimeError(f"{' '.join(argv)} exited before printing its URLs")
                output += chunk
        urls = orjson.loads(output.split(b"\n", 1)[0])
        yield Urls(urls["gamma_url"], urls["clob_url"], urls["ws_market_url"])
    finally:
        process.terminate()
        with trio.move_on_after(10, shield=True):
            await process.wait()
        if process.returncode is None:
            process.kill()
        if process.stdout is not None:
            await process.stdout.aclose()


def subscribe_frames(tokens: list[str]) -> list[str]:
    frames = []
    for start in range(0, len(tokens), 100):
        ids = tokens[start : start + 100]
        message: dict[str, Any] = (
            {"assets_ids": ids, "type": "market"}
            if start == 0
            else {"operation": "subscribe", "assets_ids": ids}
        )
        message["initial_dump"] = True
        message["custom_feature_enabled"] = True
        frames.append(orjson.dumps(message).decode())
    return frames


async def bare(
    kind: TransportKind, url: str, tokens: list[str], seconds: float, *, until: int | None = None
) -> dict[str, float]:
    """Frames and events per second read by a bare receive loop (no decoding).

    ``until``: stop after that many frames (the end of a replay) even before ``seconds``.
    """
    transport = transport_for(kind)
    async with transport.connect(
        url, receive_buffer=_FEED.receive_buffer_bytes, max_message=_FEED.max_message_bytes
    ) as conn:
        for frame in subscribe_frames(tokens):
            await conn.send(frame)
        books = 0
        with trio.fail_after(60):
            while books < len(tokens):
                books += (await conn.receive()).count('"event_type":"book"')
        frames = events = 0
        limit = until if until is not None else math.inf
        start = last = time.perf_counter()
        with trio.move_on_after(seconds):
            while frames < limit:
                raw = await conn.receive()
                frames += 1
                events += raw.count('"event_type"')
                last = time.perf_counter()
        elapsed = last - start
    return {"frames_per_s": frames / elapsed, "events_per_s": events / elapsed, "frames": frames}


async def _drain(sub: Subscription[FeedEvent]) -> None:
    async for _delivery in sub:
        pass


async def pipeline(
    kind: TransportKind, urls: Urls, tokens: list[str], seconds: float
) -> dict[str, float]:
    """Events per second through ``MarketFeed`` to ``SUBSCRIBERS`` draining subscribers."""
    cfg = attrs.evolve(_FEED, transport=kind)
    async with httpx.AsyncClient() as http:
        rest = RestClient(
            http,
            gamma_url=urls.gamma_url,
            clob_url=urls.clob_url,
            backoff=Backoff(0.1, 1.0),
            rng=random.Random(1),
            rate_limits=(),
        )
        bus: Bus[FeedEvent] = Bus()
        feed = MarketFeed(
            tokens, cfg, ws_url=urls.ws_market_url, rest=rest, bus=bus, rng=random.Random(2)
        )
        async with trio.open_nursery() as nursery:
            for index in range(SUBSCRIBERS):
                sub = bus.subscribe(f"subscriber-{index}", max_pending=100_000)
                nursery.start_soon(partial(_drain, sub), name=f"subscriber {index}")
            await nursery.start(feed.run)
            with trio.fail_after(60):
                while True:  # every book has its snapshot
                    if not feed.statistics(per_token=False).stale_tokens:
                        break
                    await trio.sleep(0.01)
            before = feed.statistics(per_token=False)
            start = last = time.perf_counter()
            last_frames = before.frames
            idle_since = start
            deadline = start + seconds
            # Sample until the time is up, or until frames stop coming (the replay ended).
            while (now := time.perf_counter()) < deadline and now - idle_since < 0.3:
                await trio.sleep(0.02)
                frames = feed.statistics(per_token=False).frames
                if frames != last_frames:
                    last_frames, last, idle_since = frames, time.perf_counter(), time.perf_counter()
            after = feed.statistics(per_token=False)
            nursery.cancel_scope.cancel()
    elapsed = last - start
    assert after.malformed == 0, after
    assert after.mismatches == 0, after
    return {
        "frames_per_s": (after.frames - before.frames) / elapsed,
        "events_per_s": (after.events - before.events) / elapsed,
    }


def small_frames(frames: int) -> tuple[list[str], bytes]:
    """The sim's order flow as pre-encoded WebSocket frames, one event each, after one frame of
    initial snapshots; returns the tokens and the bytes a server sends after the handshake."""
    config = SimConfig(binary_markets=100, temperature_events=0, election_events=0)
    universe = generate_universe(universe_config(config, epoch_ms=START_MS), random.Random(1))
    exchange = SimExchange(universe, flow_config(config), random.Random(2), START_MS)
    tokens = universe.token_ids()
    texts = [orjson.dumps([exchange.book_json(t, START_MS) for t in tokens])]
    now = START_MS
    while len(texts) <= frames:
        now += 1
        texts.extend(orjson.dumps(event) for event in exchange.step(now))
    encoded = b"".join(Frame(Opcode.TEXT, text).serialize(mask=False) for text in texts)
    return tokens, encoded


async def _serve_blob(path: str) -> None:
    """The blast server (a subprocess): handshake, then the file's bytes as fast as TCP takes
    them; prints its URLs as the first stdout line, like ``polybot sim``."""
    blob = await trio.Path(path).read_bytes()

    async def handle(stream: trio.SocketStream) -> None:
        async with stream:
            protocol = ServerProtocol()
            request: Request | None = None
            while request is None:
                data = await stream.receive_some(65_536)
                if not data:
                    return
                protocol.receive_data(data)
                request = next(
                    (e for e in protocol.events_received() if isinstance(e, Request)), None
                )
            protocol.send_response(protocol.accept(request))
            for chunk in protocol.data_to_send():
                await stream.send_all(chunk)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_discard, stream)  # the client's subscribes and PINGs
                view = memoryview(blob)
                for start in range(0, len(blob), 1 << 20):
                    await stream.send_all(view[start : start + (1 << 20)])

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, handle, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        urls = {"gamma_url": base, "clob_url": base, "ws_market_url": f"ws://127.0.0.1:{port}/ws"}
        sys.stdout.write(orjson.dumps(urls).decode() + "\n")
        sys.stdout.flush()


async def _discard(stream: trio.SocketStream) -> None:
    try:
        while await stream.receive_some(65_536):
            pass
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass


async def _tokens(urls: Urls) -> list[str]:
    async with httpx.AsyncClient() as http:
        rest = RestClient(
            http,
            gamma_url=urls.gamma_url,
            clob_url=urls.clob_url,
            backoff=Backoff(0.1, 1.0),
            rng=random.Random(1),
        )
        markets = await rest.fetch_clob_markets()
    return [token.token_id for market in markets for token in market.tokens]


async def _sim_figures(quick: bool, kinds: list[TransportKind], what: set[str]) -> dict[str, Any]:
    # A fresh venue per measurement: in max-rate mode the pump waits for the slowest connection,
    # and a closed one can linger for a moment with frames queued.
    seconds = 1.0 if quick else 3.0
    out: dict[str, Any] = {}
    for kind in kinds:
        for part in sorted(what):
            args = ("--max-rate", "--assets", str(SIM_ASSETS), "--opportunity-rate", "0")
            async with venue_process(*args) as urls:
                tokens = (await _tokens(urls))[: _FEED.assets_per_socket]
                out["assets"] = len(tokens)
                if part == "bare":
                    out[f"bare.{kind.value}"] = await bare(
                        kind, urls.ws_market_url, tokens, seconds
                    )
                else:
                    out[f"pipeline.{kind.value}"] = await pipeline(kind, urls, tokens, seconds)
    return out


async def _blast_figures(quick: bool, kinds: list[TransportKind], what: set[str]) -> dict[str, Any]:
    seconds = 5.0
    out: dict[str, Any] = {}
    tokens, blob = small_frames(100_000 if quick else 400_000)
    live = blob.count(b'"event_type"') - len(tokens)  # one event per live frame
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "frames.bin"
        await trio.Path(path).write_bytes(blob)
        out["frames"] = live
        for kind in kinds:
            for part in sorted(what):
                argv = ("-m", "benchmarks.transport", "serve", str(path))
                async with venue_process(*argv, python=True) as urls:
                    if part == "bare":
                        out[f"bare.{kind.value}"] = await bare(
                            kind, urls.ws_market_url, tokens, seconds, until=live
                        )
                    else:
                        out[f"pipeline.{kind.value}"] = await pipeline(kind, urls, tokens, seconds)
    return out


def _emit(
    figures: dict[str, Any],
    kinds: list[TransportKind],
    suffix: str,
    only: str,
    extra: dict[str, Any],
) -> Iterator[Result]:
    for kind in kinds:
        t = kind.value
        bare_result = figures.get(f"bare.{t}")
        pipe_result = figures.get(f"pipeline.{t}")
        name = f"feed.bare{suffix}.{t}"
        if bare_result is not None and only in name:
            yield Result(
                name,
                round(bare_result["events_per_s"]),
                "events/s",
                {"frames_per_s": round(bare_result["frames_per_s"]), **extra},
            )
        name = f"feed.pipeline{suffix}.{t}"
        if pipe_result is not None and only in name:
            yield Result(
                name,
                round(pipe_result["events_per_s"]),
                "events/s",
                {
                    "frames_per_s": round(pipe_result["frames_per_s"]),
                    "subscribers": SUBSCRIBERS,
                    **extra,
                },
            )
        name = f"feed.pipeline_ratio{suffix}.{t}"
        if bare_result is not None and pipe_result is not None and only in name:
            ratio = pipe_result["events_per_s"] / bare_result["events_per_s"]
            yield Result(name, round(ratio, 3), "ratio", extra)


def _wanted(only: str, suffix: str) -> tuple[list[TransportKind], set[str]]:
    kinds: list[TransportKind] = []
    what: set[str] = set()
    for kind in TransportKind:
        for part in ("bare", "pipeline", "pipeline_ratio"):
            if only in f"feed.{part}{suffix}.{kind.value}":
                if kind not in kinds:
                    kinds.append(kind)
                what.update({"bare", "pipeline"} if part == "pipeline_ratio" else {part})
    return kinds, what


def run(*, quick: bool, only: str) -> Iterator[Result]:
    kinds, what = _wanted(only, "")
    if kinds:
        figures = trio.run(_sim_figures, quick, kinds, what)
        extra = {"venue": "sim --max-rate (subprocess)", "assets": figures["assets"]}
        yield from _emit(figures, kinds, "", only, extra)
    kinds, what = _wanted(only, ".small_frames")
    if kinds:
        figures = trio.run(_blast_figures, quick, kinds, what)
        extra = {"venue": "blast, one event per frame (subprocess)", "frames": figures["frames"]}
        yield from _emit(figures, kinds, ".small_frames", only, extra)


if __name__ == "__main__":
    # The blast server: python -m benchmarks.transport serve FILE
    if sys.argv[1:2] != ["serve"] or len(sys.argv) != 3:
        raise SystemExit("usage: python -m benchmarks.transport serve FILE")
    trio.run(_serve_blob, sys.argv[2])

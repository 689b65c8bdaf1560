"""Tick-to-decision and event-loop stalls of the whole bot pipeline, on the sim venue.

The venue runs in a **subprocess** (``python -m benchmarks.runtime_latency serve RATE FILE``),
as in ``benchmarks/transport.py``: on its own core its model, encoder and pump timer cannot show
up as our loop's latency, so the figures are the bot's alone. (In-process, every pump round of
the venue would be a stall of our own making on the measured loop.)

The measured process runs the market-data runtime the way ``bot/app.py`` composes it, minus
execution: discovery over Gamma/CLOB REST, ``MarketFeed`` (default ``FeedConfig``), one ``Bus``,
four strategy tasks under ``run_strategy`` (each on its own subscription), the bounded log
channel with its writer (``run_log_writer``; loguru routed into it by ``configure_logging``)
and a loop-lag probe. The four strategies decide on every update: each checks every changed
book (complement ask sum, neg-risk event ask sum, microprice, a 100-share depth walk) and returns
a ``Decision`` (logged) when its signal flips.

Venue: 99 markets, 198 tokens (about the default discovery cap), a pump round every 1 ms so
frames stay small as on the live venue: ~2 wire events per frame at 1k, ~20 at 10k
(``SimConfig.events_per_second`` counts the venue's flow steps, each one or more wire events;
the feed's decoded rate is ``feed_events_per_s``).

Windows: per venue rate one pipeline is started, warmed up, and measured over consecutive
windows (1 s with ``--quick``, 5 s otherwise). The stall windows add one ``market.frame``
telemetry record per data frame (about 750 records/s) so the log has steady work, first on a
normal disk (the baseline), then with every write taking 100 ms more (``SwitchableDisk``: a
``write_batch`` that sleeps in the writer's worker thread).

Figures (each p99 and stall figure carries its ``target`` and whether it was ``met``):

* ``runtime.tick_to_decision.{1k,10k}.p50_ms`` / ``.p99_ms``: per data frame and strategy, from
  the feed receiving the frame (``received_at``: the feed's ``trio.current_time()`` when it took
  the frame off the transport) to the end of that strategy's first decision step that covered
  it. Per *frame*: when the bus hands a burst of frames over as one delivery, every frame counts
  with its own, older receive time (``RunnerStats.latency``, which starts from the newest frame
  of a delivery, is ``runner_p99_ms``). Targets: p99 < 1 ms at 1k, < 5 ms at 10k.
* ``runtime.loop_stall.slow_disk.max_ms``: the longest event-loop stall on the slow disk: how
  late a 1 ms ``run_loop_lag_monitor`` woke, at its worst (the bot's own monitor runs every
  50 ms and can miss a short stall). Target: 5 ms. ``baseline_max_ms``: the same on a normal
  disk just before.

Receipt time hides a backlog: a bot that cannot keep up reads every frame late and can still
decide quickly after reading it. So every figure also reports ``venue_to_decision_*`` (from the
venue's own ``timestamp`` in the frame, clocks aligned to about 1 ms: the venue's clock reads
whole ms) and ``keeping_up``: whether that backlog grew by less than 10 ms over the window. A
target is ``met`` only when the bot kept up. Also in the extras: ``cpu_busy`` (process CPU time
over wall time), the strategies' own step time, GC pauses (``gc.callbacks``), log counters.

Measured on the shared two-core box (CPython 3.11; ``runtime.bus.publish_to_4`` reads about half
the rate quoted in ``bot/shell/bus.py`` here): 1k, p99 1.0-1.4 ms (5 s windows), p50 0.3-0.45 ms,
55-65 % of a core, where the feed's frame handling (book views, decoding), the runner's per-wake
overhead and trio-websocket's reader each cost more than the four strategies' own work. 10k:
more than one core is needed (the feed alone is at 100 % near 14k decoded events/s): the bot
falls behind by hundreds of ms, and full (gen-2) collections stall the loop 50-140 ms; with
``FeedConfig.transport = "websockets"`` it keeps up, at 100 % CPU and a p99 near 50 ms. Slow
disk: 2-5 ms in 1 s windows; in 5 s windows 57-66 ms, each time a gen-2 collection (records
waiting 100 ms for the disk outlive the young generations, so full collections come sooner);
with ``gc.freeze()`` after start-up, 4.6-5.4 ms.

Usage: ``just bench --only runtime.tick`` or ``--only runtime.loop_stall`` (``--quick``: ~10 s).
"""

from __future__ import annotations

import gc
import math
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Final

import attrs
import httpx
import orjson
import trio
from loguru import logger

from benchmarks.common import Result
from benchmarks.transport import Urls, venue_process
from bot.config import DiscoveryConfig, FeedConfig, LogConfig, LogLevel, SimConfig
from bot.core.backoff import Backoff
from bot.core.money import ONE, format_units
from bot.core.trading import Context, Decision, Inventory, Strategy
from bot.shell.bus import Bus
from bot.shell.discovery import discover
from bot.shell.feed import MarketFeed
from bot.shell.health import Reservoir, run_loop_lag_monitor
from bot.shell.logsink import (
    configure_logging,
    open_log_channel,
    run_log_writer,
    write_and_flush,
)
from bot.shell.rest import RestClient
from bot.shell.runner import RunnerStats, Trading, run_strategy
from bot.sim.universe import generate_universe
from bot.sim.venue import open_sim_venue, universe_config, write_line

if TYPE_CHECKING:
    from collections.abc import Collection, Iterator, Sequence

    from bot.core.trading import Action
    from bot.core.universe import Event, Universe
    from bot.shell.feed_events import FeedEvent
    from bot.shell.logsink import LogChannel

RATES: Final = {"1k": 1_000.0, "10k": 10_000.0}
"""The venue's flow rates measured (``SimConfig.events_per_second``), by figure-name label."""

P99_TARGET_MS: Final = {"1k": 1.0, "10k": 5.0}
STALL_TARGET_MS: Final = 5.0
STALL_RATE: Final = "1k"
"""The slow-disk run's rate: with headroom on the loop, what the disk adds is not hidden."""
MAX_BACKLOG_GROWTH_S: Final = 0.010
SLOW_WRITE_S: Final = 0.1
PROBE_INTERVAL_S: Final = 0.001
WARMUP_S: Final = 0.3
"""Run this long after every book has its snapshot before measuring (connection setup, the
first resnapshots and the first log batches are not the steady state)."""
SETTLE_S: Final = 0.2
"""After switching a window's log load (telemetry, slow disk), before measuring."""


def venue_config(rate: float) -> SimConfig:
    """About 100 markets (~250 tokens), small frames (a pump round every 1 ms), one injected
    opportunity per second (so the strategies have something to decide now and then)."""
    return SimConfig(
        binary_markets=80,
        temperature_events=1,
        election_events=1,
        events_per_second=rate,
        pump_interval_ms=1,
        opportunity_rate=1.0,
        status_interval_s=3_600.0,
        # A bot that falls behind is not dropped as a slow consumer within a run: its backlog
        # shows up in ``venue_to_decision`` instead of as a reconnect in the middle of the window.
        outbox_frames=100_000,
    )


_DISCOVERY: Final = DiscoveryConfig(
    # The demo's relaxations: the liquidity, volume and date filters are for real markets.
    keywords=(),
    tag_slugs=(),
    min_liquidity=Decimal(0),
    min_volume=Decimal(0),
    end_within_days=0,
    max_markets=200,
)


# --- the four strategies -------------------------------------------------------------------------


@attrs.define(eq=False)
class Timeline:
    """When one strategy task woke and when it finished deciding, per wake.

    ``wakes[i] = (woke_at, decided_at)``: ``woke_at`` is ``ctx.now`` (read by the runner just
    after the delivery was taken, so every frame received before it is in that delivery or an
    earlier one) and ``decided_at`` the clock when the strategy's hooks returned.
    """

    wakes: list[tuple[float, float]] = attrs.field(factory=list)
    recording: bool = False

    def mark(self, woke_at: float) -> None:
        if not self.recording:
            return
        done = trio.current_time()
        wakes = self.wakes
        if wakes and wakes[-1][0] == woke_at:  # on_event then on_books in one wake
            wakes[-1] = (woke_at, done)
        else:
            wakes.append((woke_at, done))


class _Checker(Strategy):
    """Shared plumbing: a signal per key, a ``Decision`` only when it changes state."""

    def __init__(self, name: str, universe: Universe, timeline: Timeline) -> None:
        self.name = name
        self.universe = universe
        self.timeline = timeline
        self.state: dict[str, bool] = {}
        self.by_event: dict[str, Event] = {e.id: e for e in universe.events if e.neg_risk}

    def on_books(self, ctx: Context, changed: Collection[str]) -> Sequence[Action]:
        out: list[Action] = []
        for token in changed:
            self.check(ctx, token, out)
        self.timeline.mark(ctx.now)
        return out

    def on_event(self, ctx: Context, event: object) -> Sequence[Action]:
        self.timeline.mark(ctx.now)
        return []

    def check(self, ctx: Context, token: str, out: list[Action]) -> None:
        raise NotImplementedError

    def flag(self, key: str, on: bool, out: list[Action], figure: str, value: int) -> None:
        """Record the signal; a ``Decision`` (formatted here, not per check) when it flips."""
        if self.state.get(key, False) != on:
            self.state[key] = on
            kind = "signal.on" if on else "signal.off"
            out.append(Decision(self.name, kind, key, {figure: format_units(value)}))


class ComplementCheck(_Checker):
    """YES ask + NO ask below 1: the complement arbitrage test."""

    def check(self, ctx: Context, token: str, out: list[Action]) -> None:
        market = self.universe.market_for_token(token)
        yes, no = ctx.usable(market.yes.token_id), ctx.usable(market.no.token_id)
        if yes is None or no is None:
            return
        asks = yes.best_ask_price + no.best_ask_price
        self.flag(market.condition_id, asks < ONE, out, "asks", asks)


class EventSumCheck(_Checker):
    """The YES asks of a neg-risk event summing below 1."""

    def check(self, ctx: Context, token: str, out: list[Action]) -> None:
        market = self.universe.market_for_token(token)
        event = self.by_event.get(market.event_id or "")
        if event is None:
            return
        total = 0
        for member in event.markets:
            view = ctx.usable(member.yes.token_id)
            if view is None:
                return
            total += view.best_ask_price
        self.flag(event.id, total < ONE, out, "asks", total)


class MicropriceCheck(_Checker):
    """The size-weighted mid moving by five ticks or more from where it was last flagged."""

    def __init__(self, name: str, universe: Universe, timeline: Timeline) -> None:
        super().__init__(name, universe, timeline)
        self.anchor: dict[str, int] = {}

    def check(self, ctx: Context, token: str, out: list[Action]) -> None:
        view = ctx.usable(token)
        if view is None or view.best_bid is None or view.best_ask is None:
            return
        bid, ask = view.best_bid, view.best_ask
        micro = (bid.price * ask.size + ask.price * bid.size) // (bid.size + ask.size)
        anchor = self.anchor.setdefault(token, micro)
        moved = abs(micro - anchor) >= 5 * view.tick_size
        if moved:
            self.anchor[token] = micro
        self.flag(token, moved, out, "micro", micro)


class DepthCheck(_Checker):
    """The average price of buying 100 shares, walking the asks, against the best ask."""

    SIZE: Final = 100_000_000

    def check(self, ctx: Context, token: str, out: list[Action]) -> None:
        view = ctx.usable(token)
        if view is None or view.best_ask is None:
            return
        left, cost = self.SIZE, 0
        for level in view.asks:
            take = min(left, level.size)
            cost += take * level.price
            left -= take
            if not left:
                break
        if left:
            self.flag(token, True, out, "short", left)
            return
        slippage = cost // self.SIZE - view.best_ask.price
        self.flag(token, slippage > 2 * view.tick_size, out, "slippage", slippage)


_KINDS: Final = (ComplementCheck, EventSumCheck, MicropriceCheck, DepthCheck)


class _NoInventory(Inventory):
    def position(self, token_id: str) -> int:
        return 0

    def position_of(self, strategy: str, token_id: str) -> int:
        return 0


# --- one run -------------------------------------------------------------------------------------


@attrs.define(eq=False)
class SwitchableDisk:
    """The log writer's ``write_batch``: a normal disk, or (``slow``) one where every batch
    takes 100 ms more. Runs in the writer's worker thread; the flag is flipped between windows."""

    slow: bool = False

    def __call__(self, file: BinaryIO, data: bytes) -> None:
        if self.slow:
            time.sleep(SLOW_WRITE_S)
        write_and_flush(file, data)


@attrs.define(eq=False)
class FrameProbe:
    """The feed's ``recorder``: per data frame, its receive time and the venue's timestamp; with
    ``telemetry``, also one ``market.frame`` record offered to the log."""

    log: LogChannel
    telemetry: bool = False
    recording: bool = False
    frames: list[float] = attrs.field(factory=list)
    venue_ms: list[int] = attrs.field(factory=list)

    def __call__(self, received_at: float, raw: str) -> None:
        if raw == "PONG":
            return
        if self.recording:
            self.frames.append(received_at)
            self.venue_ms.append(_first_timestamp(raw))
        if self.telemetry:
            self.log.offer(
                {
                    "kind": "market.frame",
                    "ts": time.time(),
                    "received_at": received_at,
                    "events": raw.count('"event_type"'),
                    "bytes": len(raw),
                }
            )


_TIMESTAMP: Final = '"timestamp":"'


def _first_timestamp(raw: str) -> int:
    """The first ``"timestamp":"<ms>"`` of a frame (the venue's clock when it made the event),
    or -1. A string search, not a parse: this runs on the measured loop."""
    at = raw.find(_TIMESTAMP)
    if at < 0:
        return -1
    at += len(_TIMESTAMP)
    digits = raw[at : raw.find('"', at)]
    return int(digits) if digits.isdigit() else -1


@attrs.define(eq=False)
class GcPauses:
    """Collector pauses by generation, from ``gc.callbacks`` (installed only for a window)."""

    pauses: list[tuple[int, float]] = attrs.field(factory=list)
    _started: float = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append((info["generation"], time.perf_counter() - self._started))

    def longest(self, generation: int | None = None) -> float:
        return max(
            (p for g, p in self.pauses if generation is None or g == generation), default=0.0
        )


def frame_latencies(
    frames: Sequence[float], wakes: Sequence[tuple[float, float]]
) -> list[tuple[int, float]]:
    """Per frame ``(index, latency)``: the end of the first decision step that woke after the
    frame was received, minus its receive time. Frames received after the last wake are left
    out (still in flight when the window closed)."""
    out: list[tuple[int, float]] = []
    index = 0
    count = len(wakes)
    for frame, received_at in enumerate(frames):
        while index < count and wakes[index][0] <= received_at:
            index += 1
        if index == count:
            break
        out.append((frame, wakes[index][1] - received_at))
    return out


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of sorted samples (``math.nan`` when there are none)."""
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


@attrs.frozen
class Window:
    """One measurement window of a run: its name and how the log is loaded during it."""

    key: str
    telemetry: bool = False
    slow_disk: bool = False


@attrs.define(eq=False)
class _Runtime:
    """The measured pieces of one running pipeline (see ``run_pipeline``)."""

    feed: MarketFeed
    channel: LogChannel
    probe: FrameProbe
    disk: SwitchableDisk
    timelines: list[Timeline]
    stats: list[RunnerStats]
    tokens: int
    clock_lag: float

    async def measure(self, window: Window, seconds: float) -> dict[str, Any]:
        """Switch the log load to ``window``'s, settle, then measure for ``seconds``."""
        self.probe.telemetry = window.telemetry
        self.disk.slow = window.slow_disk
        await trio.sleep(SETTLE_S)
        lag = Reservoir(size=1 << 20)
        gc_pauses = GcPauses()
        async with trio.open_nursery() as nursery:
            await nursery.start(
                partial(run_loop_lag_monitor, lag, interval_s=PROBE_INTERVAL_S), name="lag"
            )
            feed_before = self.feed.statistics(per_token=False)
            log_before = self.channel.statistics()
            for stat in self.stats:
                stat.latency = Reservoir(size=1 << 20)
            for timeline in self.timelines:
                timeline.wakes.clear()
                timeline.recording = True
            self.probe.frames.clear()
            self.probe.venue_ms.clear()
            self.probe.recording = True
            gc.callbacks.append(gc_pauses)
            wall_offset = time.time() - trio.current_time()
            cpu_start = time.process_time()
            start = trio.current_time()
            try:
                await trio.sleep(seconds)
            finally:
                gc.callbacks.remove(gc_pauses)
                self.probe.recording = False
                for timeline in self.timelines:
                    timeline.recording = False
            elapsed = trio.current_time() - start
            cpu = time.process_time() - cpu_start
            feed_after = self.feed.statistics(per_token=False)
            log_after = self.channel.statistics()
            nursery.cancel_scope.cancel()
        assert feed_after.malformed == feed_before.malformed, feed_after
        latencies: list[float] = []
        ages: list[float] = []
        steps: list[float] = []
        worst_p99 = 0.0
        frames, venue_ms = self.probe.frames, self.probe.venue_ms
        for timeline in self.timelines:
            own = frame_latencies(frames, timeline.wakes)
            worst_p99 = max(worst_p99, percentile(sorted(latency for _, latency in own), 0.99))
            for frame, latency in own:
                latencies.append(latency)
                if venue_ms[frame] >= 0:
                    decided_wall = frames[frame] + latency + wall_offset
                    ages.append(decided_wall - (venue_ms[frame] / 1000 + self.clock_lag))
            steps.extend(decided - woke for woke, decided in timeline.wakes)
        latencies.sort()
        ages.sort()
        steps.sort()
        # How old each frame already was when the feed read it, in arrival order: a backlog
        # that grows over the window means the bot is not keeping up with the venue.
        arrival = [
            received_at + wall_offset - (stamp / 1000 + self.clock_lag)
            for received_at, stamp in zip(frames, venue_ms, strict=True)
            if stamp >= 0
        ]
        tenth = max(1, len(arrival) // 10)
        growth = (
            statistics.median(arrival[-tenth:]) - statistics.median(arrival[:tenth])
            if arrival
            else math.nan
        )
        return {
            "frames": len(frames),
            "samples": len(latencies),
            "p50": percentile(latencies, 0.50),
            "p99": percentile(latencies, 0.99),
            "max": latencies[-1] if latencies else math.nan,
            "worst_strategy_p99": worst_p99,
            # The runner's own figure (newest frame of each delivery), worst strategy.
            "runner_p99": max((s.latency.summary().p99 for s in self.stats), default=0.0),
            "venue_age_p50": percentile(ages, 0.50),
            "venue_age_p99": percentile(ages, 0.99),
            "backlog_growth": growth,
            "step_p99": percentile(steps, 0.99),
            "stall_max": lag.peak,
            "stall_p99": lag.summary().p99,
            "gc_max": gc_pauses.longest(),
            "gc_gen2": sum(1 for g, _ in gc_pauses.pauses if g == 2),
            "cpu": cpu / elapsed,
            "events_per_s": (feed_after.events - feed_before.events) / elapsed,
            "frames_per_s": (feed_after.frames - feed_before.frames) / elapsed,
            "reconnects": feed_after.reconnects - feed_before.reconnects,
            "tokens": self.tokens,
            "skipped": sum(s.skipped_updates for s in self.stats),
            "decisions": sum(s.decisions for s in self.stats),
            "log_offered": log_after.offered - log_before.offered,
            "log_dropped": log_after.dropped - log_before.dropped,
            "log_batches": log_after.batches_written - log_before.batches_written,
            "log_peak_buffered": log_after.peak_buffered,
        }


async def run_pipeline(
    urls: Urls,
    windows: Sequence[Window],
    *,
    seconds: float,
    log_dir: Path,
    clock_lag: float = 0.0,
) -> dict[str, dict[str, Any]]:
    """Run the bot's runtime against the venue at ``urls`` and measure ``windows`` one after
    the other, ``seconds`` each, after the warm-up; the raw figures (seconds, counts) by window.

    ``clock_lag``: how far the venue's clock is behind this process's wall clock, seconds.
    """
    async with httpx.AsyncClient() as http:
        rest = RestClient(
            http,
            gamma_url=urls.gamma_url,
            clob_url=urls.clob_url,
            backoff=Backoff(0.1, 1.0),
            rng=random.Random(1),
            rate_limits=(),
        )
        universe = await discover(rest, _DISCOVERY, now=datetime.now(UTC))
        log_cfg = LogConfig()
        channel, receive = open_log_channel(log_cfg.queue_size)
        probe = FrameProbe(channel)
        disk = SwitchableDisk()
        bus: Bus[FeedEvent] = Bus()
        feed = MarketFeed(
            universe.token_ids(),
            FeedConfig(),
            ws_url=urls.ws_market_url,
            rest=rest,
            bus=bus,
            rng=random.Random(2),
            log=channel,
            recorder=probe,
        )
        trading = Trading(universe, _NoInventory(), lambda _name: {})
        timelines = [Timeline() for _ in _KINDS]
        stats = [RunnerStats(f"s{i}-{kind.__name__}") for i, kind in enumerate(_KINDS)]
        runtime = _Runtime(
            feed, channel, probe, disk, timelines, stats, len(universe.token_ids()), clock_lag
        )
        out: dict[str, dict[str, Any]] = {}
        async with trio.open_nursery() as outer:
            await outer.start(
                partial(
                    run_log_writer,
                    receive,
                    log_dir / "polybot.jsonl",
                    batch_max=log_cfg.batch_max,
                    write_batch=disk,
                ),
                name="log writer",
            )
            configure_logging(channel, LogLevel.INFO, console=False)
            try:
                async with trio.open_nursery() as app:
                    with trio.fail_after(60):
                        await app.start(feed.run, name="feed")
                    for kind, timeline, stat in zip(_KINDS, timelines, stats, strict=True):
                        make = partial(kind, stat.name, universe, timeline)
                        await app.start(
                            partial(
                                run_strategy,
                                make,
                                bus.subscribe(stat.name, max_pending=10_000),
                                channel,
                                stat,
                                trading,
                                backoff=Backoff(1.0, 30.0),
                                rng=random.Random(3),
                            ),
                            name=f"strategy {stat.name}",
                        )
                    with trio.fail_after(60):
                        # Polling a counter owned by the feed task: every book has its snapshot.
                        while feed.statistics(per_token=False).stale_tokens:  # noqa: ASYNC110
                            await trio.sleep(0.02)
                    await trio.sleep(WARMUP_S)
                    gc.freeze()  # as bot.app.run_bot does once everything has started
                    try:
                        for window in windows:
                            out[window.key] = await runtime.measure(window, seconds)
                    finally:
                        gc.unfreeze()
                    # Cancelled, the writer still writes what it took (once, shielded): a
                    # slow disk's backlog does not hold the benchmark up.
                    outer.cancel_scope.cancel()
            finally:
                logger.remove()
                channel.close()
    return out


# --- figures -------------------------------------------------------------------------------------


def _ms(seconds: float) -> float:
    return round(seconds * 1e3, 3)


def _keeping_up(result: dict[str, Any]) -> bool:
    """Whether the bot kept pace with the venue: its backlog (how old frames are when the feed
    reads them) grew by less than ``MAX_BACKLOG_GROWTH_S`` over the window. A bot that falls
    behind can show a small receipt-to-decision latency while every frame waits in the socket
    first; then no latency target counts as met."""
    growth = result["backlog_growth"]
    return not math.isnan(growth) and growth < MAX_BACKLOG_GROWTH_S


def _run_extras(result: dict[str, Any]) -> dict[str, Any]:
    """What every figure says about its window: load, where the time went, GC, the log."""
    return {
        "feed_events_per_s": round(result["events_per_s"]),
        "feed_frames_per_s": round(result["frames_per_s"]),
        "cpu_busy": round(result["cpu"], 3),
        "strategies": len(_KINDS),
        "tokens": result["tokens"],
        "frames": result["frames"],
        "max_ms": _ms(result["max"]),
        "worst_strategy_p99_ms": _ms(result["worst_strategy_p99"]),
        "runner_p99_ms": _ms(result["runner_p99"]),
        "venue_to_decision_p50_ms": _ms(result["venue_age_p50"]),
        "venue_to_decision_p99_ms": _ms(result["venue_age_p99"]),
        "backlog_growth_ms": _ms(result["backlog_growth"]),
        "keeping_up": _keeping_up(result),
        "strategy_step_p99_ms": _ms(result["step_p99"]),
        "loop_stall_max_ms": _ms(result["stall_max"]),
        "loop_stall_p99_ms": _ms(result["stall_p99"]),
        "gc_max_ms": _ms(result["gc_max"]),
        "gc_gen2_collections": result["gc_gen2"],
        "reconnects": result["reconnects"],
        "skipped_updates": result["skipped"],
        "decisions": result["decisions"],
        "log_offered": result["log_offered"],
        "log_dropped": result["log_dropped"],
        "log_batches": result["log_batches"],
    }


def _windows(only: str) -> dict[str, list[Window]]:
    """The windows to measure, by venue rate label, for the figures ``only`` selects."""
    plan: dict[str, list[Window]] = {}
    for label in RATES:
        names = (
            f"runtime.tick_to_decision.{label}.p50_ms",
            f"runtime.tick_to_decision.{label}.p99_ms",
        )
        if any(only in name for name in names):
            plan.setdefault(label, []).append(Window(label))
    if only in "runtime.loop_stall.slow_disk.max_ms":
        plan.setdefault(STALL_RATE, []).extend(
            [
                Window("stall_baseline", telemetry=True),
                Window("slow_disk", telemetry=True, slow_disk=True),
            ]
        )
    return plan


async def _measure(quick: bool, plan: dict[str, list[Window]]) -> dict[str, dict[str, Any]]:
    seconds = 1.0 if quick else 5.0
    out: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, windows in plan.items():
            clock = Path(tmp, f"clock-{label}")
            argv = ("-m", "benchmarks.runtime_latency", "serve", str(RATES[label]), str(clock))
            async with venue_process(*argv, python=True) as urls:
                clock_lag = float(await trio.Path(clock).read_text())
                out |= await run_pipeline(
                    urls, windows, seconds=seconds, log_dir=Path(tmp, label), clock_lag=clock_lag
                )
    return out


def run(*, quick: bool, only: str) -> Iterator[Result]:
    plan = _windows(only)
    if not plan:
        return
    figures = trio.run(_measure, quick, plan)
    for label in RATES:
        result = figures.get(label)
        if result is None:
            continue
        extras = {"venue_events_per_s": RATES[label], **_run_extras(result)}
        name = f"runtime.tick_to_decision.{label}.p50_ms"
        if only in name:
            yield Result(name, _ms(result["p50"]), "ms", {"samples": result["samples"]})
        name = f"runtime.tick_to_decision.{label}.p99_ms"
        if only in name:
            target = P99_TARGET_MS[label]
            p99 = _ms(result["p99"])
            met = p99 < target and _keeping_up(result)
            yield Result(name, p99, "ms", {"target": target, "met": met, **extras})
    if "slow_disk" in figures:
        slow, base = figures["slow_disk"], figures["stall_baseline"]
        worst = _ms(slow["stall_max"])
        yield Result(
            "runtime.loop_stall.slow_disk.max_ms",
            worst,
            "ms",
            {
                "target": STALL_TARGET_MS,
                "met": worst < STALL_TARGET_MS and _keeping_up(slow),
                "baseline_max_ms": _ms(base["stall_max"]),
                "baseline_gc_max_ms": _ms(base["gc_max"]),
                "probe_interval_ms": PROBE_INTERVAL_S * 1e3,
                "write_ms": SLOW_WRITE_S * 1e3,
                "venue_events_per_s": RATES[STALL_RATE],
                "tick_to_decision_p99_ms": _ms(slow["p99"]),
                "log_peak_buffered": slow["log_peak_buffered"],
                **_run_extras(slow),
            },
        )


# --- the venue subprocess -----------------------------------------------------------------------


async def _serve(rate: float, clock_path: str) -> None:
    """``python -m benchmarks.runtime_latency serve RATE CLOCK_FILE``: the venue; its URLs on
    stdout once it listens, and before that, in ``CLOCK_FILE``, how far its clock is behind the
    wall clock (seconds).

    The venue's clock starts at ``start_epoch_ms`` when its tasks start, so the universe is
    generated first and the wall clock read just before; what remains is measured, so the
    frames' ``timestamp`` can be compared with the measuring process's wall clock
    (``venue_to_decision``).
    """
    config = venue_config(rate)
    universe = generate_universe(
        universe_config(config, epoch_ms=int(time.time() * 1000)), random.Random(config.seed)
    )
    start_ms = int(time.time() * 1000)
    async with open_sim_venue(config, start_epoch_ms=start_ms, universe=universe) as venue:
        # Still a few ms behind (the exchange is built before its clock starts): measure it. The
        # venue's clock reads whole ms, so the smallest of a few readings is the closest.
        lags = []
        for _ in range(20):
            lags.append(time.time() - venue.now_ms() / 1000)
            await trio.sleep(0.0003)
        await trio.Path(clock_path).write_text(repr(min(lags)))
        await write_line(sys.stdout, orjson.dumps(venue.urls.as_dict()).decode())
        await trio.sleep_forever()


def _main(argv: list[str]) -> None:
    if len(argv) != 3 or argv[0] != "serve":
        raise SystemExit(
            "usage: python -m benchmarks.runtime_latency serve EVENTS_PER_SECOND CLOCK_FILE"
        )
    trio.run(_serve, float(argv[1]), argv[2])


if __name__ == "__main__":
    _main(sys.argv[1:])

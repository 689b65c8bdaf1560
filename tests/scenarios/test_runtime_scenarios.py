"""Scenarios: the runtime stays live when a part of it is slow (the disk, one strategy).

The market-data runtime is assembled from its parts as ``bot/app.py`` does (the sim venue,
``MarketFeed``, one ``Bus``, strategy tasks under ``run_strategy``, the bounded log channel with
its writer, loguru routed into it, a loop-lag monitor), so each scenario can slow one part down:

* the log writer's disk (every write takes 100 ms, in the writer's worker thread): the feed and
  the strategies must not notice, and what the log cannot take is dropped and counted;
* one strategy's task (every hand-off of its decisions takes 50 ms): the feed and a fast strategy
  must not notice, and the slow one is served conflated books.

``tests/scenarios/test_feed_scenarios.py::test_a_slow_consumer_does_not_slow_the_feed`` already
shows that a slow raw bus subscriber leaves the feed's frame rate alone; the slow-strategy
scenario here adds what it does not cover: strategies run by ``run_strategy``, and the
tick-to-decision latency of a fast strategy next to the slow one.

Real sockets, so the real clock (TRIO_IDIOMS.md section 7); every wait is bounded. The bounds
are chosen to tell the failure apart from scheduling noise on a shared machine: a disk write on
the event loop would stall it 100 ms at a time, a strategy that held up the others would add
50 ms to their latency.
"""

from __future__ import annotations

import gc
import itertools
import random
import time
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any, BinaryIO, Final

import attrs
import httpx
import orjson
import trio
from loguru import logger

from bot.config import FeedConfig, LogLevel
from bot.core.backoff import Backoff
from bot.core.trading import Decision, Inventory, Strategy
from bot.core.universe import Universe
from bot.shell.bus import Bus
from bot.shell.feed import MarketFeed
from bot.shell.health import Reservoir, run_loop_lag_monitor
from bot.shell.logsink import (
    LogChannel,
    WriteBatch,
    configure_logging,
    open_log_channel,
    run_log_writer,
    write_and_flush,
)
from bot.shell.rest import RestClient
from bot.shell.runner import RunnerStats, Submission, Trading, run_strategy
from bot.sim.venue import SimVenue, open_sim_venue
from tests.sim.server_helpers import START_MS, small_config

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
    from pathlib import Path

    from bot.core.trading import Action, Context
    from bot.shell.feed_events import FeedEvent

WAIT: Final = 5.0
SLOW_WRITE_S: Final = 0.1
SLOW_HAND_OFF_S: Final = 0.05


class DecideOnEveryUpdate(Strategy):
    """Decides on every book update it is shown: one ``Decision`` (a log record) per call."""

    def __init__(self, name: str) -> None:
        self.name = name

    def on_books(self, ctx: Context, changed: Collection[str]) -> Sequence[Action]:
        token = min(changed)
        view = ctx.books[token]
        return [Decision(self.name, "tick", token, {"ask": str(view.best_ask_price)})]


class NoInventory(Inventory):
    def position(self, token_id: str) -> int:
        return 0

    def position_of(self, strategy: str, token_id: str) -> int:
        return 0


def no_orders(_strategy: str) -> dict[str, Any]:
    return {}


@attrs.define(eq=False)
class Runtime:
    """The running pieces a scenario looks at, and helpers to add to them."""

    venue: SimVenue
    feed: MarketFeed
    bus: Bus[FeedEvent]
    log: LogChannel
    nursery: trio.Nursery

    async def start_strategy(
        self, name: str, *, submit: Callable[[Submission], Awaitable[None]] | None = None
    ) -> RunnerStats:
        """One ``DecideOnEveryUpdate`` under ``run_strategy`` on its own subscription."""
        stats = RunnerStats(name, latency=Reservoir(size=100_000))
        trading = Trading(Universe(), NoInventory(), no_orders, submit)
        await self.nursery.start(
            partial(
                run_strategy,
                partial(DecideOnEveryUpdate, name),
                self.bus.subscribe(name, max_pending=100_000),
                self.log,
                stats,
                trading,
                backoff=Backoff(0.01, 0.1),
                rng=random.Random(3),
                restart=False,
            ),
            name=f"strategy {name}",
        )
        return stats

    async def start_lag_monitor(self) -> Reservoir:
        """A loop-lag monitor every 5 ms (the bot's runs every 50 ms; finer catches more)."""
        lag = Reservoir(size=100_000)
        await self.nursery.start(partial(run_loop_lag_monitor, lag, interval_s=0.005))
        return lag

    async def assert_read_everything(self) -> None:
        """Pause the venue and wait until the feed has read every frame it wrote."""
        self.venue.pause_pump()
        await self.venue.wait_idle()

        def read_everything() -> bool:
            stats = self.feed.statistics(per_token=False)
            pongs = sum(shard.pongs for shard in stats.shards)
            return stats.frames + pongs == self.venue.statistics().server.frames_sent

        await wait_for(read_everything)


@asynccontextmanager
async def runtime(
    log_path: Path,
    *,
    events_per_second: float,
    write_batch: WriteBatch = write_and_flush,
    max_buffer: int = 10_000,
    batch_max: int = 256,
) -> AsyncIterator[Runtime]:
    """The venue and the runtime, with every book fresh; the log writer outlives the rest and
    has flushed everything it accepted when the block exits."""
    async with (
        open_sim_venue(
            small_config(events_per_second=events_per_second), start_epoch_ms=START_MS
        ) as venue,
        httpx.AsyncClient() as http,
    ):
        rest = RestClient(
            http,
            gamma_url=venue.gamma_url,
            clob_url=venue.clob_url,
            backoff=Backoff(0.01, 0.1),
            rng=random.Random(1),
            rate_limits=(),
        )
        channel, receive = open_log_channel(max_buffer)
        bus: Bus[FeedEvent] = Bus()
        feed = MarketFeed(
            venue.universe.token_ids(),
            FeedConfig(assets_per_socket=16, subscribe_batch_size=5),
            ws_url=venue.ws_market_url,
            rest=rest,
            bus=bus,
            rng=random.Random(2),
            log=channel,
        )
        async with trio.open_nursery() as outer:
            await outer.start(
                partial(
                    run_log_writer,
                    receive,
                    log_path,
                    batch_max=batch_max,
                    write_batch=write_batch,
                    final_flush_timeout=WAIT,
                ),
                name="log writer",
            )
            configure_logging(channel, LogLevel.INFO, console=False)
            try:
                async with trio.open_nursery() as app:
                    with trio.fail_after(WAIT):
                        await app.start(feed.run, name="feed")
                    await wait_for(lambda: not feed.statistics(per_token=False).stale_tokens)
                    yield Runtime(venue, feed, bus, channel, app)
                    app.cancel_scope.cancel()
            finally:
                logger.remove()
                channel.close()  # the writer drains what it accepted and returns


async def wait_for(predicate: Callable[[], bool]) -> None:
    """Poll ``predicate`` until it holds; fail after ``WAIT`` seconds."""
    with trio.fail_after(WAIT):
        while not predicate():  # noqa: ASYNC110 (polling counters owned by other tasks)
            await trio.sleep(0.02)


def quiet_collector() -> None:
    """A full collection now, so that none is due during the next second or two.

    This test process holds pytest's whole heap; a full collection of it takes tens of ms and
    would read as a loop stall that has nothing to do with the scenario. After a full
    collection the next one waits until a quarter of the heap has been newly promoted, far more
    than these scenarios allocate. (``benchmarks/runtime_latency.py`` reports GC pauses as they
    come, in the bot's own process.)
    """
    gc.collect()


# --- 1. a slow log disk ---------------------------------------------------------------------------


async def test_a_slow_log_disk_does_not_stall_the_feed(tmp_path: Path) -> None:
    writes: list[float] = []

    def slow_disk(file: BinaryIO, data: bytes) -> None:
        time.sleep(SLOW_WRITE_S)  # a stalled disk: every batch takes 100 ms (worker thread)
        write_and_flush(file, data)
        writes.append(time.monotonic())

    log_path = tmp_path / "polybot.jsonl"
    # A small log: 20 records per 100 ms write is 200 records/s, well below what two strategies
    # deciding on every update offer (a decision record and a loguru line each).
    async with runtime(
        log_path, events_per_second=1_000.0, write_batch=slow_disk, max_buffer=100, batch_max=20
    ) as rt:
        strategies = [await rt.start_strategy(f"decider-{i}") for i in range(2)]
        quiet_collector()
        lag = await rt.start_lag_monitor()
        frames_before = rt.feed.statistics(per_token=False).frames
        decisions_before = [s.decisions for s in strategies]
        await trio.sleep(1.5)
        frames = rt.feed.statistics(per_token=False).frames - frames_before
        running = rt.log.statistics()
        await rt.assert_read_everything()  # the feed kept up with the venue throughout

        assert frames >= 100  # about 1.5 s of the venue's 10 ms pump rounds
        for stats, before in zip(strategies, decisions_before, strict=True):
            assert stats.decisions - before >= 30, stats  # the strategies kept deciding
        # A disk write on the loop would stall it 100 ms per batch; a 5 ms probe sees it.
        assert lag.summary().count >= 50  # it ran (about 300 samples on an idle machine)
        assert lag.peak < SLOW_WRITE_S / 2, lag.summary().as_ms()
        # The log could not keep up: the overflow was dropped and counted, never waited for.
        assert running.dropped > 0, running
        assert running.essential_dropped == 0
        assert 5 <= len(writes) <= 1.5 / SLOW_WRITE_S + 5  # the writer was busy being slow
        assert running.buffered <= running.max_buffer

    final = rt.log.statistics()
    records = [orjson.loads(line) for line in log_path.read_bytes().splitlines()]
    assert final.written == len(records)
    gaps = [r for r in records if r["kind"] == "log.dropped"]
    reported = sum(r["dropped"] for r in gaps)
    # Every drop is in the file (the writer reports the gap after each batch it writes); only
    # offers made after the writer's last report (during shutdown) can be missing from it.
    assert running.dropped <= reported <= final.dropped
    decisions = sum(1 for r in records if r["kind"] == "decision")
    assert decisions >= 20


# --- 2. a slow strategy ---------------------------------------------------------------------------


async def test_a_slow_strategy_does_not_delay_a_fast_one_or_the_feed(tmp_path: Path) -> None:
    hand_offs: list[Submission] = []

    async def slow_submit(submission: Submission) -> None:
        await trio.sleep(SLOW_HAND_OFF_S)  # every hand-off of its decisions takes 50 ms
        hand_offs.append(submission)

    async with runtime(tmp_path / "polybot.jsonl", events_per_second=2_000.0) as rt:
        fast = await rt.start_strategy("fast")
        slow = await rt.start_strategy("slow", submit=slow_submit)
        quiet_collector()
        fast_deliveries, slow_deliveries = fast.deliveries, slow.deliveries
        events: list[int] = []
        for _ in range(15):
            events.append(rt.feed.statistics(per_token=False).events)
            await trio.sleep(0.1)
        events.append(rt.feed.statistics(per_token=False).events)
        await rt.assert_read_everything()

        # The feed: its event count rose in every tenth of a second.
        assert all(later > earlier for earlier, later in itertools.pairwise(events))
        # The fast strategy: it decided on (nearly) every frame, promptly.
        fast_latency = fast.latency.summary()
        assert fast.deliveries - fast_deliveries >= 60, fast
        # (Sub-millisecond on an idle machine; held up by the slow one it would be >= 50 ms.)
        assert fast_latency.p99 < SLOW_HAND_OFF_S / 2, fast_latency.as_ms()
        # The slow one: about one look per 50 ms, on conflated books.
        looks = slow.deliveries - slow_deliveries
        assert 10 <= looks <= 1.5 / SLOW_HAND_OFF_S + 5, slow
        assert slow.skipped_updates > 0, slow
        assert fast.deliveries - fast_deliveries >= 2 * looks
        assert len(hand_offs) >= looks - 1
        assert {h.strategy for h in hand_offs} == {"slow"}

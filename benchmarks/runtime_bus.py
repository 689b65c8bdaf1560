"""Fan-out cost of ``bot.shell.bus`` under trio: one publisher, four subscriber tasks.

Figures:

* ``runtime.bus.publish_to_4``: book updates per second through the bus, end to end (publish,
  wake, take, a trivial consumer), each update reaching 4 subscribers. The publisher sends one
  frame of 2 views (a YES/NO ``price_change``) per checkpoint, cycling over ``TOKENS`` tokens,
  so every subscriber wakes once per frame: the worst case for the bus (no conflation helps).
  Extras give the cost per delivery (one ``Delivery`` to one subscriber) and per update per
  subscriber, in microseconds of the whole pipeline.
* ``runtime.bus.publish_to_4_burst10``: the same with 10 frames per checkpoint (a busy socket
  hands several frames over per read): one wake per subscriber per burst.
* ``runtime.bus.events_to_4``: must-not-lose events per second, 2 per frame, 4 subscribers.
* ``runtime.bus.baseline.memory_channel_to_4`` and ``..._burst10``: the design the bus replaces,
  for comparison: one ``send_nowait`` per update per subscriber into an (unbounded, for the
  benchmark) memory channel, each consumer taking one item per scheduling step. Its consumers
  fall behind and the backlog grows without bound, so this is an optimistic figure for it.
* ``runtime.bus.floor.wake_4``: trio alone, no bus: four parked tasks rescheduled once per
  frame. The bus's own cost per delivery is ``us_per_delivery`` minus this figure's.

All times are wall time of the whole trio run section (publisher plus subscribers), best of N.
"""

from __future__ import annotations

import gc
import math
from functools import partial
from typing import TYPE_CHECKING

import trio
import trio.testing

from benchmarks.common import Result
from bot.core.book import BookView
from bot.core.wire.market_events import Level
from bot.shell.bus import Bus, Subscription

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

SUBSCRIBERS = 4
TOKENS = 100
VIEWS_PER_FRAME = 2


def _views(tokens: int) -> list[tuple[BookView, BookView]]:
    """Frames of two pre-built views (building views is the feed's cost, not the bus's)."""
    frames = []
    for t in range(0, tokens, 2):
        pair = []
        for asset in (f"token-{t}", f"token-{t + 1}"):
            pair.append(
                BookView(
                    asset_id=asset,
                    best_bid=Level(480_000, 10_000_000),
                    best_ask=Level(490_000, 12_000_000),
                    bids=(Level(480_000, 10_000_000),),
                    asks=(Level(490_000, 12_000_000),),
                    tick_size=10_000,
                    last_update_ms=t,
                    stale=False,
                )
            )
        frames.append((pair[0], pair[1]))
    return frames


class _Tally:
    __slots__ = ("books", "deliveries", "events")

    def __init__(self) -> None:
        self.books = 0
        self.events = 0
        self.deliveries = 0


async def _consume(sub: Subscription[int], tally: _Tally) -> None:
    async for delivery in sub:
        tally.deliveries += 1
        tally.books += len(delivery.books)
        tally.events += len(delivery.events)


async def _bus_run(
    frames: int, *, burst: int, with_books: bool, with_events: bool
) -> tuple[float, _Tally]:
    bus: Bus[int] = Bus()
    tally = _Tally()
    views = _views(TOKENS)
    events = (1, 2)
    async with trio.open_nursery() as nursery:
        for i in range(SUBSCRIBERS):
            sub = bus.subscribe(f"s{i}", max_pending=10_000)
            nursery.start_soon(partial(_consume, sub, tally), name=f"subscriber-{i}")
        await trio.testing.wait_all_tasks_blocked()
        start = trio.current_time()
        checkpoint = trio.lowlevel.checkpoint
        publish = bus.publish_batch
        n_views = len(views)
        for n in range(frames):
            now = trio.current_time()
            publish(
                now,
                books=views[n % n_views] if with_books else (),
                events=events if with_events else (),
            )
            if n % burst == burst - 1:
                await checkpoint()
        bus.close()
    elapsed = trio.current_time() - start
    return elapsed, tally


async def _memory_channel_run(frames: int, *, burst: int) -> tuple[float, _Tally]:
    tally = _Tally()
    views = _views(TOKENS)
    sends = []

    async def consume(receive: trio.MemoryReceiveChannel[BookView]) -> None:
        async with receive:
            async for _view in receive:
                tally.deliveries += 1
                tally.books += 1

    async with trio.open_nursery() as nursery:
        for i in range(SUBSCRIBERS):
            send, receive = trio.open_memory_channel[BookView](frames * VIEWS_PER_FRAME)
            sends.append(send)
            nursery.start_soon(partial(consume, receive), name=f"subscriber-{i}")
        await trio.testing.wait_all_tasks_blocked()
        start = trio.current_time()
        n_views = len(views)
        for n in range(frames):
            frame = views[n % n_views]
            for send in sends:
                for view in frame:
                    send.send_nowait(view)
            if n % burst == burst - 1:
                await trio.lowlevel.checkpoint()
        for send in sends:
            send.close()
    elapsed = trio.current_time() - start
    return elapsed, tally


async def _floor_run(frames: int) -> tuple[float, _Tally]:
    tally = _Tally()
    waiters: list[trio.lowlevel.Task | None] = [None] * SUBSCRIBERS

    def abort(_: trio.lowlevel.RaiseCancelT) -> trio.lowlevel.Abort:
        return trio.lowlevel.Abort.SUCCEEDED

    async def park(i: int) -> None:
        while True:
            waiters[i] = trio.lowlevel.current_task()
            await trio.lowlevel.wait_task_rescheduled(abort)
            tally.deliveries += 1

    async with trio.open_nursery() as nursery:
        for i in range(SUBSCRIBERS):
            nursery.start_soon(partial(park, i), name=f"subscriber-{i}")
        await trio.testing.wait_all_tasks_blocked()
        start = trio.current_time()
        for _ in range(frames):
            for i, task in enumerate(waiters):
                if task is not None:
                    waiters[i] = None
                    trio.lowlevel.reschedule(task)
            await trio.lowlevel.checkpoint()
        elapsed = trio.current_time() - start
        nursery.cancel_scope.cancel()
    return elapsed, tally


def _best(run: Callable[[], tuple[float, _Tally]], repeats: int) -> tuple[float, _Tally]:
    best: tuple[float, _Tally] = (math.inf, _Tally())
    gc.collect()
    for _ in range(repeats):
        result = run()
        if result[0] < best[0]:
            best = result
    return best


def run(*, quick: bool, only: str) -> Iterator[Result]:
    frames = 10_000 if quick else 50_000
    repeats = 2 if quick else 5

    def bus_figure(name: str, burst: int) -> Result:
        elapsed, tally = _best(
            lambda: trio.run(
                partial(_bus_run, frames, burst=burst, with_books=True, with_events=False)
            ),
            repeats,
        )
        updates = frames * VIEWS_PER_FRAME
        assert tally.books <= updates * SUBSCRIBERS
        return Result(
            name,
            round(updates / elapsed),
            "updates/s",
            {
                "subscribers": SUBSCRIBERS,
                "tokens": TOKENS,
                "frames": frames,
                "frames_per_checkpoint": burst,
                "deliveries": tally.deliveries,
                "deliveries_per_s": round(tally.deliveries / elapsed),
                "us_per_delivery": round(elapsed / tally.deliveries * 1e6, 3),
                "us_per_update_per_subscriber": round(elapsed / (updates * SUBSCRIBERS) * 1e6, 3),
                "conflated": updates * SUBSCRIBERS - tally.books,
            },
        )

    if only in "runtime.bus.publish_to_4":
        yield bus_figure("runtime.bus.publish_to_4", 1)
    if only in "runtime.bus.publish_to_4_burst10":
        yield bus_figure("runtime.bus.publish_to_4_burst10", 10)
    if only in "runtime.bus.events_to_4":
        elapsed, tally = _best(
            lambda: trio.run(
                partial(_bus_run, frames, burst=1, with_books=False, with_events=True)
            ),
            repeats,
        )
        assert tally.events == frames * 2 * SUBSCRIBERS
        yield Result(
            "runtime.bus.events_to_4",
            round(frames * 2 / elapsed),
            "events/s",
            {
                "subscribers": SUBSCRIBERS,
                "us_per_delivery": round(elapsed / tally.deliveries * 1e6, 3),
            },
        )
    for burst, suffix in ((1, ""), (10, "_burst10")):
        name = f"runtime.bus.baseline.memory_channel_to_4{suffix}"
        if only not in name:
            continue
        elapsed, tally = _best(
            partial(trio.run, partial(_memory_channel_run, frames, burst=burst)), repeats
        )
        updates = frames * VIEWS_PER_FRAME
        assert tally.books == updates * SUBSCRIBERS
        yield Result(
            name,
            round(updates / elapsed),
            "updates/s",
            {
                "subscribers": SUBSCRIBERS,
                "frames_per_checkpoint": burst,
                "us_per_update_per_subscriber": round(elapsed / (updates * SUBSCRIBERS) * 1e6, 3),
            },
        )
    if only in "runtime.bus.floor.wake_4":
        elapsed, tally = _best(lambda: trio.run(partial(_floor_run, frames)), repeats)
        yield Result(
            "runtime.bus.floor.wake_4",
            round(elapsed / tally.deliveries * 1e6, 3),
            "us/wake",
            {"subscribers": SUBSCRIBERS, "wakes": tally.deliveries},
        )

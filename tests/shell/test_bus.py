"""The feed-to-strategies bus: conflated books, must-not-lose events, resyncs, closing.

Time-based tests use ``autojump_clock``: everything here is pure trio (no threads, no I/O), so
virtual time is exact and a "slow" subscriber costs no real time.
"""

from __future__ import annotations

import itertools
from functools import partial

import pytest
import trio
import trio.testing

from bot.core.book import BookView
from bot.shell.bus import (
    BookUpdate,
    Bus,
    Delivery,
    Resync,
    ResyncReason,
    Stamped,
    Subscription,
    SubscriptionStatistics,
)

YES = "yes-token"
NO = "no-token"


def view(asset_id: str, n: int) -> BookView:
    """A distinguishable view: ``last_update_ms`` carries ``n``."""
    return BookView(
        asset_id=asset_id,
        best_bid=None,
        best_ask=None,
        bids=(),
        asks=(),
        tick_size=10_000,
        last_update_ms=n,
        stale=False,
    )


def seqs(delivery: Delivery[int]) -> list[int]:
    return [stamped.item for stamped in delivery.events]


# --- conflation --------------------------------------------------------------------------------


async def test_conflation_while_subscriber_sleeps(autojump_clock: trio.testing.MockClock) -> None:
    bus: Bus[int] = Bus()
    sub = bus.subscribe("slow", max_pending=10)
    seen: list[Delivery[int]] = []

    async def subscriber() -> None:
        await trio.sleep(10)  # asleep while the feed publishes
        seen.append(await sub.receive())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(subscriber)
        for n in range(1000):
            bus.publish_book(view(YES, n), received_at=trio.current_time())
            await trio.sleep(0.001)

    (delivery,) = seen
    assert list(delivery.books) == [YES]
    update = delivery.books[YES]
    assert update.view.last_update_ms == 999  # exactly the last view, never an old one
    assert update.skipped == 999
    assert delivery.skipped == 999
    assert update.received_at == pytest.approx(0.999)
    assert delivery.pending_since == 0.0  # the oldest (first skipped) update
    assert delivery.events == []
    assert delivery.resync is None
    stats = sub.statistics()
    assert (stats.skipped, stats.books_delivered, stats.deliveries) == (999, 1, 1)


async def test_burst_wakes_a_waiting_subscriber_once() -> None:
    bus: Bus[int] = Bus()
    sub = bus.subscribe("s", max_pending=10)
    got: list[Delivery[int]] = []

    async def subscriber() -> None:
        got.append(await sub.receive())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(subscriber)
        await trio.testing.wait_all_tasks_blocked()
        assert sub.statistics().waiting
        # A burst without a checkpoint: the first publish wakes it, the rest join the delivery.
        for n in range(1000):
            bus.publish_book(view(YES, n), received_at=float(n))
            bus.publish_book(view(NO, n), received_at=float(n))
        bus.publish_event(7, received_at=1000.0)

    (delivery,) = got
    assert delivery.number == 1
    assert {token: u.view.last_update_ms for token, u in delivery.books.items()} == {
        YES: 999,
        NO: 999,
    }
    assert delivery.books[YES].skipped == delivery.books[NO].skipped == 999
    assert seqs(delivery) == [7]
    assert delivery.pending_since == 0.0
    assert delivery.latest_received_at == 1000.0


async def test_skips_count_since_last_delivery_per_token() -> None:
    bus: Bus[int] = Bus()
    sub = bus.subscribe("s", max_pending=10)
    bus.publish_batch(1.0, books=[view(YES, 1), view(YES, 2), view(NO, 1)])
    first = sub.receive_nowait()
    assert first.books[YES] == BookUpdate(view(YES, 2), 1.0, 1)
    assert first.books[NO] == BookUpdate(view(NO, 1), 1.0, 0)
    bus.publish_batch(2.0, books=[view(YES, 3)])
    bus.publish_batch(3.0, books=[view(YES, 4)])
    second = sub.receive_nowait()
    assert list(second.books) == [YES]  # NO did not change
    assert second.books[YES] == BookUpdate(view(YES, 4), 3.0, 1)
    assert second.pending_since == 2.0
    with pytest.raises(trio.WouldBlock):
        sub.receive_nowait()


async def test_late_subscriber_gets_every_current_book() -> None:
    bus: Bus[int] = Bus()
    bus.publish_batch(1.0, books=[view(YES, 1), view(NO, 1)])
    bus.publish_batch(2.0, books=[view(YES, 2)])
    bus.publish_event(5, received_at=2.0)  # nobody subscribed: not kept
    sub = bus.subscribe("late", max_pending=10)
    delivery = sub.receive_nowait()
    assert delivery.books == {
        YES: BookUpdate(view(YES, 2), 2.0, 0),
        NO: BookUpdate(view(NO, 1), 1.0, 0),
    }
    assert delivery.events == []
    assert delivery.pending_since == 1.0
    bus.publish_book(view(NO, 2), 3.0)
    assert sub.receive_nowait().books == {NO: BookUpdate(view(NO, 2), 3.0, 0)}


async def test_discard_book() -> None:
    bus: Bus[int] = Bus()
    sub = bus.subscribe("s", max_pending=10)
    bus.publish_batch(1.0, books=[view(YES, 1), view(NO, 1)])
    bus.discard_book(YES)
    bus.discard_book("unknown")  # no-op
    assert list(sub.receive_nowait().books) == [NO]
    assert bus.view(YES) is None
    bus.publish_book(view(YES, 9), 2.0)  # starts afresh
    assert sub.receive_nowait().books == {YES: BookUpdate(view(YES, 9), 2.0, 0)}


# --- must-not-lose events ----------------------------------------------------------------------


async def test_events_delivered_in_order(autojump_clock: trio.testing.MockClock) -> None:
    bus: Bus[int] = Bus()
    sub = bus.subscribe("s", max_pending=1000)
    received: list[Stamped[int]] = []

    async def subscriber() -> None:
        async for delivery in sub:
            assert delivery.resync is None
            received.extend(delivery.events)
            await trio.sleep(0.0037)  # uneven: deliveries of varying size

    async with trio.open_nursery() as nursery:
        nursery.start_soon(subscriber)
        n = 0
        for frame in range(200):
            now = trio.current_time()
            if frame % 3 == 0:
                bus.publish_event(n, now)
                n += 1
            else:
                bus.publish_batch(now, books=[view(YES, frame)], events=[n, n + 1])
                n += 2
            await trio.sleep(0.001)
        bus.close()

    assert [s.item for s in received] == list(range(n))
    assert all(a.received_at <= b.received_at for a, b in itertools.pairwise(received))
    stats = sub.statistics()
    assert stats.events_delivered == n
    assert stats.events_lost == 0
    assert stats.resyncs == 0
    assert stats.closed


async def test_overflow_gives_resync_then_normal_delivery() -> None:
    bus: Bus[int] = Bus()
    sub = bus.subscribe("s", max_pending=10)
    other = bus.subscribe("other", max_pending=100)
    bus.publish_batch(0.5, books=[view(YES, 1), view(NO, 1)])
    assert len(sub.receive_nowait().books) == 2  # caught up on books
    bus.publish_batch(1.0, books=[view(YES, 2)], events=range(4))
    bus.publish_batch(2.0, events=range(4, 12))  # 10 fit, 2 lost
    bus.publish_event(12, 3.0)  # lost
    stats = sub.statistics()
    assert (stats.events_queued, stats.peak_events_queued, stats.events_lost) == (10, 10, 3)
    assert stats.resyncs == 1  # pending

    delivery = sub.receive_nowait()
    assert seqs(delivery) == list(range(10))
    assert delivery.resync == Resync(
        lost=3,
        reason=ResyncReason.OVERFLOW,
        max_pending=10,
        first_lost_at=2.0,
        last_lost_at=3.0,
    )
    # Every known book, fresh, to rebuild from (NO did not change: nothing skipped).
    assert delivery.books == {
        YES: BookUpdate(view(YES, 2), 1.0, 0),
        NO: BookUpdate(view(NO, 1), 0.5, 0),
    }

    bus.publish_event(13, 4.0)
    after = sub.receive_nowait()
    assert seqs(after) == [13]
    assert after.resync is None
    assert after.books == {}

    assert seqs(other.receive_nowait()) == list(range(14))  # the other one lost nothing
    stats = sub.statistics()
    assert (stats.events_lost, stats.resyncs, stats.events_delivered) == (3, 1, 11)
    bus_stats = bus.statistics()
    assert (bus_stats.events_lost, bus_stats.resyncs) == (3, 1)


async def test_overflow_with_one_event_at_a_time() -> None:
    bus: Bus[str] = Bus()
    sub = bus.subscribe("s", max_pending=2)
    for n, item in enumerate("abcde"):
        bus.publish_event(item, float(n))
    delivery = sub.receive_nowait()
    assert [s.item for s in delivery.events] == ["a", "b"]
    assert delivery.resync is not None
    assert (delivery.resync.lost, delivery.resync.first_lost_at) == (3, 2.0)
    assert delivery.resync.last_lost_at == 4.0


# --- isolation: a slow subscriber delays nobody ------------------------------------------------


async def test_slow_subscriber_delays_neither_publisher_nor_fast_one(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bus: Bus[int] = Bus()
    fast = bus.subscribe("fast", max_pending=100)
    slow = bus.subscribe("slow", max_pending=1000)
    period = 0.01
    frames = 500
    publish_times: list[float] = []
    fast_latency: list[float] = []
    fast_events: list[int] = []
    slow_deliveries: list[Delivery[int]] = []

    async def run_fast() -> None:
        async for delivery in fast:
            fast_latency.append(trio.current_time() - delivery.pending_since)
            fast_events.extend(seqs(delivery))

    async def run_slow() -> None:
        async for delivery in slow:
            slow_deliveries.append(delivery)
            await trio.sleep(0.5)  # "thinks" for 50 frames on every batch

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_fast)
        nursery.start_soon(run_slow)
        start = trio.current_time()
        for n in range(frames):
            await trio.sleep_until(start + n * period)
            publish_times.append(trio.current_time())
            bus.publish_batch(trio.current_time(), books=[view(YES, n)], events=[n])
        bus.close()

    # The publisher ran exactly on schedule and the fast subscriber saw every frame at once.
    assert publish_times == [start + n * period for n in range(frames)]
    assert fast_latency == [0.0] * frames
    assert fast_events == list(range(frames))
    # The slow one was conflated, lost no event, and was ~0.5 s behind.
    assert len(slow_deliveries) < frames / 40
    assert [e for d in slow_deliveries for e in seqs(d)] == list(range(frames))
    assert slow_deliveries[-1].books[YES].view.last_update_ms == frames - 1
    assert sum(d.skipped for d in slow_deliveries) == frames - len(slow_deliveries)
    assert 50 <= slow.statistics().peak_events_queued <= 51  # 0.5 s of frames, +1 at a tie


# --- statistics --------------------------------------------------------------------------------


async def test_statistics() -> None:
    bus: Bus[int] = Bus()
    a = bus.subscribe("a", max_pending=3)
    b = bus.subscribe("b", max_pending=10)
    bus.publish_batch(1.0, books=[view(YES, 1), view(YES, 2), view(NO, 1)], events=[1, 2])
    bus.publish_batch(2.0, books=[view(YES, 3)], events=[3, 4])
    bus.publish_book(view(NO, 2), 3.0)
    assert a.statistics() == SubscriptionStatistics(
        name="a",
        max_pending=3,
        events_queued=3,
        peak_events_queued=3,
        books_pending=2,
        books_delivered=0,
        skipped=0,
        events_delivered=0,
        events_lost=1,
        resyncs=1,
        deliveries=0,
        waiting=False,
        closed=False,
    )
    a.receive_nowait()
    b.receive_nowait()
    stats = bus.statistics()
    assert stats.batches_published == 3
    assert stats.books_published == 5
    assert stats.events_published == 4
    assert stats.tokens == 2
    assert (stats.events_lost, stats.resyncs, stats.unsubscribed, stats.closed) == (1, 1, 0, False)
    sa, sb = stats.subscriptions
    assert (sa.name, sa.books_delivered, sa.skipped, sa.events_delivered) == ("a", 2, 3, 3)
    assert (sb.name, sb.books_delivered, sb.skipped, sb.events_delivered) == ("b", 2, 3, 4)
    assert (sa.deliveries, sa.events_queued, sa.books_pending) == (1, 0, 0)


# --- closing -----------------------------------------------------------------------------------


async def test_bus_close_drains_then_end_of_channel() -> None:
    bus: Bus[int] = Bus()
    sub = bus.subscribe("s", max_pending=10)
    bus.publish_batch(1.0, books=[view(YES, 1)], events=[1])
    with bus:
        pass  # closes
    assert bus.closed
    assert seqs(sub.receive_nowait()) == [1]
    with pytest.raises(trio.EndOfChannel):
        sub.receive_nowait()
    with pytest.raises(trio.EndOfChannel):
        await sub.receive()
    with pytest.raises(trio.ClosedResourceError):
        bus.publish_event(2, 2.0)
    with pytest.raises(trio.ClosedResourceError):
        bus.publish_batch(2.0, books=[view(YES, 2)])
    with pytest.raises(trio.ClosedResourceError):
        bus.publish_book(view(YES, 2), 2.0)
    with pytest.raises(trio.ClosedResourceError):
        bus.subscribe("t", max_pending=1)
    bus.close()  # idempotent


async def test_bus_close_wakes_waiters_and_ends_iteration() -> None:
    bus: Bus[int] = Bus()
    subs = [bus.subscribe(f"s{i}", max_pending=10) for i in range(3)]
    ended: list[str] = []

    async def consume(sub: Subscription[int]) -> None:
        async for _ in sub:
            pass
        ended.append(sub.name)

    async with trio.open_nursery() as nursery:
        for sub in subs:
            nursery.start_soon(consume, sub)
        await trio.testing.wait_all_tasks_blocked()
        bus.close()
    assert sorted(ended) == ["s0", "s1", "s2"]


async def test_subscription_close() -> None:
    bus: Bus[int] = Bus()
    gone = bus.subscribe("gone", max_pending=1)
    stays = bus.subscribe("stays", max_pending=10)
    caught: list[BaseException] = []

    async def waiter() -> None:
        try:
            await gone.receive()
        except trio.ClosedResourceError as exc:
            caught.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        with gone:
            pass  # closes, waking the waiter with ClosedResourceError
    assert len(caught) == 1
    assert gone.closed
    gone.close()  # idempotent
    with pytest.raises(trio.ClosedResourceError):
        gone.receive_nowait()
    with pytest.raises(trio.ClosedResourceError):
        await gone.receive()
    # Publishing after a subscriber left never raises, and the others are unaffected.
    bus.publish_batch(1.0, books=[view(YES, 1)], events=[1, 2, 3])
    bus.publish_event(4, 2.0)
    assert seqs(stays.receive_nowait()) == [1, 2, 3, 4]
    stats = bus.statistics()
    assert [s.name for s in stats.subscriptions] == ["stays"]
    assert stats.unsubscribed == 1
    again = bus.subscribe("gone", max_pending=1)  # the name is free again
    assert again.receive_nowait().books[YES].view.last_update_ms == 1


async def test_subscribe_validation() -> None:
    bus: Bus[int] = Bus()
    bus.subscribe("a", max_pending=1)
    with pytest.raises(ValueError, match="already exists"):
        bus.subscribe("a", max_pending=1)
    with pytest.raises(ValueError, match="max_pending"):
        bus.subscribe("b", max_pending=0)
    with pytest.raises(TypeError):
        Subscription()


# --- checkpoints, cancellation, concurrent receivers -------------------------------------------


async def test_receive_is_a_checkpoint_even_when_ready() -> None:
    bus: Bus[int] = Bus()
    sub = bus.subscribe("s", max_pending=10)
    bus.publish_event(1, 0.0)
    with trio.CancelScope() as scope:
        scope.cancel()
        await sub.receive()
    assert scope.cancelled_caught
    assert seqs(sub.receive_nowait()) == [1]  # the cancelled receive took nothing


async def test_cancelled_wait_takes_nothing() -> None:
    bus: Bus[int] = Bus()
    sub = bus.subscribe("s", max_pending=10)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sub.receive)
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert not sub.statistics().waiting
    bus.publish_event(1, 0.0)
    assert seqs(await sub.receive()) == [1]


async def test_second_receiver_is_busy() -> None:
    bus: Bus[int] = Bus()
    sub = bus.subscribe("s", max_pending=10)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sub.receive)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(trio.BusyResourceError):
            await sub.receive()
        nursery.cancel_scope.cancel()


async def test_receive_nowait_between_wake_and_run_makes_waiter_wait_again() -> None:
    bus: Bus[int] = Bus()
    sub = bus.subscribe("s", max_pending=10)
    got: list[Delivery[int]] = []

    async def waiter() -> None:
        got.append(await sub.receive())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        bus.publish_event(1, 0.0)
        assert seqs(sub.receive_nowait()) == [1]  # stolen before the waiter runs
        await trio.testing.wait_all_tasks_blocked()
        assert got == []
        bus.publish_event(2, 1.0)
    assert [seqs(d) for d in got] == [[2]]


async def test_many_subscribers_fan_out() -> None:
    bus: Bus[int] = Bus()
    subs = [bus.subscribe(f"s{i}", max_pending=100) for i in range(8)]
    totals: dict[str, int] = {}

    async def consume(sub: Subscription[int]) -> None:
        count = 0
        async for delivery in sub:
            count += len(delivery.events)
        totals[sub.name] = count

    async with trio.open_nursery() as nursery:
        for sub in subs:
            nursery.start_soon(partial(consume, sub), name=f"consume-{sub.name}")
        for n in range(100):
            bus.publish_batch(float(n), books=[view(YES, n)], events=[n])
            await trio.lowlevel.checkpoint()
        bus.close()
    assert totals == {f"s{i}": 100 for i in range(8)}


class CountingBook:
    """A live book stand-in: counts how often the bus builds a view of it."""

    def __init__(self, asset_id: str) -> None:
        self._asset_id = asset_id
        self.version = 0
        self.built = 0

    @property
    def asset_id(self) -> str:
        return self._asset_id

    def view(self, depth: int = 10) -> BookView:
        self.built += 1
        return view(self._asset_id, self.version)


def test_a_live_book_is_viewed_only_when_a_subscriber_looks_once_per_update() -> None:
    bus: Bus[int] = Bus()
    sub = bus.subscribe("s", max_pending=10)
    book = CountingBook("t")
    for version in range(1, 6):  # a burst of five frames before anybody looks
        book.version = version
        bus.publish_batch(float(version), books=[book], depth=3)
    assert book.built == 0
    delivery = sub.receive_nowait()
    update = delivery.books["t"]
    assert update.view == view("t", 5)  # the book as it is now
    assert update.skipped == 4
    assert book.built == 1
    assert bus.view("t") is update.view  # the same view for every reader of this update
    assert book.built == 1
    book.version = 6
    bus.publish_batch(6.0, books=[book])
    assert sub.receive_nowait().books["t"].view == view("t", 6)
    assert book.built == 2

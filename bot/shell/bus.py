"""Fan-out from the feed task to one task per strategy, without ever blocking the feed.

The feed owns the order books and publishes into a ``Bus`` synchronously; every strategy task
owns one ``Subscription`` and awaits it. Two kinds of traffic with two policies (TRIO_IDIOMS.md
section 4):

* **Book views are conflated per token.** A subscriber only ever needs the newest ``BookView`` of
  a token, so the bus keeps one slot per token and each subscription keeps the *set* of tokens
  that changed since it last looked. A subscriber that falls behind loses nothing but
  intermediate views, and it learns how many it skipped (``BookUpdate.skipped``). It never
  receives a view older than the newest published one.
* **Events must not be lost silently.** Trades, fills, order events, market status and
  feed-health changes go, in publication order, into a bounded per-subscription queue
  (``max_pending``). When it is full, further events are dropped and counted, and the next
  delivery ends with a ``Resync`` marker standing where the lost events were; that delivery also
  carries the latest view of *every* known token so the subscriber can rebuild its state from
  fresh books. The queue is then empty and normal delivery resumes.

Delivery model
--------------
Handing items one by one to a task that wakes for each costs 16-30 us per item per consumer under
trio 0.35 on the target machine (a pipeline tops out near 35k items/s); handing over a batch and
draining it costs 1.5-4 us per delivery. So ``await sub.receive()`` returns *everything pending*
as one ``Delivery``: the conflated views keyed by token, the ordered events and any ``Resync``.
A subscriber's task is woken at most once per burst of publishes: the first publish after it
parked reschedules it, later publishes only add to what it will take when it runs.

Waking uses ``trio.lowlevel.wait_task_rescheduled``/``reschedule`` directly, the mechanism trio's
own memory channels use, rather than a ``trio.Event`` per wait: one slot for the parked task,
no allocation per wake, and no per-item channel send anywhere.

Measured with ``just bench --only runtime.bus`` (4 subscribers, CPython 3.11, trio 0.35, a
2-core shared box): one frame of 2 views per checkpoint, 72k updates/s end to end at 10.4 us
per delivery, of which 5.1 us is trio's own park-and-wake (``runtime.bus.floor.wake_4``); 10
frames per checkpoint, 242k updates/s, 1.0 us per update per subscriber. Per-item memory
channels managed 57-60k updates/s whatever the burst, with a backlog growing without bound.

Checkpoints: every ``publish_*`` method, ``subscribe`` and every ``close`` is sync and never
yields, so the feed cannot be delayed by a subscriber and the bus state can never be seen half
updated. ``Subscription.receive`` is always a checkpoint (like ``MemoryReceiveChannel.receive``);
``receive_nowait`` never is.

Closing: ``Subscription.close()`` unsubscribes; the subscription's own ``receive`` then raises
``trio.ClosedResourceError`` (using a resource you closed yourself, as with trio channels).
``Bus.close()`` ends every subscription the way closing a send channel does: each one still
returns what was pending, then ``receive`` raises ``trio.EndOfChannel`` (``async for`` stops).
Publishing into a closed bus raises ``trio.ClosedResourceError``: close the bus after the feed
has stopped (``with bus:`` around the feed does that).

The bus is not thread-safe: publish, subscribe and close from the trio thread only.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Final, Generic, NamedTuple, Protocol, TypeVar, final

import attrs
import trio

from bot.core.book import BookView

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from types import TracebackType
    from typing import Self

__all__ = [
    "BookUpdate",
    "Bus",
    "BusStatistics",
    "Delivery",
    "Resync",
    "ResyncReason",
    "Stamped",
    "Subscription",
    "SubscriptionStatistics",
    "ViewSource",
]

EventT = TypeVar("EventT")
T = TypeVar("T")

_NO_EVENTS: Final[tuple[()]] = ()

# ``tuple.__new__(BookUpdate, fields)`` skips the generated ``NamedTuple.__new__`` (a Python
# function with keyword handling): about 3x cheaper, and it runs once per token per delivery.
_new_update: Final = tuple.__new__
_new_delivery: Final = tuple.__new__


# --- values ------------------------------------------------------------------------------------


class Stamped(NamedTuple, Generic[T]):
    """A published event with the feed time it was received at.

    Attributes:
        item: the event, as published (the bus never copies it: publish immutable values).
        received_at: ``trio.current_time()`` when the feed received the frame it came from.
    """

    item: T
    received_at: float


class BookUpdate(NamedTuple):
    """The newest view of one token in a delivery.

    A ``NamedTuple`` because one is built per changed token per delivery on the hot path (about
    twice as cheap as a frozen attrs class, like the wire events).

    Attributes:
        view: the newest published ``BookView`` of the token.
        received_at: feed receive time of the frame that produced ``view``.
        skipped: updates of this token published since the subscriber last saw it and replaced
            by ``view`` before it looked (0 when it saw every one).
    """

    view: BookView
    received_at: float
    skipped: int


class ResyncReason(StrEnum):
    """Why events were lost."""

    OVERFLOW = "overflow"
    """The subscription's event queue held ``max_pending`` events when more arrived."""


@attrs.frozen
class Resync:
    """Events were lost: rebuild state from the fresh views delivered alongside this marker.

    It stands *after* the last event of its ``Delivery.events`` (the queue keeps the oldest
    events and drops the newest when full), in place of the lost ones.

    Attributes:
        lost: how many events were dropped.
        reason: why.
        max_pending: the subscription's queue bound.
        first_lost_at: feed receive time of the first lost event.
        last_lost_at: feed receive time of the last lost event.
    """

    lost: int
    reason: ResyncReason
    max_pending: int
    first_lost_at: float
    last_lost_at: float


class Delivery(NamedTuple, Generic[EventT]):
    """Everything pending for one subscriber, taken at once.

    A ``NamedTuple`` like ``BookUpdate``: one is built per wake of every subscriber, and a
    frozen attrs class measured about 1 us to build against 0.15 us here. Use the fields by
    name; do not compare deliveries with plain tuples.

    Handle ``events`` first, in order; then ``resync`` if set; then ``books``. The views in
    ``books`` are the newest published, so they are at least as recent as every event here.

    Attributes:
        books: the newest view of every token that changed since the previous delivery (every
            known token when ``resync`` is set, or in the first delivery of a subscription).
            Do not mutate it.
        events: the must-not-lose events, in publication order. Do not mutate it.
        resync: set when events were lost after ``events``; the subscriber must rebuild its
            state from ``books``.
        pending_since: feed receive time of the oldest item in this delivery; the subscriber's
            queueing delay is ``trio.current_time() - pending_since``.
        number: 1 for the subscription's first delivery, then 2, 3, ...
    """

    books: Mapping[str, BookUpdate]
    events: Sequence[Stamped[EventT]]
    resync: Resync | None
    pending_since: float
    number: int

    @property
    def skipped(self) -> int:
        """Book updates conflated away in this delivery, all tokens together."""
        return sum(update.skipped for update in self.books.values())

    @property
    def latest_received_at(self) -> float:
        """Feed receive time of the newest item in this delivery."""
        latest = self.pending_since
        for update in self.books.values():
            if update.received_at > latest:
                latest = update.received_at
        if self.events and self.events[-1].received_at > latest:
            latest = self.events[-1].received_at
        return latest


@attrs.frozen
class SubscriptionStatistics:
    """Counters of one subscription (see ``Subscription.statistics``).

    Attributes:
        name: the subscription's name.
        max_pending: its event-queue bound.
        events_queued: events waiting to be delivered now.
        peak_events_queued: the most events ever waiting at once (size ``max_pending`` from it).
        books_pending: tokens with a view waiting to be delivered now.
        books_delivered: book updates delivered (one per token per delivery).
        skipped: book updates conflated away (replaced by a newer view before delivery).
        events_delivered: events delivered.
        events_lost: events dropped because the queue was full.
        resyncs: ``Resync`` markers delivered, plus one if a loss is pending now.
        deliveries: ``Delivery`` batches handed out.
        waiting: whether a task is parked in ``receive`` now.
        closed: whether the subscription is closed (by itself or by the bus).
    """

    name: str
    max_pending: int
    events_queued: int
    peak_events_queued: int
    books_pending: int
    books_delivered: int
    skipped: int
    events_delivered: int
    events_lost: int
    resyncs: int
    deliveries: int
    waiting: bool
    closed: bool


@attrs.frozen
class BusStatistics:
    """Counters of a bus (see ``Bus.statistics``).

    Attributes:
        batches_published: ``publish_*`` calls.
        books_published: book views published.
        events_published: events published.
        tokens: tokens with a current view.
        events_lost: events dropped across all current subscriptions.
        resyncs: resyncs across all current subscriptions.
        unsubscribed: subscriptions closed by their owner so far.
        closed: whether the bus is closed.
        subscriptions: one entry per current subscription, in subscription order.
    """

    batches_published: int
    books_published: int
    events_published: int
    tokens: int
    events_lost: int
    resyncs: int
    unsubscribed: int
    closed: bool
    subscriptions: tuple[SubscriptionStatistics, ...]


# --- the bus -----------------------------------------------------------------------------------


class ViewSource(Protocol):
    """A live book the bus may take a ``BookView`` of when a subscriber looks (``OrderBook``)."""

    @property
    def asset_id(self) -> str: ...

    def view(self, depth: int = 10) -> BookView: ...


@final
class _Slot:
    """The bus's newest view of one token; ``seq`` counts its updates (1 for the first).

    ``source`` is either a ``BookView`` (published as is) or a live ``ViewSource`` whose view is
    built only when somebody reads ``view``, once per ``seq``: with a burst of frames between two
    wakes of the subscribers, one view is built instead of one per frame (building a 10-level
    view was the largest cost of the feed after decoding).
    """

    __slots__ = ("_built", "_built_seq", "depth", "received_at", "seq", "source")

    def __init__(self, source: BookView | ViewSource, received_at: float, depth: int) -> None:
        self.source = source
        self.received_at = received_at
        self.seq = 1
        self.depth = depth
        self._built: BookView | None = None
        self._built_seq = 0

    @property
    def view(self) -> BookView:
        source = self.source
        if isinstance(source, BookView):
            return source
        if self._built_seq != self.seq or self._built is None:
            self._built = source.view(self.depth)
            self._built_seq = self.seq
        return self._built


@final
class Bus(Generic[EventT]):
    """The feed's non-blocking fan-out to strategy tasks.

    ``EventT`` is the type of the must-not-lose events (e.g. a union of trade, market-status and
    feed-health records, later fills and order events). Book views are always ``BookView``.

    Synopsis::

        bus: Bus[MarketStatus | FeedHealth] = Bus()
        sub = bus.subscribe("maker", max_pending=1_000)      # before the feed starts
        ...
        bus.publish_batch(trio.current_time(), books=views, events=trades)   # feed, sync
        ...
        async for delivery in sub:                             # strategy task
            for event in delivery.events: ...
            if delivery.resync is not None: rebuild(delivery.books)
            for token, update in delivery.books.items(): ...

    A new subscription's first delivery holds the current view of every token already published,
    so a strategy that starts late still gets every book.
    """

    __slots__ = (
        "_batches_published",
        "_books",
        "_books_published",
        "_closed",
        "_events_published",
        "_subs",
        "_subs_list",
        "_unsubscribed",
    )

    def __init__(self) -> None:
        self._books: dict[str, _Slot] = {}
        self._subs: dict[str, Subscription[EventT]] = {}
        # A tuple snapshot of ``_subs`` for the publish loops (rebuilt on (un)subscribe only).
        self._subs_list: tuple[Subscription[EventT], ...] = ()
        self._closed = False
        self._batches_published = 0
        self._books_published = 0
        self._events_published = 0
        self._unsubscribed = 0

    # --- subscribing

    def subscribe(self, name: str, *, max_pending: int) -> Subscription[EventT]:
        """Open a subscription. Sync: no checkpoint.

        Args:
            name: a unique name (the strategy's), used in statistics and logs.
            max_pending: the bound of the event queue (>= 1). Size it from
                ``peak_events_queued`` and ``events_lost`` in ``statistics()``.

        Returns:
            The subscription; its first delivery holds the current view of every known token.

        Raises:
            ValueError: ``name`` is already subscribed or ``max_pending`` < 1.
            trio.ClosedResourceError: the bus is closed.
        """
        if self._closed:
            raise trio.ClosedResourceError("the bus is closed")
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {max_pending}")
        if name in self._subs:
            raise ValueError(f"a subscription named {name!r} already exists")
        sub: Subscription[EventT] = Subscription._open(self, name, max_pending)
        self._subs[name] = sub
        self._subs_list = tuple(self._subs.values())
        return sub

    def _unsubscribe(self, sub: Subscription[EventT]) -> None:
        if self._subs.get(sub.name) is sub:
            del self._subs[sub.name]
            self._subs_list = tuple(self._subs.values())
            self._unsubscribed += 1

    # --- publishing (sync; never awaits, never raises because of a subscriber)

    def publish_batch(
        self,
        received_at: float,
        *,
        books: Iterable[BookView | ViewSource] = (),
        events: Iterable[EventT] = (),
        depth: int = 10,
    ) -> None:
        """Publish one frame's worth of output: book views and events, one wake per subscriber.

        Sync and O(items + subscribers): it never yields, never waits for a subscriber and never
        raises because one is slow or gone (a full queue becomes a ``Resync`` for that one).

        Args:
            received_at: ``trio.current_time()`` when the feed received the frame.
            books: new views, or live books whose view (``depth`` levels per side) is taken
                when a subscriber looks (then it shows the book as it is at that moment, which
                is at least as new as this publish); several of one token keep the last (the
                others count as skipped).
            depth: levels per side of the views built from live books.
            events: must-not-lose events, in order.

        Raises:
            trio.ClosedResourceError: the bus is closed (a shutdown-order bug in the caller).
        """
        if self._closed:
            raise trio.ClosedResourceError("the bus is closed")
        self._batches_published += 1
        slots = self._books
        tokens: list[str] = []
        for book in books:
            token = book.asset_id
            slot = slots.get(token)
            if slot is None:
                slots[token] = _Slot(book, received_at, depth)
            else:
                slot.source = book
                slot.received_at = received_at
                slot.depth = depth
                slot.seq += 1
            tokens.append(token)
        self._books_published += len(tokens)
        # One ``Stamped`` per event, shared by every subscriber (it is immutable).
        stamped = [Stamped(event, received_at) for event in events]
        self._events_published += len(stamped)
        if not tokens and not stamped:
            return
        for sub in self._subs_list:
            sub._push(tokens, stamped, received_at)

    def publish_book(self, view: BookView, received_at: float) -> None:
        """Publish one book view (see ``publish_batch``). Sync: no checkpoint.

        Raises:
            trio.ClosedResourceError: the bus is closed.
        """
        if self._closed:
            raise trio.ClosedResourceError("the bus is closed")
        self._batches_published += 1
        self._books_published += 1
        token = view.asset_id
        slot = self._books.get(token)
        if slot is None:
            self._books[token] = _Slot(view, received_at, 10)
        else:
            slot.source = view
            slot.received_at = received_at
            slot.seq += 1
        for sub in self._subs_list:
            sub._push_book(token, received_at)

    def publish_event(self, event: EventT, received_at: float) -> None:
        """Publish one must-not-lose event (see ``publish_batch``). Sync: no checkpoint.

        Raises:
            trio.ClosedResourceError: the bus is closed.
        """
        if self._closed:
            raise trio.ClosedResourceError("the bus is closed")
        self._batches_published += 1
        self._events_published += 1
        stamped = [Stamped(event, received_at)]
        for sub in self._subs_list:
            sub._push(_NO_EVENTS, stamped, received_at)

    def discard_book(self, asset_id: str) -> None:
        """Forget a token (e.g. its market resolved and the feed unsubscribed). Sync.

        Subscribers get no further view of it (a pending one is dropped); publish an event first
        if they must know why. Publishing the token again later starts it afresh.
        """
        if self._books.pop(asset_id, None) is None:
            return
        for sub in self._subs_list:
            sub._forget(asset_id)

    # --- closing and introspection

    def close(self) -> None:
        """End every subscription: each returns what it has pending, then ``EndOfChannel``.

        Sync and idempotent. Later ``publish_*`` and ``subscribe`` calls raise
        ``trio.ClosedResourceError``.
        """
        if self._closed:
            return
        self._closed = True
        for sub in self._subs_list:
            sub._end()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        """Whether ``close`` was called."""
        return self._closed

    def view(self, asset_id: str) -> BookView | None:
        """The newest published view of a token, or ``None``. Sync."""
        slot = self._books.get(asset_id)
        return slot.view if slot is not None else None

    def statistics(self) -> BusStatistics:
        """The bus's counters and one ``SubscriptionStatistics`` per current subscription."""
        subs = tuple(sub.statistics() for sub in self._subs_list)
        return BusStatistics(
            batches_published=self._batches_published,
            books_published=self._books_published,
            events_published=self._events_published,
            tokens=len(self._books),
            events_lost=sum(s.events_lost for s in subs),
            resyncs=sum(s.resyncs for s in subs),
            unsubscribed=self._unsubscribed,
            closed=self._closed,
            subscriptions=subs,
        )


# --- the subscriber side -----------------------------------------------------------------------


@final
class Subscription(Generic[EventT]):
    """One subscriber's mailbox on a ``Bus``; make it with ``Bus.subscribe``.

    One task receives from it (a second concurrent ``receive`` raises
    ``trio.BusyResourceError``). Use it as ``async for delivery in sub`` or
    ``while True: delivery = await sub.receive()``; ``with sub:`` closes it on exit.
    """

    __slots__ = (
        "_books_delivered",
        "_bus",
        "_closed",
        "_deliveries",
        "_dirty",
        "_ended",
        "_events",
        "_events_delivered",
        "_events_lost",
        "_first_lost_at",
        "_last_lost_at",
        "_lost",
        "_peak_events",
        "_pending_since",
        "_resyncs",
        "_seen",
        "_skipped",
        "_waiter",
        "max_pending",
        "name",
    )

    name: str
    max_pending: int
    _bus: Bus[EventT]
    # Book conflation: the tokens changed since the last delivery, and per token the
    # ``_Slot.seq`` this subscriber last received (so ``skipped`` is a subtraction).
    _dirty: set[str]
    _seen: dict[str, int]
    _pending_since: float | None
    _events: list[Stamped[EventT]]
    _lost: int
    _first_lost_at: float
    _last_lost_at: float
    _waiter: trio.lowlevel.Task | None
    _closed: bool
    _ended: bool
    _peak_events: int
    _books_delivered: int
    _skipped: int
    _events_delivered: int
    _events_lost: int
    _resyncs: int
    _deliveries: int

    def __init__(self) -> None:
        raise TypeError("use Bus.subscribe() to make a Subscription")

    @classmethod
    def _open(cls, bus: Bus[EventT], name: str, max_pending: int) -> Subscription[EventT]:
        self = object.__new__(cls)
        self.name = name
        self.max_pending = max_pending
        self._bus = bus
        # Tokens the bus already knows are delivered at once (``seq`` equal: nothing skipped).
        slots = bus._books
        self._dirty = set(slots)
        self._seen = {token: slot.seq for token, slot in slots.items()}
        self._pending_since = min(slot.received_at for slot in slots.values()) if slots else None
        self._events = []
        self._lost = 0
        self._first_lost_at = 0.0
        self._last_lost_at = 0.0
        self._waiter = None
        self._closed = False  # closed by its owner: ClosedResourceError
        self._ended = False  # the bus closed: drain, then EndOfChannel
        self._peak_events = 0
        self._books_delivered = 0
        self._skipped = 0
        self._events_delivered = 0
        self._events_lost = 0
        self._resyncs = 0
        self._deliveries = 0
        return self

    # --- the publisher's side (called by Bus, sync)

    def _push(
        self, tokens: Sequence[str], stamped: Sequence[Stamped[EventT]], received_at: float
    ) -> None:
        if tokens:
            self._dirty.update(tokens)
        if stamped:
            queue = self._events
            room = self.max_pending - len(queue)
            if room >= len(stamped):
                queue.extend(stamped)
            else:
                if room > 0:
                    queue.extend(stamped[:room])
                else:
                    room = 0
                if not self._lost:
                    self._first_lost_at = stamped[room].received_at
                self._last_lost_at = received_at
                self._lost += len(stamped) - room
            if len(queue) > self._peak_events:
                self._peak_events = len(queue)
        if self._pending_since is None:
            self._pending_since = received_at
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            trio.lowlevel.reschedule(waiter)

    def post(self, event: EventT, received_at: float) -> None:
        """Queue an event for this subscriber only (e.g. its own fills), in order with the
        bus's events and under the same bound (overflow means a ``Resync``). Sync.

        Raises:
            trio.ClosedResourceError: the subscription is closed or the bus ended.
        """
        if self._closed or self._ended:
            raise trio.ClosedResourceError("the subscription is closed")
        self._push(_NO_EVENTS, [Stamped(event, received_at)], received_at)

    def _push_book(self, token: str, received_at: float) -> None:
        self._dirty.add(token)
        if self._pending_since is None:
            self._pending_since = received_at
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            trio.lowlevel.reschedule(waiter)

    def _forget(self, token: str) -> None:
        self._dirty.discard(token)
        self._seen.pop(token, None)

    def _end(self) -> None:
        self._ended = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            trio.lowlevel.reschedule(waiter)

    # --- the subscriber's side

    def receive_nowait(self) -> Delivery[EventT]:
        """Take everything pending now. Sync: never a checkpoint.

        Returns:
            A ``Delivery`` with at least one book, event or resync.

        Raises:
            trio.WouldBlock: nothing is pending.
            trio.EndOfChannel: the bus was closed and everything pending was delivered.
            trio.ClosedResourceError: this subscription was closed.
        """
        if self._closed:
            raise trio.ClosedResourceError("the subscription is closed")
        if not self._dirty and not self._events and not self._lost:
            if self._ended:
                raise trio.EndOfChannel
            raise trio.WouldBlock
        return self._take()

    async def receive(self) -> Delivery[EventT]:
        """Wait until something is pending, then take all of it (see ``receive_nowait``).

        Always a checkpoint, whether or not it has to wait (as ``MemoryReceiveChannel.receive``).
        A burst of publishes wakes the task once; whatever is published before it runs is in the
        same delivery. Cancellation is clean: a cancelled ``receive`` has taken nothing.

        Raises:
            trio.EndOfChannel: the bus was closed and everything pending was delivered.
            trio.ClosedResourceError: this subscription was closed (also if closed by another
                task while this one waits).
            trio.BusyResourceError: another task is already waiting in ``receive``.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        # ``_ready`` rather than catching ``WouldBlock``: raising costs about 1 us, and parking
        # is the common case for a subscriber that keeps up.
        if self._ready():
            delivery = self.receive_nowait()  # raises for a closed or ended subscription
            await trio.lowlevel.cancel_shielded_checkpoint()
            return delivery
        if self._waiter is not None:
            raise trio.BusyResourceError("another task is already receiving")

        def abort(_: trio.lowlevel.RaiseCancelT) -> trio.lowlevel.Abort:
            self._waiter = None
            return trio.lowlevel.Abort.SUCCEEDED

        while True:
            self._waiter = trio.lowlevel.current_task()
            await trio.lowlevel.wait_task_rescheduled(abort)
            # Woken by a publish, by ``close`` or by the bus closing (``receive_nowait`` raises
            # for the two closes). Not ready only if another task took the delivery between the
            # wake and now (``receive_nowait`` from elsewhere): wait again.
            if self._ready():
                return self.receive_nowait()

    def _ready(self) -> bool:
        """Whether ``receive_nowait`` would return or raise (anything but ``WouldBlock``)."""
        return bool(self._dirty or self._events or self._lost or self._closed or self._ended)

    def _take(self) -> Delivery[EventT]:
        slots = self._bus._books
        resync: Resync | None = None
        if self._lost:
            resync = Resync(
                lost=self._lost,
                reason=ResyncReason.OVERFLOW,
                max_pending=self.max_pending,
                first_lost_at=self._first_lost_at,
                last_lost_at=self._last_lost_at,
            )
            self._events_lost += self._lost
            self._resyncs += 1
            self._lost = 0
            # Rebuilding needs every book, not only the ones that changed.
            self._dirty.update(slots)
        seen = self._seen
        books: dict[str, BookUpdate] = {}
        skipped_total = 0
        for token in self._dirty:
            slot = slots.get(token)
            if slot is None:  # discarded meanwhile
                continue
            seq = slot.seq
            skipped = seq - seen.get(token, 0) - 1
            if skipped < 0:  # re-sent unchanged (first delivery or resync)
                skipped = 0
            seen[token] = seq
            books[token] = _new_update(BookUpdate, (slot.view, slot.received_at, skipped))
            skipped_total += skipped
        self._dirty = set()
        events = self._events
        self._events = []
        pending_since = self._pending_since
        self._pending_since = None
        self._deliveries += 1
        self._books_delivered += len(books)
        self._skipped += skipped_total
        self._events_delivered += len(events)
        return _new_delivery(
            Delivery,
            (
                books,
                events,
                resync,
                pending_since if pending_since is not None else 0.0,
                self._deliveries,
            ),
        )

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Delivery[EventT]:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    def close(self) -> None:
        """Unsubscribe. Sync and idempotent; pending items are discarded.

        A task waiting in ``receive`` (and every later ``receive``) gets
        ``trio.ClosedResourceError``. Publishing continues unaffected for everyone else.
        """
        if self._closed:
            return
        self._closed = True
        self._bus._unsubscribe(self)
        self._dirty = set()
        self._events = []
        self._lost = 0
        self._wake()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        """Whether this subscription was closed by its owner or ended by the bus."""
        return self._closed or self._ended

    def statistics(self) -> SubscriptionStatistics:
        """The subscription's counters (a frozen snapshot)."""
        return SubscriptionStatistics(
            name=self.name,
            max_pending=self.max_pending,
            events_queued=len(self._events),
            peak_events_queued=self._peak_events,
            books_pending=len(self._dirty),
            books_delivered=self._books_delivered,
            skipped=self._skipped,
            events_delivered=self._events_delivered,
            events_lost=self._events_lost + self._lost,
            resyncs=self._resyncs + (1 if self._lost else 0),
            deliveries=self._deliveries,
            waiting=self._waiter is not None,
            closed=self._closed or self._ended,
        )

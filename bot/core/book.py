"""The local order book of one Polymarket token: exact, flat, and cheap to update.

One ``OrderBook`` per token (``asset_id``). It consumes the decoded market-channel records of
``bot.core.wire.market_events`` (``BookSnapshot``, ``PriceLevelChange``, ``TickSizeChange``) and
answers the reads strategies need: best levels, ladders, spread and mid, depth walks, the
complementary token's view, and an immutable ``BookView`` snapshot. It is pure: no trio, no I/O,
no clock (timestamps come in with the events), no logging (problems come back as values).

Grid design
-----------
Prices live on a bounded grid: a Polymarket price is a multiple of the token's tick inside
``[0, 1]``, so there are at most ``ONE // unit + 1`` possible levels (101 at tick 0.01, 10,001 at
0.0001). Each side is therefore a flat ``list[int]`` of sizes indexed by ``price // unit``, plus a
cached index of the best level and a count of non-empty levels. Updating a level is one list store
and a comparison with the cached best; only removing the best level scans, toward worse prices,
to the next non-empty index (and the level count stops that scan at once when a side empties).
Measured on a prototype of this design: 0.19 us per update, against 0.48 us for a ``dict`` keyed
by price and 3.3 us for ``sortedcontainers``; this implementation, with its validation, counters
and the top-of-book check, measured 0.36-0.46 us per ``apply_change`` (random adds, updates and
removals around the touch of a 0.001-tick book, CPython 3.11).

The grid ``unit`` starts at the token's tick size (0.01 when unknown). A price that is not a
multiple of the unit is never rounded or dropped: the book re-grids exactly to
``gcd(unit, price)`` (every existing index is multiplied by ``old_unit // new_unit``), so a
0.505 level in a 0.01 book moves the grid to 0.005. A snapshot starts again from the tick, so the
grid goes back to coarse once the venue's book is coarse again. Prices outside ``[0, ONE]`` (and
negative sizes) raise ``ValueError``: the caller treats that as a bad frame.

Tick-size policy
----------------
On ``tick_size_change`` the book re-grids to ``gcd(unit, new_tick)`` and records the new
``tick_size``; it does not drop the book and wait for a snapshot (NautilusTrader does). The levels
already on the book are resting orders the venue still holds: they stay exactly representable on
the finer-or-equal grid, and changes that follow on the new tick fit it too. If the venue's book and
ours ever drift apart, the ``best_bid``/``best_ask`` every current ``price_change`` carries catches
it: ``apply_change`` returns a ``Mismatch``, marks the book stale, and the runtime resnapshots.

Conventions
-----------
Prices and sizes are integer micro-units (``bot.core.money``). When a side is empty, the
``*_price`` reads follow the venue: best bid 0 and best ask ``ONE``. ``best_bid()``/``best_ask()``
return ``None`` instead. Nothing stops the book from being crossed (a stale or out-of-order
stream can cross it); ``is_crossed()`` reports it and nothing is discarded.
"""

from __future__ import annotations

import itertools
import math
from abc import ABC, abstractmethod
from fractions import Fraction
from typing import TYPE_CHECKING, Final

import attrs

from bot.core.money import ONE, Side
from bot.core.wire.market_events import (
    BookSnapshot,
    Level,
    PriceChange,
    PriceLevelChange,
    TickSizeChange,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

__all__ = [
    "DEFAULT_TICK_SIZE",
    "BookReader",
    "BookStatistics",
    "BookView",
    "ComplementView",
    "Mismatch",
    "OrderBook",
    "Sweep",
    "apply_price_change",
]

DEFAULT_TICK_SIZE: Final = 10_000
"""The grid unit of a token whose tick size is not known yet: 0.01."""

_BUY: Final = Side.BUY


# --- values ------------------------------------------------------------------------------------


@attrs.frozen
class Mismatch:
    """The venue's top of book after a change disagrees with ours.

    ``expected_*`` are the values the ``price_change`` carried (``None`` when it did not carry
    that side); ``local_*`` are ours after applying it. Both use the venue convention for an empty
    side: 0 for the bid, ``ONE`` for the ask.
    """

    asset_id: str
    expected_best_bid: int | None
    expected_best_ask: int | None
    local_best_bid: int
    local_best_ask: int


@attrs.frozen
class Sweep:
    """The result of walking one side of a book for a given size (a taker's view of depth).

    Attributes:
        requested: the size asked for, micro-units of shares.
        filled: the size the book could give, ``<= requested`` (less when depth is thin).
        notional_pico: the exact notional of ``filled``: the sum of ``price * size`` over the
            levels taken, in pico-units (1e-12 pUSD).
        notional: ``notional_pico`` in micro-units, rounded against the taker: *up* for a buy
            (what it costs) and *down* for a sell (what it brings in).
        worst_price: the price of the last (worst) level taken.
        levels: how many levels were touched.
    """

    requested: int
    filled: int
    notional_pico: int
    notional: int
    worst_price: int
    levels: int

    @property
    def complete(self) -> bool:
        """Whether the whole requested size was available."""
        return self.filled == self.requested

    @property
    def average_price(self) -> Fraction:
        """The exact volume-weighted average price, in micro-units per share."""
        return Fraction(self.notional_pico, self.filled)


@attrs.frozen
class BookView:
    """An immutable snapshot of a book for strategies.

    Attributes:
        asset_id: the token.
        best_bid: the best bid, or ``None`` when the bid side is empty.
        best_ask: the best ask, or ``None`` when the ask side is empty.
        bids: the top bid levels, best first.
        asks: the top ask levels, best first.
        tick_size: the token's current tick size, micro-units.
        last_update_ms: the timestamp of the last event applied, if any carried one.
        stale: ``True`` when the book is not known to match the venue (no snapshot yet, a
            mismatch, or the runtime marked it after a disconnect).
    """

    asset_id: str
    best_bid: Level | None
    best_ask: Level | None
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    tick_size: int
    last_update_ms: int | None
    stale: bool

    @property
    def best_bid_price(self) -> int:
        """The best bid price, or 0 when the bid side is empty (venue convention)."""
        return self.best_bid.price if self.best_bid is not None else 0

    @property
    def best_ask_price(self) -> int:
        """The best ask price, or ``ONE`` when the ask side is empty (venue convention)."""
        return self.best_ask.price if self.best_ask is not None else ONE


@attrs.frozen
class BookStatistics:
    """Counters of one book (see ``OrderBook.statistics``).

    Attributes:
        snapshots: snapshots applied.
        changes: level changes applied.
        tick_size_changes: tick-size changes applied.
        regrids: times the grid was made finer to fit a price or a tick.
        mismatches: changes after which our top of book disagreed with the venue's.
        unit: the current grid unit, micro-units.
        bid_levels: non-empty bid levels.
        ask_levels: non-empty ask levels.
    """

    snapshots: int
    changes: int
    tick_size_changes: int
    regrids: int
    mismatches: int
    unit: int
    bid_levels: int
    ask_levels: int


# --- shared reads ------------------------------------------------------------------------------


def _sweep(levels: Iterable[Level], size: int, *, round_up: bool) -> Sweep | None:
    """Walk ``levels`` (best first) taking up to ``size``; ``None`` if there are no levels."""
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    left = size
    pico = 0
    worst = 0
    touched = 0
    for price, available in levels:
        take = available if available < left else left
        pico += price * take
        left -= take
        worst = price
        touched += 1
        if not left:
            break
    if not touched:
        return None
    whole, rest = divmod(pico, ONE)
    notional = whole + 1 if (round_up and rest) else whole
    return Sweep(size, size - left, pico, notional, worst, touched)


class BookReader(ABC):
    """The read API shared by ``OrderBook`` and ``ComplementView``.

    Subclasses provide the primitives (``best_bid``, ``best_ask``, ``bids``, ``asks`` and the
    metadata properties); the rest is derived here.
    """

    __slots__ = ()

    @property
    @abstractmethod
    def asset_id(self) -> str:
        """The token this book describes."""

    @property
    @abstractmethod
    def tick_size(self) -> int:
        """The token's tick size, micro-units."""

    @property
    @abstractmethod
    def last_update_ms(self) -> int | None:
        """The timestamp of the last event applied, if any."""

    @property
    @abstractmethod
    def stale(self) -> bool:
        """Whether the book is not known to match the venue."""

    @abstractmethod
    def best_bid(self) -> Level | None:
        """The best (highest) bid, or ``None`` when the bid side is empty."""

    @abstractmethod
    def best_ask(self) -> Level | None:
        """The best (lowest) ask, or ``None`` when the ask side is empty."""

    @abstractmethod
    def bids(self) -> Iterator[Level]:
        """Bid levels, best (highest) first. Do not mutate the book while iterating."""

    @abstractmethod
    def asks(self) -> Iterator[Level]:
        """Ask levels, best (lowest) first. Do not mutate the book while iterating."""

    @property
    def best_bid_price(self) -> int:
        """The best bid price, or 0 when the bid side is empty (venue convention)."""
        level = self.best_bid()
        return level.price if level is not None else 0

    @property
    def best_ask_price(self) -> int:
        """The best ask price, or ``ONE`` when the ask side is empty (venue convention)."""
        level = self.best_ask()
        return level.price if level is not None else ONE

    def spread(self) -> int | None:
        """Best ask minus best bid, or ``None`` if a side is empty (negative when crossed)."""
        bid = self.best_bid()
        ask = self.best_ask()
        if bid is None or ask is None:
            return None
        return ask.price - bid.price

    def mid(self) -> int | None:
        """The mid price in micro-units, floored; ``None`` if a side is empty.

        The exact mid is a half micro-unit only when the two prices differ by an odd number of
        micro-units (a grid finer than any venue tick); ``mid_exact`` gives it without rounding.
        """
        bid = self.best_bid()
        ask = self.best_ask()
        if bid is None or ask is None:
            return None
        return (bid.price + ask.price) // 2

    def mid_exact(self) -> Fraction | None:
        """The exact mid price in micro-units, or ``None`` if a side is empty."""
        bid = self.best_bid()
        ask = self.best_ask()
        if bid is None or ask is None:
            return None
        return Fraction(bid.price + ask.price, 2)

    def is_crossed(self) -> bool:
        """Whether both sides exist and the best bid is at or above the best ask."""
        bid = self.best_bid()
        ask = self.best_ask()
        return bid is not None and ask is not None and bid.price >= ask.price

    def depth(self, n: int) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        """The top ``n`` levels of each side, best first, as ``(bids, asks)``."""
        return tuple(itertools.islice(self.bids(), n)), tuple(itertools.islice(self.asks(), n))

    def cost_to_buy(self, size: int) -> Sweep | None:
        """What buying ``size`` shares now would cost, walking the asks best first.

        Args:
            size: shares, micro-units; must be positive.

        Returns:
            The ``Sweep`` (``notional`` rounded up), partial (``complete`` false) when the asks
            hold less than ``size``; ``None`` when the ask side is empty.

        Raises:
            ValueError: ``size`` is not positive.
        """
        return _sweep(self.asks(), size, round_up=True)

    def proceeds_to_sell(self, size: int) -> Sweep | None:
        """What selling ``size`` shares now would bring in, walking the bids best first.

        Args:
            size: shares, micro-units; must be positive.

        Returns:
            The ``Sweep`` (``notional`` rounded down), partial (``complete`` false) when the bids
            hold less than ``size``; ``None`` when the bid side is empty.

        Raises:
            ValueError: ``size`` is not positive.
        """
        return _sweep(self.bids(), size, round_up=False)

    def view(self, depth: int = 10) -> BookView:
        """An immutable ``BookView`` with the top ``depth`` levels of each side."""
        bids, asks = self.depth(depth)
        return BookView(
            asset_id=self.asset_id,
            best_bid=bids[0] if bids else self.best_bid(),
            best_ask=asks[0] if asks else self.best_ask(),
            bids=bids,
            asks=asks,
            tick_size=self.tick_size,
            last_update_ms=self.last_update_ms,
            stale=self.stale,
        )


# --- the engine --------------------------------------------------------------------------------


@attrs.define(eq=False)
class OrderBook(BookReader):
    """The aggregated book of one token on a flat integer price grid.

    Args:
        asset_id: the token id.
        tick_size: the token's tick size in micro-units, if known (default 0.01).

    A new book is ``stale`` until its first snapshot. ``apply_change`` does not check the change's
    ``asset_id`` (it is the hot path); route changes by asset, e.g. with ``apply_price_change``.
    """

    asset_id: str
    tick_size: int = DEFAULT_TICK_SIZE
    last_update_ms: int | None = attrs.field(default=None, kw_only=True)
    stale: bool = attrs.field(default=True, kw_only=True)

    # Grid state. ``_n`` is the list length (``ONE // unit + 1``) and also the "empty" value of
    # ``_best_ask``; ``-1`` is the "empty" value of ``_best_bid``.
    _unit: int = attrs.field(init=False, repr=False)
    _n: int = attrs.field(init=False, repr=False)
    _bids: list[int] = attrs.field(init=False, repr=False)
    _asks: list[int] = attrs.field(init=False, repr=False)
    _best_bid: int = attrs.field(init=False, repr=False, default=-1)
    _best_ask: int = attrs.field(init=False, repr=False)
    _bid_count: int = attrs.field(init=False, repr=False, default=0)
    _ask_count: int = attrs.field(init=False, repr=False, default=0)

    # Counters (see ``statistics``).
    snapshots_applied: int = attrs.field(init=False, default=0)
    changes_applied: int = attrs.field(init=False, default=0)
    tick_size_changes_applied: int = attrs.field(init=False, default=0)
    regrids: int = attrs.field(init=False, default=0)
    mismatches: int = attrs.field(init=False, default=0)

    def __attrs_post_init__(self) -> None:
        _check_tick(self.tick_size)
        self._reset(self.tick_size)

    @property
    def unit(self) -> int:
        """The current grid unit in micro-units: the tick, or finer after a re-grid."""
        return self._unit

    # --- writes

    def apply_snapshot(self, snap: BookSnapshot) -> None:
        """Replace the whole book with ``snap`` and clear ``stale``.

        Uses ``snap.tick_size`` when present (and records it). Levels may come in any order;
        size-0 levels are ignored; if a price repeats, the last non-zero size wins. The grid
        restarts at the tick and is made finer only as far as the snapshot's prices need.

        Raises:
            ValueError: the snapshot is for another asset, or a price is outside ``[0, ONE]``, or
                a size is negative. The book is left unchanged.
        """
        if snap.asset_id != self.asset_id:
            raise ValueError(f"snapshot for asset {snap.asset_id}, book is {self.asset_id}")
        tick = self.tick_size if snap.tick_size is None else _check_tick(snap.tick_size)
        unit = tick
        for side in (snap.bids, snap.asks):
            for price, size in side:
                _check_level(price, size)
                if size and price % unit:
                    unit = math.gcd(unit, price)
        self.tick_size = tick
        self._reset(unit)
        n = self._n
        bids = self._bids
        asks = self._asks
        best_bid = -1
        best_ask = n
        for price, size in snap.bids:
            if size:
                index = price // unit
                bids[index] = size
                if index > best_bid:
                    best_bid = index
        for price, size in snap.asks:
            if size:
                index = price // unit
                asks[index] = size
                if index < best_ask:
                    best_ask = index
        self._best_bid = best_bid
        self._best_ask = best_ask
        self._bid_count = n - bids.count(0)
        self._ask_count = n - asks.count(0)
        self.last_update_ms = snap.timestamp_ms
        self.stale = False
        self.snapshots_applied += 1

    def apply_change(
        self, change: PriceLevelChange, timestamp_ms: int | None = None
    ) -> Mismatch | None:
        """Set one level to its new total size (0 removes it) and check the venue's top of book.

        Args:
            change: the level change; ``change.size`` is the new total at ``change.price``.
            timestamp_ms: the enclosing ``PriceChange``'s timestamp, recorded as
                ``last_update_ms`` when given.

        Returns:
            ``None``, or a ``Mismatch`` when the change carries ``best_bid``/``best_ask`` and our
            top of book after applying it differs. A mismatch also marks the book ``stale``.

        Raises:
            ValueError: the price is outside ``[0, ONE]`` or the size is negative (book unchanged).
        """
        # One unpack instead of five NamedTuple property lookups: this is the hot path.
        _, price, size, side, expected_bid, expected_ask, _ = change
        unit = self._unit
        on_grid = True
        if price % unit or price > ONE or price < 0 or size < 0:
            _check_level(price, size)  # raises unless the price is merely off the grid
            if size:
                self._regrid(math.gcd(unit, price))
                unit = self._unit
            else:
                on_grid = False  # removing an off-grid level: none can exist, nothing to do
        if on_grid:
            index = price // unit
            if side is _BUY:
                sizes = self._bids
                old = sizes[index]
                sizes[index] = size
                if size:
                    if not old:
                        self._bid_count += 1
                        if index > self._best_bid:
                            self._best_bid = index
                elif old:
                    self._bid_count -= 1
                    if index == self._best_bid:
                        if self._bid_count:
                            index -= 1
                            while not sizes[index]:
                                index -= 1
                            self._best_bid = index
                        else:
                            self._best_bid = -1
            else:
                sizes = self._asks
                old = sizes[index]
                sizes[index] = size
                if size:
                    if not old:
                        self._ask_count += 1
                        if index < self._best_ask:
                            self._best_ask = index
                elif old:
                    self._ask_count -= 1
                    if index == self._best_ask:
                        if self._ask_count:
                            index += 1
                            while not sizes[index]:
                                index += 1
                            self._best_ask = index
                        else:
                            self._best_ask = self._n
        self.changes_applied += 1
        if timestamp_ms is not None:
            self.last_update_ms = timestamp_ms
        if expected_bid is None and expected_ask is None:
            return None
        best = self._best_bid
        local_bid = best * unit if best >= 0 else 0
        best = self._best_ask
        local_ask = best * unit if best < self._n else ONE
        if (expected_bid is None or expected_bid == local_bid) and (
            expected_ask is None or expected_ask == local_ask
        ):
            return None
        self.mismatches += 1
        self.stale = True
        return Mismatch(change.asset_id, expected_bid, expected_ask, local_bid, local_ask)

    def apply_tick_size_change(self, event: TickSizeChange) -> None:
        """Record the new tick size and re-grid to ``gcd(unit, new_tick)``; no snapshot needed.

        Why no snapshot: the levels already on the book are resting orders the venue still
        holds, and on the finer-or-equal grid every one of them stays exactly representable, as
        does every price on the new tick. A coarser tick only records ``tick_size`` (the grid
        never gets coarser until the next snapshot). Should the venue's book and ours ever drift
        apart, the ``best_bid``/``best_ask`` check in ``apply_change`` reports it and the runtime
        resnapshots.

        Raises:
            ValueError: the event is for another asset or the tick is not in ``(0, ONE]``.
        """
        if event.asset_id != self.asset_id:
            raise ValueError(
                f"tick size change for asset {event.asset_id}, book is {self.asset_id}"
            )
        tick = _check_tick(event.new_tick_size)
        unit = math.gcd(self._unit, tick)
        if unit != self._unit:
            self._regrid(unit)
        self.tick_size = tick
        self.last_update_ms = event.timestamp_ms
        self.tick_size_changes_applied += 1

    def mark_stale(self) -> None:
        """Mark the book as not matching the venue (e.g. the feed dropped); a snapshot clears it."""
        self.stale = True

    def clear(self) -> None:
        """Remove every level (keeps the tick size) and mark the book stale."""
        self._reset(self.tick_size)
        self.stale = True

    # --- reads (fast overrides of BookReader)

    def best_bid(self) -> Level | None:
        index = self._best_bid
        return Level(index * self._unit, self._bids[index]) if index >= 0 else None

    def best_ask(self) -> Level | None:
        index = self._best_ask
        return Level(index * self._unit, self._asks[index]) if index < self._n else None

    @property
    def best_bid_price(self) -> int:
        index = self._best_bid
        return index * self._unit if index >= 0 else 0

    @property
    def best_ask_price(self) -> int:
        index = self._best_ask
        return index * self._unit if index < self._n else ONE

    def is_crossed(self) -> bool:
        return self._best_bid >= 0 and self._best_ask < self._n and self._best_bid >= self._best_ask

    def bids(self) -> Iterator[Level]:
        sizes = self._bids
        unit = self._unit
        left = self._bid_count
        index = self._best_bid
        while left and index >= 0:
            size = sizes[index]
            if size:
                yield Level(index * unit, size)
                left -= 1
            index -= 1

    def asks(self) -> Iterator[Level]:
        sizes = self._asks
        unit = self._unit
        left = self._ask_count
        index = self._best_ask
        end = len(sizes)
        while left and index < end:
            size = sizes[index]
            if size:
                yield Level(index * unit, size)
                left -= 1
            index += 1

    def complement(self, asset_id: str = "") -> ComplementView:
        """The complementary token's book as a live view (see ``ComplementView``)."""
        return ComplementView(self, asset_id)

    def statistics(self) -> BookStatistics:
        """The book's counters and level counts."""
        return BookStatistics(
            snapshots=self.snapshots_applied,
            changes=self.changes_applied,
            tick_size_changes=self.tick_size_changes_applied,
            regrids=self.regrids,
            mismatches=self.mismatches,
            unit=self._unit,
            bid_levels=self._bid_count,
            ask_levels=self._ask_count,
        )

    # --- grid internals

    def _reset(self, unit: int) -> None:
        n = ONE // unit + 1
        self._unit = unit
        self._n = n
        self._bids = [0] * n
        self._asks = [0] * n
        self._best_bid = -1
        self._best_ask = n
        self._bid_count = 0
        self._ask_count = 0

    def _regrid(self, unit: int) -> None:
        """Move every level onto the finer grid ``unit``, which must divide the current unit."""
        old_unit = self._unit
        factor = old_unit // unit
        old_bids = self._bids
        old_asks = self._asks
        best_bid = self._best_bid
        best_ask = self._best_ask
        old_n = self._n
        bid_count = self._bid_count
        ask_count = self._ask_count
        self._reset(unit)
        bids = self._bids
        asks = self._asks
        for index, size in enumerate(old_bids):
            if size:
                bids[index * factor] = size
        for index, size in enumerate(old_asks):
            if size:
                asks[index * factor] = size
        self._best_bid = best_bid * factor if best_bid >= 0 else -1
        self._best_ask = best_ask * factor if best_ask < old_n else self._n
        self._bid_count = bid_count
        self._ask_count = ask_count
        self.regrids += 1


def _check_level(price: int, size: int) -> None:
    if not 0 <= price <= ONE:
        raise ValueError(f"price {price} is outside [0, {ONE}] (micro-units)")
    if size < 0:
        raise ValueError(f"size {size} is negative")


def _check_tick(tick: int) -> int:
    if not 0 < tick <= ONE:
        raise ValueError(f"tick size {tick} is outside (0, {ONE}] (micro-units)")
    return tick


# --- the complementary token -------------------------------------------------------------------


@attrs.frozen(eq=False)
class ComplementView(BookReader):
    """The complementary token's book, read live from this token's book (no copy).

    A YES bid at ``p`` is a NO ask at ``ONE - p`` and a YES ask at ``p`` a NO bid at ``ONE - p``
    (every YES/NO pair is backed by exactly 1 pUSD), so the view's bids are the book's asks and
    its asks the book's bids, prices mirrored and order preserved. The empty-side conventions
    line up: an empty YES ask side is an empty NO bid side, reported as ``ONE - ONE = 0``.

    This is the venue's mirrored liquidity only when the NO book itself is the mirror of the YES
    book, which is what Polymarket publishes for a binary market (each order appears on both
    books); it is not a substitute for a NO-token snapshot in general.

    Args:
        book: the token's ``OrderBook``.
        asset_id: the complementary token's id, for ``view()`` (empty if unknown).
    """

    book: OrderBook
    asset_id: str = ""

    @property
    def tick_size(self) -> int:
        return self.book.tick_size

    @property
    def last_update_ms(self) -> int | None:
        return self.book.last_update_ms

    @property
    def stale(self) -> bool:
        return self.book.stale

    def best_bid(self) -> Level | None:
        level = self.book.best_ask()
        return Level(ONE - level.price, level.size) if level is not None else None

    def best_ask(self) -> Level | None:
        level = self.book.best_bid()
        return Level(ONE - level.price, level.size) if level is not None else None

    @property
    def best_bid_price(self) -> int:
        return ONE - self.book.best_ask_price

    @property
    def best_ask_price(self) -> int:
        return ONE - self.book.best_bid_price

    def bids(self) -> Iterator[Level]:
        for price, size in self.book.asks():
            yield Level(ONE - price, size)

    def asks(self) -> Iterator[Level]:
        for price, size in self.book.bids():
            yield Level(ONE - price, size)


# --- routing -----------------------------------------------------------------------------------


def apply_price_change(books: Mapping[str, OrderBook], event: PriceChange) -> list[Mismatch]:
    """Apply each change of ``event`` to the book of its asset, in order.

    Changes for assets without a book in ``books`` are skipped (not subscribed, or no snapshot
    yet: the venue replays nothing, so deltas before a snapshot cannot be used).

    Returns:
        The mismatches, in order (usually empty).

    Raises:
        ValueError: a change has a price outside ``[0, ONE]`` or a negative size. Changes before
            it in the event have been applied; the caller should resnapshot.
    """
    mismatches: list[Mismatch] = []
    timestamp_ms = event.timestamp_ms
    for change in event.changes:
        book = books.get(change.asset_id)
        if book is not None:
            mismatch = book.apply_change(change, timestamp_ms)
            if mismatch is not None:
                mismatches.append(mismatch)
    return mismatches

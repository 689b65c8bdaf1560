"""The paper venue: fills our orders against the live book the way Polymarket would.

The execution engine (``bot.core.engine``) owns the orders and hands them to a venue; this one
never sends anything. It matches each order against the newest ``BookView`` of its token and
keeps resting orders in an imagined queue that trades and book changes move, producing the same
``OrderUpdate``/``Fill`` events the live venue's user channel would. It is pure: no clock (``now``
and ``ts_ms`` come in), no I/O, deterministic (fill ids come from ``next_id`` or a counter).

Matching an incoming order (PROTOCOL.md 4.3, 7.1, 7.2)
-------------------------------------------------------
* **Validation first**, in the venue's order: a book is needed (a missing or stale view is
  ``REJECTED "no_book"``: without the venue's book nothing can be simulated, and the tick lives
  on the view), then the price (strictly inside (0, 1), on the view's tick), the size (> 0),
  ``post_only`` only with GTC/GTD, and a post-only order that would cross the displayed book is
  ``REJECTED "post_only_crosses"``. Minimum sizes and notional are risk's job.
* **The taker part** walks the opposite side best first, at prices within the limit, filling at
  each level's price: one ``Fill`` per level touched, liquidity ``TAKER``, fee
  ``taker_fee_units(size, level price, fee_rate(token))``. FOK fills completely or not at all
  (``CANCELED "fok_unfilled"``, the venue's "couldn't be fully filled"); FAK fills what is there
  and cancels the rest (``"fak_remainder"``, or ``"fak_unfilled"`` if nothing matched); GTC/GTD
  rest the remainder (``OrderUpdate`` ``LIVE``). A complete fill ends ``MATCHED``.

Liquidity we took is not really gone
------------------------------------
Our paper orders are not in the venue's book, so the next view still shows the asks we lifted.
The venue remembers, per (token, book side, price), how much of the displayed size our orders
consumed, and later orders (and crossing fills, below) only get the rest. When a newer view shows
that level *shrink* by ``d``, the consumption drops by ``d`` (the front of the queue, which is what
we took, is what trades and cancels remove first), down to 0; when it *grows*, the consumption
stays: new orders join the back, so only the growth is new liquidity. A level that empties
forgets its consumption entirely. (This is stricter than forgetting the consumption on any change:
that would let a level growing from 100 to 101 be taken 100 times over.)

Resting orders and their queue
------------------------------
A resting order's ``queue_ahead`` is the displayed size at its price on its side when it rests (0
on an empty level: a new level is first in line). The venue also tracks the displayed size
*behind* it (orders that joined later), so that ``ahead + behind`` is what the book should show
at that price. It fills, as a ``MAKER`` with no fee, at its own price:

(a) **a trade at its price**: ``last_trade_price`` ``side`` is the *taker's* side and ``price``
    the match price (PROTOCOL.md 1.5), so the trades that reach a resting BUY are the taker SELLs
    (they hit bids), and a resting SELL the taker BUYs. Such a trade first eats ``queue_ahead``,
    then fills us with what is left of its size. A taker BUY printing at our bid's price lifted an
    ask there: that ask was crossing our bid, which (c) covers from the book; counting the print
    as well would fill us twice, so it is ignored.
(b) **a trade through its price**: a taker SELL printing *below* our bid (a taker BUY above our
    ask) swept our whole level first, so the queue is gone and we fill up to the trade's size.
    That size is what the taker gave to the worse level, which our order would have taken
    instead: the amount is right, and it never uses volume that printed at better prices.
(c) **the book crossing it**: a view showing asks at or below our bid (bids at or above our ask)
    means an order arrived that would have taken us: we fill up to the available crossing size
    (after what our orders already consumed there, and after any displayed same-side size at
    better prices or ahead of us, which a crossed view can still show).

Several of our orders on one token share each trade's volume: the best price first, then time
priority, each taking from what the earlier ones left (trade-through orders before the ones at
the trade's price).

When the displayed size at its level *shrinks* below what the venue expected, the unexplained part
is taken from the orders behind us first (the conservative reading: a cancel behind us does not
move us up), and the rest from ahead of us: ``queue_ahead`` drops, never below 0.

A trade and the book change it causes arrive separately, and in either order: the feed sends the
level change and the ``last_trade_price`` as separate events, and the execution task handles a
delivery's trades before its conflated views. Counting both would move us up twice (or fill us
from a trade whose volume the shrink already gave us). So:

* trade first: the trade moves the queue and also shrinks the expected level by its size, so the
  view that follows matches the expectation and changes nothing;
* book first: the shrink moves the queue (behind first, as above) and is remembered as *credit*,
  stamped with the view's ``last_update_ms``. A trade at our price whose ``timestamp_ms`` is not
  newer than that is already in the book: it is taken from the credit, and the part that had been
  charged to the orders behind us is moved to the front (a trade eats the front), which gives the
  same queue and fills as the trade-first order. A newer trade on the token means the earlier
  ones have all printed, so the credit left is cancels and is dropped.

Other simplifications, stated: views are read only as deep as they go: a price past the last
level shown is empty when the side shows fewer levels than ``view_depth`` and *unknown*
otherwise (an order resting there learns its queue, all of it ahead, the first time a view shows
its price); stale views are ignored (they are not known to match the venue);
our own orders never match each other; GTD expiry and the venue's sports delays are not modelled.
"""

from __future__ import annotations

import itertools
from types import MappingProxyType
from typing import TYPE_CHECKING

import attrs

from bot.core.money import ONE, Side, format_units, taker_fee_units
from bot.core.trading import Fill, Liquidity, Order, OrderStatus, OrderType, OrderUpdate

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from bot.core.book import BookView
    from bot.core.trading import ExecEvent
    from bot.core.wire.market_events import LastTradePrice, Level

__all__ = ["PaperVenue"]


@attrs.define(eq=False)
class _Resting:
    """A resting order and where it stands in its level's queue.

    Attributes:
        order: the engine's order (mutated as it fills).
        seq: time priority among our own orders.
        ahead: displayed size ahead of it, or ``None`` while its level has never been visible.
        behind: displayed size that joined its level after it.
        credit_ahead, credit_behind: an unexplained shrink of its level, charged to ahead and to
            behind, that a trade not newer than ``credit_ms`` may still explain.
        credit_ms: ``last_update_ms`` of the view that made the credit.
    """

    order: Order
    seq: int
    ahead: int | None
    behind: int = 0
    credit_ahead: int = 0
    credit_behind: int = 0
    credit_ms: int | None = None

    def clear_credit(self) -> None:
        self.credit_ahead = 0
        self.credit_behind = 0
        self.credit_ms = None

    def priority(self) -> tuple[int, int]:
        """Sort key: best price first (highest bid, lowest ask), then time."""
        order = self.order
        return (-order.price if order.side is Side.BUY else order.price, self.seq)


@attrs.define(eq=False)
class _Consumed:
    """How much of one displayed level our orders took, and its size when last seen."""

    seen: int
    consumed: int


def _level_size(view: BookView, side: Side, price: int, depth: int | None) -> int | None:
    """The displayed size at ``price`` on ``side`` of ``view``: 0 for an empty level, ``None``
    when the price lies past the last level shown and the side may go deeper than ``depth``."""
    if side is Side.BUY:
        levels, best = view.bids, view.best_bid
    else:
        levels, best = view.asks, view.best_ask
    if best is None:
        return 0
    if not levels:
        return None
    for level_price, size in levels:
        if level_price == price:
            return size
        if (level_price < price) if side is Side.BUY else (level_price > price):
            return 0
    return 0 if depth is not None and len(levels) < depth else None


def _through(levels: Iterable[Level], side: Side, limit: int) -> Iterable[Level]:
    """The opposite-side ``levels`` (best first) an order on ``side`` at ``limit`` may take."""
    for level in levels:
        if (level.price > limit) if side is Side.BUY else (level.price < limit):
            return
        yield level


class PaperVenue:
    """Simulated matching for the execution engine (see the module docstring).

    Args:
        fee_rate: the taker fee rate of a token, micro-units (``Market.fee_rate``: 0.04 ->
            40_000).
        next_id: makes fill ids; by default ``"paper-f1"``, ``"paper-f2"``, ...
        view_depth: the levels per side the views carry (the feed's ``view_depth``): a side
            showing fewer is complete, so a price past its last level is empty. ``None`` when
            unknown: such a price is then never assumed empty (its queue stays put).
    """

    def __init__(
        self,
        *,
        fee_rate: Callable[[str], int],
        next_id: Callable[[], str] | None = None,
        view_depth: int | None = 10,
    ) -> None:
        self._fee_rate = fee_rate
        self._depth = view_depth
        if next_id is None:
            counter = itertools.count(1)

            def next_id() -> str:
                return f"paper-f{next(counter)}"

        self._next_id = next_id
        self._orders: dict[str, Order] = {}
        self._resting: dict[str, dict[str, _Resting]] = {}
        self._consumed: dict[str, dict[tuple[Side, int], _Consumed]] = {}
        self._seq = 0

    # --- reads -----------------------------------------------------------------------------------

    def open_orders(self) -> Mapping[str, Order]:
        """The resting orders by id (a live read-only view)."""
        return MappingProxyType(self._orders)

    # --- orders ----------------------------------------------------------------------------------

    def submit(
        self, order: Order, view: BookView | None, now: float, ts_ms: int
    ) -> list[ExecEvent]:
        """Match a new order against ``view`` (its token's newest book) and rest what remains.

        Returns the new order's events only: its taker fills and its status change (``LIVE``
        when it rests, ``MATCHED``, ``CANCELED`` or ``REJECTED`` with a reason).

        Raises:
            ValueError: ``order`` is not new (not ``LIVE`` or partly filled), or an order with
                its id is already resting here. Both are the caller's bugs, not the venue's
                refusals.
        """
        if order.status is not OrderStatus.LIVE or order.filled:
            raise ValueError(
                f"order {order.id} is not new: status {order.status}, "
                f"{format_units(order.filled)} filled"
            )
        if order.id in self._orders:
            raise ValueError(f"order {order.id} is already resting on the paper venue")
        if view is None or view.stale:
            return [self._end(order, OrderStatus.REJECTED, "no_book", now)]
        if view.asset_id != order.token_id:
            raise ValueError(f"order {order.id} is for {order.token_id}, view for {view.asset_id}")
        reason = self._invalid(order, view)
        if reason is not None:
            return [self._end(order, OrderStatus.REJECTED, reason, now)]

        self._sync(view)
        side = order.side
        opposite = view.best_ask if side is Side.BUY else view.best_bid
        if (
            order.post_only
            and opposite is not None
            and (
                opposite.price <= order.price if side is Side.BUY else opposite.price >= order.price
            )
        ):
            return [self._end(order, OrderStatus.REJECTED, "post_only_crosses", now)]

        plan = self._plan(order, view)
        available = sum(take for _, _, take in plan)
        order_type = order.order_type
        if order_type is OrderType.FOK and available < order.size:
            return [self._end(order, OrderStatus.CANCELED, "fok_unfilled", now)]
        if order_type is OrderType.FAK and not available:
            return [self._end(order, OrderStatus.CANCELED, "fak_unfilled", now)]

        events: list[ExecEvent] = self._take(order, plan, now, ts_ms)
        if not order.remaining:
            events.append(self._end(order, OrderStatus.MATCHED, "", now))
        elif not order_type.rests:
            events.append(self._end(order, OrderStatus.CANCELED, "fak_remainder", now))
        else:
            self._rest(order, view)
            events.append(_update(order, "", now))
        return events

    def cancel(self, order_id: str, now: float, reason: str = "canceled") -> list[ExecEvent]:
        """Cancel a resting order: one ``CANCELED`` update with ``reason``; nothing if the order
        is not resting here (already matched, cancelled, or never seen)."""
        order = self._orders.get(order_id)
        if order is None:
            return []
        return [self._end(order, OrderStatus.CANCELED, reason, now)]

    # --- market data -----------------------------------------------------------------------------

    def watches(self, token_id: str) -> bool:
        """Whether a new view of ``token_id`` can matter: orders rest there, or liquidity we took
        there is still remembered. Others need no view at all (building one costs)."""
        return bool(self._resting.get(token_id)) or token_id in self._consumed

    def on_book(self, view: BookView, now: float, ts_ms: int) -> list[ExecEvent]:
        """A newer view of a token: update consumption and queues, fill orders it crosses.

        A stale view changes nothing: it is not known to match the venue.
        """
        if view.stale:
            return []
        self._sync(view)
        resting = self._resting.get(view.asset_id)
        if not resting:
            return []
        states = sorted(resting.values(), key=_Resting.priority)
        for state in states:
            self._requeue(state, view)
        events: list[ExecEvent] = []
        for state in states:
            events.extend(self._cross(state, view, now, ts_ms))
        return events

    def on_trade(self, trade: LastTradePrice, now: float, ts_ms: int) -> list[ExecEvent]:
        """A match printed on a token: fill our resting orders it reached (rules (a) and (b))."""
        resting = self._resting.get(trade.asset_id)
        if not resting:
            return []
        for state in resting.values():
            if state.credit_ms is None or trade.timestamp_ms > state.credit_ms:
                state.clear_credit()
        maker = trade.side.opposite
        price = trade.price
        through: list[_Resting] = []
        at_price: list[_Resting] = []
        for state in resting.values():
            order = state.order
            if order.side is not maker:
                continue
            if order.price == price:
                at_price.append(state)
            elif (order.price > price) if maker is Side.BUY else (order.price < price):
                through.append(state)
        volume = trade.size
        events: list[ExecEvent] = []
        for state in sorted(through, key=_Resting.priority):
            # The whole level was swept: everything at our price, ahead or behind, is gone.
            state.ahead = 0
            state.behind = 0
            state.clear_credit()
            state.order.queue_ahead = 0
            fill = min(state.order.remaining, volume)
            volume -= fill
            events.extend(self._maker_fill(state, fill, now, ts_ms))
        for state in sorted(at_price, key=_Resting.priority):
            fill = min(state.order.remaining, self._trade_at(state, volume, trade.timestamp_ms))
            volume -= fill
            events.extend(self._maker_fill(state, fill, now, ts_ms))
        return events

    # --- matching --------------------------------------------------------------------------------

    def _invalid(self, order: Order, view: BookView) -> str | None:
        """Why the venue would refuse ``order`` outright, or ``None``."""
        price = order.price
        tick = view.tick_size
        if not 0 < price < ONE:
            return f"price_out_of_range: price {format_units(price)} is not strictly inside (0, 1)"
        if price % tick:
            return (
                f"price_off_tick: price {format_units(price)} is not a multiple of the "
                f"{format_units(tick)} tick"
            )
        if order.size <= 0:
            return f"invalid_size: size {format_units(order.size)} is not positive"
        if order.post_only and not order.order_type.rests:
            return f"post_only_not_resting: post-only needs GTC or GTD, got {order.order_type}"
        return None

    def _available(self, token: str, side: Side, price: int, size: int) -> int:
        entry = self._consumed.get(token, {}).get((side, price))
        return size if entry is None else max(size - entry.consumed, 0)

    def _consume(self, token: str, side: Side, price: int, size: int, take: int) -> None:
        entry = self._consumed.setdefault(token, {}).setdefault((side, price), _Consumed(size, 0))
        entry.seen = size
        entry.consumed += take

    def _sync(self, view: BookView) -> None:
        """Age the consumption of ``view``'s token by what its levels shrank since last seen."""
        levels = self._consumed.get(view.asset_id)
        if not levels:
            return
        for key, entry in list(levels.items()):
            size = _level_size(view, *key, self._depth)
            if size is None:
                continue
            if size < entry.seen:
                entry.consumed = max(entry.consumed - (entry.seen - size), 0)
            entry.seen = size
            if not entry.consumed or not size:
                del levels[key]
        if not levels:
            del self._consumed[view.asset_id]

    def _plan(self, order: Order, view: BookView) -> list[tuple[int, int, int]]:
        """What a taker ``order`` would take: ``(price, displayed size, take)`` best first."""
        side = order.side
        book_side = side.opposite
        levels = view.asks if side is Side.BUY else view.bids
        plan: list[tuple[int, int, int]] = []
        left = order.size
        for price, size in _through(levels, side, order.price):
            take = min(self._available(order.token_id, book_side, price, size), left)
            if take > 0:
                plan.append((price, size, take))
                left -= take
                if not left:
                    break
        return plan

    def _take(
        self, order: Order, plan: list[tuple[int, int, int]], now: float, ts_ms: int
    ) -> list[ExecEvent]:
        rate = self._fee_rate(order.token_id)
        book_side = order.side.opposite
        fills: list[ExecEvent] = []
        for price, size, take in plan:
            self._consume(order.token_id, book_side, price, size, take)
            order.filled += take
            fee = taker_fee_units(take, price, rate)
            fills.append(self._fill(order, price, take, fee, Liquidity.TAKER, now, ts_ms))
        return fills

    def _rest(self, order: Order, view: BookView) -> None:
        self._seq += 1
        ahead = _level_size(view, order.side, order.price, self._depth)
        order.queue_ahead = ahead or 0
        self._orders[order.id] = order
        self._resting.setdefault(order.token_id, {})[order.id] = _Resting(order, self._seq, ahead)

    def _requeue(self, state: _Resting, view: BookView) -> None:
        """Move ``state`` in its queue to match the displayed size at its level."""
        order = state.order
        size = _level_size(view, order.side, order.price, self._depth)
        if size is None:
            return
        if state.ahead is None:  # first sight of the level: all of it is ahead of us
            state.ahead, state.behind = size, 0
        else:
            change = size - (state.ahead + state.behind)
            if change > 0:
                state.behind += change
            elif change < 0:
                from_behind = min(state.behind, -change)
                from_ahead = min(state.ahead, -change - from_behind)
                state.behind -= from_behind
                state.ahead -= from_ahead
                if view.last_update_ms is not None:
                    state.credit_behind += from_behind
                    state.credit_ahead += from_ahead
                    state.credit_ms = view.last_update_ms
        order.queue_ahead = state.ahead

    def _trade_at(self, state: _Resting, volume: int, trade_ms: int) -> int:
        """Apply ``volume`` traded at ``state``'s price; return how much of it reached us."""
        ahead = state.ahead
        if ahead is None or volume <= 0:
            return 0  # the queue is unknown: do not guess that we were at the front
        reached = 0
        if state.credit_ms is not None and trade_ms <= state.credit_ms:
            # Already charged to the front by the shrink: nothing more to do.
            seen_ahead = min(volume, state.credit_ahead)
            state.credit_ahead -= seen_ahead
            volume -= seen_ahead
            # Charged to the back by the shrink, but a trade eats the front: move it there.
            seen_behind = min(volume, state.credit_behind)
            state.credit_behind -= seen_behind
            volume -= seen_behind
            front = min(ahead, seen_behind)
            ahead -= front
            state.behind += front
            reached += seen_behind - front
        front = min(ahead, volume)
        ahead -= front
        state.behind -= min(state.behind, volume - front)
        reached += volume - front
        state.ahead = ahead
        state.order.queue_ahead = ahead
        return reached

    def _cross(self, state: _Resting, view: BookView, now: float, ts_ms: int) -> list[ExecEvent]:
        """Rule (c): fill ``state`` from opposite-side levels at or through its price."""
        order = state.order
        side = order.side
        book_side = side.opposite
        token = order.token_id
        if side is Side.BUY:
            opposite, same = view.asks, view.bids
            better = sum(size for price, size in same if price > order.price)
        else:
            opposite, same = view.bids, view.asks
            better = sum(size for price, size in same if price < order.price)
        levels = [
            (price, size, self._available(token, book_side, price, size))
            for price, size in _through(opposite, side, order.price)
        ]
        crossing = sum(available for _, _, available in levels)
        fill = min(order.remaining, crossing - better - (state.ahead or 0))
        if fill <= 0:
            return []
        left = fill
        for price, size, available in levels:
            take = min(available, left)
            if take > 0:
                self._consume(token, book_side, price, size, take)
                left -= take
        return self._maker_fill(state, fill, now, ts_ms)

    # --- events ----------------------------------------------------------------------------------

    def _maker_fill(self, state: _Resting, size: int, now: float, ts_ms: int) -> list[ExecEvent]:
        if size <= 0:
            return []
        order = state.order
        order.filled += size
        events: list[ExecEvent] = [
            self._fill(order, order.price, size, 0, Liquidity.MAKER, now, ts_ms)
        ]
        if not order.remaining:
            events.append(self._end(order, OrderStatus.MATCHED, "", now))
        return events

    def _fill(
        self,
        order: Order,
        price: int,
        size: int,
        fee: int,
        liquidity: Liquidity,
        now: float,
        ts_ms: int,
    ) -> Fill:
        return Fill(
            fill_id=self._next_id(),
            order_id=order.id,
            strategy=order.strategy,
            token_id=order.token_id,
            side=order.side,
            price=price,
            size=size,
            fee=fee,
            liquidity=liquidity,
            at=now,
            ts_ms=ts_ms,
        )

    def _end(self, order: Order, status: OrderStatus, reason: str, now: float) -> OrderUpdate:
        """Give ``order`` a terminal ``status`` and forget it."""
        order.status = status
        if self._orders.pop(order.id, None) is not None:
            resting = self._resting[order.token_id]
            del resting[order.id]
            if not resting:
                del self._resting[order.token_id]
        return _update(order, reason, now)


def _update(order: Order, reason: str, now: float) -> OrderUpdate:
    return OrderUpdate(
        order_id=order.id,
        strategy=order.strategy,
        token_id=order.token_id,
        side=order.side,
        price=order.price,
        size=order.size,
        filled=order.filled,
        status=order.status,
        reason=reason,
        at=now,
    )

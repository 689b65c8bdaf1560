"""The user channel's state machine: decoded ``order``/``trade`` events -> our execution events.

The wire (``bot.core.wire.user``) reports orders and trades the venue's way; the engine wants
``OrderUpdate`` and ``Fill`` (``bot.core.trading``), the same events the paper venue produces.
This module does the translation and, more importantly, keeps the per-order and per-trade state
the translation needs, so that the venue's repetitions and reorderings never reach the engine:

* **Orders.** ``PLACEMENT``/``UPDATE``/``CANCELLATION`` -> ``OrderUpdate``. The wire status maps
  to ours (``CANCELED_<reason>`` by prefix, the reason kept in ``OrderUpdate.reason``); an order
  already terminal ignores later non-terminal events (they were reordered), ``filled`` never goes
  down, and an event that changes nothing is dropped.
* **Trades.** One wire event per status step of the same trade id (PROTOCOL.md 2.2): ``MATCHED``
  -> ``MINED`` -> ``CONFIRMED``, with ``RETRYING`` and the terminal ``FAILED``. The first sighting
  of a trade emits one ``UserFill`` per order of ours in it, ``provisional`` unless it is already
  ``CONFIRMED``; a later ``CONFIRMED`` emits ``FillConfirmed`` (the fills become final); a
  ``FAILED`` emits ``TradeFailed`` with the fills to undo. Duplicates (the same ``MATCHED`` twice,
  ``MINED`` after ``MINED``) and anything after a terminal status emit nothing, so exposure can
  keep provisional and confirmed fills apart without double counting.
* **Which fills are ours.** As taker (``trader_side`` ``TAKER``) the top-level fields are our
  order. As maker the top-level fields are the *taker's* order and ours are the ``maker_orders[]``
  entries owned by our API key (or whose order id the caller says is ours), possibly on the other
  token at ``1 - price`` (a mint); an entry without ``side`` gets it from that relation.

Pure: no clock, no I/O; ``now`` (monotonic seconds) is passed in. State is bounded: terminal
orders and trades are remembered for the last ``remember`` ids only.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Final, TypeVar

import attrs

from bot.core.money import taker_fee_units
from bot.core.trading import Fill, Liquidity, OrderStatus, OrderUpdate
from bot.core.wire.user import OrderStatus as WireOrderStatus
from bot.core.wire.user import OrderType as WireOrderType
from bot.core.wire.user import TraderSide, TradeStatus, UserOrder, UserTrade

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "DEFAULT_REMEMBER",
    "FillConfirmed",
    "TradeFailed",
    "UserEventMapper",
    "UserFill",
    "map_order_status",
]

DEFAULT_REMEMBER: Final = 10_000
"""Order and trade ids remembered each (oldest forgotten first)."""

_V = TypeVar("_V")

_BPS_TO_RATE_UNITS: Final = 100
"""1 basis point = 0.0001 = 100 micro-units of rate (``taker_fee_units`` takes micro-units)."""


@attrs.frozen
class UserFill:
    """A fill of one of our orders, first seen on the user channel.

    Attributes:
        fill: the fill (``fill_id`` is ``<trade id>:<order id>``).
        trade_id: the venue's trade id.
        status: the trade status it was first seen with.
        provisional: ``True`` until the trade is ``CONFIRMED`` (a ``FillConfirmed`` follows) --
            it can still fail and be undone (``TradeFailed``).
    """

    fill: Fill
    trade_id: str
    status: TradeStatus
    provisional: bool


@attrs.frozen
class FillConfirmed:
    """A trade whose fills were provisional is ``CONFIRMED``: they are final now."""

    trade_id: str
    fills: tuple[Fill, ...]
    at: float = 0.0


@attrs.frozen
class TradeFailed:
    """A trade ``FAILED`` on chain: its provisional ``fills`` never happened; undo them.

    ``fills`` is empty when the trade failed before we saw any other status of it.
    """

    trade_id: str
    fills: tuple[Fill, ...]
    at: float = 0.0


def map_order_status(
    status: WireOrderStatus, *, order_type: WireOrderType | None, filled: int, size: int
) -> OrderStatus:
    """Our status for a wire order status.

    ``DELAYED`` (a marketable order held back by the venue) and ``UNMATCHED`` (held back, then
    rested) are live; ``INVALID`` never rested, so it is a rejection; every ``CANCELED*`` is
    cancelled. ``MATCHED`` means completely filled except for a resting order that is only partly
    filled (the venue is not consistent here), which stays live.
    """
    if status in (WireOrderStatus.LIVE, WireOrderStatus.DELAYED, WireOrderStatus.UNMATCHED):
        return OrderStatus.LIVE
    if status is WireOrderStatus.MATCHED:
        rests = order_type in (WireOrderType.GTC, WireOrderType.GTD)
        return OrderStatus.LIVE if rests and 0 < filled < size else OrderStatus.MATCHED
    if status is WireOrderStatus.INVALID:
        return OrderStatus.REJECTED
    return OrderStatus.CANCELED


def _order_reason(event: UserOrder) -> str:
    if event.status is WireOrderStatus.CANCELED_MARKET_RESOLVED:
        return "market_resolved"
    if event.status is WireOrderStatus.INVALID:
        return "invalid"
    return event.status_reason


@attrs.define
class _TradeState:
    status: TradeStatus
    fills: tuple[Fill, ...]


class UserEventMapper:
    """Turns decoded user-channel events into ``OrderUpdate``/``UserFill``/``FillConfirmed``/
    ``TradeFailed``, remembering what it has seen (see the module docstring).

    Args:
        api_key: our API key (the ``owner`` of our maker orders in ``maker_orders[]``).
        strategy_of: the strategy that owns an order id, if known ("" otherwise).
        is_ours: whether an order id is ours (in addition to the owner check), if known.
        remember: how many order ids and trade ids to keep state for, each.
    """

    def __init__(
        self,
        api_key: str,
        *,
        strategy_of: Callable[[str], str | None] | None = None,
        is_ours: Callable[[str], bool] | None = None,
        remember: int = DEFAULT_REMEMBER,
    ) -> None:
        if remember < 1:
            raise ValueError(f"remember must be >= 1, got {remember}")
        self._api_key = api_key
        self._strategy_of = strategy_of
        self._is_ours = is_ours
        self._remember = remember
        self._orders: OrderedDict[str, OrderUpdate] = OrderedDict()
        self._trades: OrderedDict[str, _TradeState] = OrderedDict()
        self.duplicates = 0
        """Events that changed nothing (repeated or reordered), dropped."""

    def apply(self, event: object, now: float) -> list[object]:
        """Our events for one decoded wire event (``[]`` for anything else: ``Pong``,
        ``UnknownEvent``, a duplicate)."""
        if isinstance(event, UserOrder):
            update = self.on_order(event, now)
            return [] if update is None else [update]
        if isinstance(event, UserTrade):
            return self.on_trade(event, now)
        return []

    # --- orders ---------------------------------------------------------------------------------

    def on_order(self, event: UserOrder, now: float) -> OrderUpdate | None:
        """The ``OrderUpdate`` for an ``order`` event, or ``None`` when it changes nothing."""
        previous = self._orders.get(event.id)
        filled = event.size_matched
        if previous is not None:
            filled = max(filled, previous.filled)
        status = map_order_status(
            event.status, order_type=event.order_type, filled=filled, size=event.original_size
        )
        if previous is not None and (
            previous.status.terminal or (previous.status is status and previous.filled == filled)
        ):
            # Terminal already (a late event was reordered), or nothing new.
            self.duplicates += 1
            return None
        update = OrderUpdate(
            order_id=event.id,
            strategy=self._strategy(event.id),
            token_id=event.asset_id,
            side=event.side,
            price=event.price,
            size=event.original_size,
            filled=filled,
            status=status,
            reason=_order_reason(event),
            at=now,
        )
        self._remember_in(self._orders, event.id, update)
        return update

    # --- trades ---------------------------------------------------------------------------------

    def on_trade(self, event: UserTrade, now: float) -> list[object]:
        """The events for one ``trade`` event (see the module docstring for the transitions)."""
        state = self._trades.get(event.id)
        if state is None:
            fills = self.fills_of(event, now)
            if event.status is TradeStatus.FAILED:
                self._remember_in(self._trades, event.id, _TradeState(event.status, fills))
                return [TradeFailed(event.id, (), now)]
            self._remember_in(self._trades, event.id, _TradeState(event.status, fills))
            provisional = event.status is not TradeStatus.CONFIRMED
            return [UserFill(fill, event.id, event.status, provisional) for fill in fills]
        if state.status in (TradeStatus.CONFIRMED, TradeStatus.FAILED):
            self.duplicates += 1
            return []
        if event.status is TradeStatus.CONFIRMED:
            state.status = event.status
            return [FillConfirmed(event.id, state.fills, now)]
        if event.status is TradeStatus.FAILED:
            state.status = event.status
            return [TradeFailed(event.id, state.fills, now)]
        if event.status is state.status:
            self.duplicates += 1
        state.status = event.status  # MATCHED / MINED / RETRYING: still provisional
        return []

    def fills_of(self, event: UserTrade, now: float) -> tuple[Fill, ...]:
        """Our fills in one trade event: the taker order, or our ``maker_orders[]`` entries."""
        ts_ms = event.match_time_ms or event.timestamp_ms or 0
        if event.trader_side is TraderSide.TAKER:
            fee = taker_fee_units(event.size, event.price, event.fee_rate_bps * _BPS_TO_RATE_UNITS)
            return (
                Fill(
                    fill_id=f"{event.id}:{event.taker_order_id}",
                    order_id=event.taker_order_id,
                    strategy=self._strategy(event.taker_order_id),
                    token_id=event.asset_id,
                    side=event.side,
                    price=event.price,
                    size=event.size,
                    fee=fee,
                    liquidity=Liquidity.TAKER,
                    at=now,
                    ts_ms=ts_ms,
                ),
            )
        fills: list[Fill] = []
        for maker in event.maker_orders:
            if not self._maker_is_ours(maker.owner, maker.order_id):
                continue
            side = maker.side
            if side is None:
                # Same token: the opposite side of the taker; the other token: a mint or a
                # merge, the same side (PROTOCOL.md 2.2).
                same_token = maker.asset_id == event.asset_id
                side = event.side.opposite if same_token else event.side
            fills.append(
                Fill(
                    fill_id=f"{event.id}:{maker.order_id}",
                    order_id=maker.order_id,
                    strategy=self._strategy(maker.order_id),
                    token_id=maker.asset_id,
                    side=side,
                    price=maker.price,
                    size=maker.matched_amount,
                    fee=0,
                    liquidity=Liquidity.MAKER,
                    at=now,
                    ts_ms=ts_ms,
                )
            )
        return tuple(fills)

    # --- helpers --------------------------------------------------------------------------------

    def _maker_is_ours(self, owner: str, order_id: str) -> bool:
        if self._api_key and owner == self._api_key:
            return True
        return self._is_ours is not None and self._is_ours(order_id)

    def _strategy(self, order_id: str) -> str:
        if self._strategy_of is None:
            return ""
        return self._strategy_of(order_id) or ""

    def _remember_in(self, table: OrderedDict[str, _V], key: str, value: _V) -> None:
        table[key] = value
        table.move_to_end(key)
        while len(table) > self._remember:
            table.popitem(last=False)

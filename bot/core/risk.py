"""Pre-trade risk: every order passes these checks before any venue sees it.

``RiskGate.check`` answers ``None`` (accepted) or the reason it is refused, as a sentence a trader
can act on ("position 1000.00 + 20.00 would exceed max_position_shares 1000.00 on <token>"). The
execution engine logs and journals every refusal. The checks, in order:

1. the kill switch: once the day's loss reached ``daily_loss_limit``, nothing new is accepted
   until a restart (the engine also cancels what rests); and the operator's pause
   (``paused``), which refuses new orders until it is cleared;
2. a fresh book: never trade on a stale or missing book (the veto the feed's ``TokenStale`` drives);
3. venue rules that would be rejected anyway: price on the tick and strictly inside (0, 1), size in
   whole cents of a share, resting orders at least the market's ``min_order_size``, marketable
   orders worth at least $1 (PROTOCOL.md 4.3, 7.2);
4. notional per order;
5. no short selling (the venue refuses a sell beyond the balance): a sell needs the shares;
   position per token: only an order that *grows* the position is limited;
6. total exposure (cost of open positions plus resting buys plus this buy);
7. the order rate, all strategies together, over a sliding one-second window.

Pure: no clock (``now`` is passed in), no I/O.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Final

import attrs

from bot.core.money import ONE, Side, format_units, from_decimal, notional_units
from bot.core.trading import OrderType

if TYPE_CHECKING:
    from bot.config import RiskConfig
    from bot.core.book import BookView
    from bot.core.trading import Place
    from bot.core.universe import Market

__all__ = ["MIN_MARKETABLE_NOTIONAL", "SIZE_STEP", "RiskGate", "RiskLimits"]

SIZE_STEP: Final = 10_000
"""The venue takes sizes with two decimals: multiples of 0.01 share."""

MIN_MARKETABLE_NOTIONAL: Final = ONE
"""Marketable (FOK/FAK) orders must be worth at least $1 (PROTOCOL.md 4.3)."""


@attrs.frozen
class RiskLimits:
    """The limits, in micro-units (see ``RiskConfig`` for the meaning of each)."""

    max_position: int
    max_total_exposure: int
    max_order_notional: int
    max_orders_per_s: float
    daily_loss_limit: int

    @classmethod
    def from_config(cls, cfg: RiskConfig) -> RiskLimits:
        return cls(
            max_position=from_decimal(cfg.max_position_shares),
            max_total_exposure=from_decimal(cfg.max_total_exposure),
            max_order_notional=from_decimal(cfg.max_order_notional),
            max_orders_per_s=cfg.max_orders_per_s,
            daily_loss_limit=from_decimal(cfg.daily_loss_limit),
        )


@attrs.define(eq=False)
class RiskGate:
    """The checks and the little state they need (the kill switch, the recent order times)."""

    limits: RiskLimits
    killed: str | None = None
    """Why the kill switch tripped, or ``None``."""
    paused: str | None = None
    """Why the operator paused trading (the dashboard's pause), or ``None``: while set, every
    new order is refused with that reason, like the kill switch, but resting orders stay and
    clearing it resumes trading at once."""
    rejections: int = 0
    _recent: deque[float] = attrs.field(factory=deque, init=False)

    def check(
        self,
        order: Place,
        *,
        market: Market | None,
        view: BookView | None,
        stale: bool,
        position: int,
        exposure: int,
        now: float,
        resting_buys: int = 0,
    ) -> str | None:
        """``None`` when ``order`` may go to the venue, else why not.

        Args:
            order: the order.
            market: its market (``None``: unknown token, refused).
            view: the newest view of its token.
            stale: the token is marked stale by the feed.
            position: the net position in the token, all strategies, micro-units of shares.
            exposure: the current total exposure (open positions' cost plus resting buys).
            now: monotonic seconds (for the order rate).
            resting_buys: shares the open buy orders on the token (all strategies, including
                ones being cancelled) may still buy: ``max_position_shares`` bounds the
                position they would make together with this order, not the position alone.
        """
        reason = self._reason(
            order,
            market=market,
            view=view,
            stale=stale,
            position=position,
            exposure=exposure,
            now=now,
            resting_buys=resting_buys,
        )
        if reason is None:
            self._recent.append(now)
        else:
            self.rejections += 1
        return reason

    def _reason(
        self,
        order: Place,
        *,
        market: Market | None,
        view: BookView | None,
        stale: bool,
        position: int,
        exposure: int,
        now: float,
        resting_buys: int,
    ) -> str | None:
        limits = self.limits
        token = order.token_id
        if self.killed is not None:
            return f"kill switch: {self.killed}"
        if self.paused is not None:
            return f"paused: {self.paused}"
        if market is None:
            return f"unknown token {token}"
        if view is None:
            return f"no book yet for {token}"
        if stale or view.stale:
            return f"stale book for {token}"
        tick = view.tick_size
        if not tick <= order.price <= ONE - tick or order.price % tick:
            return (
                f"price {format_units(order.price)} is not on the {format_units(tick)} tick "
                f"inside (0, 1) for {token}"
            )
        if order.size <= 0 or order.size % SIZE_STEP:
            return f"size {format_units(order.size)} is not a positive multiple of 0.01 share"
        notional = notional_units(order.price, order.size, round_up=True)
        if order.order_type.rests:
            if order.size < market.min_order_size:
                return (
                    f"size {format_units(order.size)} is below the minimum order size "
                    f"{format_units(market.min_order_size)} of {market.condition_id}"
                )
        elif order.order_type in (OrderType.FOK, OrderType.FAK) and notional < (
            MIN_MARKETABLE_NOTIONAL
        ):
            return f"marketable order worth {format_units(notional)} is below the $1 minimum"
        if notional > limits.max_order_notional:
            return (
                f"notional {format_units(notional)} exceeds max_order_notional "
                f"{format_units(limits.max_order_notional)}"
            )
        if order.side is Side.SELL and order.size > position:
            return (
                f"cannot sell {format_units(order.size)}: {format_units(max(position, 0))} held "
                f"on {token} (no short selling on Polymarket: buy the complement instead)"
            )
        signed = order.size if order.side is Side.BUY else -order.size
        after = position + signed
        if abs(after) > abs(position) and abs(after) > limits.max_position:
            return (
                f"position {format_units(position)} {'+' if signed > 0 else '-'} "
                f"{format_units(order.size)} would exceed max_position_shares "
                f"{format_units(limits.max_position)} on {token}"
            )
        if order.side is Side.BUY and after + resting_buys > limits.max_position:
            return (
                f"position {format_units(position)} + resting buys {format_units(resting_buys)} "
                f"+ {format_units(order.size)} would exceed max_position_shares "
                f"{format_units(limits.max_position)} on {token}"
            )
        if order.side is Side.BUY and exposure + notional > limits.max_total_exposure:
            return (
                f"exposure {format_units(exposure)} + {format_units(notional)} would exceed "
                f"max_total_exposure {format_units(limits.max_total_exposure)}"
            )
        recent = self._recent
        while recent and recent[0] <= now - 1.0:
            recent.popleft()
        if len(recent) + 1 > limits.max_orders_per_s:
            return (
                f"order rate: {len(recent)} orders in the last second, max_orders_per_s "
                f"{limits.max_orders_per_s:g}"
            )
        return None

    def check_loss(self, pnl_today: int) -> bool:
        """Trip the kill switch when the day's PnL reached ``-daily_loss_limit``; ``True`` if it
        tripped just now."""
        if self.killed is None and pnl_today <= -self.limits.daily_loss_limit:
            self.killed = (
                f"the day's PnL {format_units(pnl_today)} reached the daily loss limit "
                f"-{format_units(self.limits.daily_loss_limit)}"
            )
            return True
        return False

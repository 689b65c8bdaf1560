"""An example strategy plugin: buy a breakout, rest a take-profit, step aside on a stale feed.

This module is the reference for writing a strategy of your own (README, "Writing and testing a
strategy"); its scenario tests are ``tests/scenarios/test_example_momentum.py``. It is a plugin
like any other: nothing in the bot knows it, it is named in ``config.toml``::

    [strategies.momentum]
    plugin = "bot.examples.momentum:Momentum"
    trigger = "0.03"
    size = "10"

What it does, per watched market (its YES token), one trade at a time:

* flat, it remembers the lowest mid seen (the *anchor*); when the mid has risen ``trigger``
  above it, it buys ``size`` shares at the best ask, FAK (take what is there at that price, no
  more);
* holding shares, it keeps one resting GTC sell of all of them at the average entry plus
  ``take_profit``, rounded up to the tick; when that sell has filled it is flat again;
* when the market's book goes stale (a dropped or frozen feed) it cancels its orders there and
  forgets the anchor: a price it cannot see is not a price to trade on; when the book is fresh
  again it starts over from the new price (and rests its take-profit again if it still holds).

Everything a strategy must be: pure and synchronous (no I/O, no clock: ``ctx.now``), it
*returns* orders as ``Place``/``CancelAll`` intents and what it noticed as ``Decision``s, and it
learns what happened to its orders from the ``OrderUpdate``/``Fill`` events ``on_event`` gets.
Prices and sizes are integer micro-units (``bot.core.money``); the settings are exact decimals
converted once, here.
"""

from __future__ import annotations

from decimal import Decimal  # noqa: TC003 -- cattrs resolves Settings' annotations at runtime
from fractions import Fraction
from typing import TYPE_CHECKING

import attrs

from bot.config import int_setting, money_setting, number_setting, words_setting
from bot.core.money import ONE, Side, format_units, from_decimal
from bot.core.risk import SIZE_STEP
from bot.core.trading import CancelAll, Decision, Fill, OrderType, OrderUpdate, Place, Strategy
from bot.core.wire.market_events import MarketResolved

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

    from bot.core.book import BookView
    from bot.core.trading import Action, Context
    from bot.core.universe import Market, Universe

__all__ = ["Momentum"]

TAKE_PROFIT_TAG = "take_profit"


@attrs.define(eq=False)
class _Watch:
    """What the strategy keeps per watched market."""

    market: Market
    anchor: int | None = None
    """The lowest mid seen while flat (``None``: no usable book since the last buy or stale)."""
    buying: bool = False
    """A buy was sent and has not ended yet (its final ``OrderUpdate`` has not come back)."""
    selling: bool = False
    """A take-profit was sent and its first ``OrderUpdate`` has not come back yet."""
    last_buy_at: float | None = None
    shares: int = 0
    cost: int = 0
    """Shares held and what they cost (micro-units; from this strategy's own fills)."""
    paused: bool = False
    """Its book went stale (and has not been fresh since)."""
    resolved: bool = False


class Momentum(Strategy):
    """Buys a rise of ``trigger`` above the recent low, sells ``take_profit`` higher.

    Decisions: ``momentum.buy`` (the mid, the anchor, the price paid), ``momentum.take_profit``
    (the sell price), ``momentum.paused`` / ``momentum.resumed`` (the book went stale / fresh).
    """

    @attrs.frozen
    class Settings:
        """The ``[strategies.<name>]`` keys besides ``plugin`` and ``enabled``."""

        markets: tuple[str, ...] = words_setting()
        """Condition ids to watch; empty: the first ``max_markets`` binary markets."""
        max_markets: int = int_setting(1, ge=0)
        trigger: Decimal = money_setting("0.03")  # noqa: RUF009
        """How far the mid must rise above the anchor to buy (a price, > 0)."""
        size: Decimal = money_setting("10")  # noqa: RUF009
        """Shares per buy (raised to the market's minimum order size)."""
        take_profit: Decimal = money_setting("0.02")  # noqa: RUF009
        """The sell rests this far above the average entry price."""
        cooldown_s: float = number_setting(1.0, ge=0)
        """Seconds between two buys in one market."""

    name = "momentum"

    def __init__(self, universe: Universe, settings: Settings) -> None:
        if settings.trigger <= 0:
            raise ValueError(f"{self.name}: trigger must be above 0, got {settings.trigger}")
        self._trigger = from_decimal(settings.trigger)
        self._size = from_decimal(settings.size) // SIZE_STEP * SIZE_STEP
        self._take_profit = from_decimal(settings.take_profit)
        self._cooldown_s = settings.cooldown_s
        if settings.markets:
            wanted = set(settings.markets)
            markets = [m for m in universe.markets if m.condition_id in wanted]
        else:
            markets = list(universe.binary_markets()[: settings.max_markets])
        self._watch = {m.yes.token_id: _Watch(m) for m in markets}

    @property
    def tokens(self) -> tuple[str, ...]:
        """The YES tokens it watches."""
        return tuple(self._watch)

    # --- hooks ---------------------------------------------------------------------------------

    def on_books(self, ctx: Context, changed: Collection[str]) -> Sequence[Action]:
        actions: list[Action] = []
        for token in changed:
            watch = self._watch.get(token)
            view = ctx.usable(token)
            if watch is None or view is None or watch.resolved:
                continue
            if watch.shares:
                actions.extend(self._take_profit_if_missing(ctx, token, watch, view))
            else:
                actions.extend(self._buy_if_breakout(ctx, token, watch, view))
        return actions

    def on_event(self, ctx: Context, event: object) -> Sequence[Action]:
        if isinstance(event, Fill):
            watch = self._watch.get(event.token_id)
            if watch is None:
                return []
            if event.side is Side.BUY:
                watch.shares += event.size
                watch.cost += event.price * event.size
            else:  # the take-profit: the average entry of what is left stays the same
                left = max(watch.shares - event.size, 0)
                watch.cost = watch.cost * left // watch.shares if watch.shares else 0
                watch.shares = left
            view = ctx.usable(event.token_id)
            if watch.shares and view is not None:
                return self._take_profit_if_missing(ctx, event.token_id, watch, view)
        elif isinstance(event, OrderUpdate):
            watch = self._watch.get(event.token_id)
            if watch is not None:
                if event.side is Side.BUY and event.status.terminal:
                    watch.buying = False
                elif event.side is Side.SELL:
                    watch.selling = False  # resting (now in ctx.orders) or over
        elif isinstance(event, MarketResolved):
            for token in event.assets_ids:
                if token in self._watch:
                    self._watch[token].resolved = True
        return []

    def on_stale(self, ctx: Context, tokens: Collection[str], stale: bool) -> Sequence[Action]:
        actions: list[Action] = []
        for token in tokens:
            watch = self._watch.get(token)
            if watch is None or stale == watch.paused:
                continue
            watch.paused = stale
            if stale:
                watch.anchor = None  # the prices it saw before may be long gone
                if any(o.token_id == token for o in ctx.orders.values()):
                    actions.append(CancelAll(token, note="book stale: pull the take-profit"))
                actions.append(Decision(self.name, "momentum.paused", token, {"why": "stale"}))
            else:
                actions.append(Decision(self.name, "momentum.resumed", token, {}))
        return actions

    # --- decisions -----------------------------------------------------------------------------

    def _buy_if_breakout(
        self, ctx: Context, token: str, watch: _Watch, view: BookView
    ) -> list[Action]:
        if view.best_bid is None or view.best_ask is None or watch.buying:
            return []
        mid = (view.best_bid.price + view.best_ask.price) // 2
        if watch.anchor is None or mid < watch.anchor:
            watch.anchor = mid
        if mid - watch.anchor < self._trigger:
            return []
        if watch.last_buy_at is not None and ctx.now - watch.last_buy_at < self._cooldown_s:
            return []
        size = max(self._size, watch.market.min_order_size)
        ask = view.best_ask.price
        watch.buying = True
        watch.last_buy_at = ctx.now
        detail = {
            "mid": format_units(mid),
            "anchor": format_units(watch.anchor),
            "ask": format_units(ask),
            "size": format_units(size),
        }
        watch.anchor = None  # after this trade, a new low is needed
        return [
            Decision(self.name, "momentum.buy", token, detail),
            Place(token, Side.BUY, ask, size, OrderType.FAK, note="momentum breakout"),
        ]

    def _take_profit_if_missing(
        self, ctx: Context, token: str, watch: _Watch, view: BookView
    ) -> list[Action]:
        if watch.selling or watch.shares <= 0:
            return []
        if any(o.token_id == token and o.tag == TAKE_PROFIT_TAG for o in ctx.orders.values()):
            return []
        tick = view.tick_size
        target = Fraction(watch.cost, watch.shares) + self._take_profit
        price = int(-(-target // tick) * tick)  # up to the tick: never below entry + take_profit
        size = watch.shares // SIZE_STEP * SIZE_STEP
        if price > ONE - tick or size < watch.market.min_order_size:
            return []
        watch.selling = True
        return [
            Decision(
                self.name,
                "momentum.take_profit",
                token,
                {"price": format_units(price), "size": format_units(size)},
            ),
            Place(token, Side.SELL, price, size, OrderType.GTC, tag=TAKE_PROFIT_TAG),
        ]

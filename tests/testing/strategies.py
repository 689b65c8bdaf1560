"""Small strategy plugins for the scenario kit's own tests (named in TOML as
``tests.testing.strategies:<Class>``)."""

from __future__ import annotations

from decimal import Decimal  # noqa: TC003 -- cattrs resolves Settings' annotations at runtime
from typing import TYPE_CHECKING

import attrs

from bot.config import money_setting
from bot.core.money import Side, format_units, from_decimal
from bot.core.trading import Decision, OrderType, Place, Strategy

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

    from bot.core.trading import Action, Context
    from bot.core.universe import Universe


class Quoter(Strategy):
    """Rests one GTC bid on the first binary market's YES token, once, when its book is usable."""

    @attrs.frozen
    class Settings:
        price: Decimal = money_setting("0.41")  # noqa: RUF009
        size: Decimal = money_setting("10")  # noqa: RUF009

    name = "quoter"

    def __init__(self, universe: Universe, settings: Settings) -> None:
        self.token = universe.binary_markets()[0].yes.token_id
        self.price = from_decimal(settings.price)
        self.size = from_decimal(settings.size)
        self.placed = False

    def on_books(self, ctx: Context, changed: Collection[str]) -> Sequence[Action]:
        if self.placed or ctx.usable(self.token) is None:
            return []
        self.placed = True
        return [Place(self.token, Side.BUY, self.price, self.size, OrderType.GTC, tag="bid")]


class Noter(Strategy):
    """Writes down every book change and every stale/fresh switch it is shown (no orders)."""

    name = "noter"

    def __init__(self, universe: Universe, settings: None) -> None:
        self.token = universe.binary_markets()[0].yes.token_id

    def on_books(self, ctx: Context, changed: Collection[str]) -> Sequence[Action]:
        view = ctx.books[self.token] if self.token in changed else None
        if view is None or view.best_bid is None:
            return []
        return [Decision(self.name, "book", self.token, {"bid": format_units(view.best_bid.price)})]

    def on_stale(self, ctx: Context, tokens: Collection[str], stale: bool) -> Sequence[Action]:
        if self.token not in tokens:
            return []
        return [Decision(self.name, "stale" if stale else "fresh", self.token, {})]


class Crasher(Strategy):
    """Cannot even be built."""

    def __init__(self, universe: Universe, settings: None) -> None:
        raise RuntimeError("crasher: broken on purpose")


class NotAStrategy:
    """Has no hooks."""

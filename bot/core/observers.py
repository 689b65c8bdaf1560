"""Observer strategies: pure detectors that run on every book update and log what they decide.

They are what runs in the strategy tasks until execution arrives (the strategies issue replaces
them with trading strategies behind the same runner): each one receives the latest book views and
``now`` and returns ``Decision`` values; the shell logs them and measures tick-to-decision
latency. They never see trio, a clock or a socket.

* ``ComplementWatch``: for each binary market, the cost of buying one YES and one NO at the best
  asks. Below 1 (minus a minimum edge) it is a sum-to-one arbitrage (PROTOCOL.md section 7.2).
* ``NegRiskWatch``: for each complete neg-risk event, the sum of the YES best asks across all
  outcomes. Below 1 it is a multi-outcome arbitrage (PROTOCOL.md section 7.3).

Both report an opportunity once when it opens and once when it closes, not on every update while
it lasts, so the decision log reads like a trader's notebook.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import attrs

from bot.core.money import ONE, format_units

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from bot.core.book import BookView
    from bot.core.universe import Universe


@attrs.frozen
class Decision:
    """One decision of a strategy, as data.

    Attributes:
        strategy: the strategy's name.
        kind: what was decided (``opportunity.open``, ``opportunity.close``, ...).
        key: what it is about (a condition id or an event id).
        detail: printable figures (prices as venue decimal strings).
    """

    strategy: str
    kind: str
    key: str
    detail: Mapping[str, str]


class Observer(Protocol):
    """The interface of an observer strategy (pure)."""

    @property
    def name(self) -> str: ...

    def on_books(
        self, views: Mapping[str, BookView], changed: Iterable[str], now: float
    ) -> list[Decision]:
        """Decide on the latest ``views`` (every token seen so far) after ``changed`` moved."""
        ...


@attrs.define(eq=False)
class ComplementWatch:
    """Sum-to-one watch on binary markets: YES ask + NO ask below ``1 - min_edge``."""

    universe: Universe
    min_edge: int = 0
    name: str = "complement_watch"
    _open: set[str] = attrs.field(factory=set, init=False)

    def on_books(
        self, views: Mapping[str, BookView], changed: Iterable[str], now: float
    ) -> list[Decision]:
        decisions: list[Decision] = []
        seen: set[str] = set()
        for token in changed:
            try:
                market = self.universe.market_for_token(token)
            except KeyError:
                continue
            if market.condition_id in seen or len(market.outcomes) != 2:
                continue
            seen.add(market.condition_id)
            yes = views.get(market.outcomes[0].token_id)
            no = views.get(market.outcomes[1].token_id)
            if yes is None or no is None:
                continue
            live = not (yes.stale or no.stale) and yes.best_ask and no.best_ask
            cost = yes.best_ask_price + no.best_ask_price
            is_open = bool(live) and cost < ONE - self.min_edge
            key = market.condition_id
            if is_open and key not in self._open:
                self._open.add(key)
                size = min(yes.best_ask.size, no.best_ask.size)  # type: ignore[union-attr]
                decisions.append(
                    Decision(
                        self.name,
                        "opportunity.open",
                        key,
                        {
                            "market": market.question,
                            "yes_ask": format_units(yes.best_ask_price),
                            "no_ask": format_units(no.best_ask_price),
                            "edge": format_units(ONE - cost),
                            "size": format_units(size),
                        },
                    )
                )
            elif not is_open and key in self._open:
                self._open.discard(key)
                decisions.append(
                    Decision(self.name, "opportunity.close", key, {"cost": format_units(cost)})
                )
        return decisions


@attrs.define(eq=False)
class NegRiskWatch:
    """Multi-outcome watch on complete neg-risk events: sum of YES asks below ``1 - min_edge``."""

    universe: Universe
    min_edge: int = 0
    name: str = "neg_risk_watch"
    _open: set[str] = attrs.field(factory=set, init=False)
    _event_of: dict[str, str] = attrs.field(factory=dict, init=False)

    def __attrs_post_init__(self) -> None:
        for event in self.universe.neg_risk_events():
            if event.complete:
                for market in event.markets:
                    self._event_of[market.outcomes[0].token_id] = event.id

    def on_books(
        self, views: Mapping[str, BookView], changed: Iterable[str], now: float
    ) -> list[Decision]:
        decisions: list[Decision] = []
        events = {self._event_of[t] for t in changed if t in self._event_of}
        for event in self.universe.neg_risk_events():
            if event.id not in events:
                continue
            asks = []
            for market in event.markets:
                view = views.get(market.outcomes[0].token_id)
                if view is None or view.stale or view.best_ask is None:
                    break
                asks.append(view.best_ask_price)
            else:
                total = sum(asks)
                is_open = total < ONE - self.min_edge
                if is_open and event.id not in self._open:
                    self._open.add(event.id)
                    decisions.append(
                        Decision(
                            self.name,
                            "opportunity.open",
                            event.id,
                            {
                                "event": event.title,
                                "outcomes": str(len(asks)),
                                "sum_yes_asks": format_units(total),
                                "edge": format_units(ONE - total),
                            },
                        )
                    )
                elif not is_open and event.id in self._open:
                    self._open.discard(event.id)
                    decisions.append(
                        Decision(
                            self.name, "opportunity.close", event.id, {"sum": format_units(total)}
                        )
                    )
        return decisions

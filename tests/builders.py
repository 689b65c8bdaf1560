"""Hand-built domain objects shared by the tests: one place that knows every ``Market`` field."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs

from bot.core.money import ONE
from bot.core.universe import Market, Outcome


def binary_market(condition_id: str, yes: str, no: str, **changes: Any) -> Market:
    """A tradable binary market on the 0.01 tick, min size 5, no fees; ``changes`` override.

    ``event_id`` alone makes it a neg-risk member (``neg_risk`` follows it unless given).
    """
    if "event_id" in changes and "neg_risk" not in changes:
        changes["neg_risk"] = changes["event_id"] is not None
    base = Market(
        condition_id=condition_id,
        question=f"question {condition_id}",
        slug=condition_id,
        outcomes=(Outcome("Yes", yes), Outcome("No", no)),
        tick_size=10_000,
        min_order_size=5 * ONE,
        neg_risk=False,
        neg_risk_market_id="",
        event_id=None,
        end_date=None,
        liquidity=Decimal(0),
        volume=Decimal(0),
        fee_rate=0,
        accepting_orders=True,
    )
    return attrs.evolve(base, **changes) if changes else base

"""Pre-trade risk: each check refuses with a reason naming the limit, and only that check."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.config import RiskConfig
from bot.core.book import BookView
from bot.core.money import ONE, Side
from bot.core.risk import RiskGate, RiskLimits
from bot.core.trading import OrderType, Place
from bot.core.wire.market_events import Level
from tests.builders import binary_market

MARKET = binary_market("0xc", "y", "n")

VIEW = BookView(
    asset_id="y",
    best_bid=Level(400_000, 100 * ONE),
    best_ask=Level(420_000, 100 * ONE),
    bids=(Level(400_000, 100 * ONE),),
    asks=(Level(420_000, 100 * ONE),),
    tick_size=10_000,
    last_update_ms=1,
    stale=False,
)

LIMITS = RiskLimits.from_config(
    RiskConfig(
        max_position_shares=Decimal(100),
        max_total_exposure=Decimal(1000),
        max_order_notional=Decimal(50),
        max_orders_per_s=3,
        daily_loss_limit=Decimal(20),
    )
)


def check(
    gate: RiskGate,
    order: Place,
    *,
    view: BookView | None = VIEW,
    stale: bool = False,
    position: int = 0,
    exposure: int = 0,
    now: float = 0.0,
    resting_buys: int = 0,
) -> str | None:
    return gate.check(
        order,
        market=MARKET,
        view=view,
        stale=stale,
        position=position,
        exposure=exposure,
        now=now,
        resting_buys=resting_buys,
    )


def buy(price: int = 420_000, size: int = 10 * ONE, kind: OrderType = OrderType.GTC) -> Place:
    return Place("y", Side.BUY, price, size, kind)


def test_an_ordinary_order_passes() -> None:
    assert check(RiskGate(LIMITS), buy()) is None


@pytest.mark.parametrize(
    ("order", "kwargs", "words"),
    [
        (buy(), {"view": None}, "no book yet"),
        (buy(), {"stale": True}, "stale book"),
        (buy(price=425_000), {}, "not on the 0.01 tick"),
        (buy(price=0), {}, "not on the 0.01 tick"),
        (buy(size=10 * ONE + 1), {}, "multiple of 0.01 share"),
        (buy(size=4 * ONE), {}, "below the minimum order size 5"),
        (buy(size=2 * ONE, kind=OrderType.FOK), {}, "below the $1 minimum"),
        (buy(size=200 * ONE), {}, "exceeds max_order_notional 50"),
        (buy(), {"position": 95 * ONE}, "would exceed max_position_shares 100"),
        (buy(), {"exposure": 998 * ONE}, "would exceed max_total_exposure 1000"),
    ],
)
def test_each_check_refuses_with_its_reason(
    order: Place, kwargs: dict[str, object], words: str
) -> None:
    gate = RiskGate(LIMITS)
    reason = check(gate, order, **kwargs)  # type: ignore[arg-type]
    assert reason is not None
    assert words in reason
    assert gate.rejections == 1


def test_resting_buys_count_against_the_position_limit() -> None:
    # 60 held and 30 more bid for: another 10 is fine, 11 is not (all three could fill).
    gate = RiskGate(LIMITS)
    assert check(gate, buy(), position=60 * ONE, resting_buys=30 * ONE) is None
    reason = check(gate, buy(size=11 * ONE), position=60 * ONE, resting_buys=30 * ONE)
    assert reason is not None
    assert "position 60 + resting buys 30 + 11 would exceed max_position_shares 100" in reason
    # Selling is never held back by bids resting elsewhere.
    sell = Place("y", Side.SELL, 400_000, 10 * ONE)
    assert check(gate, sell, position=100 * ONE, resting_buys=50 * ONE) is None


def test_a_stale_flag_on_the_view_itself_is_a_veto() -> None:
    import attrs

    assert "stale book" in (
        check(RiskGate(LIMITS), buy(), view=attrs.evolve(VIEW, stale=True)) or ""
    )


def test_an_order_that_shrinks_a_position_beyond_the_limit_passes() -> None:
    sell = Place("y", Side.SELL, 400_000, 10 * ONE)
    assert check(RiskGate(LIMITS), sell, position=150 * ONE) is None
    assert check(RiskGate(LIMITS), sell, position=-95 * ONE) is not None  # grows a short


def test_selling_more_than_is_held_is_refused() -> None:
    sell = Place("y", Side.SELL, 400_000, 10 * ONE)
    assert check(RiskGate(LIMITS), sell, position=10 * ONE) is None
    reason = check(RiskGate(LIMITS), sell, position=4 * ONE)
    assert reason is not None
    assert "cannot sell 10: 4 held" in reason


def test_sells_do_not_count_against_exposure() -> None:
    sell = Place("y", Side.SELL, 400_000, 10 * ONE)
    assert check(RiskGate(LIMITS), sell, exposure=999 * ONE, position=10 * ONE) is None


def test_order_rate_is_a_sliding_one_second_window() -> None:
    gate = RiskGate(LIMITS)
    assert [check(gate, buy(), now=t) for t in (0.0, 0.1, 0.2)] == [None, None, None]
    assert "order rate" in (check(gate, buy(), now=0.5) or "")
    assert check(gate, buy(), now=1.05) is None  # the order at 0.0 left the window


def test_the_kill_switch_trips_at_the_limit_and_stops_everything() -> None:
    gate = RiskGate(LIMITS)
    assert not gate.check_loss(-19_999_999)
    assert check(gate, buy()) is None
    assert gate.check_loss(-20 * ONE)
    assert not gate.check_loss(-30 * ONE)  # already tripped: reported once
    reason = check(gate, buy(), now=5.0)
    assert reason is not None
    assert reason.startswith("kill switch")
    assert "-20" in reason

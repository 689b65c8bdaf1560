"""The forecast taker's pure core: bracket labels, titles, probabilities, ladders, the strategy."""

from __future__ import annotations

import itertools
import math
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import attrs
import pytest

from bot.config import ForecastTakerConfig
from bot.core.book import BookView
from bot.core.money import ONE, Side
from bot.core.strategies.forecast import (
    Bracket,
    CityDay,
    Forecast,
    ForecastTaker,
    ForecastUpdate,
    bracket_probabilities,
    parse_bracket,
    parse_city_day,
    temperature_ladder,
)
from bot.core.trading import Context, Decision, Inventory, Order, OrderType, Place
from bot.core.universe import Event, Market, Outcome, Universe
from bot.core.wire.market_events import Level, MarketResolved

if TYPE_CHECKING:
    from collections.abc import Sequence

# --------------------------------------------------------------------------------------------
# Brackets


@pytest.mark.parametrize(
    ("label", "low", "high"),
    [
        ("18°C", 175, 185),
        ("-3°C", -35, -25),
        ("18 °C", 175, 185),
        ("18C", 175, 185),
        ("17°C or below", None, 175),
        ("17°C or lower", None, 175),
        ("≤17°C", None, 175),
        ("<18°C", None, 175),
        ("27°C or higher", 265, None),
        ("27°C or above", 265, None),
        ("27°C+", 265, None),
        ("≥27°C", 265, None),
        (">26°C", 265, None),
        ("20-21°C", 195, 215),
        # °F: whole degrees widened by 0.5 °F, converted, rounded to the nearest tenth of °C.
        ("44-45°F", 64, 75),  # [43.5, 45.5) °F = [6.39, 7.5) °C
        ("44\u201345°F", 64, 75),  # en dash
        ("44 to 45 °F", 64, 75),
        ("43°F or below", None, 64),
        ("≤43°F", None, 64),
        ("56°F or higher", 131, None),  # 55.5 °F = 13.06 °C
        ("≥56°F", 131, None),
        ("-5--3°F", -208, -192),  # [-5.5, -2.5) °F = [-20.83, -19.17) °C
    ],
)
def test_parse_bracket_shapes_and_units(label: str, low: int | None, high: int | None) -> None:
    bracket = parse_bracket(label)
    assert (bracket.low, bracket.high) == (low, high)
    assert bracket.label == label


def test_a_fahrenheit_ladder_is_contiguous_and_covers_the_line() -> None:
    labels = ["43°F or below", *(f"{d}-{d + 1}°F" for d in range(44, 56, 2)), "56°F or higher"]
    brackets = [parse_bracket(label) for label in labels]
    assert brackets[0].low is None
    assert brackets[-1].high is None
    for below, above in itertools.pairwise(brackets):
        assert below.high == above.low
    # Every whole-degree reading lands in exactly one bracket, the one its label names.
    for fahrenheit in range(30, 70):
        tenths = round((fahrenheit - 32) * 50 / 9)
        (hit,) = [b for b in brackets if b.contains(tenths)]
        if 44 <= fahrenheit <= 55:
            first = fahrenheit - (fahrenheit % 2)
            assert hit.label == f"{first}-{first + 1}°F"


@pytest.mark.parametrize(
    "label",
    ["", "Other", "18", "18°", "warm", "18.5°C", "18°C or 20°F", "45-44°F", "18°C to", "Yes"],
)
def test_parse_bracket_rejects_what_is_not_a_bracket(label: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(label))):
        parse_bracket(label)


def test_bracket_rejects_an_empty_interval() -> None:
    with pytest.raises(ValueError, match="empty interval"):
        Bracket(185, 175, "bad")


# --------------------------------------------------------------------------------------------
# City and day


@pytest.mark.parametrize(
    ("title", "city", "month", "day", "year"),
    [
        ("Highest temperature in New York City on November 25?", "New York City", 11, 25, None),
        ("Highest temperature in London on July 3?", "London", 7, 3, None),
        (
            "Will the highest temperature in New York City be 44-45°F on November 25?",
            "New York City",
            11,
            25,
            None,
        ),
        ("Will the highest temperature in Seoul be 27°C or higher on Aug 2?", "Seoul", 8, 2, None),
        ("Highest temperature in Buenos Aires on Sept. 1st, 2026?", "Buenos Aires", 9, 1, 2026),
    ],
)
def test_parse_city_day(title: str, city: str, month: int, day: int, year: int | None) -> None:
    assert parse_city_day(title) == CityDay(city, month, day, year)


@pytest.mark.parametrize(
    "title",
    [
        "Who will win the 2028 election?",
        "Highest temperature in London on Smarch 3?",
        "Highest temperature in London on July 40?",
    ],
)
def test_parse_city_day_rejects_other_titles(title: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(title))):
        parse_city_day(title)


def test_city_day_key_and_date() -> None:
    assert CityDay("New  York City", 11, 25).key == CityDay("new york city", 11, 25, 2025).key
    new_year = CityDay("Seoul", 1, 2)
    assert new_year.date_near(date(2025, 12, 30)) == date(2026, 1, 2)
    assert new_year.date_near(date(2026, 1, 1)) == date(2026, 1, 2)
    assert CityDay("Seoul", 1, 2, 2024).date_near(date(2026, 1, 1)) == date(2024, 1, 2)
    with pytest.raises(ValueError, match="2/30 is not a date"):
        CityDay("Seoul", 2, 30).date_near(date(2026, 1, 1))


# --------------------------------------------------------------------------------------------
# Probabilities


def _celsius_ladder(first: int, last: int) -> list[Bracket]:
    labels = [f"{first - 1}°C or below", *(f"{d}°C" for d in range(first, last + 1))]
    return [parse_bracket(label) for label in [*labels, f"{last + 1}°C or higher"]]


def test_probabilities_match_hand_values() -> None:
    # Normal(18, 1): P(17.5 <= T < 18.5) = erf(0.5 / sqrt 2) = 0.382925; each tail 0.308538.
    low, mid, high = bracket_probabilities(_celsius_ladder(18, 18), 18.0, 1.0)
    assert mid == pytest.approx(0.3829249, abs=1e-7)
    assert low == pytest.approx(0.3085375, abs=1e-7)
    assert high == pytest.approx(low, abs=1e-12)
    assert low + mid + high == pytest.approx(1.0, abs=1e-15)
    # A mean on the edge between two open brackets splits them exactly.
    assert bracket_probabilities(_celsius_ladder(18, 17), 17.5, 2.0) == [0.5, 0.5]


def test_probabilities_sum_to_one_and_keep_far_tails() -> None:
    ladder = _celsius_ladder(15, 25)
    probabilities = bracket_probabilities(ladder, 20.3, 1.7)
    assert math.fsum(probabilities) == pytest.approx(1.0, abs=1e-12)
    assert max(probabilities) == probabilities[ladder.index(parse_bracket("20°C"))]
    # 25.5 °C is 6.6 sd above 13: the upper tail is tiny but not lost to 1 - cdf cancellation.
    far = bracket_probabilities(ladder, 13.0, 1.9)
    assert far[-1] == pytest.approx(0.5 * math.erfc((25.5 - 13.0) / 1.9 / math.sqrt(2)), rel=1e-9)
    assert far[-1] > 0


def test_probabilities_of_a_fahrenheit_ladder() -> None:
    brackets = [parse_bracket(label) for label in ("43°F or below", "44-45°F", "46°F or higher")]
    # Mean 7 °C (44.6 °F), sd 1 °C: P(6.4 <= T < 7.5) = cdf(0.5) - cdf(-0.6).
    _, mid, _ = bracket_probabilities(brackets, 7.0, 1.0)
    assert mid == pytest.approx(0.6914625 - 0.2742531, abs=1e-6)


def test_probabilities_reject_bad_inputs() -> None:
    with pytest.raises(ValueError, match="sd > 0"):
        bracket_probabilities(_celsius_ladder(18, 18), 18.0, 0.0)
    with pytest.raises(ValueError, match="no brackets"):
        bracket_probabilities([], 18.0, 1.0)
    with pytest.raises(ValueError, match="carry no probability"):
        bracket_probabilities([parse_bracket("90°C")], -40.0, 0.1)


# --------------------------------------------------------------------------------------------
# Universe builders

EVENT_ID = "ev-london"
TITLE = "Highest temperature in London on July 3?"


def market(label: str, n: int, *, event_id: str = EVENT_ID, **changes: Any) -> Market:
    base = Market(
        condition_id=f"0xc{n}",
        question=f"Will the highest temperature in London be {label} on July 3?",
        slug=f"m{n}",
        outcomes=(Outcome("Yes", f"y{n}"), Outcome("No", f"n{n}")),
        tick_size=10_000,
        min_order_size=5 * ONE,
        neg_risk=True,
        neg_risk_market_id="0xnr00",
        event_id=event_id,
        end_date=datetime(2026, 7, 3, 12, tzinfo=UTC),
        liquidity=Decimal(1000),
        volume=Decimal(1000),
        fee_rate=0,
        accepting_orders=True,
        group_item_title=label,
    )
    return attrs.evolve(base, **changes)


def event(labels: list[str], *, title: str = TITLE, **changes: Any) -> Event:
    return Event(
        id=changes.pop("id", EVENT_ID),
        slug="ev",
        title=title,
        neg_risk=True,
        markets=tuple(market(label, n, **changes) for n, label in enumerate(labels)),
    )


TWO = ["17°C or below", "18°C or higher"]
THREE = ["17°C or below", "18°C", "19°C or higher"]


# --------------------------------------------------------------------------------------------
# Ladders


def test_ladder_sorts_rungs_and_reads_the_city_day() -> None:
    ladder = temperature_ladder(event(["19°C or higher", "17°C or below", "18°C"]))
    assert [r.bracket.label for r in ladder.rungs] == THREE
    assert ladder.city_day == CityDay("London", 7, 3)


def test_ladder_falls_back_to_the_question_for_labels() -> None:
    source = event(THREE)
    bare = attrs.evolve(
        source, markets=tuple(attrs.evolve(m, group_item_title="") for m in source.markets)
    )
    assert temperature_ladder(bare).brackets == temperature_ladder(source).brackets


@pytest.mark.parametrize(
    ("labels", "problem"),
    [
        (["17°C or below", "19°C", "20°C or higher"], "gap between brackets '17°C or below'"),
        (["17°C or below", "17°C", "18°C or higher"], "overlap"),
        (["17°C", "18°C or higher"], "not open below"),
        (["17°C or below", "18°C"], "not open above"),
        (["17°C or below", "Other", "18°C or higher"], "'Other'"),
        (["17°C or below"], "needs at least 2"),
    ],
)
def test_ladder_rejects_what_does_not_partition_the_line(labels: list[str], problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)) as caught:
        temperature_ladder(event(labels))
    assert EVENT_ID in str(caught.value)


def test_ladder_rejects_an_incomplete_event() -> None:
    incomplete = attrs.evolve(event(TWO), complete=False, incomplete_reason="augmented")
    with pytest.raises(ValueError, match="incomplete: augmented"):
        temperature_ladder(incomplete)


# --------------------------------------------------------------------------------------------
# The strategy


class Positions(Inventory):
    def __init__(self, held: dict[str, int] | None = None) -> None:
        self.held = held or {}

    def position(self, token_id: str) -> int:
        return self.held.get(token_id, 0)

    def position_of(self, strategy: str, token_id: str) -> int:
        assert strategy == "forecast_taker"
        return self.held.get(token_id, 0)


def book(
    token: str, asks: list[tuple[str, str]], *, bid: str | None = None, stale: bool = False
) -> BookView:
    levels = tuple(Level(units(p), units(s)) for p, s in asks)
    bids = (Level(units(bid), 100 * ONE),) if bid is not None else ()
    return BookView(
        asset_id=token,
        best_bid=bids[0] if bids else None,
        best_ask=levels[0] if levels else None,
        bids=bids,
        asks=levels,
        tick_size=10_000,
        last_update_ms=None,
        stale=stale,
    )


def units(text: str) -> int:
    return int(Fraction(text) * ONE)


def config(**changes: Any) -> ForecastTakerConfig:
    base = ForecastTakerConfig(
        min_edge=Decimal("0.05"),
        kelly_fraction=0.25,
        bankroll=Decimal(1000),
        max_shares=Decimal(1000),
        cooldown_s=5.0,
        refresh_s=300.0,
    )
    return attrs.evolve(base, **changes)


def context(
    universe: Universe,
    books: list[BookView],
    *,
    now: float = 100.0,
    held: dict[str, int] | None = None,
    stale: frozenset[str] = frozenset(),
    orders: Sequence[Order] = (),
) -> Context:
    return Context(
        now=now,
        books={view.asset_id: view for view in books},
        universe=universe,
        inventory=Positions(held),
        orders={order.id: order for order in orders},
        stale=stale,
    )


def forecast(mean: float, sd: float = 1.0, *, at: float = 100.0, **keys: Any) -> ForecastUpdate:
    keys = keys or {"event_id": EVENT_ID}
    return ForecastUpdate(Forecast(mean_c=mean, sd_c=sd, source="test", issued_at=at, **keys))


def places(actions: Any) -> list[Place]:
    return [a for a in actions if isinstance(a, Place)]


def decisions(actions: Any, kind: str) -> list[Decision]:
    return [a for a in actions if isinstance(a, Decision) and a.kind == kind]


def setup(
    labels: list[str], books: list[BookView], *, market_changes: Any = None, **cfg: Any
) -> tuple[ForecastTaker, Universe, list[BookView]]:
    ev = event(labels, **(market_changes or {}))
    universe = Universe(markets=ev.markets, events=(ev,))
    return ForecastTaker(universe, config(**cfg)), universe, books


def kelly_shares(p: Fraction, cost: Fraction, fraction: Fraction, bankroll: int) -> int:
    """The issue's formula, in exact arithmetic: f* = (p - c) / (1 - c), stake = fraction x f* x
    bankroll, shares = stake / c, rounded down to 0.01 share (micro-units)."""
    full = (p - cost) / (1 - cost)
    shares = fraction * full * bankroll / cost
    return math.floor(shares * 100) * 10_000


def test_buys_a_cheap_bracket_with_the_kelly_size() -> None:
    # Mean 17.5 on the edge of a two-bracket ladder: p = 0.5 exactly for each.
    taker, universe, books = setup(
        TWO, [book("y0", [("0.30", "500")]), book("n0", [("0.75", "500")])]
    )
    actions = taker.on_event(context(universe, books), forecast(17.5))

    (order,) = places(actions)
    # f* = 0.2 / 0.7 = 2/7; stake = 0.25 x 2/7 x 1000 = 71.43; shares = 71.43 / 0.30 = 238.095
    assert order == Place(
        token_id="y0",
        side=Side.BUY,
        price=450_000,  # the worst price still keeping 0.05 of edge: 0.5 - 0.45
        size=238_090_000,
        order_type=OrderType.FAK,
        tag="forecast",
        note="17°C or below YES: p=0.5000 price=0.3 edge=0.2",
    )
    assert order.size == kelly_shares(Fraction(1, 2), Fraction(3, 10), Fraction(1, 4), 1000)
    (bought,) = decisions(actions, "forecast.buy")
    assert bought.key == "y0"
    assert bought.detail["p"] == "0.5000"
    assert bought.detail["edge"] == "0.2"
    assert bought.detail["size"] == "238.09"
    (update,) = decisions(actions, "forecast.update")
    assert update.detail["probabilities"] == "17°C or below=0.5000, 18°C or higher=0.5000"


def test_kelly_accounts_for_the_fee_and_the_limit_keeps_the_edge_after_fees() -> None:
    taker, universe, books = setup(
        TWO, [book("y0", [("0.30", "500")])], market_changes={"fee_rate": 50_000}
    )
    (order,) = places(taker.on_event(context(universe, books), forecast(17.5)))
    cost = Fraction(3, 10) + Fraction(5, 100) * Fraction(3, 10) * Fraction(7, 10)  # 0.3105
    assert order.size == kelly_shares(Fraction(1, 2), cost, Fraction(1, 4), 1000)
    assert order.size == 221_280_000  # 68.71 staked at 0.3105 a share
    # At 0.43: 0.5 - 0.43 - 0.05 x 0.43 x 0.57 = 0.0577; at 0.44 only 0.0477.
    assert order.price == 430_000


def test_size_is_capped_by_the_depth_that_keeps_the_edge() -> None:
    asks = [("0.30", "50"), ("0.35", "100"), ("0.60", "1000")]
    taker, universe, books = setup(TWO, [book("y0", asks)])
    (order,) = places(taker.on_event(context(universe, books), forecast(17.5)))
    # 0.60 has no edge; through 0.35 there are 150 shares, and Kelly at 0.35 is 164.83 > 150.
    assert kelly_shares(Fraction(1, 2), Fraction(35, 100), Fraction(1, 4), 1000) > 150 * ONE
    assert order.size == 150 * ONE


def test_kelly_is_taken_at_the_worst_price_the_size_needs() -> None:
    # 100 shares at 0.30 are not the Kelly size (238.09); reaching into 0.40 sizes Kelly at 0.40:
    # f* = 0.1 / 0.6, stake 41.67, 104.16 shares, so no fill can stake more than Kelly.
    taker, universe, books = setup(TWO, [book("y0", [("0.30", "100"), ("0.40", "1000")])])
    (order,) = places(taker.on_event(context(universe, books), forecast(17.5)))
    assert order.size == kelly_shares(Fraction(1, 2), Fraction(4, 10), Fraction(1, 4), 1000)
    assert order.size == 104_160_000


def test_size_is_capped_by_max_shares_and_the_position_held() -> None:
    taker, universe, books = setup(TWO, [book("y0", [("0.30", "500")])], max_shares=Decimal(100))
    (order,) = places(
        taker.on_event(context(universe, books, held={"y0": 60 * ONE}), forecast(17.5))
    )
    assert order.size == 40 * ONE

    taker, universe, books = setup(TWO, [book("y0", [("0.30", "500")])], max_shares=Decimal(100))
    actions = taker.on_event(context(universe, books, held={"y0": 100 * ONE}), forecast(17.5))
    assert places(actions) == []
    (seen,) = decisions(actions, "forecast.opportunity")
    assert seen.detail["action"] == "position_cap"


def test_no_buy_while_the_last_one_is_still_open() -> None:
    # No cooldown, and the last FAK's answer is still on its way (live): its fills are not in
    # the position yet, so a second buy sized on the position could pass max_shares.
    taker, universe, books = setup(
        TWO, [book("y0", [("0.30", "500")])], max_shares=Decimal(100), cooldown_s=0.0
    )
    (first,) = places(taker.on_event(context(universe, books), forecast(17.5)))
    open_order = Order(
        id="f1",
        strategy=taker.name,
        token_id="y0",
        side=Side.BUY,
        price=first.price,
        size=first.size,
        order_type=OrderType.FAK,
        tag="forecast",
    )
    actions = taker.on_books(context(universe, books, now=100.5, orders=[open_order]), ["y0"])
    assert places(actions) == []
    (seen,) = decisions(actions, "forecast.opportunity")
    assert seen.detail["action"] == "in_flight"
    # It ended with 100 bought: the cap holds from the position now.
    later = taker.on_books(context(universe, books, now=101.0, held={"y0": 100 * ONE}), ["y0"])
    assert places(later) == []
    # It ended with nothing bought: buying again is fine.
    again = taker.on_books(context(universe, books, now=101.5), ["y0"])
    assert [p.size for p in places(again)] == [100 * ONE]


def test_buys_no_on_a_rich_bracket() -> None:
    # Normal(18, 1): P(>= 18.5) = 0.3085, so YES at 0.70 is rich and NO at 0.35 is cheap
    # (1 - 0.3085 = 0.6915).
    books = [
        book("y2", [("0.70", "300")], bid="0.65"),
        book("n2", [("0.35", "300")], bid="0.30"),
    ]
    taker, universe, books = setup(THREE, books)
    actions = taker.on_event(context(universe, books), forecast(18.0))
    (order,) = places(actions)
    assert order.token_id == "n2"
    assert order.side is Side.BUY
    assert order.note.startswith("19°C or higher NO: p=0.6915")
    assert order.price == 640_000  # 0.6915 - 0.64 >= 0.05 > 0.6915 - 0.65
    p_no = 1 - Fraction(round(0.3085375387259869 * 10**12), 10**12)
    assert order.size == min(300 * ONE, kelly_shares(p_no, Fraction(35, 100), Fraction(1, 4), 1000))


def test_no_trade_when_fees_eat_the_edge() -> None:
    # p = 0.5 and an ask of 0.44: 0.06 of edge before fees, 0.0477 after a 0.05-rate fee.
    for rate, trades in ((0, True), (50_000, False)):
        taker, universe, books = setup(
            TWO, [book("y0", [("0.44", "500")])], market_changes={"fee_rate": rate}
        )
        actions = taker.on_event(context(universe, books), forecast(17.5))
        assert bool(places(actions)) is trades
        assert bool(decisions(actions, "forecast.buy")) is trades
        if not trades:
            assert decisions(actions, "forecast.opportunity") == []


def test_respects_the_minimum_order_size_and_notional() -> None:
    taker, universe, books = setup(TWO, [book("y0", [("0.30", "500")])], bankroll=Decimal(10))
    actions = taker.on_event(context(universe, books), forecast(17.5))
    assert places(actions) == []  # 2.38 shares < 5
    (seen,) = decisions(actions, "forecast.opportunity")
    assert seen.detail["action"] == "below_min_size"

    # 4.73 shares at 0.05: $0.24 < $1, with the market's minimum size lowered to 1 share.
    taker, universe, books = setup(
        TWO,
        [book("y0", [("0.05", "500")])],
        market_changes={"min_order_size": ONE},
        bankroll=Decimal(2),
    )
    actions = taker.on_event(context(universe, books), forecast(17.5))
    assert places(actions) == []
    (seen,) = decisions(actions, "forecast.opportunity")
    assert seen.detail["action"] == "below_min_notional"


def test_never_trades_a_stale_book() -> None:
    taker, universe, books = setup(TWO, [book("y0", [("0.30", "500")], stale=True)])
    assert places(taker.on_event(context(universe, books), forecast(17.5))) == []
    taker, universe, books = setup(TWO, [book("y0", [("0.30", "500")])])
    ctx = context(universe, books, stale=frozenset({"y0"}))
    assert places(taker.on_event(ctx, forecast(17.5))) == []
    # Fresh again: the next book update trades.
    assert len(places(taker.on_books(context(universe, books, now=101.0), ["y0"]))) == 1


def test_cooldown_per_token_and_the_timer_that_ends_it() -> None:
    taker, universe, books = setup(TWO, [book("y0", [("0.30", "500")])])
    assert len(places(taker.on_event(context(universe, books, now=100.0), forecast(17.5)))) == 1
    assert taker.wakeup_at() == 105.0

    actions = taker.on_books(context(universe, books, now=101.0), ["y0"])
    assert places(actions) == []
    (seen,) = decisions(actions, "forecast.opportunity")
    assert seen.detail["action"] == "cooldown"
    # The same reason again is not repeated.
    assert taker.on_books(context(universe, books, now=102.0), ["y0"]) == []

    actions = taker.on_timer(context(universe, books, now=105.0))
    assert len(places(actions)) == 1
    assert taker.wakeup_at() == 110.0


def test_books_without_a_forecast_do_nothing_and_a_closed_edge_is_reported() -> None:
    taker, universe, books = setup(TWO, [book("y0", [("0.30", "500")])])
    assert taker.on_books(context(universe, books), ["y0"]) == []
    taker.on_event(context(universe, books, held={"y0": 1000 * ONE}), forecast(17.5))
    moved = [book("y0", [("0.48", "500")])]
    actions = taker.on_books(context(universe, moved, now=101.0), ["y0"])
    assert [(d.kind, d.key) for d in decisions(actions, "forecast.closed")] == [
        ("forecast.closed", "y0")
    ]


def test_forecast_matched_by_city_and_day() -> None:
    taker, universe, books = setup(TWO, [book("y0", [("0.30", "500")])])
    update = forecast(17.5, city_day=CityDay("london", 7, 3))
    assert len(places(taker.on_event(context(universe, books), update))) == 1

    other = forecast(17.5, city_day=CityDay("Paris", 7, 3))
    actions = taker.on_event(context(universe, books, now=200.0), other)
    assert places(actions) == []
    (unmatched,) = decisions(actions, "forecast.unmatched")
    assert unmatched.key == "Paris"


def test_old_or_late_forecasts_are_not_traded() -> None:
    taker, universe, books = setup(TWO, [book("y0", [("0.30", "500")])])
    # Three refreshes (900 s) old: too old.
    actions = taker.on_event(context(universe, books, now=1001.0), forecast(17.5, at=100.0))
    assert places(actions) == []
    assert len(decisions(actions, "forecast.stale")) == 1

    taker, universe, books = setup(TWO, [book("y0", [("0.30", "500")])])
    # Normal(19, 1): P(< 17.5) = 0.067, far below the 0.30 ask.
    assert places(taker.on_event(context(universe, books), forecast(19.0, at=100.0))) == []
    # A late answer issued before the one held (p = 0.5 would buy) is ignored.
    late = taker.on_event(context(universe, books, now=101.0), forecast(17.5, at=50.0))
    assert late == []


def test_a_resolved_ladder_is_not_traded() -> None:
    taker, universe, books = setup(TWO, [book("y0", [("0.30", "500")])])
    resolved = MarketResolved("1", "0xc0", ("y0", "n0"), "y0", "Yes", 0)
    ctx = context(universe, books)
    assert len(decisions(taker.on_event(ctx, resolved), "forecast.resolved")) == 1
    assert places(taker.on_event(ctx, forecast(17.5))) == []


def test_untradable_temperature_events_are_reported_once() -> None:
    good = event(TWO)
    bad = event(["17°C or below", "mild", "19°C or higher"], id="ev-bad", event_id="ev-bad")
    bad = attrs.evolve(
        bad,
        markets=tuple(
            attrs.evolve(m, outcomes=(Outcome("Yes", f"by{i}"), Outcome("No", f"bn{i}")))
            for i, m in enumerate(bad.markets)
        ),
    )
    election = attrs.evolve(event(TWO), id="ev-other", title="Who will win?", markets=())
    universe = Universe(markets=good.markets + bad.markets, events=(good, bad, election))
    taker = ForecastTaker(universe, config())
    assert set(taker.ladders) == {EVENT_ID}
    first = taker.on_books(context(universe, []), [])
    (skipped,) = decisions(first, "forecast.ladder_skipped")
    assert skipped.key == "ev-bad"
    assert "'mild'" in skipped.detail["reason"]
    assert taker.on_books(context(universe, []), []) == []

"""The arbitrage strategies' pure core: exact sizing after fees, minimums, staleness, debounce,
cooldown, the NO side of neg-risk events and the coordination bonus."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from bot.config import ArbOrderType, ComplementArbConfig, CoordinationConfig, NegRiskArbConfig
from bot.core.book import BookView
from bot.core.money import ONE, Side, parse_units
from bot.core.strategies.arbitrage import (
    ComplementArb,
    LegBook,
    NegRiskArb,
    inventory_reduction,
    rank_baskets,
    select_baskets,
    size_basket,
)
from bot.core.trading import Basket, Context, Decision, Inventory, OrderType, Place
from bot.core.universe import Event, Market, Outcome, Universe
from bot.core.wire.market_events import Level, MarketResolved

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence

    from bot.core.trading import Action

CENT = 10_000
MILLI = 1_000
MM = "market_making"


def u(text: str) -> int:
    return parse_units(text)


def market(
    n: int,
    *,
    fee: str = "0",
    min_size: str = "5",
    tick: int = CENT,
    event_id: str | None = None,
) -> Market:
    return Market(
        condition_id=f"0xc{n}",
        question=f"Will thing {n} happen?",
        slug=f"m{n}",
        outcomes=(Outcome("Yes", f"y{n}"), Outcome("No", f"n{n}")),
        tick_size=tick,
        min_order_size=u(min_size),
        neg_risk=event_id is not None,
        neg_risk_market_id="0xnr00" if event_id is not None else "",
        event_id=event_id,
        end_date=datetime(2026, 7, 3, 12, tzinfo=UTC),
        liquidity=Decimal(1000),
        volume=Decimal(1000),
        fee_rate=u(fee),
        accepting_orders=True,
        group_item_title=f"Outcome {n}" if event_id is not None else "",
    )


def view(
    token: str, asks: Sequence[tuple[str, str]], *, tick: int = CENT, stale: bool = False
) -> BookView:
    levels = tuple(Level(u(price), u(size)) for price, size in asks)
    return BookView(
        asset_id=token,
        best_bid=None,
        best_ask=levels[0] if levels else None,
        bids=(),
        asks=levels,
        tick_size=tick,
        last_update_ms=None,
        stale=stale,
    )


class Positions(Inventory):
    """Positions by (strategy, token)."""

    def __init__(self, held: Mapping[tuple[str, str], int] | None = None) -> None:
        self.held = dict(held or {})

    def position(self, token_id: str) -> int:
        return sum(size for (_, token), size in self.held.items() if token == token_id)

    def position_of(self, strategy: str, token_id: str) -> int:
        return self.held.get((strategy, token_id), 0)


def context(
    universe: Universe,
    books: Sequence[BookView],
    now: float = 0.0,
    *,
    inventory: Inventory | None = None,
    stale: Collection[str] = (),
) -> Context:
    return Context(
        now=now,
        books={book.asset_id: book for book in books},
        universe=universe,
        inventory=inventory or Positions(),
        orders={},
        stale=frozenset(stale),
    )


def complement_arb(
    universe: Universe,
    *,
    min_edge: str = "0",
    max_shares: str = "200",
    cooldown_s: float = 1.0,
    bonus: str = "0.002",
) -> ComplementArb:
    config = ComplementArbConfig(
        min_edge=Decimal(min_edge), max_shares=Decimal(max_shares), cooldown_s=cooldown_s
    )
    return ComplementArb(universe, config, CoordinationConfig(inventory_bonus=Decimal(bonus)))


def neg_risk_arb(
    universe: Universe,
    *,
    min_edge: str = "0",
    max_shares: str = "200",
    debounce_s: float = 0.1,
    cooldown_s: float = 1.0,
    trade_no_side: bool = True,
    bonus: str = "0.002",
) -> NegRiskArb:
    config = NegRiskArbConfig(
        min_edge=Decimal(min_edge),
        max_shares=Decimal(max_shares),
        debounce_s=debounce_s,
        cooldown_s=cooldown_s,
        trade_no_side=trade_no_side,
    )
    return NegRiskArb(universe, config, CoordinationConfig(inventory_bonus=Decimal(bonus)))


def baskets(actions: Sequence[Action]) -> list[Basket]:
    return [action for action in actions if isinstance(action, Basket)]


def decisions(actions: Sequence[Action], kind: str | None = None) -> list[Decision]:
    return [a for a in actions if isinstance(a, Decision) and (kind is None or a.kind == kind)]


def leg(
    token: str, asks: Sequence[tuple[str, str]], *, fee: str = "0", min_size: str = "5"
) -> LegBook:
    return LegBook(token, view(token, asks).asks, CENT, u(fee), u(min_size))


M1 = market(1, fee="0.04")
Y1, N1 = M1.token_ids
ONE_MARKET = Universe(markets=(M1,))


# --------------------------------------------------------------------------------------------
# Sizing and exact arithmetic


def test_exact_profit_on_a_two_level_book_stops_where_the_next_level_loses() -> None:
    # YES: 10 @ 0.40 then 50 @ 0.42; NO: 15 @ 0.50 then 100 @ 0.60. Past 15 shares a set costs
    # 0.42 + 0.60 = 1.02 > 1, so the best size is 15: 10 YES @ 0.40 + 5 YES @ 0.42 + 15 NO @ 0.50.
    #   cost  = 4.00 + 2.10 + 7.50 = 13.60; payout = 15
    #   fees (rate 0.04, C x r x p x (1 - p) per level):
    #         10 x 0.04 x 0.40 x 0.60 = 0.096; 5 x 0.04 x 0.42 x 0.58 = 0.04872;
    #         15 x 0.04 x 0.50 x 0.50 = 0.15   -> 0.29472
    #   profit = 15 - 13.60 - 0.29472 = 1.10528
    strategy = complement_arb(ONE_MARKET, min_edge="0.002")
    books = [
        view(Y1, [("0.40", "10"), ("0.42", "50")]),
        view(N1, [("0.50", "15"), ("0.60", "100")]),
    ]
    actions = strategy.on_books(context(ONE_MARKET, books), [Y1])

    [basket] = baskets(actions)
    assert basket.key == M1.condition_id
    assert basket.edge == u("1.10528")
    assert basket.legs == (
        Place(Y1, Side.BUY, u("0.42"), u("15"), OrderType.FOK, tag="yes", note=basket.legs[0].note),
        Place(N1, Side.BUY, u("0.50"), u("15"), OrderType.FOK, tag="no", note=basket.legs[1].note),
    )
    [opened] = decisions(actions, "opportunity.open")
    assert opened.key == M1.condition_id
    assert opened.detail["shares"] == "15"
    assert opened.detail["cost"] == "13.6"
    assert opened.detail["fees"] == "0.29472"
    assert opened.detail["payout"] == "15"
    assert opened.detail["edge"] == "1.10528"
    assert opened.detail["limits"] == "0.42,0.5"
    assert opened.detail["sent"] == "yes"
    assert actions.index(opened) < actions.index(basket)


def test_size_basket_walks_every_level_with_per_level_fees() -> None:
    # Profitable all the way down: 10 @ 0.40 + 20 @ 0.42 YES, 15 @ 0.50 + 15 @ 0.55 NO.
    #   cost = 4 + 8.4 + 7.5 + 8.25 = 28.15
    #   fees = 0.096 + 20 x 0.04 x 0.42 x 0.58 (0.19488) + 0.15 + 15 x 0.04 x 0.55 x 0.45 (0.1485)
    #        = 0.58938
    legs = [
        leg("y", [("0.40", "10"), ("0.42", "20")], fee="0.04"),
        leg("n", [("0.50", "15"), ("0.55", "100")], fee="0.04"),
    ]
    sizing = size_basket(legs, ONE, min_edge=u("0.002"), max_shares=u("200"))
    assert sizing is not None
    assert sizing.shares == u("30")  # the YES depth
    assert (sizing.cost, sizing.fees, sizing.payout) == (u("28.15"), u("0.58938"), u("30"))
    assert sizing.profit == u("1.26062")
    assert [(c.limit_price, c.notional, c.fee, c.levels) for c in sizing.legs] == [
        (u("0.42"), u("12.4"), u("0.29088"), 2),
        (u("0.55"), u("15.75"), u("0.2985"), 2),
    ]

    capped = size_basket(legs, ONE, min_edge=u("0.002"), max_shares=u("12"))
    assert capped is not None
    assert capped.shares == u("12")
    # 10 @ 0.40 + 2 @ 0.42 YES, 12 @ 0.50 NO; the second YES level's fee is
    # 2 x 0.04 x 0.42 x 0.58 = 0.019488, floored to 0.01948.
    assert capped.fees == u("0.096") + u("0.01948") + u("0.12")
    assert capped.profit == u("12") - u("4.84") - u("6") - capped.fees


def test_each_level_notional_is_rounded_up_against_us() -> None:
    # A level of 10.000001 shares at 0.45 costs 4.50000045 -> 4.500001; the next 89.999999 at
    # 0.46 cost 41.39999954 -> 41.4. The NO leg: 100 at 0.50 = 50.
    legs = [leg("y", [("0.45", "10.000001"), ("0.46", "100")]), leg("n", [("0.50", "100")])]
    sizing = size_basket(legs, ONE, min_edge=0, max_shares=u("100"))
    assert sizing is not None
    assert sizing.shares == u("100")
    assert sizing.legs[0].notional == u("45.900001")
    assert sizing.profit == u("4.099999")


def test_limit_price_is_rounded_up_to_the_current_tick() -> None:
    # A 0.505 level left from a finer tick on a book now ticking at 0.01: the order's price cap
    # must be on the tick (risk refuses it otherwise), so it goes out at 0.51.
    legs = [leg("y", [("0.40", "10"), ("0.505", "10")]), leg("n", [("0.45", "100")])]
    sizing = size_basket(legs, ONE, min_edge=0, max_shares=u("100"))
    assert sizing is not None
    assert sizing.shares == u("20")
    assert [cost.limit_price for cost in sizing.legs] == [u("0.51"), u("0.45")]
    assert sizing.cost == u("4") + u("5.05") + u("9")  # the fill is still the levels walked


def test_min_edge_per_share_limits_the_size_to_the_exact_hundredth() -> None:
    # 10 sets at 0.10 profit each, then 0.01 each: the average is 0.05 exactly at 22.5 sets.
    legs = [leg("y", [("0.40", "10"), ("0.49", "100")]), leg("n", [("0.50", "200")])]
    sizing = size_basket(legs, ONE, min_edge=u("0.05"), max_shares=u("200"))
    assert sizing is not None
    assert sizing.shares == u("22.5")
    assert sizing.profit == u("1.125")
    assert sizing.profit_per_share == u("0.05")

    free = size_basket(legs, ONE, min_edge=0, max_shares=u("200"))
    assert free is not None
    assert free.shares == u("110")  # every set still profits: down to the YES depth
    assert free.profit == u("2")


def test_edge_exactly_at_min_edge_trades_one_micro_above_does_not() -> None:
    legs = [leg("y", [("0.49", "100")]), leg("n", [("0.50", "100")])]
    at = size_basket(legs, ONE, min_edge=u("0.01"), max_shares=u("200"))
    assert at is not None
    assert (at.shares, at.profit) == (u("100"), u("1"))
    assert size_basket(legs, ONE, min_edge=u("0.010001"), max_shares=u("200")) is None


@pytest.mark.parametrize(
    ("rate", "edge"),
    [
        # Gross edge 0.01 per set; fees per set r x (0.49 x 0.51 + 0.50 x 0.50) = r x 0.4999.
        ("0.0201", None),  # 0.01004799 of fees: more than the edge
        # 100 x 0.0199 x 0.2499 = 0.497301 -> 0.4973 (floor to 5 dp); 100 x 0.0199 x 0.25 =
        # 0.4975; profit = 100 - 99 - 0.9948
        ("0.0199", "0.0052"),
    ],
)
def test_fees_eat_the_edge(rate: str, edge: str | None) -> None:
    m = market(7, fee=rate)
    universe = Universe(markets=(m,))
    yes, no = m.token_ids
    strategy = complement_arb(universe, max_shares="100")
    books = [view(yes, [("0.49", "100")]), view(no, [("0.50", "100")])]
    found = baskets(strategy.on_books(context(universe, books), [yes, no]))
    if edge is None:
        assert found == []
    else:
        [basket] = found
        assert basket.edge == u(edge)
        assert {leg.size for leg in basket.legs} == {u("100")}


def test_depth_and_minimums() -> None:
    def sized(yes: list[tuple[str, str]], no: list[tuple[str, str]], cap: str = "200") -> int:
        sizing = size_basket([leg("y", yes), leg("n", no)], ONE, min_edge=0, max_shares=u(cap))
        return 0 if sizing is None else sizing.shares

    no_book = [("0.90", "100")]
    # The depth of the first level is all that is profitable: 0.10 + 0.90 = 1 past it.
    assert sized([("0.05", "30"), ("0.10", "100")], no_book) == u("30")
    # A YES leg of 10 shares at 0.05 is worth $0.50: below the $1 marketable minimum.
    assert sized([("0.05", "10")], no_book) == 0
    # 20 shares at 0.05 is exactly $1.
    assert sized([("0.05", "20")], no_book) == u("20")
    # With more depth, the $1 minimum is the smallest size, not the chosen one.
    assert sized([("0.05", "20")], no_book, cap="19.99") == 0
    # min_order_size (5 shares): 4.99 shares of depth is not enough, 5 is.
    assert sized([("0.45", "4.99")], [("0.50", "4.99")]) == 0
    assert sized([("0.45", "5")], [("0.50", "5")]) == u("5")
    # max_shares below the market's minimum size: nothing.
    assert sized([("0.45", "50")], [("0.50", "50")], cap="4.99") == 0


def test_size_basket_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="at least one leg"):
        size_basket([], ONE, min_edge=0, max_shares=ONE)
    with pytest.raises(ValueError, match=r"must be >= 0, got 1, -0.001 and 1"):
        size_basket([leg("y", [("0.5", "10")])], ONE, min_edge=-MILLI, max_shares=ONE)


def test_levels_above_one_minus_tick_are_never_walked() -> None:
    # NO side of a 3-outcome event (pays 2 per set): 1 + 0.40 + 0.40 = 1.80 would look like an
    # edge, but 1 is not a price the venue takes; 0.99 (1 - tick) is.
    def no_side(first: str) -> int:
        legs = [leg("a", [(first, "10")]), leg("b", [("0.40", "10")]), leg("c", [("0.40", "10")])]
        sizing = size_basket(legs, 2 * ONE, min_edge=0, max_shares=u("100"))
        return 0 if sizing is None else sizing.legs[0].limit_price

    assert no_side("1") == 0
    assert no_side("0.99") == u("0.99")


# --------------------------------------------------------------------------------------------
# ComplementArb behaviour


def profitable_books(now_stale: bool = False) -> list[BookView]:
    return [
        view(Y1, [("0.40", "10"), ("0.42", "50")], stale=now_stale),
        view(N1, [("0.50", "15"), ("0.60", "100")]),
    ]


def test_stale_or_missing_books_are_never_traded() -> None:
    strategy = complement_arb(ONE_MARKET)
    assert strategy.on_books(context(ONE_MARKET, profitable_books(now_stale=True)), [Y1]) == []
    stale_ctx = context(ONE_MARKET, profitable_books(), stale={N1})
    assert strategy.on_books(stale_ctx, [Y1, N1]) == []
    assert strategy.on_books(context(ONE_MARKET, profitable_books()[:1]), [Y1]) == []
    assert strategy.on_books(context(ONE_MARKET, profitable_books()), ["unknown"]) == []

    # Open, then the NO book turns stale: closed with the reason, and no basket.
    assert baskets(strategy.on_books(context(ONE_MARKET, profitable_books()), [Y1]))
    later = context(ONE_MARKET, profitable_books(), now=5.0, stale={N1})
    [closed] = strategy.on_stale(later, [N1], True)
    assert isinstance(closed, Decision)
    assert (closed.kind, closed.key) == ("opportunity.close", M1.condition_id)
    assert closed.detail["reason"] == "book stale or missing"


def test_cooldown_then_retry_by_timer_and_close() -> None:
    strategy = complement_arb(ONE_MARKET, cooldown_s=1.0)
    first = strategy.on_books(context(ONE_MARKET, profitable_books(), 10.0), [Y1])
    assert len(baskets(first)) == 1
    assert strategy.wakeup_at() is None

    # Updates during the cooldown send nothing and log nothing; a re-check is due when it ends.
    again = strategy.on_books(context(ONE_MARKET, profitable_books(), 10.4), [N1])
    assert again == []
    assert strategy.wakeup_at() == 11.0
    assert strategy.on_books(context(ONE_MARKET, profitable_books(), 10.6), [Y1]) == []

    retried = strategy.on_timer(context(ONE_MARKET, profitable_books(), 11.0))
    assert len(baskets(retried)) == 1
    [retry] = decisions(retried)
    assert retry.kind == "opportunity.retry"
    assert strategy.wakeup_at() is None

    # The edge is gone: one close, then silence.
    gone = [view(Y1, [("0.50", "100")]), view(N1, [("0.50", "100")])]
    [closed] = strategy.on_books(context(ONE_MARKET, gone, 11.5), [Y1])
    assert isinstance(closed, Decision)
    assert closed.kind == "opportunity.close"
    assert closed.detail["reason"] == "no size with enough edge after fees"
    assert strategy.on_books(context(ONE_MARKET, gone, 11.6), [Y1]) == []

    # It reopens inside the cooldown of the last send: logged at once, sent when it ends.
    reopened = strategy.on_books(context(ONE_MARKET, profitable_books(), 11.7), [Y1])
    [opened] = reopened
    assert isinstance(opened, Decision)
    assert opened.kind == "opportunity.open"
    assert opened.detail["sent"] == "no: cooldown until 12.000"
    assert strategy.wakeup_at() == 12.0
    assert len(baskets(strategy.on_timer(context(ONE_MARKET, profitable_books(), 12.0)))) == 1


def test_several_markets_at_once_are_all_sent_best_first() -> None:
    m2 = market(2)
    universe = Universe(markets=(M1, m2))
    y2, n2 = m2.token_ids
    books = [
        *profitable_books(),
        view(y2, [("0.30", "100")]),
        view(n2, [("0.60", "100")]),
    ]
    strategy = complement_arb(universe)
    sent = baskets(strategy.on_books(context(universe, books), [Y1, y2]))
    assert [b.key for b in sent] == [m2.condition_id, M1.condition_id]
    assert sent[0].edge == u("10")


def test_market_resolved_closes_and_stops_trading() -> None:
    strategy = complement_arb(ONE_MARKET, cooldown_s=0)
    ctx = context(ONE_MARKET, profitable_books())
    assert baskets(strategy.on_books(ctx, [Y1]))
    resolved = MarketResolved("1", M1.condition_id, (Y1, N1), Y1, "Yes", 0)
    [closed] = strategy.on_event(ctx, resolved)
    assert isinstance(closed, Decision)
    assert closed.detail["reason"] == "market resolved"
    assert strategy.on_books(ctx, [Y1]) == []


# --------------------------------------------------------------------------------------------
# NegRiskArb


def event(eid: str, first: int, count: int, *, tick: int = CENT, complete: bool = True) -> Event:
    markets = tuple(market(n, tick=tick, event_id=eid) for n in range(first, first + count))
    return Event(
        id=eid,
        slug=eid,
        title=f"Event {eid}",
        neg_risk=True,
        markets=markets,
        complete=complete,
        incomplete_reason=None if complete else 'augmented neg-risk event; "Other" outcome',
    )


def universe_of(*events: Event) -> Universe:
    return Universe(markets=tuple(m for e in events for m in e.markets), events=events)


def side_books(
    ev: Event, yes: Sequence[str], no: Sequence[str], depth: str = "100", tick: int = CENT
) -> list[BookView]:
    books = []
    for m, yes_ask, no_ask in zip(ev.markets, yes, no, strict=True):
        books.append(view(m.yes.token_id, [(yes_ask, depth)], tick=tick))
        books.append(view(m.no.token_id, [(no_ask, depth)], tick=tick))
    return books


E3 = event("e3", 1, 3)
E3_UNIVERSE = universe_of(E3)
YES_ARB = side_books(E3, ["0.30", "0.30", "0.35"], ["0.99", "0.99", "0.99"])


def test_debounce_gives_one_evaluation_per_burst_at_the_deadline() -> None:
    strategy = neg_risk_arb(E3_UNIVERSE, debounce_s=0.1)
    tokens = [m.yes.token_id for m in E3.markets] + [m.no.token_id for m in E3.markets]
    for i in range(10):
        now = i * 0.01
        assert strategy.on_books(context(E3_UNIVERSE, YES_ARB, now), [tokens[i % 6]]) == []
        assert strategy.wakeup_at() == 0.1  # the first update's deadline, not pushed back
    assert strategy.on_timer(context(E3_UNIVERSE, YES_ARB, 0.05)) == []
    assert strategy.evaluations == 0

    actions = strategy.on_timer(context(E3_UNIVERSE, YES_ARB, 0.1))
    assert strategy.evaluations == 1
    [basket] = baskets(actions)
    assert basket.key == "e3"
    assert [leg.token_id for leg in basket.legs] == [m.yes.token_id for m in E3.markets]
    assert [leg.price for leg in basket.legs] == [u("0.30"), u("0.30"), u("0.35")]
    assert {leg.size for leg in basket.legs} == {u("100")}
    assert basket.edge == u("5")  # 100 x (1 - 0.95)
    [opened] = decisions(actions, "opportunity.open")
    assert (opened.detail["side"], opened.detail["outcomes"]) == ("yes", "3")
    assert strategy.wakeup_at() is None

    # The next burst is a new evaluation (inside the cooldown: a re-check is scheduled, no send).
    assert strategy.on_books(context(E3_UNIVERSE, YES_ARB, 0.25), [tokens[0]]) == []
    due = strategy.wakeup_at()
    assert due is not None
    assert due == pytest.approx(0.35)
    assert strategy.on_timer(context(E3_UNIVERSE, YES_ARB, due)) == []
    assert strategy.evaluations == 2
    assert strategy.wakeup_at() == 1.1  # the cooldown's end
    assert len(baskets(strategy.on_timer(context(E3_UNIVERSE, YES_ARB, 1.1)))) == 1


def test_zero_debounce_is_due_at_once() -> None:
    strategy = neg_risk_arb(E3_UNIVERSE, debounce_s=0)
    assert strategy.on_books(context(E3_UNIVERSE, YES_ARB, 3.0), [E3.markets[0].yes.token_id]) == []
    assert strategy.wakeup_at() == 3.0
    assert len(baskets(strategy.on_timer(context(E3_UNIVERSE, YES_ARB, 3.0)))) == 1


def test_no_side_on_a_three_outcome_event() -> None:
    # YES asks sum to 1.20: no YES-side trade. NO asks sum to 0.60 + 0.62 + 0.70 = 1.92 < 2:
    # 50 NO of each cost 96 and pay (3 - 1) x 50 = 100.
    books = side_books(E3, ["0.40", "0.40", "0.40"], ["0.60", "0.62", "0.70"], depth="50")
    strategy = neg_risk_arb(E3_UNIVERSE, debounce_s=0)
    strategy.on_books(context(E3_UNIVERSE, books), [E3.markets[1].no.token_id])
    actions = strategy.on_timer(context(E3_UNIVERSE, books))
    [basket] = baskets(actions)
    assert basket.key == "e3"
    assert [(leg.token_id, leg.price, leg.size, leg.tag) for leg in basket.legs] == [
        (m.no.token_id, u(p), u("50"), "no")
        for m, p in zip(E3.markets, ["0.60", "0.62", "0.70"], strict=True)
    ]
    assert basket.edge == u("4")
    [opened] = decisions(actions, "opportunity.open")
    assert (opened.detail["side"], opened.detail["payout"], opened.detail["cost"]) == (
        "no",
        "100",
        "96",
    )

    without = neg_risk_arb(E3_UNIVERSE, debounce_s=0, trade_no_side=False)
    without.on_books(context(E3_UNIVERSE, books), [E3.markets[1].no.token_id])
    assert without.on_timer(context(E3_UNIVERSE, books)) == []


def test_incomplete_event_is_skipped_and_logged_once() -> None:
    bad = event("bad", 4, 3, complete=False)
    universe = universe_of(E3, bad)
    books = [*YES_ARB, *side_books(bad, ["0.1", "0.1", "0.1"], ["0.5", "0.5", "0.5"])]
    strategy = neg_risk_arb(universe, debounce_s=0)

    first = strategy.on_books(context(universe, books), [bad.markets[0].yes.token_id])
    [skipped] = first
    assert isinstance(skipped, Decision)
    assert (skipped.kind, skipped.key) == ("event.skipped", "bad")
    assert "Other" in skipped.detail["reason"]
    assert strategy.wakeup_at() is None  # its books never make it dirty
    assert strategy.on_books(context(universe, books), [bad.markets[1].yes.token_id]) == []
    assert strategy.on_timer(context(universe, books)) == []
    assert strategy.evaluations == 0

    # The complete event next to it still trades.
    strategy.on_books(context(universe, books), [E3.markets[0].yes.token_id])
    assert [b.key for b in baskets(strategy.on_timer(context(universe, books)))] == ["e3"]


def test_a_stale_member_book_blocks_the_event() -> None:
    strategy = neg_risk_arb(E3_UNIVERSE, debounce_s=0)
    stale = E3.markets[2].yes.token_id
    strategy.on_books(context(E3_UNIVERSE, YES_ARB), [stale])
    assert strategy.on_timer(context(E3_UNIVERSE, YES_ARB, stale={stale})) == []
    assert strategy.evaluations == 1


def test_a_resolved_member_closes_the_event_for_good() -> None:
    strategy = neg_risk_arb(E3_UNIVERSE, debounce_s=0, cooldown_s=0)
    first = E3.markets[0]
    strategy.on_books(context(E3_UNIVERSE, YES_ARB), [first.yes.token_id])
    assert baskets(strategy.on_timer(context(E3_UNIVERSE, YES_ARB)))
    resolved = MarketResolved("1", first.condition_id, first.token_ids, first.no.token_id, "No", 0)
    [closed] = strategy.on_event(context(E3_UNIVERSE, YES_ARB, 1.0), resolved)
    assert isinstance(closed, Decision)
    assert (closed.kind, closed.key, closed.detail["reason"]) == (
        "opportunity.close",
        "e3",
        "market resolved",
    )
    assert strategy.on_books(context(E3_UNIVERSE, YES_ARB, 2.0), [first.yes.token_id]) == []
    assert strategy.wakeup_at() is None


# --------------------------------------------------------------------------------------------
# Coordination


def basket_of(key: str, edge: int, *legs: tuple[str, Side, str]) -> Basket:
    return Basket(
        key=key,
        legs=tuple(Place(t, side, u("0.5"), u(size), OrderType.FOK) for t, side, size in legs),
        edge=edge,
    )


def test_inventory_reduction_counts_only_the_offset_part() -> None:
    m2 = market(2)
    universe = Universe(markets=(M1, m2))
    y2, n2 = m2.token_ids
    inventory = Positions({(MM, Y1): u("30"), (MM, n2): u("8"), ("other", Y1): u("500")})

    buy_no = basket_of("a", 0, (N1, Side.BUY, "50"))
    assert inventory_reduction(buy_no, inventory, MM, universe) == u("30")  # capped at the long
    buy_yes = basket_of("b", 0, (Y1, Side.BUY, "10"))
    assert inventory_reduction(buy_yes, inventory, MM, universe) == 0  # adds to the long
    pair = basket_of("c", 0, (Y1, Side.BUY, "10"), (N1, Side.BUY, "10"))
    assert inventory_reduction(pair, inventory, MM, universe) == 0  # a set is neutral
    mixed = basket_of("d", 0, (N1, Side.BUY, "5"), (y2, Side.BUY, "5"), ("x", Side.BUY, "9"))
    assert inventory_reduction(mixed, inventory, MM, universe) == u("10")
    sell_yes = basket_of("e", 0, (Y1, Side.SELL, "4"))
    assert inventory_reduction(sell_yes, inventory, MM, universe) == u("4")


def test_rank_baskets_bonus_changes_the_order_and_select_skips_overlaps() -> None:
    universe = Universe(markets=(M1, market(2)))
    inventory = Positions({(MM, Y1): u("10")})
    richer = basket_of("k1", 100, ("n2", Side.BUY, "10"))
    offsetting = basket_of("k2", 90, (N1, Side.BUY, "10"))
    # 10 shares x 0.002 = 0.02 of bonus beats 0.0001 of edge.
    assert rank_baskets([richer, offsetting], inventory, MM, u("0.002"), universe=universe) == [
        offsetting,
        richer,
    ]
    assert rank_baskets([richer, offsetting], inventory, MM, 0, universe=universe) == [
        richer,
        offsetting,
    ]
    assert rank_baskets([richer, offsetting], Positions(), MM, ONE, universe=universe) == [
        richer,
        offsetting,
    ]

    same_key = basket_of("k1", 50, (Y1, Side.BUY, "1"))
    same_token = basket_of("k3", 40, ("n2", Side.BUY, "1"))
    apart = basket_of("k4", 30, ("y2", Side.BUY, "1"))
    assert select_baskets([richer, same_key, same_token, apart]) == [richer, apart]


def test_inventory_bonus_picks_the_no_side_of_a_neg_risk_event() -> None:
    # YES side: 0.300 + 0.300 + 0.350 = 0.950 -> 5.000 on 100 sets.
    # NO side: 0.640 + 0.641 + 0.670 = 1.951 < 2 -> 4.900 on 100 sets.
    # The market maker is long 100 YES of the first outcome; the NO side buys 100 NO there:
    # 100 x 0.002 = 0.2 of bonus, 5.1 > 5.0.
    ev = event("e", 1, 3, tick=MILLI)
    universe = universe_of(ev)
    books = side_books(
        ev, ["0.300", "0.300", "0.350"], ["0.640", "0.641", "0.670"], depth="100", tick=MILLI
    )
    long_yes = Positions({(MM, ev.markets[0].yes.token_id): u("100")})

    def chosen(inventory: Inventory) -> tuple[Basket, list[Decision]]:
        strategy = neg_risk_arb(universe, debounce_s=0, max_shares="100")
        strategy.on_books(context(universe, books), [ev.markets[0].yes.token_id])
        actions = strategy.on_timer(context(universe, books, inventory=inventory))
        [basket] = baskets(actions)
        return basket, decisions(actions, "opportunity.open")

    plain, opened = chosen(Positions())
    assert (plain.edge, {leg.tag for leg in plain.legs}) == (u("5"), {"yes"})
    assert {d.detail["side"]: d.detail["sent"] for d in opened} == {
        "yes": "yes",
        "no": "no: cooldown until 1.000",
    }

    coordinated, _ = chosen(long_yes)
    assert (coordinated.edge, {leg.tag for leg in coordinated.legs}) == (u("4.9"), {"no"})


def test_config_order_type_reaches_the_legs() -> None:
    config = ComplementArbConfig(min_edge=Decimal(0), order_type=ArbOrderType.FAK)
    strategy = ComplementArb(ONE_MARKET, config, CoordinationConfig())
    [basket] = baskets(strategy.on_books(context(ONE_MARKET, profitable_books()), [Y1]))
    assert {leg.order_type for leg in basket.legs} == {OrderType.FAK}

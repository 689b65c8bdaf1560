"""The market maker's pure core: quote arithmetic, inventory skew and limits, churn, pulls."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.config import MarketMakingConfig
from bot.core.book import BookView
from bot.core.money import ONE, Side, parse_units
from bot.core.strategies.market_making import (
    MarketMaker,
    QuoteParams,
    plan_quotes,
    unusable_reason,
)
from bot.core.trading import (
    Action,
    Cancel,
    CancelAll,
    Context,
    Decision,
    Inventory,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Place,
)
from bot.core.universe import Market, Outcome, Universe
from bot.core.wire.market_events import Level, MarketResolved

if TYPE_CHECKING:
    from collections.abc import Sequence

NAME = "market_making"
CENT = 10_000
MILLI = 1_000


def u(text: str) -> int:
    return parse_units(text)


def market(n: int, *, neg_risk: bool = False, tick: int = CENT, min_size: str = "5") -> Market:
    return Market(
        condition_id=f"0xc{n}",
        question=f"Will thing {n} happen?",
        slug=f"m{n}",
        outcomes=(Outcome("Yes", f"y{n}"), Outcome("No", f"n{n}")),
        tick_size=tick,
        min_order_size=u(min_size),
        neg_risk=neg_risk,
        neg_risk_market_id="0xnr00" if neg_risk else "",
        event_id=f"e{n}",
        end_date=datetime(2026, 7, 3, 12, tzinfo=UTC),
        liquidity=Decimal(1000),
        volume=Decimal(1000),
        fee_rate=0,
        accepting_orders=True,
    )


M1 = market(1)
YES, NO = M1.token_ids
UNIVERSE = Universe(markets=(M1,))


def view(
    bid: str | None,
    ask: str | None,
    *,
    token: str = YES,
    tick: int = CENT,
    stale: bool = False,
) -> BookView:
    bids = (Level(u(bid), 100 * ONE),) if bid is not None else ()
    asks = (Level(u(ask), 100 * ONE),) if ask is not None else ()
    return BookView(
        asset_id=token,
        best_bid=bids[0] if bids else None,
        best_ask=asks[0] if asks else None,
        bids=bids,
        asks=asks,
        tick_size=tick,
        last_update_ms=None,
        stale=stale,
    )


class Positions(Inventory):
    def __init__(self, held: dict[str, int] | None = None) -> None:
        self.held = held or {}

    def position(self, token_id: str) -> int:
        return self.held.get(token_id, 0)

    def position_of(self, strategy: str, token_id: str) -> int:
        assert strategy == NAME
        return self.held.get(token_id, 0)


def order(
    oid: str, tag: str, price: str, size: str = "20", *, filled: str = "0", token: str = YES
) -> Order:
    return Order(
        id=oid,
        strategy=NAME,
        token_id=token,
        side=Side.BUY if tag == "bid" else Side.SELL,
        price=u(price),
        size=u(size),
        post_only=True,
        tag=tag,
        filled=u(filled),
    )


def ctx(
    *views: BookView,
    held: dict[str, int] | None = None,
    orders: Sequence[Order] = (),
    stale: Sequence[str] = (),
    now: float = 100.0,
    universe: Universe = UNIVERSE,
) -> Context:
    return Context(
        now=now,
        books={v.asset_id: v for v in views},
        universe=universe,
        inventory=Positions(held),
        orders={o.id: o for o in orders},
        stale=set(stale),
    )


def config(**changes: Any) -> MarketMakingConfig:
    base: dict[str, Any] = {
        "quote_size": Decimal(20),
        "half_spread_ticks": 2,
        "inventory_limit": Decimal(100),
        "skew_ticks": 3,
        "requote_ticks": 1,
    }
    return MarketMakingConfig(**(base | changes))


def params(**changes: Any) -> QuoteParams:
    return QuoteParams.from_config(config(**changes))


def maker(**changes: Any) -> MarketMaker:
    return MarketMaker(UNIVERSE, config(**changes))


def raw_places(actions: Sequence[Action]) -> dict[str, Place]:
    found = [a for a in actions if isinstance(a, Place)]
    by_tag = {p.tag: p for p in found}
    assert len(by_tag) == len(found), f"two places with one tag: {found}"
    return by_tag


def places(actions: Sequence[Action]) -> dict[str, Place]:
    """The quotes in YES terms: an ask sent as a NO bid at ``1 - p`` reads as a YES ask at ``p``."""
    by_tag = raw_places(actions)
    ask = by_tag.get("ask")
    if ask is not None and ask.token_id == NO:
        assert ask.side is Side.BUY
        by_tag["ask"] = attrs.evolve(ask, token_id=YES, side=Side.SELL, price=ONE - ask.price)
    return by_tag


def prices(actions: Sequence[Action]) -> tuple[int | None, int | None]:
    quoted = places(actions)
    bid, ask = quoted.get("bid"), quoted.get("ask")
    return (bid.price if bid else None, ask.price if ask else None)


def cancels(actions: Sequence[Action]) -> list[str]:
    return [a.order_id for a in actions if isinstance(a, Cancel)]


def decisions(actions: Sequence[Action], kind: str) -> list[Decision]:
    return [a for a in actions if isinstance(a, Decision) and a.kind == kind]


# --------------------------------------------------------------------------------------------
# Quote arithmetic


def test_quotes_around_the_mid_on_a_cent_tick() -> None:
    actions = maker().on_books(ctx(view("0.50", "0.54")), [YES])
    quoted = places(actions)
    assert set(quoted) == {"bid", "ask"}
    bid, ask = quoted["bid"], quoted["ask"]
    # Fair 0.52, two ticks each side.
    assert (bid.side, bid.price, bid.size) == (Side.BUY, u("0.50"), u("20"))
    assert (ask.side, ask.price, ask.size) == (Side.SELL, u("0.54"), u("20"))
    for quote in raw_places(actions).values():
        assert quote.post_only
        assert quote.order_type is OrderType.GTC
    assert [a for a in actions if not isinstance(a, Place)] == []


def test_a_half_tick_mid_rounds_each_quote_away_from_fair() -> None:
    # Fair 0.515: 0.495 -> bid 0.49 (down), 0.535 -> ask 0.54 (up): never narrower than asked.
    assert prices(maker().on_books(ctx(view("0.50", "0.53")), [YES])) == (u("0.49"), u("0.54"))


def test_quotes_on_a_thousandth_tick() -> None:
    book = view("0.101", "0.108", tick=MILLI)
    # Fair 0.1045: 0.1025 -> 0.102, 0.1065 -> 0.107.
    assert prices(maker().on_books(ctx(book), [YES])) == (u("0.102"), u("0.107"))
    plan = plan_quotes(book, 0, params(), M1.min_order_size)
    assert (plan.fair2, plan.tick, plan.skew) == (u("0.209"), MILLI, 0)


def test_quotes_are_clamped_inside_the_price_range() -> None:
    # Fair 0.015: the bid would be -0.005 and is clamped up to the lowest tick.
    assert prices(maker().on_books(ctx(view("0.01", "0.02")), [YES])) == (u("0.01"), u("0.04"))
    assert prices(maker().on_books(ctx(view("0.98", "0.99")), [YES])) == (u("0.96"), u("0.99"))


@pytest.mark.parametrize(
    ("held", "bid", "ask"),
    [
        ({}, "0.48", "0.52"),
        # Long 50 (half the limit): skew 1.5 ticks, both quotes lower.
        ({YES: u("50")}, "0.46", "0.51"),
        # Long at the limit: skew 3 ticks; buying more would exceed the limit, so no bid.
        ({YES: u("100")}, None, "0.49"),
        # Short at the limit: skew -3 ticks, both higher; no ask.
        ({YES: -u("100")}, "0.51", None),
        # Holding NO is short YES.
        ({NO: u("100")}, "0.51", None),
        ({YES: u("130"), NO: u("30")}, None, "0.49"),
        # Beyond the limit the skew stays at its maximum.
        ({YES: u("400")}, None, "0.49"),
    ],
)
def test_inventory_skew_direction_and_size(
    held: dict[str, int], bid: str | None, ask: str | None
) -> None:
    actions = maker().on_books(ctx(view("0.40", "0.60"), held=held), [YES])
    assert prices(actions) == (u(bid) if bid else None, u(ask) if ask else None)
    for quote in places(actions).values():
        assert quote.size == u("20")


def test_skew_rounds_half_away_from_zero() -> None:
    p = params(skew_ticks=1)
    book = view("0.40", "0.60")
    assert plan_quotes(book, u("50"), p, u("5")).skew == 5_000
    assert plan_quotes(book, -u("50"), p, u("5")).skew == -5_000
    assert plan_quotes(book, u("49.999999"), p, u("5")).skew == 5_000
    assert plan_quotes(book, u("49.99"), p, u("5")).skew == 4_999


@pytest.mark.parametrize(
    ("yes", "bid_size", "ask_size"),
    [
        ("90", "10", "20"),  # 10 shares of room left: the bid shrinks to it
        ("-90", "20", "10"),
        ("97", None, "20"),  # 3 shares of room is below the 5-share minimum: no bid
        ("94.999", "5", "20"),  # room 5.001 rounds down to 5.00, the minimum
        ("120", None, "20"),  # over the limit (other fills): only the reducing side
    ],
)
def test_the_side_that_would_exceed_the_limit_gets_only_the_room_left(
    yes: str, bid_size: str | None, ask_size: str | None
) -> None:
    position = u(yes.lstrip("-")) * (-1 if yes.startswith("-") else 1)
    plan = plan_quotes(view("0.40", "0.60"), position, params(), u("5"))
    assert (plan.bid.size if plan.bid else None) == (u(bid_size) if bid_size else None)
    assert (plan.ask.size if plan.ask else None) == (u(ask_size) if ask_size else None)
    if plan.bid is None:
        assert "inventory limit" in plan.no_bid


def test_quotes_being_cancelled_count_against_the_room_they_may_still_fill() -> None:
    # A fill can land on a quote whose cancel is on its way: its replacement must not assume
    # it will not (seen: inventory 20.1 against a limit of 20 before this).
    limit = params().inventory_limit
    free = plan_quotes(view("0.40", "0.60"), limit - u("12"), params(), u("5"))
    assert free.bid is not None
    held = plan_quotes(view("0.40", "0.60"), limit - u("12"), params(), u("5"), pending_up=u("6"))
    assert held.bid is not None
    assert held.bid.size == u("6")  # 12 of room, 6 of it still out in the cancelled quote
    assert held.ask == free.ask  # the other side is unaffected
    none = plan_quotes(view("0.40", "0.60"), -limit + u("4"), params(), u("5"), pending_down=u("1"))
    assert none.ask is None
    assert "inventory limit" in none.no_ask


def test_size_is_raised_to_the_market_minimum_and_kept_to_cents() -> None:
    assert plan_quotes(view("0.40", "0.60"), 0, params(quote_size=Decimal(2)), u("5")).bid == (
        plan_quotes(view("0.40", "0.60"), 0, params(quote_size=Decimal(5)), u("5")).bid
    )
    small = plan_quotes(view("0.40", "0.60"), 0, params(quote_size=Decimal(2)), u("5"))
    assert small.bid is not None
    assert small.bid.size == u("5")
    odd = plan_quotes(view("0.40", "0.60"), 0, params(quote_size=Decimal("20.005")), u("5"))
    assert odd.ask is not None
    assert odd.ask.size == u("20")
    # The strategy uses the market's own minimum.
    big_min = Universe(markets=(market(1, min_size="25"),))
    strategy = MarketMaker(big_min, config())
    quoted = places(strategy.on_books(ctx(view("0.40", "0.60"), universe=big_min), [YES]))
    assert {q.size for q in quoted.values()} == {u("25")}


def test_post_only_quotes_never_cross_the_opposite_best() -> None:
    # A heavy skew pushes the ask of a long position down through the best bid.
    long = plan_quotes(view("0.50", "0.51"), u("100"), params(skew_ticks=10), u("5"))
    assert long.bid is None
    assert long.ask is not None
    assert long.ask.price == u("0.51")
    short = plan_quotes(view("0.50", "0.51"), -u("100"), params(skew_ticks=10), u("5"))
    assert short.ask is None
    assert short.bid is not None
    assert short.bid.price == u("0.50")
    # A best ask off the current grid (left from a finer tick): the bid stays strictly below it.
    off = plan_quotes(view("0.49", "0.505"), -u("100"), params(skew_ticks=10), u("5"))
    assert off.bid is not None
    assert off.bid.price == u("0.50")
    # No room at all below a best ask at the lowest tick.
    edge = plan_quotes(view("0.005", "0.01", tick=CENT), 0, params(), u("5"))
    assert edge.bid is None
    assert edge.no_bid == "no room below the best ask"


@settings(max_examples=300, deadline=None)
@given(
    data=st.data(),
    tick=st.sampled_from([100_000, CENT, 5_000, 2_500, MILLI, 100]),
    position=st.integers(-150 * ONE, 150 * ONE),
    half_spread=st.integers(1, 5),
    skew_ticks=st.integers(0, 20),
    off_grid=st.booleans(),
)
def test_plans_are_always_valid_post_only_quotes(
    data: st.DataObject,
    tick: int,
    position: int,
    half_spread: int,
    skew_ticks: int,
    off_grid: bool,
) -> None:
    steps = ONE // tick
    bid_index = data.draw(st.integers(1, steps - 2), label="bid_index")
    ask_index = data.draw(st.integers(bid_index + 1, steps - 1), label="ask_index")
    best_bid = bid_index * tick
    best_ask = ask_index * tick
    if off_grid and tick > 100:
        # Levels left from a finer tick: half a tick inside the spread.
        best_ask -= tick // 2 if ask_index - bid_index > 1 else 0
    book = BookView(YES, Level(best_bid, ONE), Level(best_ask, ONE), (), (), tick, None, False)
    p = params(half_spread_ticks=half_spread, skew_ticks=skew_ticks)
    plan = plan_quotes(book, position, p, u("5"))
    for quote in (plan.bid, plan.ask):
        if quote is None:
            continue
        assert quote.price % tick == 0
        assert tick <= quote.price <= ONE - tick
        assert quote.size >= u("5")
        assert quote.size % CENT == 0
        signed = quote.size if quote.side is Side.BUY else -quote.size
        assert abs(position + signed) <= p.inventory_limit or abs(position + signed) < abs(position)
    if plan.bid is not None:
        assert plan.bid.price < best_ask
        assert 2 * plan.bid.price <= plan.fair2 - 2 * plan.skew or plan.bid.price == tick
    if plan.ask is not None:
        assert plan.ask.price > best_bid
    if plan.bid is not None and plan.ask is not None:
        assert plan.bid.price < plan.ask.price


def test_unusable_books_are_named() -> None:
    assert unusable_reason(None) == "no book"
    assert unusable_reason(view("0.4", "0.6", stale=True)) == "stale book"
    assert unusable_reason(view("0.4", None)) == "one-sided book"
    assert unusable_reason(view("0.6", "0.6")) == "crossed book"
    assert unusable_reason(view("0.4", "0.6")) is None
    with pytest.raises(ValueError, match="cannot quote y1: one-sided book"):
        plan_quotes(view(None, "0.6"), 0, params(), u("5"))


def test_a_zero_inventory_limit_is_refused() -> None:
    with pytest.raises(ValueError, match=r"market_making\.inventory_limit must be > 0"):
        maker(inventory_limit=Decimal(0))


# --------------------------------------------------------------------------------------------
# Markets


def test_markets_default_to_the_first_binary_ones() -> None:
    markets = (market(1, neg_risk=True), market(2), market(3), market(4))
    strategy = MarketMaker(Universe(markets=markets), config(max_markets=2))
    assert [m.condition_id for m in strategy.markets] == ["0xc2", "0xc3"]


def test_configured_markets_win_and_missing_ones_are_reported_once() -> None:
    universe = Universe(markets=(market(1), market(2), market(3, neg_risk=True)))
    strategy = MarketMaker(universe, config(markets=("0xc3", "0xnope", "0xc1")))
    assert [m.condition_id for m in strategy.markets] == ["0xc3", "0xc1"]
    first = strategy.on_books(ctx(universe=universe), [])
    assert [(d.kind, d.key) for d in decisions(first, "quotes.market_missing")] == [
        ("quotes.market_missing", "0xnope")
    ]
    assert strategy.on_books(ctx(universe=universe), []) == []


def test_only_the_yes_token_is_quoted_even_when_the_no_book_moves() -> None:
    no_view = view("0.46", "0.50", token=NO)
    actions = maker().on_books(ctx(view("0.50", "0.54"), no_view), [NO])
    assert {p.token_id for p in places(actions).values()} == {YES}
    assert len(raw_places(actions)) == 2
    assert prices(actions) == (u("0.50"), u("0.54"))
    # A token of no quoted market is ignored.
    assert maker().on_books(ctx(view("0.50", "0.54", token="other")), ["other"]) == []


# --------------------------------------------------------------------------------------------
# Churn


def test_resting_quotes_within_tolerance_are_left_alone() -> None:
    resting = [order("b1", "bid", "0.49"), order("a1", "ask", "0.54")]  # bid one tick off
    assert maker().on_books(ctx(view("0.50", "0.54"), orders=resting), [YES]) == []


def test_resting_quotes_beyond_tolerance_are_replaced() -> None:
    resting = [order("b1", "bid", "0.48"), order("a1", "ask", "0.54")]  # bid two ticks off
    actions = maker().on_books(ctx(view("0.50", "0.54"), orders=resting), [YES])
    assert cancels(actions) == ["b1"]
    assert prices(actions) == (u("0.50"), None)
    # A wider tolerance keeps it.
    assert maker(requote_ticks=2).on_books(ctx(view("0.50", "0.54"), orders=resting), [YES]) == []
    # No tolerance: only the exact price stays.
    exact = maker(requote_ticks=0)
    assert cancels(exact.on_books(ctx(view("0.50", "0.54"), orders=resting), [YES])) == ["b1"]


def test_a_resting_quote_of_another_size_is_replaced() -> None:
    resting = [order("b1", "bid", "0.50", "15"), order("a1", "ask", "0.54", filled="5")]
    actions = maker().on_books(ctx(view("0.50", "0.54"), orders=resting), [YES])
    assert sorted(cancels(actions)) == ["a1", "b1"]
    assert {p.size for p in places(actions).values()} == {u("20")}


def test_a_side_no_longer_wanted_is_cancelled_and_duplicates_go() -> None:
    resting = [
        order("b1", "bid", "0.50"),
        order("a1", "ask", "0.54"),
        order("a2", "ask", "0.54"),
        order("x1", "other", "0.30"),  # not a quote of ours: left alone
    ]
    held = {YES: u("100")}  # at the limit: no bid; the ask moves to 0.51
    actions = maker().on_books(ctx(view("0.50", "0.54"), held=held, orders=resting), [YES])
    assert sorted(cancels(actions)) == ["a1", "a2", "b1"]
    assert prices(actions) == (None, u("0.51"))
    bid_cancel = next(a for a in actions if isinstance(a, Cancel) and a.order_id == "b1")
    assert "inventory limit" in bid_cancel.note


def test_kept_quotes_never_cross_each_other() -> None:
    # Wanted 0.49 / 0.51 around 0.50; a bid at 0.50 and an ask at 0.50 are each within one
    # tick of it, but resting together they would be a bid at our own ask.
    book = view("0.45", "0.55")
    strategy = maker(half_spread_ticks=1, requote_ticks=1)
    resting = [order("b1", "bid", "0.50"), order("a1", "ask", "0.51")]
    assert strategy.on_books(ctx(book, orders=resting), [YES]) == []
    crossing = [order("b1", "bid", "0.50"), order("a1", "ask", "0.50")]
    actions = maker(half_spread_ticks=1, requote_ticks=1).on_books(
        ctx(book, orders=crossing), [YES]
    )
    assert cancels(actions) == ["b1"]
    assert prices(actions) == (u("0.49"), None)


def test_an_ask_resting_as_a_no_bid_is_compared_in_yes_terms() -> None:
    # Our YES ask at 0.51 rests as a NO bid at 0.49: a bid at 0.49 is below it, not at it.
    book = view("0.45", "0.55")
    no_bid = attrs.evolve(order("a1", "ask", "0.49", token=NO), side=Side.BUY)
    resting = [order("b1", "bid", "0.49"), no_bid]
    strategy = maker(half_spread_ticks=1, requote_ticks=0)
    assert strategy.on_books(ctx(book, orders=resting), [YES]) == []


def test_a_quote_in_flight_is_not_placed_twice() -> None:
    strategy = maker()
    assert len(places(strategy.on_books(ctx(view("0.50", "0.54"), now=100.0), [YES]))) == 2
    # The engine has not taken the orders yet: ctx.orders is still empty.
    assert strategy.on_books(ctx(view("0.50", "0.54"), now=100.5), [YES]) == []
    # They land; the next update keeps them.
    landed = [order("b1", "bid", "0.50"), order("a1", "ask", "0.54")]
    assert strategy.on_books(ctx(view("0.50", "0.54"), orders=landed, now=101.0), [YES]) == []


def test_a_quote_that_never_lands_is_placed_again_after_the_timeout() -> None:
    strategy = maker()
    strategy.on_books(ctx(view("0.50", "0.54"), now=100.0), [YES])
    assert strategy.on_books(ctx(view("0.50", "0.54"), now=101.9), [YES]) == []
    again = strategy.on_books(ctx(view("0.50", "0.54"), now=102.0), [YES])
    assert prices(again) == (u("0.50"), u("0.54"))


def test_a_rejected_quote_is_placed_again_soon_but_not_at_once() -> None:
    strategy = maker()
    strategy.on_books(ctx(view("0.50", "0.54"), now=100.0), [YES])
    rejected = OrderUpdate(
        "o9", NAME, YES, Side.BUY, u("0.50"), u("20"), 0, OrderStatus.REJECTED, "crosses book"
    )
    assert strategy.on_event(ctx(now=100.1), rejected) == []
    # Not at once: a standing refusal (a risk limit) must not become a storm of orders.
    assert strategy.on_books(ctx(view("0.50", "0.54"), now=100.2), [YES]) == []
    assert prices(strategy.on_books(ctx(view("0.50", "0.54"), now=100.6), [YES])) == (
        u("0.50"),
        None,
    )


def test_a_rejected_no_bid_is_matched_to_the_ask_it_stands_for() -> None:
    strategy = maker()
    strategy.on_books(ctx(view("0.50", "0.54"), now=100.0), [YES])
    rejected = OrderUpdate(
        "o9", NAME, NO, Side.BUY, u("0.46"), u("20"), 0, OrderStatus.REJECTED, "order rate"
    )
    strategy.on_event(ctx(now=100.1), rejected)
    assert prices(strategy.on_books(ctx(view("0.50", "0.54"), now=100.6), [YES])) == (
        None,
        u("0.54"),
    )


def test_a_cancel_in_flight_is_not_sent_again_nor_taken_for_a_quote() -> None:
    strategy = maker()
    resting = [order("b1", "bid", "0.46"), order("a1", "ask", "0.54")]
    first = strategy.on_books(ctx(view("0.50", "0.54"), orders=resting, now=100.0), [YES])
    assert cancels(first) == ["b1"]
    # b1 still shows (its cancel is queued) and the new bid has not landed yet.
    assert strategy.on_books(ctx(view("0.50", "0.54"), orders=resting, now=100.1), [YES]) == []


def test_a_replacement_near_the_limit_waits_until_the_cancel_is_final() -> None:
    # 80 held, limit 100: the resting bid (20 to buy) may still fill while its cancel is on its
    # way, so a second bid of 20 now could take the position to 120.
    strategy = maker()
    held = {YES: u("80")}
    resting = [order("b1", "bid", "0.44"), order("a1", "ask", "0.52")]  # wanted 0.47 / 0.52
    book = view("0.50", "0.54")
    first = strategy.on_books(ctx(book, held=held, orders=resting, now=100.0), [YES])
    assert cancels(first) == ["b1"]
    assert "bid" not in places(first)
    # Still showing while the cancel travels: nothing more.
    assert strategy.on_books(ctx(book, held=held, orders=resting, now=100.1), [YES]) == []
    # It filled 5 before the cancel took: the final update requotes at once, for the room left.
    held = {YES: u("85")}
    gone = OrderUpdate(
        "b1", NAME, YES, Side.BUY, u("0.44"), u("20"), u("5"), OrderStatus.CANCELED, ""
    )
    after = strategy.on_event(ctx(book, held=held, orders=resting[1:], now=100.2), gone)
    bid = places(after)["bid"]
    assert bid.size == u("15")
    assert u("85") + bid.size <= u("100")


def test_a_replacement_far_from_the_limit_goes_out_with_the_cancel() -> None:
    strategy = maker()
    resting = [order("b1", "bid", "0.46"), order("a1", "ask", "0.54")]
    actions = strategy.on_books(
        ctx(view("0.50", "0.54"), held={YES: u("40")}, orders=resting), [YES]
    )
    # 40 held + 20 that b1 may still buy + 20 for the new bid stays within 100.
    assert cancels(actions) == ["b1"]
    assert places(actions)["bid"].size == u("20")


def test_a_filled_quote_is_requoted_with_the_new_position_at_once() -> None:
    strategy = maker(inventory_limit=Decimal(40))
    book = view("0.50", "0.54")
    strategy.on_books(ctx(book, now=100.0), [YES])
    landed = [order("b1", "bid", "0.50"), order("a1", "ask", "0.54")]
    assert strategy.on_books(ctx(book, orders=landed, now=100.1), [YES]) == []
    filled = OrderUpdate(
        "b1", NAME, YES, Side.BUY, u("0.50"), u("20"), u("20"), OrderStatus.MATCHED, ""
    )
    asks = [order("a1", "ask", "0.54")]
    actions = strategy.on_event(ctx(book, held={YES: u("20")}, orders=asks, now=100.5), filled)
    bid = places(actions)["bid"]
    assert bid.price < u("0.50")  # skewed down: long 20 of 40
    assert bid.size == u("20")


# --------------------------------------------------------------------------------------------
# Pulling and resuming


def quoting_maker() -> tuple[MarketMaker, list[Order]]:
    strategy = maker()
    placed = places(strategy.on_books(ctx(view("0.50", "0.54")), [YES]))
    resting = [order("b1", "bid", "0.50"), order("a1", "ask", "0.54")]
    assert set(placed) == {"bid", "ask"}
    return strategy, resting


def test_quotes_are_pulled_when_a_token_goes_stale_and_resume_when_fresh() -> None:
    strategy, resting = quoting_maker()
    stale_view = view("0.50", "0.54", stale=True)
    actions = strategy.on_stale(
        ctx(stale_view, orders=resting, stale=[YES], now=101.0), [YES], True
    )
    assert actions[:2] == [
        CancelAll(YES, note="quotes pulled: stale book (YES)"),
        CancelAll(NO, note="quotes pulled: stale book (YES)"),
    ]
    (pulled,) = decisions(actions, "quotes.pulled")
    assert (pulled.strategy, pulled.key, pulled.detail["reason"]) == (
        NAME,
        M1.condition_id,
        "stale book (YES)",
    )
    assert len(actions) == 3
    # While stale: no quotes and no repeated pull, even with the cancelled orders still showing.
    assert strategy.on_books(ctx(stale_view, orders=resting, stale=[YES], now=101.5), [YES]) == []
    assert strategy.on_stale(ctx(stale_view, stale=[YES], now=101.6), [NO], True) == []
    # Fresh again: nothing until the next book update, which quotes afresh.
    assert strategy.on_stale(ctx(view("0.50", "0.54"), now=102.0), [YES], False) == []
    resumed = strategy.on_books(ctx(view("0.51", "0.55"), orders=resting, now=102.1), [YES])
    assert prices(resumed) == (u("0.51"), u("0.55"))
    assert cancels(resumed) == []  # b1/a1 were cancelled by the CancelAll
    assert len(decisions(resumed, "quotes.resumed")) == 1


def test_a_stale_no_token_pulls_the_market_too() -> None:
    strategy, resting = quoting_maker()
    actions = strategy.on_stale(ctx(view("0.50", "0.54"), orders=resting, stale=[NO]), [NO], True)
    assert CancelAll(YES, note="quotes pulled: stale book (NO)") in actions
    # Until NO is fresh, YES updates do not quote.
    assert strategy.on_books(ctx(view("0.50", "0.54"), stale=[NO]), [YES]) == []


@pytest.mark.parametrize(
    ("book", "reason"),
    [
        (view("0.50", "0.54", stale=True), "stale book (YES)"),
        (view("0.50", None), "one-sided book (YES)"),
        (view("0.55", "0.54"), "crossed book (YES)"),
    ],
)
def test_an_unusable_view_pulls_the_quotes(book: BookView, reason: str) -> None:
    strategy, resting = quoting_maker()
    actions = strategy.on_books(ctx(book, orders=resting, now=101.0), [YES])
    assert actions[0] == CancelAll(YES, note=f"quotes pulled: {reason}")
    assert [d.detail["reason"] for d in decisions(actions, "quotes.pulled")] == [reason]
    assert strategy.on_books(ctx(book, now=101.5), [YES]) == []


def test_nothing_is_pulled_before_anything_was_quoted() -> None:
    strategy = maker()
    assert strategy.on_stale(ctx(stale=[YES]), [YES], True) == []
    assert strategy.on_books(ctx(view("0.50", "0.54", stale=True)), [YES]) == []
    # Orders left from an earlier run of the strategy are pulled though.
    restarted = maker()
    leftover = [order("b0", "bid", "0.30")]
    actions = restarted.on_stale(ctx(orders=leftover, stale=[YES]), [YES], True)
    assert isinstance(actions[0], CancelAll)


def test_a_resolved_market_is_cancelled_and_never_quoted_again() -> None:
    strategy, resting = quoting_maker()
    resolved = MarketResolved("1", M1.condition_id, M1.token_ids, YES, "Yes", 0)
    actions = strategy.on_event(ctx(view("0.50", "0.54"), orders=resting), resolved)
    assert actions[0] == CancelAll(YES, note="quotes pulled: market resolved")
    assert decisions(actions, "quotes.pulled")[0].detail["reason"] == "market resolved"
    assert strategy.on_event(ctx(), resolved) == []
    assert strategy.on_books(ctx(view("0.50", "0.54")), [YES]) == []


# --------------------------------------------------------------------------------------------
# Tick size changes


def test_a_tick_size_change_re_rounds_the_quotes() -> None:
    strategy = maker()
    fine = view("0.101", "0.108", tick=MILLI)
    assert prices(strategy.on_books(ctx(fine, now=100.0), [YES])) == (u("0.102"), u("0.107"))
    resting = [order("b1", "bid", "0.102"), order("a1", "ask", "0.107")]
    # The tick goes to 0.01 with the same levels: fair 0.1045 -> 0.0845 -> 0.08, 0.1245 -> 0.13.
    coarse = view("0.101", "0.108", tick=CENT)
    actions = strategy.on_books(ctx(coarse, orders=resting, now=100.1), [YES])
    assert sorted(cancels(actions)) == ["a1", "b1"]
    assert prices(actions) == (u("0.08"), u("0.13"))
    # Back to 0.001: an order at the wanted price stays, one three (new) ticks off moves.
    resting = [order("b2", "bid", "0.102"), order("a2", "ask", "0.11")]
    actions = strategy.on_books(ctx(fine, orders=resting, now=100.2), [YES])
    assert cancels(actions) == ["a2"]
    assert prices(actions) == (None, u("0.107"))


def test_an_order_off_the_new_tick_is_replaced_even_within_tolerance() -> None:
    # Wanted bid 0.10 on a 0.01 tick; a resting 0.101 (left from the 0.001 tick) is within one
    # tick but would be refused by the venue, so it is replaced.
    resting = [order("b1", "bid", "0.101"), order("a1", "ask", "0.14")]
    actions = maker().on_books(ctx(view("0.11", "0.13"), orders=resting), [YES])
    assert cancels(actions) == ["b1"]
    assert prices(actions) == (u("0.10"), None)


def test_the_ask_is_a_no_bid_unless_yes_is_held_to_sell() -> None:
    """Polymarket has no short selling: without YES to sell, offering YES at p is bidding
    1 - p for NO (the venue matches the two by minting a pair)."""
    flat = raw_places(maker().on_books(ctx(view("0.50", "0.54")), [YES]))
    assert (flat["ask"].token_id, flat["ask"].side, flat["ask"].price) == (NO, Side.BUY, u("0.46"))
    held = {YES: u("40")}
    long = raw_places(maker().on_books(ctx(view("0.50", "0.54"), held=held), [YES]))
    assert (long["ask"].token_id, long["ask"].side) == (YES, Side.SELL)
    # A resting NO bid stands for the YES ask it mirrors: no requote for nothing.
    resting = Order(
        id="o1", strategy=NAME, token_id=NO, side=Side.BUY, price=u("0.46"), size=u("20"), tag="ask"
    )
    again = maker().on_books(ctx(view("0.50", "0.54"), orders=[resting]), [YES])
    assert "ask" not in raw_places(again)
    assert cancels(again) == []


# --------------------------------------------------------------------------------------------
# The inventory limit against a venue that answers late


@attrs.define(eq=False)
class LateVenue:
    """The engine and venue as the strategy meets them live: intents are taken later, cancels
    are confirmed later, and any order, one being cancelled too, may fill at any moment."""

    held: dict[str, int] = attrs.field(factory=lambda: {YES: 0, NO: 0})
    orders: dict[str, Order] = attrs.field(factory=dict)
    intents: list[Action] = attrs.field(factory=list)
    cancelling: set[str] = attrs.field(factory=set)
    updates: list[OrderUpdate] = attrs.field(factory=list)
    count: int = 0

    def take(self) -> None:
        action = self.intents.pop(0)
        if isinstance(action, Place):
            self.count += 1
            order = Order(
                f"o{self.count}",
                NAME,
                action.token_id,
                action.side,
                action.price,
                action.size,
                post_only=True,
                tag=action.tag,
            )
            self.orders[order.id] = order
            if action.side is Side.SELL and action.size > self.held[action.token_id]:
                self.end(order, OrderStatus.REJECTED)  # no short selling
        elif isinstance(action, Cancel) and action.order_id in self.orders:
            self.cancelling.add(action.order_id)
        elif isinstance(action, CancelAll):
            self.cancelling.update(
                oid for oid, o in self.orders.items() if o.token_id == action.token_id
            )

    def end(self, order: Order, status: OrderStatus) -> None:
        del self.orders[order.id]
        self.cancelling.discard(order.id)
        order.status = status
        self.updates.append(
            OrderUpdate(
                order.id,
                NAME,
                order.token_id,
                order.side,
                order.price,
                order.size,
                order.filled,
                status,
            )
        )

    def fill(self, order: Order, size: int) -> None:
        order.filled += size
        self.held[order.token_id] += size if order.side is Side.BUY else -size
        if not order.remaining:
            self.end(order, OrderStatus.MATCHED)

    def worst(self) -> tuple[int, int]:
        """How long and how short YES (NO counts as short YES) the strategy would be if every
        order resting or still to be taken filled on one side."""
        position = self.held[YES] - self.held[NO]
        up = down = 0
        pending = [(o.token_id, o.side, o.remaining) for o in self.orders.values()]
        pending += [(a.token_id, a.side, a.size) for a in self.intents if isinstance(a, Place)]
        for token, side, size in pending:
            if (token == YES) == (side is Side.BUY):
                up += size
            else:
                down += size
        return position + up, down - position


@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_the_inventory_limit_holds_whatever_the_venue_answers_late(data: st.DataObject) -> None:
    limit = u("20")
    strategy = maker(
        quote_size=Decimal(10),
        inventory_limit=Decimal(20),
        half_spread_ticks=1,
        requote_ticks=0,
        skew_ticks=2,
    )
    venue = LateVenue()
    book = view("0.49", "0.51")
    for step in range(120):
        now = 100.0 + step * 0.01  # well inside the pending timeout: placements land
        ctx = Context(
            now=now,
            books={YES: book},
            universe=UNIVERSE,
            inventory=Positions(venue.held),
            orders=dict(venue.orders),
            stale=set(),
        )
        what = data.draw(st.sampled_from(["book", "take", "confirm", "fill", "deliver"]))
        if what == "book":
            bid = data.draw(st.integers(30, 68))
            ask = bid + data.draw(st.integers(1, 4))
            book = view(f"0.{bid:02d}", f"0.{ask:02d}")
            ctx = attrs.evolve(ctx, books={YES: book})
            venue.intents += strategy.on_books(ctx, [YES])
        elif what == "take" and venue.intents:
            venue.take()
        elif what == "confirm" and venue.cancelling:
            oid = data.draw(st.sampled_from(sorted(venue.cancelling)))
            venue.end(venue.orders[oid], OrderStatus.CANCELED)
        elif what == "fill" and venue.orders:
            order = venue.orders[data.draw(st.sampled_from(sorted(venue.orders)))]
            venue.fill(order, data.draw(st.integers(1, order.remaining // CENT)) * CENT)
        elif what == "deliver" and venue.updates:
            venue.intents += strategy.on_event(ctx, venue.updates.pop(0))
        up, down = venue.worst()
        assert up <= limit, (step, venue)
        assert down <= limit, (step, venue)

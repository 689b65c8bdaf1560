"""Portfolio accounting: exact cash and fees, idempotent fills, complete sets, resolution."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.money import ONE, Side
from bot.core.portfolio import Portfolio, Units, split_sets
from bot.core.trading import Fill, Liquidity
from bot.core.universe import Event, Market, Universe
from tests.builders import binary_market

if TYPE_CHECKING:
    import random


def market(cid: str, yes: str, no: str, *, event_id: str | None = None) -> Market:
    return binary_market(cid, yes, no, event_id=event_id)


BINARY = market("0xb", "by", "bn")
A, B, C = (market(f"0xe{k}", f"e{k}y", f"e{k}n", event_id="e1") for k in "abc")
EVENT = Event(id="e1", slug="e1", title="Who wins?", neg_risk=True, markets=(A, B, C))
UNIVERSE = Universe(markets=(BINARY, A, B, C), events=(EVENT,))

_ids = iter(range(1_000_000))


def units(text: str) -> int:
    return int(Decimal(text) * ONE)  # exact for the literals used here


def fill(
    token: str,
    side: Side,
    price: str,
    size: str,
    *,
    fee: str = "0",
    strategy: str = "s1",
    fill_id: str | None = None,
) -> Fill:
    return Fill(
        fill_id=fill_id or f"f{next(_ids)}",
        order_id="o",
        strategy=strategy,
        token_id=token,
        side=side,
        price=units(price),
        size=units(size),
        fee=units(fee),
        liquidity=Liquidity.TAKER,
    )


def test_the_complement_arbitrage_example_is_exact() -> None:
    p = Portfolio()
    p.apply(fill("by", Side.BUY, "0.40", "100", fee="0.012"))
    p.apply(fill("bn", Side.BUY, "0.55", "100", fee="0.00987"))
    fees = 12_000 + 9_870
    # The book marks do not matter: the pair merges into 100 pUSD.
    assert p.pnl(UNIVERSE, {"by": 10_000, "bn": 10_000}) == 100 * 50_000 - fees
    assert p.pnl(UNIVERSE, {}) == 5 * ONE - fees
    assert p.cash() == -95 * ONE - fees
    assert p.fees() == fees
    assert p.fill_count() == 2
    assert p.volume() == 95 * ONE
    assert p.value(UNIVERSE, {}) == 100 * ONE
    assert p.exposure() == 95 * ONE
    assert p.positions() == {("s1", "by"): 100 * ONE, ("s1", "bn"): 100 * ONE}


def test_cash_rounds_against_us_when_notional_is_not_whole() -> None:
    p = Portfolio()
    p.apply(fill("by", Side.BUY, "0.333333", "0.000003"))  # 0.999999e-6 pUSD: pay 1 micro-unit
    assert p.cash() == -1
    p.apply(fill("by", Side.SELL, "0.333333", "0.000003"))  # receive 0
    assert p.cash() == -1
    assert p.position("by") == 0


def test_sells_realise_pnl_and_keep_average_cost() -> None:
    p = Portfolio()
    p.apply(fill("by", Side.BUY, "0.40", "100"))
    p.apply(fill("by", Side.BUY, "0.50", "100"))  # 200 shares at 0.45 average
    p.apply(fill("by", Side.SELL, "0.60", "50", fee="0.10"))
    (h,) = p.holdings()
    assert h.shares == 150 * ONE
    assert h.cost == 150 * 450_000  # average cost 0.45 kept on the open shares
    assert h.realized == 50 * 150_000 - 100_000  # (0.60 - 0.45) x 50 - fee
    assert p.realized() == h.realized
    assert p.exposure() == h.cost
    # Everything at 0.60: 200 x (0.60 - 0.45) - fee.
    assert p.pnl(UNIVERSE, {"by": 600_000}) == 200 * 150_000 - 100_000
    p.apply(fill("by", Side.SELL, "0.30", "150"))
    assert p.position("by") == 0
    assert p.exposure() == 0
    assert p.realized() == 50 * 150_000 - 150 * 150_000 - 100_000
    assert p.pnl(UNIVERSE, {}) == p.realized()


def test_selling_through_zero_opens_a_short_whose_exposure_is_the_buy_back() -> None:
    p = Portfolio()
    p.apply(fill("by", Side.BUY, "0.40", "10"))
    p.apply(fill("by", Side.SELL, "0.60", "30"))
    (h,) = p.holdings()
    assert h.shares == -20 * ONE
    assert h.cost == -20 * 600_000  # proceeds of the 20 shares sold short
    assert h.realized == 10 * 200_000
    assert p.exposure() == 20 * ONE - 20 * 600_000  # buying back at 1 loses 0.40 a share
    assert p.pnl(UNIVERSE, {"by": 500_000}) == 10 * 200_000 + 20 * 100_000


def test_a_partial_close_never_understates_exposure() -> None:
    p = Portfolio()
    p.apply(fill("by", Side.BUY, "0.33", "3"))  # cost 0.99
    p.apply(fill("by", Side.SELL, "0.33", "1"))  # removes floor(0.99 / 3) = 0.33
    assert p.exposure() == 660_000
    p.apply(fill("by", Side.BUY, "0.01", "0.000001"))
    p.apply(fill("by", Side.SELL, "0.5", "0.000001"))
    # 2.000001 shares with cost 0.660001 (a 1e-8 notional paid as 1e-6), sell 1e-6 of them:
    # floor(0.660001 x 1e-6 / 2.000001) removes nothing, the basis stays whole.
    assert p.exposure() == 660_001


def test_a_fill_seen_twice_counts_once() -> None:
    p = Portfolio()
    f = fill("by", Side.BUY, "0.40", "100", fee="0.01", fill_id="t1")
    assert p.apply(f) is True
    assert p.apply(f) is False
    assert p.position("by") == 100 * ONE
    assert p.cash() == -40 * ONE - 10_000
    assert p.fill_count() == 1


def test_bad_fills_are_refused_with_the_fill_named() -> None:
    p = Portfolio()
    with pytest.raises(ValueError, match="fill bad: size 0 is not positive"):
        p.apply(fill("by", Side.BUY, "0.40", "0", fill_id="bad"))
    with pytest.raises(ValueError, match=r"fill bad: price 1010000 is outside \[0, 1000000\]"):
        p.apply(fill("by", Side.BUY, "1.01", "1", fill_id="bad"))
    with pytest.raises(ValueError, match="fill bad: fee -10000 is negative"):
        p.apply(fill("by", Side.BUY, "0.40", "1", fee="-0.01", fill_id="bad"))
    # Refused fills are not remembered: the corrected one still counts.
    assert p.apply(fill("by", Side.BUY, "0.40", "1", fill_id="bad")) is True


def test_positions_per_strategy_and_across() -> None:
    p = Portfolio()
    p.apply(fill("by", Side.BUY, "0.40", "10", strategy="mm"))
    p.apply(fill("by", Side.SELL, "0.45", "4", strategy="arb"))
    assert p.position("by") == 6 * ONE
    assert p.position_of("mm", "by") == 10 * ONE
    assert p.position_of("arb", "by") == -4 * ONE
    assert p.position_of("arb", "nope") == 0
    assert p.strategies() == ["arb", "mm"]
    assert p.cash("mm") == -4 * ONE
    assert p.cash("arb") == 1_800_000


def test_binary_pairs_merge_and_the_remainder_is_marked() -> None:
    p = Portfolio()
    p.apply(fill("by", Side.BUY, "0.40", "100"))
    p.apply(fill("bn", Side.BUY, "0.55", "60"))
    # 60 pairs pay 60; 40 YES left at the 0.45 mark.
    assert p.value(UNIVERSE, {"by": 450_000, "bn": 550_000}) == 60 * ONE + 40 * 450_000
    # A missing mark values the remainder at 0.
    assert p.value(UNIVERSE, {"bn": 550_000}) == 60 * ONE
    assert p.value(UNIVERSE, {}, condition_id="0xb") == 60 * ONE


def test_pairs_only_form_within_one_strategy() -> None:
    p = Portfolio()
    p.apply(fill("by", Side.BUY, "0.40", "10", strategy="one"))
    p.apply(fill("bn", Side.BUY, "0.55", "10", strategy="two"))
    assert p.value(UNIVERSE, {}) == 10 * ONE
    assert p.value(UNIVERSE, {}, strategy="one") == 0
    assert p.pnl_by_strategy(UNIVERSE, {"by": 400_000, "bn": 550_000}) == {"one": 0, "two": 0}


def test_neg_risk_yes_sets_pay_one() -> None:
    p = Portfolio()
    for token, price in (("eay", "0.30"), ("eby", "0.30"), ("ecy", "0.35")):
        p.apply(fill(token, Side.BUY, price, "10"))
    p.apply(fill("eay", Side.BUY, "0.30", "5"))  # 5 more A-YES than a full set
    marks = {"eay": 200_000, "eby": 300_000, "ecy": 400_000}
    assert p.value(UNIVERSE, marks) == 10 * ONE + 5 * 200_000
    assert p.pnl(UNIVERSE, {}) == 10 * ONE - 11 * ONE  # paid 3 + 3 + 3.5 + 1.5
    # One market alone does not see the event's sets.
    assert p.value(UNIVERSE, marks, condition_id="0xea") == 15 * 200_000


def test_neg_risk_no_sets_pay_m_minus_one() -> None:
    p = Portfolio()
    for token in ("ean", "ebn", "ecn"):
        p.apply(fill(token, Side.BUY, "0.60", "10"))
    assert p.value(UNIVERSE, {}) == 10 * 2 * ONE  # two of the three NOs pay
    assert p.pnl(UNIVERSE, {}) == 20 * ONE - 18 * ONE
    units = p.units(UNIVERSE)
    assert split_sets(units, p.shares()) == (20 * ONE, {})


def test_incomplete_events_get_no_event_sets() -> None:
    incomplete = Event(
        id="e1", slug="e1", title="t", neg_risk=True, markets=(A, B, C), complete=False
    )
    universe = Universe(markets=(A, B, C), events=(incomplete,))
    p = Portfolio()
    for token in ("eay", "eby", "ecy"):
        p.apply(fill(token, Side.BUY, "0.30", "10"))
    assert p.value(universe, {}) == 0
    assert Units(universe).key("eay") == "0xea"


def test_pnl_by_market_adds_up_and_groups_events() -> None:
    p = Portfolio()
    p.apply(fill("by", Side.BUY, "0.40", "10", fee="0.01"))
    p.apply(fill("bn", Side.BUY, "0.55", "10"))
    for token in ("ean", "ecn"):
        p.apply(fill(token, Side.BUY, "0.60", "1"))
    p.apply(fill("eay", Side.BUY, "0.30", "2"))
    p.apply(fill("elsewhere", Side.BUY, "0.50", "2"))
    marks = {"eay": 250_000, "ean": 700_000, "ecn": 650_000, "elsewhere": 600_000}
    by_market = p.pnl_by_market(UNIVERSE, marks)
    assert set(by_market) == {"0xb", "e1", "elsewhere"}
    assert by_market["0xb"] == 10 * ONE - 9_500_000 - 10_000
    assert by_market["elsewhere"] == 2 * 100_000
    # e1: one A pair merges (1), A-YES 1 at 0.25 and C-NO 1 at 0.65 remain; paid 1.80.
    assert by_market["e1"] == 100_000
    assert sum(by_market.values()) == p.pnl(UNIVERSE, marks)


def test_resolve_pays_the_winner_and_closes_the_market() -> None:
    p = Portfolio()
    p.apply(fill("by", Side.BUY, "0.40", "100", strategy="one"))
    p.apply(fill("bn", Side.BUY, "0.55", "20", strategy="two"))
    paid = p.resolve("0xb", "by", ("by", "bn"))
    assert paid == 100 * ONE
    assert p.positions() == {}
    assert p.exposure() == 0
    assert p.cash("one") == 60 * ONE
    assert p.cash("two") == -11 * ONE
    assert p.realized() == 49 * ONE
    assert p.pnl(UNIVERSE, {"by": 990_000}) == 49 * ONE
    # Again with the same winner: nothing; with another: refused.
    assert p.resolve("0xb", "by", ("by", "bn")) == 0
    with pytest.raises(ValueError, match="already resolved to by"):
        p.resolve("0xb", "bn", ("by", "bn"))
    with pytest.raises(ValueError, match="winning token zz is not one of"):
        p.resolve("0xz", "zz", ("a", "b"))


def test_a_fifty_fifty_resolution_pays_half() -> None:
    p = Portfolio()
    p.apply(fill("by", Side.BUY, "0.40", "10.000001"))
    assert p.resolve("0xb", None, ("by", "bn")) == 5_000_000  # floor(10.000001 / 2)
    assert p.position("by") == 0


_TOKENS = ("by", "bn", "eay", "ecn")
_fill_args = st.tuples(
    st.sampled_from(_TOKENS),
    st.sampled_from(Side),
    st.integers(0, ONE),
    st.integers(1, 500 * ONE),
    st.integers(0, ONE),
    st.sampled_from(("s1", "s2")),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_fill_args, max_size=25), st.randoms(use_true_random=False))
def test_fills_in_any_order_give_the_same_books(
    args: list[tuple[str, Side, int, int, int, str]], rnd: random.Random
) -> None:
    fills = [
        Fill(f"f{i}", "o", strategy, token, side, price, size, fee, Liquidity.TAKER)
        for i, (token, side, price, size, fee, strategy) in enumerate(args)
    ]
    shuffled = list(fills) + fills[:3]  # some repeated, too
    rnd.shuffle(shuffled)
    one, two = Portfolio(), Portfolio()
    for f in fills:
        one.apply(f)
    for f in shuffled:
        two.apply(f)
    assert one.positions() == two.positions()
    for s in ("s1", "s2", None):
        assert one.cash(s) == two.cash(s)
        assert one.fees(s) == two.fees(s)
    marks = {"by": 410_000, "eay": 200_000}
    assert one.pnl(UNIVERSE, marks) == two.pnl(UNIVERSE, marks)


def test_undoing_a_failed_fill_restores_the_books_exactly() -> None:
    p = Portfolio()
    p.apply(fill("by", Side.BUY, "0.40", "100", fill_id="t0"))
    before = (p.position("by"), p.cash(), p.fees(), p.volume(), p.exposure(), p.fill_count())
    failed = fill("by", Side.BUY, "0.333", "7.77", fee="0.02", fill_id="t1")  # cash rounds up
    assert p.apply(failed)
    assert p.undo(failed) is True
    assert (p.position("by"), p.cash(), p.fees(), p.volume(), p.exposure(), p.fill_count()) == (
        before
    )
    assert p.undo(failed) is False  # once only
    assert p.undo(fill("by", Side.BUY, "0.40", "1", fill_id="never-applied")) is False
    assert p.apply(failed) is False  # and a repeat of the failed trade does not come back

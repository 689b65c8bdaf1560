"""The paper venue: taker walks and fees, FOK/FAK, consumption memory, queue position, crossing
books, trade-throughs, cancels and rejections, on hand-built views and trade sequences."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.book import BookView
from bot.core.money import ONE, Side, taker_fee_units
from bot.core.paper import PaperVenue
from bot.core.trading import (
    ExecEvent,
    Fill,
    Liquidity,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
)
from bot.core.wire.market_events import LastTradePrice, Level

if TYPE_CHECKING:
    from collections.abc import Iterable

BUY, SELL = Side.BUY, Side.SELL
TOKEN = "y"
RATE = 40_000  # 0.04
CENT = 10_000


def c(cents: int) -> int:
    """A price in cents: ``c(48)`` is 0.48."""
    return cents * CENT


def view(
    bids: Iterable[tuple[int, int]] = (),
    asks: Iterable[tuple[int, int]] = (),
    *,
    ms: int = 1,
    tick: int = CENT,
    stale: bool = False,
) -> BookView:
    """A view from ``(price, shares)`` pairs (whole shares), sorted best first."""
    bid_levels = tuple(Level(p, s * ONE) for p, s in sorted(bids, reverse=True))
    ask_levels = tuple(Level(p, s * ONE) for p, s in sorted(asks))
    return BookView(
        asset_id=TOKEN,
        best_bid=bid_levels[0] if bid_levels else None,
        best_ask=ask_levels[0] if ask_levels else None,
        bids=bid_levels,
        asks=ask_levels,
        tick_size=tick,
        last_update_ms=ms,
        stale=stale,
    )


_ids = itertools.count(1)


def order(
    side: Side,
    price: int,
    shares: int,
    order_type: OrderType = OrderType.GTC,
    *,
    post_only: bool = False,
    size: int | None = None,
) -> Order:
    return Order(
        id=f"o{next(_ids)}",
        strategy="s",
        token_id=TOKEN,
        side=side,
        price=price,
        size=shares * ONE if size is None else size,
        order_type=order_type,
        post_only=post_only,
    )


def trade(price: int, shares: int, taker: Side, ms: int) -> LastTradePrice:
    return LastTradePrice(TOKEN, "0xc", price, shares * ONE, taker, ms)


def venue() -> PaperVenue:
    return PaperVenue(fee_rate=lambda token: RATE if token == TOKEN else 0)


def fills(events: list[ExecEvent]) -> list[Fill]:
    return [e for e in events if isinstance(e, Fill)]


def updates(events: list[ExecEvent]) -> list[OrderUpdate]:
    return [e for e in events if isinstance(e, OrderUpdate)]


def fill_sizes(events: list[ExecEvent]) -> list[tuple[int, int]]:
    """``(price, shares in micro-units)`` of each fill."""
    return [(f.price, f.size) for f in fills(events)]


def status(events: list[ExecEvent]) -> tuple[OrderStatus, str]:
    (update,) = updates(events)
    return update.status, update.reason


BOOK = view(
    bids=[(c(49), 10), (c(48), 20), (c(46), 100)],
    asks=[(c(50), 10), (c(51), 20), (c(53), 100)],
)


# --- taking ---------------------------------------------------------------------------------------


def test_a_buy_walks_the_asks_with_one_fill_and_fee_per_level() -> None:
    o = order(BUY, c(53), 25, OrderType.FAK)
    events = venue().submit(o, BOOK, 7.0, 1234)
    assert fill_sizes(events) == [(c(50), 10 * ONE), (c(51), 15 * ONE)]
    # By hand: 10 x 0.04 x 0.5 x 0.5 = 0.1; 15 x 0.04 x 0.51 x 0.49 = 0.14994.
    assert [f.fee for f in fills(events)] == [100_000, 149_940]
    assert fills(events)[1].fee == taker_fee_units(15 * ONE, c(51), RATE)
    assert all(f.liquidity is Liquidity.TAKER for f in fills(events))
    assert [(f.at, f.ts_ms, f.order_id) for f in fills(events)] == [(7.0, 1234, o.id)] * 2
    assert status(events) == (OrderStatus.MATCHED, "")
    assert (o.filled, o.status) == (25 * ONE, OrderStatus.MATCHED)
    assert events[-1] == updates(events)[0]  # the status change comes after the fills


def test_the_fee_is_floored_to_five_decimals() -> None:
    o = order(BUY, c(33), 7, OrderType.FOK)
    events = venue().submit(o, view(asks=[(c(33), 50)]), 0.0, 0)
    # 7 x 0.04 x 0.33 x 0.67 = 0.061908 -> 0.06190.
    assert [f.fee for f in fills(events)] == [61_900]


def test_a_sell_walks_the_bids_and_respects_its_limit() -> None:
    o = order(SELL, c(48), 50, OrderType.FAK)
    events = venue().submit(o, BOOK, 0.0, 0)
    assert fill_sizes(events) == [(c(49), 10 * ONE), (c(48), 20 * ONE)]
    assert status(events) == (OrderStatus.CANCELED, "fak_remainder")
    assert o.filled == 30 * ONE


def test_a_buy_never_pays_above_its_limit() -> None:
    o = order(BUY, c(52), 100, OrderType.FAK)
    events = venue().submit(o, BOOK, 0.0, 0)
    assert fill_sizes(events) == [(c(50), 10 * ONE), (c(51), 20 * ONE)]
    assert status(events) == (OrderStatus.CANCELED, "fak_remainder")


def test_fok_is_killed_whole_when_the_size_is_not_there() -> None:
    v = venue()
    o = order(BUY, c(51), 31, OrderType.FOK)
    events = v.submit(o, BOOK, 0.0, 0)
    assert fills(events) == []
    assert status(events) == (OrderStatus.CANCELED, "fok_unfilled")
    assert o.filled == 0
    # Nothing was consumed: exactly what is there still fills.
    assert fill_sizes(v.submit(order(BUY, c(51), 30, OrderType.FOK), BOOK, 0.0, 0)) == [
        (c(50), 10 * ONE),
        (c(51), 20 * ONE),
    ]


def test_fak_with_nothing_in_reach_is_cancelled() -> None:
    events = venue().submit(order(BUY, c(49), 5, OrderType.FAK), BOOK, 0.0, 0)
    assert fills(events) == []
    assert status(events) == (OrderStatus.CANCELED, "fak_unfilled")


def test_a_gtc_takes_what_crosses_and_rests_the_rest() -> None:
    v = venue()
    o = order(BUY, c(50), 15)
    events = v.submit(o, BOOK, 0.0, 0)
    assert fill_sizes(events) == [(c(50), 10 * ONE)]
    assert status(events) == (OrderStatus.LIVE, "")
    assert updates(events)[0].filled == 10 * ONE
    assert v.open_orders() == {o.id: o}
    assert o.queue_ahead == 0  # nobody bids 0.50: first in line
    # The same book again: the ask it took is remembered, nothing fills twice.
    assert v.on_book(BOOK, 1.0, 0) == []


# --- liquidity we took is not taken twice ---------------------------------------------------------


def test_displayed_size_is_not_consumed_twice() -> None:
    v = venue()
    book = view(asks=[(c(50), 10), (c(51), 100)], ms=1)
    first = v.submit(order(BUY, c(50), 10, OrderType.FAK), book, 0.0, 0)
    assert fill_sizes(first) == [(c(50), 10 * ONE)]
    again = v.submit(order(BUY, c(50), 10, OrderType.FAK), book, 0.0, 0)
    assert status(again) == (OrderStatus.CANCELED, "fak_unfilled")
    # A FOK that needs the consumed level moves on to the next one instead.
    deeper = v.submit(order(BUY, c(51), 5, OrderType.FOK), book, 0.0, 0)
    assert fill_sizes(deeper) == [(c(51), 5 * ONE)]


def test_consumption_is_forgotten_as_the_level_turns_over() -> None:
    v = venue()
    v.submit(order(BUY, c(50), 10, OrderType.FAK), view(asks=[(c(50), 10)], ms=1), 0.0, 0)
    # New sellers join the back: only the growth is new liquidity.
    grown = view(asks=[(c(50), 14)], ms=2)
    assert fill_sizes(v.submit(order(BUY, c(50), 10, OrderType.FAK), grown, 0.0, 0)) == [
        (c(50), 4 * ONE)
    ]
    # The level empties: what we took there is gone for good; a new level is all available.
    v.on_book(view(asks=[(c(51), 5)], ms=3), 0.0, 0)
    fresh = view(asks=[(c(50), 12)], ms=4)
    assert fill_sizes(v.submit(order(BUY, c(50), 20, OrderType.FAK), fresh, 0.0, 0)) == [
        (c(50), 12 * ONE)
    ]


def test_a_shrinking_level_releases_what_it_lost() -> None:
    v = venue()
    v.submit(order(BUY, c(50), 6, OrderType.FAK), view(asks=[(c(50), 10)], ms=1), 0.0, 0)
    # 10 shown, 6 ours: 4 left. The front 3 trade away or cancel: still 4 left, not 7.
    shrunk = view(asks=[(c(50), 7)], ms=2)
    assert fill_sizes(v.submit(order(BUY, c(50), 10, OrderType.FAK), shrunk, 0.0, 0)) == [
        (c(50), 4 * ONE)
    ]


# --- resting orders: the queue --------------------------------------------------------------------


def rest(v: PaperVenue, side: Side, price: int, shares: int, book: BookView) -> Order:
    o = order(side, price, shares)
    events = v.submit(o, book, 0.0, 0)
    assert status(events) == (OrderStatus.LIVE, "")
    assert fills(events) == []
    return o


def test_a_resting_order_waits_for_the_queue_ahead_of_it() -> None:
    v = venue()
    o = rest(v, BUY, c(48), 20, BOOK)
    assert o.queue_ahead == 20 * ONE
    assert v.on_trade(trade(c(48), 15, SELL, 2), 1.0, 10) == []
    assert o.queue_ahead == 5 * ONE
    partial = v.on_trade(trade(c(48), 12, SELL, 3), 2.0, 20)
    assert fill_sizes(partial) == [(c(48), 7 * ONE)]
    assert updates(partial) == []  # partly filled: still live, no status change
    assert (o.status, o.queue_ahead) == (OrderStatus.LIVE, 0)
    done = v.on_trade(trade(c(48), 50, SELL, 4), 3.0, 30)
    assert fill_sizes(done) == [(c(48), 13 * ONE)]  # capped at what the order still needs
    assert status(done) == (OrderStatus.MATCHED, "")
    (fill,) = fills(done)
    assert (fill.fee, fill.liquidity, fill.at, fill.ts_ms) == (0, Liquidity.MAKER, 3.0, 30)
    assert v.open_orders() == {}


def test_only_takers_on_the_other_side_reach_a_resting_order() -> None:
    v = venue()
    bid = rest(v, BUY, c(48), 20, BOOK)
    ask = rest(v, SELL, c(51), 20, BOOK)
    # A taker BUY at 0.48 lifted an ask there: it never hits a bid.
    assert v.on_trade(trade(c(48), 100, BUY, 2), 0.0, 0) == []
    assert v.on_trade(trade(c(51), 100, SELL, 3), 0.0, 0) == []
    assert (bid.queue_ahead, ask.queue_ahead) == (20 * ONE, 20 * ONE)
    # Another token's trades are not ours.
    other = LastTradePrice("n", "0xc", c(48), 100 * ONE, SELL, 4)
    assert v.on_trade(other, 0.0, 0) == []


def test_a_shrinking_level_moves_us_up_and_growth_goes_behind() -> None:
    v = venue()
    o = rest(v, BUY, c(48), 20, BOOK)
    v.on_book(view(bids=[(c(49), 10), (c(48), 6)], ms=2), 0.0, 0)
    assert o.queue_ahead == 6 * ONE
    v.on_book(view(bids=[(c(49), 10), (c(48), 50)], ms=3), 0.0, 0)
    assert o.queue_ahead == 6 * ONE  # later bids queue behind us
    # Cancels behind us do not move us up; once behind is gone, ahead shrinks.
    v.on_book(view(bids=[(c(49), 10), (c(48), 10)], ms=4), 0.0, 0)
    assert o.queue_ahead == 6 * ONE
    v.on_book(view(bids=[(c(49), 10), (c(48), 1)], ms=5), 0.0, 0)
    assert o.queue_ahead == 1 * ONE
    v.on_book(view(bids=[(c(49), 10)], ms=6), 0.0, 0)
    assert o.queue_ahead == 0
    # At the front: a later trade fills us from its first share.
    assert fill_sizes(v.on_trade(trade(c(48), 3, SELL, 7), 0.0, 0)) == [(c(48), 3 * ONE)]


def test_a_trade_and_its_book_change_count_once_in_either_order() -> None:
    before = view(bids=[(c(48), 100)], ms=1)
    after = view(bids=[(c(48), 30)], ms=5)  # the 120-share trade at ms 5 took 100 + 20 behind
    grown = view(bids=[(c(48), 150)], ms=2)
    t = trade(c(48), 120, SELL, 5)
    results = []
    for trade_first in (True, False):
        v = venue()
        o = rest(v, BUY, c(48), 50, before)
        v.on_book(grown, 0.0, 0)  # 50 more join behind us
        if trade_first:
            events = v.on_trade(t, 0.0, 0) + v.on_book(after, 0.0, 0)
        else:
            events = v.on_book(after, 0.0, 0) + v.on_trade(t, 0.0, 0)
        results.append((fill_sizes(events), o.queue_ahead, o.filled))
    assert results[0] == results[1] == ([(c(48), 20 * ONE)], 0, 20 * ONE)


def test_a_cancel_ahead_is_not_mistaken_for_a_later_trade() -> None:
    v = venue()
    o = rest(v, BUY, c(48), 20, view(bids=[(c(48), 50)], ms=1))
    v.on_book(view(bids=[], asks=[(c(50), 5)], ms=5), 0.0, 0)  # everyone ahead cancelled
    assert o.queue_ahead == 0
    # A trade newer than that view is new volume, and we are at the front.
    assert fill_sizes(v.on_trade(trade(c(48), 8, SELL, 6), 0.0, 0)) == [(c(48), 8 * ONE)]


def test_our_own_orders_at_one_price_share_a_trade_in_time_priority() -> None:
    v = venue()
    book = view(bids=[(c(48), 10)], ms=1)
    first = rest(v, BUY, c(48), 20, book)
    second = rest(v, BUY, c(48), 20, book)
    events = v.on_trade(trade(c(48), 25, SELL, 2), 0.0, 0)
    assert [(f.order_id, f.size) for f in fills(events)] == [(first.id, 15 * ONE)]
    events = v.on_trade(trade(c(48), 10, SELL, 3), 0.0, 0)
    assert [(f.order_id, f.size) for f in fills(events)] == [
        (first.id, 5 * ONE),
        (second.id, 5 * ONE),
    ]
    assert second.queue_ahead == 0


def test_a_level_below_the_views_depth_is_learned_when_seen() -> None:
    v = PaperVenue(fee_rate=lambda token: 0, view_depth=2)
    shallow = view(bids=[(c(49), 10), (c(48), 20)], ms=1)  # two levels: the side may go deeper
    o = rest(v, BUY, c(40), 10, shallow)
    # The queue is unknown: a trade at 0.40 is not assumed to reach us.
    assert v.on_trade(trade(c(40), 5, SELL, 2), 0.0, 0) == []
    v.on_book(view(bids=[(c(49), 10), (c(40), 30)], ms=3), 0.0, 0)
    assert o.queue_ahead == 30 * ONE


def test_a_side_shorter_than_the_depth_is_complete() -> None:
    v = venue()  # views carry 10 levels: two shown means there are two
    o = rest(v, BUY, c(40), 10, view(bids=[(c(49), 10), (c(48), 20)], ms=1))
    assert o.queue_ahead == 0
    assert fill_sizes(v.on_trade(trade(c(40), 5, SELL, 2), 0.0, 0)) == [(c(40), 5 * ONE)]


# --- resting orders: crossed and traded through ---------------------------------------------------


def test_a_book_crossing_a_resting_bid_fills_it_at_its_price() -> None:
    v = venue()
    o = rest(v, BUY, c(48), 20, BOOK)
    crossed = view(bids=[(c(45), 50)], asks=[(c(47), 5), (c(48), 10), (c(49), 100)], ms=2)
    events = v.on_book(crossed, 1.0, 5)
    assert fill_sizes(events) == [(c(48), 15 * ONE)]
    (fill,) = fills(events)
    assert (fill.fee, fill.liquidity) == (0, Liquidity.MAKER)
    assert o.status is OrderStatus.LIVE
    # The same asks are not given to us twice, nor to a taker after us.
    assert v.on_book(crossed, 2.0, 6) == []
    taker = v.submit(order(BUY, c(48), 5, OrderType.FAK), crossed, 2.0, 6)
    assert status(taker) == (OrderStatus.CANCELED, "fak_unfilled")
    # More size shows up at 0.47: only that is new.
    more = view(bids=[(c(45), 50)], asks=[(c(47), 12), (c(48), 10), (c(49), 100)], ms=3)
    events = v.on_book(more, 3.0, 7)
    assert fill_sizes(events) == [(c(48), 5 * ONE)]
    assert status(events) == (OrderStatus.MATCHED, "")


def test_a_book_crossing_a_resting_ask_fills_it_at_its_price() -> None:
    v = venue()
    o = rest(v, SELL, c(51), 10, BOOK)
    crossed = view(bids=[(c(52), 4), (c(51), 3), (c(50), 100)], asks=[(c(53), 5)], ms=2)
    assert fill_sizes(v.on_book(crossed, 0.0, 0)) == [(c(51), 7 * ONE)]
    assert o.filled == 7 * ONE


def test_a_trade_through_a_resting_order_fills_it() -> None:
    v = venue()
    bid = rest(v, BUY, c(48), 20, BOOK)
    assert bid.queue_ahead == 20 * ONE
    events = v.on_trade(trade(c(46), 8, SELL, 2), 0.0, 0)
    assert fill_sizes(events) == [(c(48), 8 * ONE)]
    assert bid.queue_ahead == 0  # our level was swept
    ask = rest(v, SELL, c(51), 10, BOOK)
    # A taker SELL below an ask, or a taker BUY below a bid, goes nowhere near them.
    assert v.on_trade(trade(c(46), 8, BUY, 3), 0.0, 0) == []
    events = v.on_trade(trade(c(53), 30, BUY, 4), 0.0, 0)
    assert fill_sizes(events) == [(c(51), 10 * ONE)]
    assert (ask.status, status(events)) == (OrderStatus.MATCHED, (OrderStatus.MATCHED, ""))


def test_trade_through_volume_goes_best_price_first() -> None:
    v = venue()
    low = rest(v, BUY, c(46), 10, BOOK)
    high = rest(v, BUY, c(48), 10, BOOK)
    events = v.on_trade(trade(c(45), 14, SELL, 2), 0.0, 0)
    assert [(f.order_id, f.size) for f in fills(events)] == [
        (high.id, 10 * ONE),
        (low.id, 4 * ONE),
    ]


# --- cancel and rejections ------------------------------------------------------------------------


def test_cancel_ends_a_resting_order_once() -> None:
    v = venue()
    o = rest(v, BUY, c(48), 20, BOOK)
    events = v.cancel(o.id, 4.0, "quote.pulled")
    assert status(events) == (OrderStatus.CANCELED, "quote.pulled")
    assert updates(events)[0].at == 4.0
    assert o.status is OrderStatus.CANCELED
    assert v.open_orders() == {}
    assert v.cancel(o.id, 5.0) == []
    assert v.on_trade(trade(c(46), 50, SELL, 2), 0.0, 0) == []


def test_post_only_is_rejected_when_it_would_cross() -> None:
    v = venue()
    crossing = order(BUY, c(50), 5, post_only=True)
    assert status(v.submit(crossing, BOOK, 0.0, 0)) == (
        OrderStatus.REJECTED,
        "post_only_crosses",
    )
    assert crossing.status is OrderStatus.REJECTED
    ask = order(SELL, c(49), 5, post_only=True)
    assert status(v.submit(ask, BOOK, 0.0, 0)) == (OrderStatus.REJECTED, "post_only_crosses")
    assert status(v.submit(order(BUY, c(49), 5, post_only=True), BOOK, 0.0, 0)) == (
        OrderStatus.LIVE,
        "",
    )
    fok = v.submit(order(BUY, c(40), 5, OrderType.FOK, post_only=True), BOOK, 0.0, 0)
    assert status(fok)[0] is OrderStatus.REJECTED
    assert status(fok)[1].startswith("post_only_not_resting")


@pytest.mark.parametrize(
    ("price", "size", "code", "detail"),
    [
        (505_000, 5 * ONE, "price_off_tick", "0.505"),
        (0, 5 * ONE, "price_out_of_range", "price 0 "),
        (ONE, 5 * ONE, "price_out_of_range", "price 1 "),
        (c(48), 0, "invalid_size", "size 0 "),
    ],
)
def test_invalid_orders_are_rejected_with_the_problem_named(
    price: int, size: int, code: str, detail: str
) -> None:
    v = venue()
    o = order(BUY, price, 0, size=size)
    update_status, reason = status(v.submit(o, BOOK, 0.0, 0))
    assert update_status is OrderStatus.REJECTED
    assert reason.startswith(code)
    assert detail in reason
    assert v.open_orders() == {}


def test_a_finer_tick_accepts_the_same_price() -> None:
    o = order(BUY, 485_000, 5)
    events = venue().submit(o, view(bids=[(c(48), 5)], tick=5_000), 0.0, 0)
    assert status(events) == (OrderStatus.LIVE, "")


@pytest.mark.parametrize("order_type", list(OrderType))
def test_no_book_rejects(order_type: OrderType) -> None:
    v = venue()
    assert status(v.submit(order(BUY, c(50), 5, order_type), None, 0.0, 0)) == (
        OrderStatus.REJECTED,
        "no_book",
    )
    stale = view(asks=[(c(50), 100)], stale=True)
    assert status(v.submit(order(BUY, c(50), 5, order_type), stale, 0.0, 0)) == (
        OrderStatus.REJECTED,
        "no_book",
    )


def test_a_stale_view_moves_nothing() -> None:
    v = venue()
    o = rest(v, BUY, c(48), 20, BOOK)
    crossed = view(asks=[(c(47), 50)], ms=2, stale=True)
    assert v.on_book(crossed, 0.0, 0) == []
    assert (o.filled, o.queue_ahead) == (0, 20 * ONE)


def test_an_order_that_is_not_new_is_a_caller_bug() -> None:
    v = venue()
    o = rest(v, BUY, c(48), 20, BOOK)
    with pytest.raises(ValueError, match="already resting"):
        v.submit(o, BOOK, 0.0, 0)
    used = order(BUY, c(48), 20)
    used.filled = ONE
    with pytest.raises(ValueError, match="not new"):
        v.submit(used, BOOK, 0.0, 0)


def test_fill_ids_come_from_next_id_or_a_counter() -> None:
    default = venue()
    events = default.submit(order(BUY, c(51), 15, OrderType.FAK), BOOK, 0.0, 0)
    assert [f.fill_id for f in fills(events)] == ["paper-f1", "paper-f2"]
    names = iter(["a", "b"])
    custom = PaperVenue(fee_rate=lambda token: 0, next_id=lambda: next(names))
    events = custom.submit(order(BUY, c(51), 15, OrderType.FAK), BOOK, 0.0, 0)
    assert [(f.fill_id, f.fee) for f in fills(events)] == [("a", 0), ("b", 0)]


# --- properties -----------------------------------------------------------------------------------

prices = st.integers(1, 9).map(lambda k: c(45 + k))  # 0.46 .. 0.54
shares = st.integers(1, 40)
ladders = st.dictionaries(prices, shares, max_size=5)


class Submit(NamedTuple):
    side: Side
    price: int
    shares: int
    order_type: OrderType
    post_only: bool


Op = Submit | BookView | LastTradePrice | int
"""One step: submit an order, a new view, a trade, or cancel the n-th order submitted."""


@st.composite
def operations(draw: st.DrawFn) -> list[Op]:
    ops: list[Op] = []
    for ms in range(1, draw(st.integers(1, 40)) + 1):
        kind = draw(st.sampled_from(["submit", "book", "trade", "cancel"]))
        if kind == "submit":
            order_type = draw(st.sampled_from(list(OrderType)))
            post_only = order_type.rests and draw(st.booleans())
            side = draw(st.sampled_from([BUY, SELL]))
            ops.append(Submit(side, draw(prices), draw(shares), order_type, post_only))
        elif kind == "book":
            bids, asks = draw(ladders), draw(ladders)
            ops.append(view(bids.items(), asks.items(), ms=ms))
        elif kind == "trade":
            taker = draw(st.sampled_from([BUY, SELL]))
            ops.append(trade(draw(prices), draw(shares), taker, ms))
        else:
            ops.append(draw(st.integers(0, 20)))
    return ops


@settings(max_examples=100, deadline=None)
@given(ops=operations())
def test_fills_always_add_up(ops: list[Op]) -> None:
    v = venue()
    current = view(ms=0)
    orders: list[Order] = []
    events: list[ExecEvent] = []
    for op in ops:
        if isinstance(op, Submit):
            o = order(op.side, op.price, op.shares, op.order_type, post_only=op.post_only)
            orders.append(o)
            events += v.submit(o, current, 0.0, 0)
        elif isinstance(op, BookView):
            current = op
            events += v.on_book(current, 0.0, 0)
        elif isinstance(op, LastTradePrice):
            events += v.on_trade(op, 0.0, 0)
        elif orders:
            events += v.cancel(orders[op % len(orders)].id, 0.0)
    by_id = {o.id: o for o in orders}
    ended: set[str] = set()
    filled = dict.fromkeys(by_id, 0)
    for event in events:
        o = by_id[event.order_id]
        assert event.order_id not in ended  # nothing happens after a terminal update
        if isinstance(event, Fill):
            filled[o.id] += event.size
            assert event.size > 0
            if event.liquidity is Liquidity.MAKER:
                assert (event.price, event.fee) == (o.price, 0)
            else:
                assert event.fee == taker_fee_units(event.size, event.price, RATE)
            assert event.price <= o.price if o.side is BUY else event.price >= o.price
        elif event.status.terminal:
            ended.add(o.id)
    for o in orders:
        assert 0 <= o.filled <= o.size
        assert filled[o.id] == o.filled
        assert (o.status is OrderStatus.MATCHED) == (o.filled == o.size)
        assert (o.id in v.open_orders()) == (o.status is OrderStatus.LIVE)
        if o.order_type is OrderType.FOK:
            assert o.filled in (0, o.size)
        if not o.order_type.rests:
            assert o.status.terminal


@settings(max_examples=100, deadline=None)
@given(
    asks=ladders,
    orders_=st.lists(st.tuples(prices, shares, st.sampled_from([OrderType.FOK, OrderType.FAK]))),
)
def test_one_view_is_never_taken_beyond_its_size(
    asks: dict[int, int], orders_: list[tuple[int, int, OrderType]]
) -> None:
    v = venue()
    book = view(asks=asks.items())
    taken: dict[int, int] = {}
    for price, size, order_type in orders_:
        for f in fills(v.submit(order(BUY, price, size, order_type), book, 0.0, 0)):
            taken[f.price] = taken.get(f.price, 0) + f.size
    assert all(taken[price] <= asks[price] * ONE for price in taken)


@settings(max_examples=200, deadline=None)
@given(
    ahead=st.integers(0, 60),
    behind=st.integers(0, 60),
    size=st.integers(1, 60),
    data=st.data(),
)
def test_trade_and_book_order_does_not_matter(
    ahead: int, behind: int, size: int, data: st.DataObject
) -> None:
    traded = data.draw(st.integers(1, ahead + behind + size))
    left = max(ahead + behind - traded, 0)
    t = trade(c(48), traded, SELL, 5)
    after = view(bids=[(c(48), left)] if left else [], asks=[(c(50), 5)], ms=5)
    outcomes = []
    for trade_first in (True, False):
        v = venue()
        o = rest(v, BUY, c(48), size, view(bids=[(c(48), ahead)] if ahead else [], ms=1))
        v.on_book(view(bids=[(c(48), ahead + behind)] if ahead + behind else [], ms=2), 0.0, 0)
        if trade_first:
            events = v.on_trade(t, 0.0, 0) + v.on_book(after, 0.0, 0)
        else:
            events = v.on_book(after, 0.0, 0) + v.on_trade(t, 0.0, 0)
        outcomes.append((sum(f.size for f in fills(events)), o.queue_ahead))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] == min(max(traded - ahead, 0), size) * ONE


def test_the_venue_watches_only_tokens_where_a_view_can_matter() -> None:
    paper = venue()
    assert not paper.watches(TOKEN)
    resting = order(Side.BUY, c(40), 10)
    paper.submit(resting, view(bids=[(c(40), 100)], asks=[(c(45), 50)]), 0.0, 0)
    assert paper.watches(TOKEN)
    paper.cancel(resting.id, 1.0)
    assert not paper.watches(TOKEN)
    taker = order(Side.BUY, c(45), 10, OrderType.FAK)
    paper.submit(taker, view(bids=[(c(40), 100)], asks=[(c(45), 50)]), 2.0, 0)
    assert paper.watches(TOKEN)  # it remembers the 10 shares it took at 0.45

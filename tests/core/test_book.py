"""Tests for ``bot.core.book``: hand-built cases, properties against a naive model, a real burst."""

from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path
from typing import Any

import attrs
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.book import (
    BookView,
    Mismatch,
    OrderBook,
    Sweep,
    apply_price_change,
)
from bot.core.money import ONE, TICK_SIZES, Side, parse_units
from bot.core.wire.market import decode_market_frame
from bot.core.wire.market_events import (
    BookSnapshot,
    Level,
    PriceChange,
    PriceLevelChange,
    TickSizeChange,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
BURST = FIXTURES / "nautilus_index" / "ws_market_price_change_crossing_burst.json"

ASSET = "yes"
BUY = Side.BUY
SELL = Side.SELL


def u(text: str) -> int:
    """Micro-units from a decimal string, for readable tests."""
    return parse_units(text)


def lv(price: str, size: str) -> Level:
    return Level(u(price), u(size))


def snapshot(
    bids: list[tuple[str, str]],
    asks: list[tuple[str, str]],
    *,
    tick: str | None = "0.01",
    asset_id: str = ASSET,
    timestamp_ms: int = 1_000,
) -> BookSnapshot:
    return BookSnapshot(
        asset_id=asset_id,
        market="0xm",
        timestamp_ms=timestamp_ms,
        hash="",
        bids=tuple(lv(p, s) for p, s in bids),
        asks=tuple(lv(p, s) for p, s in asks),
        tick_size=None if tick is None else u(tick),
    )


def change(
    price: str,
    size: str,
    side: Side,
    *,
    best_bid: str | None = None,
    best_ask: str | None = None,
    asset_id: str = ASSET,
) -> PriceLevelChange:
    return PriceLevelChange(
        asset_id=asset_id,
        price=u(price),
        size=u(size),
        side=side,
        best_bid=None if best_bid is None else u(best_bid),
        best_ask=None if best_ask is None else u(best_ask),
    )


def ladder(levels: list[tuple[str, str]]) -> list[Level]:
    return [lv(p, s) for p, s in levels]


@pytest.fixture
def book() -> OrderBook:
    """Bids 0.48 x 100, 0.47 x 200, 0.45 x 50; asks 0.50 x 10, 0.52 x 20, 0.55 x 30."""
    book = OrderBook(ASSET)
    book.apply_snapshot(
        snapshot(
            # Real captures send worst first (bids ascending, asks descending); mix it up anyway.
            bids=[("0.45", "50"), ("0.48", "100"), ("0.47", "200"), ("0.3", "0")],
            asks=[("0.55", "30"), ("0.5", "10"), ("0.52", "20"), ("0.9", "0")],
        )
    )
    return book


# --- snapshots and changes ---------------------------------------------------------------------


def test_new_book_is_empty_and_stale() -> None:
    book = OrderBook(ASSET)
    assert book.stale
    assert book.tick_size == 10_000
    assert book.best_bid() is None
    assert book.best_ask() is None
    assert book.best_bid_price == 0
    assert book.best_ask_price == ONE
    assert list(book.bids()) == []
    assert list(book.asks()) == []
    assert book.spread() is None
    assert book.mid() is None
    assert not book.is_crossed()


def test_snapshot_sorts_levels_and_ignores_zero_sizes(book: OrderBook) -> None:
    assert not book.stale
    assert book.last_update_ms == 1_000
    assert book.best_bid() == lv("0.48", "100")
    assert book.best_ask() == lv("0.5", "10")
    assert list(book.bids()) == ladder([("0.48", "100"), ("0.47", "200"), ("0.45", "50")])
    assert list(book.asks()) == ladder([("0.5", "10"), ("0.52", "20"), ("0.55", "30")])
    assert book.statistics().bid_levels == 3
    assert book.statistics().ask_levels == 3


def test_snapshot_replaces_everything(book: OrderBook) -> None:
    book.apply_snapshot(snapshot(bids=[("0.2", "1")], asks=[], timestamp_ms=2_000))
    assert list(book.bids()) == ladder([("0.2", "1")])
    assert list(book.asks()) == []
    assert book.best_ask_price == ONE
    assert book.last_update_ms == 2_000


def test_snapshot_for_another_asset_is_rejected(book: OrderBook) -> None:
    with pytest.raises(ValueError, match="asset"):
        book.apply_snapshot(snapshot(bids=[], asks=[], asset_id="other"))
    assert book.best_bid() == lv("0.48", "100")


def test_change_sets_new_total_and_zero_removes(book: OrderBook) -> None:
    assert book.apply_change(change("0.47", "5", BUY)) is None
    assert list(book.bids()) == ladder([("0.48", "100"), ("0.47", "5"), ("0.45", "50")])
    book.apply_change(change("0.47", "0", BUY))
    assert list(book.bids()) == ladder([("0.48", "100"), ("0.45", "50")])
    book.apply_change(change("0.51", "7", SELL))
    assert list(book.asks()) == ladder(
        [("0.5", "10"), ("0.51", "7"), ("0.52", "20"), ("0.55", "30")]
    )
    # Removing a level that is not there changes nothing.
    book.apply_change(change("0.3", "0", BUY))
    assert book.statistics().bid_levels == 2


def test_best_cache_follows_new_and_removed_best(book: OrderBook) -> None:
    book.apply_change(change("0.49", "1", BUY))
    assert book.best_bid() == lv("0.49", "1")
    book.apply_change(change("0.49", "0", BUY))
    assert book.best_bid() == lv("0.48", "100")
    book.apply_change(change("0.48", "0", BUY))
    assert book.best_bid() == lv("0.47", "200")  # scanned down to the next level
    book.apply_change(change("0.5", "0", SELL))
    assert book.best_ask() == lv("0.52", "20")  # scanned up to the next level
    book.apply_change(change("0.47", "0", BUY))
    book.apply_change(change("0.45", "0", BUY))
    assert book.best_bid() is None
    assert book.best_bid_price == 0
    book.apply_change(change("0.52", "0", SELL))
    book.apply_change(change("0.55", "0", SELL))
    assert book.best_ask() is None
    assert book.best_ask_price == ONE
    book.apply_change(change("0.01", "3", BUY))
    book.apply_change(change("0.99", "4", SELL))
    assert book.best_bid() == lv("0.01", "3")
    assert book.best_ask() == lv("0.99", "4")


def test_extreme_prices_zero_and_one() -> None:
    book = OrderBook(ASSET)
    book.apply_change(change("0", "1", BUY))
    book.apply_change(change("1", "2", SELL))
    assert book.best_bid() == lv("0", "1")
    assert book.best_ask() == lv("1", "2")
    book.apply_change(change("1", "0", SELL))
    assert book.best_ask() is None
    # Index 0 and the top index survive a re-grid as best levels.
    book.apply_change(change("0.005", "3", SELL))
    assert book.unit == 5_000
    assert book.best_bid() == lv("0", "1")
    book.apply_change(change("1", "5", BUY))
    assert book.best_bid() == lv("1", "5")
    assert book.is_crossed()


def test_price_outside_zero_one_raises_and_leaves_book_unchanged(book: OrderBook) -> None:
    before = (list(book.bids()), list(book.asks()))
    with pytest.raises(ValueError, match="outside"):
        book.apply_change(PriceLevelChange(ASSET, ONE + 10_000, 1, SELL))
    with pytest.raises(ValueError, match="outside"):
        book.apply_change(PriceLevelChange(ASSET, -10_000, 1, BUY))
    with pytest.raises(ValueError, match="negative"):
        book.apply_change(PriceLevelChange(ASSET, 480_000, -1, BUY))
    with pytest.raises(ValueError, match="outside"):
        book.apply_snapshot(
            BookSnapshot(ASSET, "m", 0, "", (Level(ONE + 1, 1),), (), None),
        )
    assert (list(book.bids()), list(book.asks())) == before
    assert book.unit == 10_000


def test_timestamp_is_recorded_when_given(book: OrderBook) -> None:
    book.apply_change(change("0.47", "1", BUY))
    assert book.last_update_ms == 1_000
    book.apply_change(change("0.47", "2", BUY), 5_000)
    assert book.last_update_ms == 5_000


# --- grid --------------------------------------------------------------------------------------


def test_off_grid_price_regrids_exactly(book: OrderBook) -> None:
    assert book.unit == 10_000
    book.apply_change(change("0.505", "3", SELL))
    assert book.unit == 5_000
    assert book.tick_size == 10_000  # the venue's tick is unchanged; only our grid is finer
    assert book.statistics().regrids == 1
    assert list(book.asks()) == ladder(
        [("0.5", "10"), ("0.505", "3"), ("0.52", "20"), ("0.55", "30")]
    )
    assert list(book.bids()) == ladder([("0.48", "100"), ("0.47", "200"), ("0.45", "50")])
    book.apply_change(change("0.5", "0", SELL))
    assert book.best_ask() == lv("0.505", "3")


def test_off_grid_removal_does_not_regrid(book: OrderBook) -> None:
    book.apply_change(change("0.505", "0", SELL))
    assert book.unit == 10_000
    assert book.statistics().regrids == 0
    assert book.best_ask() == lv("0.5", "10")


def test_regrid_to_one_micro_unit_keeps_every_level(book: OrderBook) -> None:
    book.apply_change(change("0.123457", "1", BUY))
    assert book.unit == 1
    assert list(book.bids()) == ladder(
        [("0.48", "100"), ("0.47", "200"), ("0.45", "50"), ("0.123457", "1")]
    )
    assert book.best_ask() == lv("0.5", "10")


def test_snapshot_restarts_grid_at_tick(book: OrderBook) -> None:
    book.apply_change(change("0.505", "3", SELL))
    assert book.unit == 5_000
    book.apply_snapshot(snapshot(bids=[("0.4", "1")], asks=[("0.6", "1")]))
    assert book.unit == 10_000
    # An off-grid price in a snapshot refines the grid just enough.
    book.apply_snapshot(snapshot(bids=[("0.4", "1"), ("0.4025", "2")], asks=[("0.6", "1")]))
    assert book.unit == 2_500
    assert book.best_bid() == lv("0.4025", "2")


def test_snapshot_without_tick_keeps_known_tick() -> None:
    book = OrderBook(ASSET, tick_size=1_000)
    book.apply_snapshot(snapshot(bids=[("0.401", "1")], asks=[], tick=None))
    assert book.tick_size == 1_000
    assert book.unit == 1_000


def test_tick_size_change_to_finer(book: OrderBook) -> None:
    book.apply_tick_size_change(TickSizeChange(ASSET, "0xm", 10_000, 1_000, 7_000))
    assert book.tick_size == 1_000
    assert book.unit == 1_000
    assert book.last_update_ms == 7_000
    assert list(book.bids()) == ladder([("0.48", "100"), ("0.47", "200"), ("0.45", "50")])
    book.apply_change(change("0.481", "9", BUY))
    assert book.best_bid() == lv("0.481", "9")
    assert book.statistics().regrids == 1
    assert book.statistics().tick_size_changes == 1


def test_tick_size_change_to_coarser_keeps_finer_grid() -> None:
    book = OrderBook(ASSET, tick_size=1_000)
    book.apply_snapshot(snapshot(bids=[("0.961", "5")], asks=[("0.963", "6")], tick="0.001"))
    book.apply_tick_size_change(TickSizeChange(ASSET, "0xm", 1_000, 10_000, 7_000))
    assert book.tick_size == 10_000
    assert book.unit == 1_000  # gcd(0.001, 0.01): the old levels stay representable
    assert book.best_bid() == lv("0.961", "5")
    assert book.best_ask() == lv("0.963", "6")
    assert book.statistics().regrids == 0


def test_tick_size_change_to_quarter_cent(book: OrderBook) -> None:
    book.apply_tick_size_change(TickSizeChange(ASSET, "0xm", 10_000, 2_500, 7_000))
    assert book.unit == 2_500
    book.apply_change(change("0.4825", "1", BUY))
    assert book.best_bid() == lv("0.4825", "1")


def test_tick_size_change_validation(book: OrderBook) -> None:
    with pytest.raises(ValueError, match="asset"):
        book.apply_tick_size_change(TickSizeChange("other", "0xm", 10_000, 1_000, 0))
    with pytest.raises(ValueError, match="tick size"):
        book.apply_tick_size_change(TickSizeChange(ASSET, "0xm", 10_000, 0, 0))
    with pytest.raises(ValueError, match="tick size"):
        OrderBook(ASSET, tick_size=0)


# --- reads -------------------------------------------------------------------------------------


def test_spread_and_mid(book: OrderBook) -> None:
    assert book.spread() == u("0.02")
    assert book.mid() == u("0.49")
    assert book.mid_exact() == Fraction(u("0.49"))
    book.apply_change(change("0.480001", "1", BUY))
    assert book.mid() == 490_000  # floor of 490_000.5
    assert book.mid_exact() == Fraction(980_001, 2)


def test_crossed_detection(book: OrderBook) -> None:
    assert not book.is_crossed()
    book.apply_change(change("0.5", "1", BUY))
    assert book.is_crossed()  # equal prices count as crossed
    assert book.spread() == 0
    book.apply_change(change("0.51", "1", BUY))
    assert book.is_crossed()
    assert book.spread() == -u("0.01")
    book.apply_change(change("0.51", "0", BUY))
    book.apply_change(change("0.5", "0", BUY))
    assert not book.is_crossed()


def test_depth_and_view(book: OrderBook) -> None:
    bids, asks = book.depth(2)
    assert bids == (lv("0.48", "100"), lv("0.47", "200"))
    assert asks == (lv("0.5", "10"), lv("0.52", "20"))
    view = book.view(depth=2)
    assert view == BookView(
        asset_id=ASSET,
        best_bid=lv("0.48", "100"),
        best_ask=lv("0.5", "10"),
        bids=bids,
        asks=asks,
        tick_size=10_000,
        last_update_ms=1_000,
        stale=False,
    )
    assert view.best_bid_price == u("0.48")
    assert view.best_ask_price == u("0.5")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        view.stale = True  # type: ignore[misc]
    # The view is a snapshot: later changes do not show through.
    book.apply_change(change("0.48", "0", BUY))
    assert view.best_bid == lv("0.48", "100")
    top = book.view(depth=0)
    assert top.bids == ()
    assert top.best_bid == lv("0.47", "200")


def test_empty_view_uses_venue_conventions() -> None:
    view = OrderBook(ASSET).view()
    assert view.best_bid is None
    assert view.best_ask is None
    assert view.best_bid_price == 0
    assert view.best_ask_price == ONE
    assert view.stale


def test_mark_stale_and_clear(book: OrderBook) -> None:
    # Read ``stale`` through ``view()``: mypy would keep a narrowed ``book.stale`` across calls.
    book.mark_stale()
    assert book.view().stale
    book.apply_snapshot(snapshot(bids=[("0.4", "1")], asks=[]))
    assert not book.view().stale
    book.clear()
    assert book.view().stale
    assert book.best_bid() is None


# --- complement --------------------------------------------------------------------------------


def test_complement_view_mirrors_prices_and_sides(book: OrderBook) -> None:
    no = book.complement("no")
    assert no.asset_id == "no"
    # NO bids are YES asks at 1 - p, best first; NO asks are YES bids at 1 - p.
    assert list(no.bids()) == ladder([("0.5", "10"), ("0.48", "20"), ("0.45", "30")])
    assert list(no.asks()) == ladder([("0.52", "100"), ("0.53", "200"), ("0.55", "50")])
    assert no.best_bid() == lv("0.5", "10")
    assert no.best_ask() == lv("0.52", "100")
    assert no.best_bid_price == u("0.5")
    assert no.best_ask_price == u("0.52")
    assert no.spread() == book.spread()
    assert no.mid() == u("0.51")
    assert not no.is_crossed()
    # It is a live view, not a copy.
    book.apply_change(change("0.49", "7", BUY))
    assert no.best_ask() == lv("0.51", "7")
    view = no.view(depth=1)
    assert view.asset_id == "no"
    assert view.bids == (lv("0.5", "10"),)
    assert view.asks == (lv("0.51", "7"),)
    assert view.tick_size == book.tick_size
    assert view.stale == book.stale


def test_complement_of_empty_sides_follows_venue_convention() -> None:
    book = OrderBook(ASSET)
    no = book.complement()
    assert no.best_bid() is None
    assert no.best_ask() is None
    assert no.best_bid_price == 0
    assert no.best_ask_price == ONE


def test_complement_walks(book: OrderBook) -> None:
    no = book.complement()
    # Buying NO walks the NO asks = YES bids mirrored: 100 @ 0.52, then 200 @ 0.53.
    sweep = no.cost_to_buy(u("150"))
    assert sweep is not None
    assert sweep.notional == u("52") + u("26.5")
    assert sweep.worst_price == u("0.53")
    # Selling NO walks the NO bids = YES asks mirrored: 10 @ 0.50, 20 @ 0.48.
    sweep = no.proceeds_to_sell(u("15"))
    assert sweep is not None
    assert sweep.notional == u("5") + u("2.4")


# --- depth walks -------------------------------------------------------------------------------


def test_cost_to_buy_exact(book: OrderBook) -> None:
    sweep = book.cost_to_buy(u("25"))
    # 10 @ 0.50 + 15 @ 0.52 = 5 + 7.8 = 12.8
    assert sweep == Sweep(
        requested=u("25"),
        filled=u("25"),
        notional_pico=u("12.8") * ONE,
        notional=u("12.8"),
        worst_price=u("0.52"),
        levels=2,
    )
    assert sweep.complete
    assert sweep.average_price == Fraction(u("12.8"), 25)  # 0.512 -> 512_000 micro-units
    assert sweep.average_price == 512_000


def test_cost_to_buy_thin_depth_is_partial(book: OrderBook) -> None:
    sweep = book.cost_to_buy(u("1000"))
    assert sweep is not None
    assert not sweep.complete
    assert sweep.filled == u("60")
    assert sweep.notional == u("5") + u("10.4") + u("16.5")
    assert sweep.worst_price == u("0.55")
    assert sweep.levels == 3


def test_proceeds_to_sell_exact(book: OrderBook) -> None:
    sweep = book.proceeds_to_sell(u("150"))
    # 100 @ 0.48 + 50 @ 0.47 = 48 + 23.5
    assert sweep is not None
    assert sweep.notional == u("71.5")
    assert sweep.worst_price == u("0.47")
    assert sweep.average_price == Fraction(u("71.5"), 150)


def test_walk_rounding_is_against_the_taker() -> None:
    book = OrderBook(ASSET, tick_size=1_000)
    book.apply_snapshot(snapshot(bids=[("0.333", "10")], asks=[("0.667", "10")], tick="0.001"))
    # 0.000001 shares at 0.667 = 0.000000667 pUSD: up to 1 micro-unit to buy, down to 0 to sell.
    buy = book.cost_to_buy(1)
    sell = book.proceeds_to_sell(1)
    assert buy is not None
    assert sell is not None
    assert buy.notional_pico == 667_000
    assert buy.notional == 1
    assert sell.notional_pico == 333_000
    assert sell.notional == 0


def test_walk_on_empty_side_and_bad_size(book: OrderBook) -> None:
    assert OrderBook(ASSET).cost_to_buy(1) is None
    assert OrderBook(ASSET).proceeds_to_sell(1) is None
    with pytest.raises(ValueError, match="positive"):
        book.cost_to_buy(0)
    with pytest.raises(ValueError, match="positive"):
        book.proceeds_to_sell(-1)


# --- integrity check ---------------------------------------------------------------------------


def test_no_mismatch_when_venue_top_agrees(book: OrderBook) -> None:
    assert book.apply_change(change("0.49", "1", BUY, best_bid="0.49", best_ask="0.5")) is None
    assert book.apply_change(change("0.49", "0", BUY, best_bid="0.48")) is None
    assert book.statistics().mismatches == 0
    assert not book.stale


def test_empty_sides_compare_with_venue_convention() -> None:
    book = OrderBook(ASSET)
    book.apply_snapshot(snapshot(bids=[], asks=[]))
    assert book.apply_change(change("0.5", "200", BUY, best_bid="0.5", best_ask="1")) is None
    assert book.apply_change(change("0.5", "0", BUY, best_bid="0", best_ask="1")) is None


def test_mismatch_reported_and_marks_stale(book: OrderBook) -> None:
    got = book.apply_change(change("0.49", "1", BUY, best_bid="0.49", best_ask="0.51"))
    assert got == Mismatch(
        asset_id=ASSET,
        expected_best_bid=u("0.49"),
        expected_best_ask=u("0.51"),
        local_best_bid=u("0.49"),
        local_best_ask=u("0.5"),
    )
    assert book.stale
    assert book.statistics().mismatches == 1
    # The level was applied regardless.
    assert book.best_bid() == lv("0.49", "1")


def test_apply_price_change_routes_by_asset_and_skips_unknown(book: OrderBook) -> None:
    other = OrderBook("other")
    other.apply_snapshot(snapshot(bids=[], asks=[], asset_id="other"))
    event = PriceChange(
        market="0xm",
        timestamp_ms=9_000,
        changes=(
            change("0.49", "1", BUY, best_bid="0.49", best_ask="0.5"),
            change("0.3", "1", SELL, asset_id="unknown", best_bid="0", best_ask="0.3"),
            change("0.7", "2", SELL, asset_id="other", best_bid="0", best_ask="0.6"),
        ),
    )
    mismatches = apply_price_change({ASSET: book, "other": other}, event)
    assert mismatches == [Mismatch("other", 0, u("0.6"), 0, u("0.7"))]
    assert book.best_bid() == lv("0.49", "1")
    assert book.last_update_ms == 9_000
    assert other.best_ask() == lv("0.7", "2")


def test_statistics_counts(book: OrderBook) -> None:
    book.apply_change(change("0.49", "1", BUY))
    book.apply_change(change("0.495", "1", BUY))
    book.apply_tick_size_change(TickSizeChange(ASSET, "0xm", 10_000, 1_000, 0))
    stats = book.statistics()
    assert stats.snapshots == 1
    assert stats.changes == 2
    assert stats.tick_size_changes == 1
    assert stats.regrids == 2
    assert stats.unit == 1_000
    assert stats.bid_levels == 5
    assert stats.ask_levels == 3


# --- properties against a naive model ----------------------------------------------------------


@attrs.define
class Model:
    """The obvious book: a dict per side, best by max/min, ladders by sorting."""

    bids: dict[int, int] = attrs.field(factory=dict)
    asks: dict[int, int] = attrs.field(factory=dict)

    def snapshot(self, snap: BookSnapshot) -> None:
        self.bids = {p: s for p, s in snap.bids if s}
        self.asks = {p: s for p, s in snap.asks if s}

    def change(self, c: PriceLevelChange) -> None:
        side = self.bids if c.side is BUY else self.asks
        if c.size:
            side[c.price] = c.size
        else:
            side.pop(c.price, None)

    def bid_ladder(self) -> list[Level]:
        return [Level(p, s) for p, s in sorted(self.bids.items(), reverse=True)]

    def ask_ladder(self) -> list[Level]:
        return [Level(p, s) for p, s in sorted(self.asks.items())]

    def best_bid_price(self) -> int:
        return max(self.bids, default=0)

    def best_ask_price(self) -> int:
        return min(self.asks, default=ONE)


def model_sweep(levels: list[Level], size: int, *, round_up: bool) -> Sweep | None:
    filled = 0
    pico = 0
    taken: list[Level] = []
    for price, available in levels:
        if filled == size:
            break
        take = min(available, size - filled)
        filled += take
        pico += price * take
        taken.append(Level(price, take))
    if not taken:
        return None
    notional = -(-pico // ONE) if round_up else pico // ONE
    return Sweep(size, filled, pico, notional, taken[-1].price, len(taken))


GRIDS = sorted(TICK_SIZES)
SIZES = st.one_of(st.just(0), st.integers(1, 10**6), st.integers(1, 10**12))


@st.composite
def prices(draw: st.DrawFn) -> int:
    grid = draw(st.sampled_from(GRIDS))
    if draw(st.integers(0, 15)) == 0:
        return draw(st.sampled_from([0, ONE]))  # the extremes are legal prices too
    # Cluster most prices near the middle so levels collide, are replaced and removed.
    if draw(st.booleans()):
        return grid * draw(st.integers(0, ONE // grid))
    centre = (ONE // 2) // grid
    spread = max(3, 30_000 // grid)
    return grid * draw(st.integers(max(0, centre - spread), min(ONE // grid, centre + spread)))


@st.composite
def snapshots(draw: st.DrawFn) -> BookSnapshot:
    levels = st.lists(st.builds(Level, prices(), SIZES), max_size=25)
    tick = draw(st.one_of(st.none(), st.sampled_from(GRIDS)))
    return BookSnapshot(ASSET, "0xm", 0, "", tuple(draw(levels)), tuple(draw(levels)), tick)


changes = st.builds(PriceLevelChange, st.just(ASSET), prices(), SIZES, st.sampled_from([BUY, SELL]))


@attrs.frozen
class Touch:
    """Change an existing level (``rank`` 0 is the best), so removing the best is common."""

    side: Side
    rank: int
    size: int


touches = st.builds(
    Touch,
    st.sampled_from([BUY, SELL]),
    st.one_of(st.just(0), st.integers(0, 30)),
    st.one_of(st.just(0), SIZES),
)
operations = st.one_of(
    changes,
    changes,
    touches,
    touches,
    st.builds(
        TickSizeChange,
        st.just(ASSET),
        st.just("0xm"),
        st.sampled_from(GRIDS),
        st.sampled_from(GRIDS),
        st.just(0),
    ),
    snapshots(),
)


def assert_matches(book: OrderBook, model: Model) -> None:
    assert list(book.bids()) == model.bid_ladder()
    assert list(book.asks()) == model.ask_ladder()
    assert book.best_bid_price == model.best_bid_price()
    assert book.best_ask_price == model.best_ask_price()
    bid_ladder = model.bid_ladder()
    ask_ladder = model.ask_ladder()
    assert book.best_bid() == (bid_ladder[0] if bid_ladder else None)
    assert book.best_ask() == (ask_ladder[0] if ask_ladder else None)
    assert book.is_crossed() == bool(
        bid_ladder and ask_ladder and bid_ladder[0].price >= ask_ladder[0].price
    )
    stats = book.statistics()
    assert (stats.bid_levels, stats.ask_levels) == (len(model.bids), len(model.asks))
    no = book.complement()
    assert list(no.bids()) == [Level(ONE - p, s) for p, s in ask_ladder]
    assert list(no.asks()) == [Level(ONE - p, s) for p, s in bid_ladder]
    assert no.best_bid_price == ONE - model.best_ask_price()
    assert no.best_ask_price == ONE - model.best_bid_price()


@settings(max_examples=100, deadline=None)
@given(
    initial_tick=st.sampled_from(GRIDS),
    first=snapshots(),
    ops=st.lists(operations, max_size=60),
    walk_sizes=st.lists(st.integers(1, 10**13), min_size=1, max_size=5),
)
def test_book_matches_naive_model(
    initial_tick: int,
    first: BookSnapshot,
    ops: list[Any],
    walk_sizes: list[int],
) -> None:
    book = OrderBook(ASSET, tick_size=initial_tick)
    model = Model()
    book.apply_snapshot(first)
    model.snapshot(first)
    assert_matches(book, model)
    applied = 0
    for op in ops:
        if isinstance(op, Touch):
            ladder = model.bid_ladder() if op.side is BUY else model.ask_ladder()
            if not ladder:
                continue
            op = PriceLevelChange(ASSET, ladder[op.rank % len(ladder)].price, op.size, op.side)
        if isinstance(op, PriceLevelChange):
            model.change(op)
            # Feed the venue's top as the model computes it: never a mismatch.
            op = op._replace(best_bid=model.best_bid_price(), best_ask=model.best_ask_price())
            assert book.apply_change(op) is None
            applied += 1
        elif isinstance(op, TickSizeChange):
            book.apply_tick_size_change(op)
            assert book.tick_size == op.new_tick_size
        else:
            book.apply_snapshot(op)
            model.snapshot(op)
        assert book.unit >= 100  # every price was on a venue grid: never finer than 0.0001
        assert_matches(book, model)
    for size in walk_sizes:
        assert book.cost_to_buy(size) == model_sweep(model.ask_ladder(), size, round_up=True)
        assert book.proceeds_to_sell(size) == model_sweep(model.bid_ladder(), size, round_up=False)
    stats = book.statistics()
    assert stats.mismatches == 0
    assert stats.changes == applied


@settings(max_examples=50, deadline=None)
@given(first=snapshots(), ops=st.lists(changes, max_size=30), data=st.data())
def test_wrong_venue_top_is_always_reported(
    first: BookSnapshot, ops: list[PriceLevelChange], data: st.DataObject
) -> None:
    book = OrderBook(ASSET)
    model = Model()
    book.apply_snapshot(first)
    model.snapshot(first)
    for op in ops:
        model.change(op)
        bid = model.best_bid_price()
        ask = model.best_ask_price()
        wrong_bid = data.draw(st.sampled_from([bid, bid + 1, None]))
        wrong_ask = data.draw(st.sampled_from([ask, ask - 1, None]))
        got = book.apply_change(op._replace(best_bid=wrong_bid, best_ask=wrong_ask))
        if wrong_bid in (bid, None) and wrong_ask in (ask, None):
            assert got is None
        else:
            assert got == Mismatch(ASSET, wrong_bid, wrong_ask, bid, ask)


@settings(max_examples=100, deadline=None)
@given(snap=snapshots(), sizes=st.lists(st.integers(1, 10**13), min_size=2, max_size=8))
def test_walks_are_monotone_in_size(snap: BookSnapshot, sizes: list[int]) -> None:
    book = OrderBook(ASSET)
    book.apply_snapshot(snap)
    sizes.sort()
    for walk in (book.cost_to_buy, book.proceeds_to_sell):
        sweeps = [walk(size) for size in sizes]
        if sweeps[0] is None:
            assert all(sweep is None for sweep in sweeps)
            continue
        real = [sweep for sweep in sweeps if sweep is not None]
        assert len(real) == len(sweeps)
        for smaller, larger in itertools.pairwise(real):
            assert larger.filled >= smaller.filled
            assert larger.notional_pico >= smaller.notional_pico
            assert larger.notional >= smaller.notional
    # Average prices move against the taker as size grows.
    buys = [book.cost_to_buy(size) for size in sizes]
    sells = [book.proceeds_to_sell(size) for size in sizes]
    buy_avgs = [b.average_price for b in buys if b is not None]
    sell_avgs = [s.average_price for s in sells if s is not None]
    assert buy_avgs == sorted(buy_avgs)
    assert sell_avgs == sorted(sell_avgs, reverse=True)


# --- the real burst ------------------------------------------------------------------------------


def test_real_crossing_burst_reproduces_every_venue_top() -> None:
    """Replay a real capture: 1 book (YES token) + 15 price_change frames on both tokens.

    Every change carries the venue's best bid/ask for its token after the change. Only the YES
    token has a snapshot, so those changes are checked against the YES book directly. The NO
    token's changes are checked against the YES book's complement view, once per frame, after the
    whole frame is applied: each frame carries one order's change on both books (YES BUY p is NO
    SELL 1 - p), and when the NO change comes first in a frame the YES book has not taken the
    mirror image yet, so a mid-frame comparison would compare two different instants.
    """
    messages = orjson.loads(BURST.read_bytes())
    books: dict[str, OrderBook] = {}
    checked_direct = 0
    checked_complement = 0
    for message in messages:
        for event in decode_market_frame(orjson.dumps(message)):
            if isinstance(event, BookSnapshot):
                book = OrderBook(event.asset_id)
                book.apply_snapshot(event)
                books[event.asset_id] = book
                continue
            assert isinstance(event, PriceChange)
            assert apply_price_change(books, event) == []
            checked_direct += sum(
                1
                for c in event.changes
                if c.asset_id in books and (c.best_bid is not None or c.best_ask is not None)
            )
            # The NO token: no snapshot, so check it through the YES book's complement.
            (yes_id,) = books
            others = [c for c in event.changes if c.asset_id != yes_id]
            if others:
                last = others[-1]
                no = books[yes_id].complement(last.asset_id)
                assert (no.best_bid_price, no.best_ask_price) == (last.best_bid, last.best_ask)
                checked_complement += 1
            assert not books[yes_id].is_crossed()
    assert len(books) == 1
    (yes,) = books.values()
    assert checked_direct == yes.statistics().changes == 15
    assert checked_complement == 15
    assert yes.statistics().mismatches == 0
    assert not yes.stale
    # The final top of book the last frame reported for YES.
    assert (yes.best_bid_price, yes.best_ask_price) == (u("0.311"), u("0.36"))

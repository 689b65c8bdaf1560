"""The user channel's state machine on recorded samples and on hand-built event sequences."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from bot.core.money import ONE, Side, taker_fee_units
from bot.core.trading import Fill, Liquidity, OrderStatus, OrderUpdate
from bot.core.user_events import (
    FillConfirmed,
    TradeFailed,
    UserEventMapper,
    UserFill,
    map_order_status,
)
from bot.core.wire.market_events import Pong
from bot.core.wire.user import OrderStatus as WireOrderStatus
from bot.core.wire.user import OrderType as WireOrderType
from bot.core.wire.user import TradeStatus, UserOrder, UserTrade, decode_user_frame

FIXTURES = Path(__file__).parent.parent / "fixtures"
ME = "00000000-0000-0000-0000-000000000001"


def load(name: str) -> UserOrder | UserTrade:
    (event,) = decode_user_frame((FIXTURES / name).read_bytes())
    assert isinstance(event, UserOrder | UserTrade)
    return event


def trade(status: str, **changes: Any) -> UserTrade:
    """A taker trade of ours (5 shares BUY at 0.40, fee rate 10 bps) with ``status``."""
    data: dict[str, Any] = {
        "event_type": "trade",
        "type": "TRADE",
        "id": "t-1",
        "taker_order_id": "0xtaker",
        "market": "0xcond",
        "asset_id": "111",
        "side": "BUY",
        "price": "0.4",
        "size": "5",
        "status": status,
        "trader_side": "TAKER",
        "owner": ME,
        "trade_owner": ME,
        "fee_rate_bps": "1000",
        "match_time": "1762776367",
        "maker_orders": [],
    }
    data.update(changes)
    (event,) = decode_user_frame(orjson.dumps(data))
    assert isinstance(event, UserTrade)
    return event


def order(status: str, kind: str, matched: str = "0", **changes: Any) -> UserOrder:
    data: dict[str, Any] = {
        "event_type": "order",
        "type": kind,
        "id": "0xorder",
        "market": "0xcond",
        "asset_id": "111",
        "side": "SELL",
        "price": "0.55",
        "original_size": "10",
        "size_matched": matched,
        "status": status,
        "order_type": "GTC",
        "timestamp": "1762776367000",
    }
    data.update(changes)
    (event,) = decode_user_frame(orjson.dumps(data))
    assert isinstance(event, UserOrder)
    return event


# --- orders


def test_fok_killed_sample_is_a_cancellation_with_the_venue_reason() -> None:
    mapper = UserEventMapper(ME, strategy_of={"0x78xx": "arb"}.get)
    [update] = mapper.apply(load("nautilus_crates/ws_user_order_fok_killed.json"), now=7.0)
    assert update == OrderUpdate(
        order_id="0x78xx",
        strategy="arb",
        token_id="256",
        side=Side.BUY,
        price=600_000,
        size=12 * ONE,
        filled=0,
        status=OrderStatus.CANCELED,
        reason="order couldn't be fully filled. FOK orders are fully filled or killed.",
        at=7.0,
    )


def test_invalid_sample_is_a_rejection() -> None:
    [update] = UserEventMapper(ME).apply(
        load("nautilus_crates/ws_user_order_venue_cancel.json"), 0.0
    )
    assert isinstance(update, OrderUpdate)
    assert (update.status, update.reason, update.strategy) == (
        OrderStatus.REJECTED,
        "invalid",
        "",
    )


@pytest.mark.parametrize(
    ("wire", "order_type", "filled", "expected"),
    [
        (WireOrderStatus.LIVE, WireOrderType.GTC, 0, OrderStatus.LIVE),
        (WireOrderStatus.DELAYED, WireOrderType.FOK, 0, OrderStatus.LIVE),
        (WireOrderStatus.UNMATCHED, WireOrderType.GTC, 0, OrderStatus.LIVE),
        (WireOrderStatus.MATCHED, WireOrderType.GTC, 10, OrderStatus.MATCHED),
        (WireOrderStatus.MATCHED, WireOrderType.GTC, 4, OrderStatus.LIVE),
        (WireOrderStatus.MATCHED, WireOrderType.FAK, 4, OrderStatus.MATCHED),
        (WireOrderStatus.CANCELED_MARKET_RESOLVED, None, 0, OrderStatus.CANCELED),
        (WireOrderStatus.INVALID, WireOrderType.GTC, 0, OrderStatus.REJECTED),
    ],
)
def test_status_mapping(
    wire: WireOrderStatus, order_type: WireOrderType | None, filled: int, expected: OrderStatus
) -> None:
    assert map_order_status(wire, order_type=order_type, filled=filled, size=10) is expected


def test_order_lifecycle_drops_duplicates_and_late_events_and_never_lowers_filled() -> None:
    mapper = UserEventMapper(ME)
    placed = mapper.on_order(order("LIVE", "PLACEMENT"), 1.0)
    assert placed is not None
    assert (placed.status, placed.filled, placed.size) == (OrderStatus.LIVE, 0, 10 * ONE)
    assert mapper.on_order(order("LIVE", "PLACEMENT"), 1.5) is None  # duplicate
    partial = mapper.on_order(order("LIVE", "UPDATE", "4"), 2.0)
    assert partial is not None
    assert (partial.status, partial.filled) == (OrderStatus.LIVE, 4 * ONE)
    # A reordered older update: filled stays 4, nothing new, dropped.
    assert mapper.on_order(order("LIVE", "UPDATE", "2"), 2.5) is None
    resolved = mapper.on_order(order("CANCELED_MARKET_RESOLVED", "CANCELLATION", ""), 3.0)
    assert resolved is not None
    assert (resolved.status, resolved.filled, resolved.reason) == (
        OrderStatus.CANCELED,
        4 * ONE,
        "market_resolved",
    )
    # After a terminal status, a late LIVE is ignored.
    assert mapper.on_order(order("LIVE", "UPDATE", "6"), 4.0) is None
    assert mapper.duplicates == 3


# --- trades


def test_taker_trade_matched_then_duplicate_then_mined_then_confirmed() -> None:
    mapper = UserEventMapper(ME, strategy_of=lambda oid: "mm" if oid == "0xtaker" else None)
    [first] = mapper.apply(trade("MATCHED"), now=1.0)
    fill = Fill(
        fill_id="t-1:0xtaker",
        order_id="0xtaker",
        strategy="mm",
        token_id="111",
        side=Side.BUY,
        price=400_000,
        size=5 * ONE,
        fee=taker_fee_units(5 * ONE, 400_000, 100_000),
        liquidity=Liquidity.TAKER,
        at=1.0,
        ts_ms=1_762_776_367_000,
    )
    assert fill.fee > 0
    assert first == UserFill(fill, "t-1", TradeStatus.MATCHED, provisional=True)
    assert mapper.apply(trade("MATCHED"), now=1.1) == []  # duplicate MATCHED
    assert mapper.apply(trade("MINED"), now=2.0) == []
    assert mapper.apply(trade("CONFIRMED"), now=3.0) == [FillConfirmed("t-1", (fill,), 3.0)]
    assert mapper.apply(trade("CONFIRMED"), now=3.5) == []
    assert mapper.duplicates == 2


def test_retrying_then_confirmed_keeps_one_fill_and_confirms_it() -> None:
    mapper = UserEventMapper(ME)
    [first] = mapper.apply(trade("MATCHED"), 1.0)
    assert isinstance(first, UserFill)
    assert first.provisional
    assert mapper.apply(trade("RETRYING"), 2.0) == []
    assert mapper.apply(trade("MINED"), 3.0) == []
    [confirmed] = mapper.apply(trade("CONFIRMED"), 4.0)
    assert confirmed == FillConfirmed("t-1", (first.fill,), 4.0)


def test_failed_undoes_the_provisional_fill_and_later_events_are_ignored() -> None:
    mapper = UserEventMapper(ME)
    [first] = mapper.apply(trade("MATCHED"), 1.0)
    assert isinstance(first, UserFill)
    assert mapper.apply(trade("RETRYING"), 2.0) == []
    assert mapper.apply(trade("FAILED"), 3.0) == [TradeFailed("t-1", (first.fill,), 3.0)]
    assert mapper.apply(trade("CONFIRMED"), 4.0) == []


def test_first_seen_confirmed_is_final_and_first_seen_failed_undoes_nothing() -> None:
    mapper = UserEventMapper(ME)
    [final] = mapper.apply(trade("CONFIRMED"), 1.0)
    assert isinstance(final, UserFill)
    assert (final.provisional, final.status) == (False, TradeStatus.CONFIRMED)
    assert mapper.apply(trade("FAILED", id="t-2"), 2.0) == [TradeFailed("t-2", (), 2.0)]
    assert mapper.apply(trade("MATCHED", id="t-2"), 2.5) == []


def test_maker_sample_yields_our_maker_entries_only() -> None:
    # user_trade4: a taker SELL matched three makers; two of them belong to one API key.
    mine = "a93a3d32-74fa-dd2b-4b67-98bfa6fc5cb5"
    events = UserEventMapper(mine).apply(load("nautilus_py_ws/user_trade4.json"), 5.0)
    assert all(isinstance(e, UserFill) and not e.provisional for e in events)
    fills = [e.fill for e in events if isinstance(e, UserFill)]
    assert [(f.order_id[:10], f.side, f.price, f.size, f.fee, f.liquidity) for f in fills] == [
        ("0x3ad09f22", Side.BUY, 400_000, 5 * ONE, 0, Liquidity.MAKER),
        ("0x67b598ca", Side.BUY, 300_000, 5 * ONE, 0, Liquidity.MAKER),
    ]
    assert fills[0].fill_id == "83b5c849-620e-4c23-b63b-2e779c04a6e7:" + fills[0].order_id


def test_maker_on_the_other_token_without_side_gets_the_taker_side_at_its_own_price() -> None:
    # user_trade1: a YES taker BUY at 0.518 matched a NO maker BUY at 0.482 (a mint) and YES
    # makers selling; the entries carry no ``side``.
    sample = load("nautilus_py_ws/user_trade1.json")
    assert isinstance(sample, UserTrade)
    no_maker, yes_maker = sample.maker_orders[0], sample.maker_orders[1]
    [mint] = UserEventMapper(no_maker.owner).apply(sample, 0.0)
    assert isinstance(mint, UserFill)
    assert mint.provisional  # MINED
    assert (mint.fill.token_id, mint.fill.side, mint.fill.price, mint.fill.size) == (
        no_maker.asset_id,
        Side.BUY,
        482_000,
        10 * ONE,
    )
    [sell] = UserEventMapper("someone", is_ours={yes_maker.order_id}.__contains__).apply(
        sample, 0.0
    )
    assert isinstance(sell, UserFill)
    assert (sell.fill.token_id, sell.fill.side, sell.fill.price) == (
        sample.asset_id,
        Side.SELL,
        518_000,
    )


def test_taker_sample_and_other_events() -> None:
    mapper = UserEventMapper(ME)
    [event] = mapper.apply(load("nautilus_crates/ws_user_trade.json"), 0.0)
    assert isinstance(event, UserFill)
    assert (event.fill.size, event.fill.price, event.fill.fee, event.provisional) == (
        25 * ONE,
        500_000,
        0,
        False,
    )
    assert mapper.apply(Pong(), 0.0) == []
    assert mapper.apply(object(), 0.0) == []


def test_state_is_bounded() -> None:
    mapper = UserEventMapper(ME, remember=2)
    for n in range(3):
        assert len(mapper.apply(trade("MATCHED", id=f"t-{n}"), 0.0)) == 1
    # t-0 was forgotten, t-2 is remembered.
    assert len(mapper.apply(trade("MATCHED", id="t-0"), 0.0)) == 1
    assert mapper.apply(trade("MATCHED", id="t-2"), 0.0) == []
    with pytest.raises(ValueError, match="remember must be >= 1"):
        UserEventMapper(ME, remember=0)

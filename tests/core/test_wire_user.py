"""The user-channel decoder against every real and documented sample, and against bad frames."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from bot.core.errors import FrameDecodeError
from bot.core.money import Side
from bot.core.wire.market_events import Pong, UnknownEvent
from bot.core.wire.user import (
    OrderEventType,
    OrderStatus,
    OrderType,
    TraderSide,
    TradeStatus,
    UserOrder,
    UserTrade,
    decode_user_frame,
)

FIXTURES = Path(__file__).parent.parent / "fixtures"

USER_SAMPLES = {
    "docs_examples/user_order_docs.json": UserOrder,
    "docs_examples/user_trade_docs.json": UserTrade,
    "nautilus_crates/ws_user_order_cancellation.json": UserOrder,
    "nautilus_crates/ws_user_order_fok_killed.json": UserOrder,
    "nautilus_crates/ws_user_order_matched.json": UserOrder,
    "nautilus_crates/ws_user_order_msg.json": UserOrder,
    "nautilus_crates/ws_user_order_placement.json": UserOrder,
    "nautilus_crates/ws_user_order_update.json": UserOrder,
    "nautilus_crates/ws_user_order_venue_cancel.json": UserOrder,
    "nautilus_crates/ws_user_trade.json": UserTrade,
    "nautilus_crates/ws_user_trade_msg.json": UserTrade,
    "nautilus_index/ws_user_order_fok_buy_pusd_size.json": UserOrder,
    "nautilus_py_ws/order_cancel.json": UserOrder,
    "nautilus_py_ws/order_placement.json": UserOrder,
    "nautilus_py_ws/user_trade1.json": UserTrade,
    "nautilus_py_ws/user_trade2.json": UserTrade,
    "nautilus_py_ws/user_trade3.json": UserTrade,
    "nautilus_py_ws/user_trade4.json": UserTrade,
}

ASSET = "21742633143463906290569050155826241533067272736897614950488156847949938836455"
CONDITION = "0xdd22472e552920b8438158ea7238bfadfa4f736aa4cee91a6b86c39ead110917"


def load(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def one(name: str) -> UserOrder | UserTrade:
    (event,) = decode_user_frame(load(name))
    assert isinstance(event, UserOrder | UserTrade)
    return event


def order(name: str) -> UserOrder:
    event = one(name)
    assert isinstance(event, UserOrder)
    return event


def trade(name: str) -> UserTrade:
    event = one(name)
    assert isinstance(event, UserTrade)
    return event


@pytest.mark.parametrize(("name", "expected_type"), sorted(USER_SAMPLES.items()))
def test_every_user_sample_decodes_to_its_type(name: str, expected_type: type) -> None:
    events = decode_user_frame(load(name))
    assert len(events) == 1
    assert type(events[0]) is expected_type


# --- order events ------------------------------------------------------------------------------


def test_real_placement() -> None:
    event = order("nautilus_py_ws/order_placement.json")
    assert event.id == "0x0f76f4dc6eaf3332f4100f2e8a0b4a927351dd64646b7bb12f37df775c657a78"
    assert event.type is OrderEventType.PLACEMENT
    assert event.status is OrderStatus.LIVE
    assert event.status_text == "LIVE"
    assert event.status_reason == ""
    assert (event.market, event.asset_id) == (CONDITION, ASSET)
    assert event.side is Side.BUY
    assert (event.price, event.original_size, event.size_matched) == (513_000, 5_000_000, 0)
    assert event.order_type is OrderType.GTC
    assert event.outcome == "Yes"
    assert event.owner == event.order_owner == "3e2c94ca-8124-c4c1-c7ea-be1ea21b71fe"
    assert event.associate_trades == ()
    assert event.expiration == 0
    assert event.created_at_ms == 1_725_842_520_000  # "created_at" is unix seconds
    assert event.timestamp_ms == 1_725_842_520_990


def test_real_cancellation_keeps_the_matched_size() -> None:
    event = order("nautilus_py_ws/order_cancel.json")
    assert event.type is OrderEventType.CANCELLATION
    assert event.status is OrderStatus.CANCELED
    assert event.side is Side.SELL
    assert (event.original_size, event.size_matched) == (5_000_000, 5_000_000)


def test_killed_fok_has_a_prefixed_status_and_empty_fields() -> None:
    event = order("nautilus_crates/ws_user_order_fok_killed.json")
    assert event.type is OrderEventType.CANCELLATION
    assert event.status is OrderStatus.CANCELED
    assert event.status_text.startswith("CANCELED_order couldn't be fully filled")
    assert event.status_reason == (
        "order couldn't be fully filled. FOK orders are fully filled or killed."
    )
    assert event.size_matched == 0  # "" on the wire
    assert event.created_at_ms is None  # "" on the wire
    assert event.order_type is OrderType.FOK
    assert event.outcome == ""
    assert (event.price, event.original_size) == (600_000, 12_000_000)


def test_killed_fok_buy_with_pusd_sized_order() -> None:
    event = order("nautilus_index/ws_user_order_fok_buy_pusd_size.json")
    assert event.status is OrderStatus.CANCELED
    assert (event.price, event.original_size, event.size_matched) == (10_000, 1_010_000, 0)
    assert event.timestamp_ms == 1_786_179_997_002


def test_partial_fill_update_and_full_match() -> None:
    update = order("nautilus_crates/ws_user_order_update.json")
    assert update.type is OrderEventType.UPDATE
    assert update.status is OrderStatus.LIVE
    assert (update.original_size, update.size_matched) == (100_000_000, 25_000_000)
    assert update.associate_trades == ("trade-0xabcdef1234",)
    assert update.expiration == 0  # null on the wire
    matched = order("nautilus_crates/ws_user_order_matched.json")
    assert matched.status is OrderStatus.MATCHED
    assert matched.size_matched == matched.original_size == 100_000_000


def test_venue_cancel_with_invalid_status() -> None:
    event = order("nautilus_crates/ws_user_order_venue_cancel.json")
    assert event.type is OrderEventType.CANCELLATION
    assert event.status is OrderStatus.INVALID
    assert event.created_at_ms == 1_774_377_384_000  # already milliseconds in this fixture


def test_docs_order_normalizes_second_timestamps_to_ms() -> None:
    event = order("docs_examples/user_order_docs.json")
    assert event.order_type is OrderType.GTD
    assert event.expiration == 1_234_567
    assert event.timestamp_ms == 1_672_290_687_000
    assert event.price == 570_000
    assert event.original_size == 10_000_000


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("LIVE", OrderStatus.LIVE),
        ("live", OrderStatus.LIVE),
        ("MATCHED", OrderStatus.MATCHED),
        ("DELAYED", OrderStatus.DELAYED),
        ("UNMATCHED", OrderStatus.UNMATCHED),
        ("INVALID", OrderStatus.INVALID),
        ("CANCELED", OrderStatus.CANCELED),
        ("CANCELED_MARKET_RESOLVED", OrderStatus.CANCELED_MARKET_RESOLVED),
        ("CANCELED_some new reason", OrderStatus.CANCELED),
    ],
)
def test_order_status_spellings(text: str, status: OrderStatus) -> None:
    assert OrderStatus(text) is status


def test_market_resolved_cancellation_has_no_reason() -> None:
    obj = orjson.loads(load("nautilus_py_ws/order_cancel.json"))
    obj["status"] = "CANCELED_MARKET_RESOLVED"
    (event,) = decode_user_frame(orjson.dumps(obj))
    assert isinstance(event, UserOrder)
    assert event.status is OrderStatus.CANCELED_MARKET_RESOLVED
    assert event.status_reason == ""


# --- trade events ------------------------------------------------------------------------------


def test_real_taker_trade_with_cross_token_maker() -> None:
    event = trade("nautilus_py_ws/user_trade1.json")
    assert event.id == "83b5c849-620e-4c23-b63b-2e779c04a6e7"
    assert event.status is TradeStatus.MINED
    assert event.trader_side is TraderSide.MAKER
    assert event.side is Side.BUY
    assert event.asset_id == ASSET
    assert (event.price, event.size) == (518_000, 1_096_870_000)
    assert event.match_time_ms == 1_725_868_859_000
    assert event.last_update_ms == 1_725_868_885_000
    assert event.timestamp_ms == 1_725_868_885_871
    assert event.transaction_hash.startswith("0x876310b8")
    assert len(event.maker_orders) == 6
    no_maker = event.maker_orders[0]
    assert no_maker.outcome == "No"
    assert no_maker.asset_id != ASSET
    assert (no_maker.price, no_maker.matched_amount) == (482_000, 10_000_000)
    assert no_maker.side is None  # older frames carry no maker side
    assert sum(m.matched_amount for m in event.maker_orders) == event.size


def test_maker_trade_with_maker_side_and_second_timestamp() -> None:
    event = trade("nautilus_py_ws/user_trade4.json")
    assert event.status is TradeStatus.CONFIRMED
    assert event.trader_side is TraderSide.MAKER
    assert event.side is Side.SELL
    assert event.timestamp_ms == 1_762_776_436_000  # sent in seconds
    prices = [m.price for m in event.maker_orders]
    assert prices == [400_000, 350_000, 300_000]
    assert all(m.side is Side.BUY and m.matched_amount == 5_000_000 for m in event.maker_orders)


def test_docs_trade_accepts_the_matchtime_spelling() -> None:
    event = trade("docs_examples/user_trade_docs.json")
    assert event.match_time_ms == 1_672_290_701_000
    assert event.status is TradeStatus.MATCHED
    assert event.trader_side is TraderSide.TAKER
    assert event.transaction_hash == ""
    (maker,) = event.maker_orders
    assert maker.side is Side.SELL
    assert maker.fee_rate_bps == 0


def test_iso_match_time_in_fixture() -> None:
    event = trade("nautilus_crates/ws_user_trade.json")
    assert event.match_time_ms == 1_704_067_200_000  # 2024-01-01T00:00:00Z
    assert event.last_update_ms == 1_704_067_260_000
    assert event.bucket_index == 1
    (maker,) = event.maker_orders
    assert (maker.price, maker.matched_amount) == (500_000, 25_000_000)


@pytest.mark.parametrize("status", ["MATCHED", "MINED", "CONFIRMED", "RETRYING", "FAILED"])
def test_every_trade_status(status: str) -> None:
    obj = orjson.loads(load("nautilus_py_ws/user_trade2.json"))
    obj["status"] = status
    (event,) = decode_user_frame(orjson.dumps(obj))
    assert isinstance(event, UserTrade)
    assert event.status is TradeStatus(status)


# --- framing -----------------------------------------------------------------------------------


def test_pong() -> None:
    assert decode_user_frame("PONG") == [Pong()]
    assert decode_user_frame(b"PONG\n") == [Pong()]


def test_array_frame_in_order() -> None:
    frame = b"[" + load("nautilus_py_ws/order_placement.json") + b","
    frame += load("nautilus_py_ws/user_trade2.json") + b"]"
    events = decode_user_frame(frame)
    assert [type(e) for e in events] == [UserOrder, UserTrade]
    assert decode_user_frame("[]") == []


def test_unknown_event_type_is_not_an_error() -> None:
    (event,) = decode_user_frame('{"event_type": "rebate", "amount": "1"}')
    assert event == UnknownEvent("rebate", {"event_type": "rebate", "amount": "1"})


def test_object_without_event_type_or_type_is_unknown() -> None:
    (event,) = decode_user_frame('{"hello": 1}')
    assert isinstance(event, UnknownEvent)
    assert event.event_type == ""


# --- malformed input ---------------------------------------------------------------------------


def reason_for(frame: str | bytes) -> str:
    with pytest.raises(FrameDecodeError) as info:
        decode_user_frame(frame)
    return info.value.reason


def mutated(name: str, **changes: object) -> bytes:
    obj = orjson.loads(load(name))
    obj.update(changes)
    return orjson.dumps(obj)


def test_number_price_names_the_field() -> None:
    reason = reason_for(mutated("nautilus_py_ws/order_placement.json", price=0.513))
    assert reason == "expected a decimal string, got 0.513 @ $.price"


def test_wrong_type_in_a_maker_order_names_the_path() -> None:
    obj = orjson.loads(load("nautilus_py_ws/user_trade4.json"))
    obj["maker_orders"][1]["matched_amount"] = 5
    reason = reason_for(b"[" + orjson.dumps(obj) + b"]")
    assert reason == "expected a decimal string, got 5 @ $[0].maker_orders[1].matched_amount"


def test_several_problems_are_all_reported() -> None:
    frame = mutated("nautilus_py_ws/order_cancel.json", side="HOLD", status="GONE", id=7)
    reason = reason_for(frame)
    assert "@ $.side" in reason
    assert "@ $.status" in reason
    assert "@ $.id" in reason


def test_missing_required_field() -> None:
    obj = orjson.loads(load("nautilus_py_ws/user_trade2.json"))
    del obj["taker_order_id"]
    assert reason_for(orjson.dumps(obj)) == "required field missing @ $.taker_order_id"


def test_bad_timestamp_and_price_above_one() -> None:
    reason = reason_for(mutated("nautilus_py_ws/user_trade2.json", timestamp="soon", price="1.5"))
    assert 'expected a timestamp, got "soon" @ $.timestamp' in reason
    assert "expected a price between 0 and 1" in reason
    assert "@ $.price" in reason


def test_invalid_json_and_wrong_frame_shapes() -> None:
    assert reason_for("{").startswith("invalid JSON")
    assert reason_for("5") == "expected an object or an array, got 5"
    assert reason_for("[1]") == "expected an object, got 1 @ $[0]"


def test_error_carries_an_excerpt_of_the_frame() -> None:
    with pytest.raises(FrameDecodeError) as info:
        decode_user_frame(mutated("nautilus_py_ws/order_placement.json", side=1))
    assert info.value.excerpt.startswith('{"asset_id":"2174')
    assert "@ $.side" in str(info.value)

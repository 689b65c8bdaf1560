"""The market-channel decoder against every real and documented sample, and against bad frames."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.errors import FrameDecodeError
from bot.core.money import Side
from bot.core.wire.market import PONG, decode_market_frame, decode_market_object
from bot.core.wire.market_events import (
    BestBidAsk,
    BookSnapshot,
    LastTradePrice,
    Level,
    MarketResolved,
    NewMarket,
    PriceChange,
    PriceLevelChange,
    TickSizeChange,
    UnknownEvent,
)

FIXTURES = Path(__file__).parent.parent / "fixtures"

MARKET_SAMPLES = {
    "docs_examples/best_bid_ask_docs.json": BestBidAsk,
    "docs_examples/book_docs.json": BookSnapshot,
    "docs_examples/last_trade_price_docs.json": LastTradePrice,
    "docs_examples/price_change_legacy_changes_array.json": PriceChange,
    "docs_examples/price_change_new_price_changes_array.json": PriceChange,
    "docs_examples/tick_size_change_docs.json": TickSizeChange,
    "nautilus_crates/ws_book_snapshot.json": BookSnapshot,
    "nautilus_crates/ws_last_trade.json": LastTradePrice,
    "nautilus_crates/ws_market_best_bid_ask_msg.json": BestBidAsk,
    "nautilus_crates/ws_market_book_msg.json": BookSnapshot,
    "nautilus_crates/ws_market_last_trade_msg.json": LastTradePrice,
    "nautilus_crates/ws_market_new_market_msg.json": NewMarket,
    "nautilus_crates/ws_market_price_change_msg.json": PriceChange,
    "nautilus_crates/ws_market_resolved_msg.json": MarketResolved,
    "nautilus_crates/ws_market_tick_size_msg.json": TickSizeChange,
    "nautilus_crates/ws_quotes.json": PriceChange,
    "nautilus_crates/ws_tick_size_change.json": TickSizeChange,
    "nautilus_index/ws_book_snapshot_captured.json": BookSnapshot,
    "nautilus_py_ws/book.json": BookSnapshot,
    "nautilus_py_ws/last_trade_price.json": LastTradePrice,
    "nautilus_py_ws/price_change.json": PriceChange,
    "nautilus_py_ws/price_change_v2.json": PriceChange,
    "nautilus_py_ws/tick_size_change.json": TickSizeChange,
}


def load(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.mark.parametrize(("name", "expected_type"), sorted(MARKET_SAMPLES.items()))
def test_every_market_sample_decodes_to_its_type(name: str, expected_type: type) -> None:
    events = decode_market_frame(load(name))
    assert len(events) == 1
    assert type(events[0]) is expected_type


def test_current_price_change_schema_with_best_bid_ask_and_hash() -> None:
    (event,) = decode_market_frame(load("docs_examples/price_change_new_price_changes_array.json"))
    assert isinstance(event, PriceChange)
    assert event.market == "0x5f65177b394277fd294cd75650044e32ba009a95022d88a0c1d565897d72f8f1"
    assert event.timestamp_ms == 1757908892351
    first, second = event.changes
    assert first.price == 500_000
    assert first.size == 200 * 10**6
    assert first.side is Side.BUY
    assert (first.best_bid, first.best_ask) == (500_000, 1_000_000)
    assert first.hash is not None
    assert first.hash.startswith("56621a12")
    assert second.side is Side.SELL
    assert (second.best_bid, second.best_ask) == (0, 500_000)


def test_legacy_changes_array_applies_the_top_level_asset_and_hash() -> None:
    (event,) = decode_market_frame(load("docs_examples/price_change_legacy_changes_array.json"))
    assert isinstance(event, PriceChange)
    assert event.changes == (
        PriceLevelChange(
            asset_id="71321045679252212594626385532706912750332728571942532289631379312455583992563",
            price=400_000,
            size=3_300_000_000,
            side=Side.SELL,
            best_bid=None,
            best_ask=None,
            hash="3cd4d61e042c81560c9037ece0c61f3b1a8fbbdd",
        ),
    )


def test_2024_single_level_price_change() -> None:
    (event,) = decode_market_frame(load("nautilus_py_ws/price_change.json"))
    assert isinstance(event, PriceChange)
    (change,) = event.changes
    assert (change.price, change.size, change.side) == (514_000, 21_574_080_000, Side.SELL)
    assert change.best_bid is None


def test_book_keeps_wire_order_and_optional_fields() -> None:
    (book,) = decode_market_frame(load("nautilus_index/ws_book_snapshot_captured.json"))
    assert isinstance(book, BookSnapshot)
    assert book.tick_size is not None
    assert book.tick_size in {1_000, 10_000}
    # real captures are worst-to-best: bids ascending, asks descending
    assert [lvl.price for lvl in book.bids] == sorted(lvl.price for lvl in book.bids)
    assert [lvl.price for lvl in book.asks] == sorted(
        (lvl.price for lvl in book.asks), reverse=True
    )


def test_docs_book_prices_without_leading_zero() -> None:
    (book,) = decode_market_frame(load("docs_examples/book_docs.json"))
    assert isinstance(book, BookSnapshot)
    assert book.bids[0] == Level(480_000, 30_000_000)
    assert book.asks[-1] == Level(540_000, 10_000_000)


def test_legacy_buys_and_sells_are_bids_and_asks() -> None:
    frame = orjson.dumps(
        {
            "event_type": "book",
            "asset_id": "1",
            "market": "0xabc",
            "timestamp": "1700000000000",
            "hash": "h",
            "buys": [{"price": "0.4", "size": "10"}],
            "sells": [{"price": "0.6", "size": "5"}],
        }
    )
    (book,) = decode_market_frame(frame)
    assert isinstance(book, BookSnapshot)
    assert book.bids == (Level(400_000, 10_000_000),)
    assert book.asks == (Level(600_000, 5_000_000),)


def test_custom_feature_events() -> None:
    (bba,) = decode_market_frame(load("nautilus_crates/ws_market_best_bid_ask_msg.json"))
    assert bba == BestBidAsk(
        asset_id="85354956062430465315924116860125388538595433819574542752031640332592237464430",
        market="0x0005c0d312de0be897668695bae9f32b624b4a1ae8b140c49f08447fcc74f442",
        best_bid=730_000,
        best_ask=770_000,
        spread=40_000,
        timestamp_ms=1766789469958,
    )
    (new,) = decode_market_frame(load("nautilus_crates/ws_market_new_market_msg.json"))
    assert isinstance(new, NewMarket)
    assert new.outcomes == ("Yes", "No")
    assert len(new.assets_ids) == 2
    assert new.tick_size == 10_000
    assert new.event_slug == "nvda-above-in-january-2026"
    (resolved,) = decode_market_frame(load("nautilus_crates/ws_market_resolved_msg.json"))
    assert isinstance(resolved, MarketResolved)
    assert resolved.winning_asset_id == resolved.assets_ids[0]
    assert resolved.winning_outcome == "Yes"


def test_tick_size_change_and_last_trade() -> None:
    (tick,) = decode_market_frame(load("nautilus_crates/ws_market_tick_size_msg.json"))
    assert isinstance(tick, TickSizeChange)
    assert (tick.old_tick_size, tick.new_tick_size) == (100_000, 10_000)
    (trade,) = decode_market_frame(load("nautilus_crates/ws_market_last_trade_msg.json"))
    assert isinstance(trade, LastTradePrice)
    assert (trade.price, trade.size, trade.side, trade.fee_rate_bps) == (
        510_000,
        25_000_000,
        Side.BUY,
        0,
    )


def test_burst_decodes_as_one_array_frame() -> None:
    events = decode_market_frame(load("nautilus_index/ws_market_price_change_crossing_burst.json"))
    assert [type(e) for e in events] == [BookSnapshot] + [PriceChange] * 15
    assert sum(len(e.changes) for e in events if isinstance(e, PriceChange)) >= 15


def test_pong_and_empty_array() -> None:
    assert decode_market_frame("PONG") == [PONG]
    assert decode_market_frame(b"PONG") == [PONG]
    assert decode_market_frame("[]") == []


def test_unknown_event_type_is_a_value_not_an_error() -> None:
    events = decode_market_frame('[{"event_type": "shiny_new_thing", "x": 1}]')
    assert events == [UnknownEvent("shiny_new_thing", {"event_type": "shiny_new_thing", "x": 1})]


GOOD_CHANGE = {"asset_id": "1", "price": "0.5", "size": "10", "side": "BUY"}


def price_change(**change: object) -> bytes:
    return orjson.dumps(
        {
            "event_type": "price_change",
            "market": "0xabc",
            "timestamp": "1700000000000",
            "price_changes": [GOOD_CHANGE, {**GOOD_CHANGE, **change}],
        }
    )


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b'{"event_type": "book", ', "invalid JSON"),
        (b"42", "expected a JSON object, got 42"),
        (b'{"hello": 1}', "object has no event_type and no recognisable shape"),
        (b'{"event_type": 7}', "event_type: expected a string, got 7"),
        (price_change(size=12.5), "price_change.price_changes[1].size: expected a decimal string"),
        (price_change(price="0.5.1"), "price_change.price_changes[1].price: expected a decimal"),
        (
            price_change(price="1.5"),
            "price_change.price_changes[1].price: expected a price between",
        ),
        (price_change(price="-0.5"), "price_change.price_changes[1].price: expected a decimal"),
        (price_change(size="1e3"), "price_change.price_changes[1].size: expected a decimal"),
        (price_change(size="0.0000001"), "price_change.price_changes[1].size: expected a decimal"),
        (price_change(side="HOLD"), "price_change.price_changes[1].side: expected BUY or SELL"),
        (price_change(asset_id=None), "price_change.price_changes[1].asset_id: expected a string"),
        (
            b'[{"event_type": "book", "asset_id": "1", "market": "m", "timestamp": "1",'
            b' "bids": [{"price": "0.5"}]}]',
            "[0] book.bids[0].size: missing field",
        ),
        (
            b'{"event_type": "last_trade_price", "asset_id": "1", "market": "m", "price": "0.5",'
            b' "size": "1", "side": "BUY", "timestamp": "yesterday"}',
            "last_trade_price.timestamp: expected an integer string",
        ),
    ],
)
def test_bad_frames_raise_one_typed_error_naming_the_field(frame: bytes, reason: str) -> None:
    with pytest.raises(FrameDecodeError) as info:
        decode_market_frame(frame)
    assert info.value.reason.startswith(reason), info.value.reason
    assert info.value.excerpt  # a short excerpt of the frame travels with the error
    assert len(info.value.excerpt) <= 160


def test_a_bad_event_in_a_batch_rejects_the_whole_frame() -> None:
    good = orjson.loads(load("nautilus_crates/ws_market_best_bid_ask_msg.json"))
    frame = orjson.dumps([good, {**good, "best_bid": 0.73}])
    with pytest.raises(FrameDecodeError, match=r"^\[1\] best_bid_ask.best_bid"):
        decode_market_frame(frame)


@settings(max_examples=200, deadline=None)
@given(
    changes=st.lists(
        st.fixed_dictionaries(
            {
                "asset_id": st.sampled_from(["1", "2"]),
                "price": st.sampled_from(["0.5", ".48", "0.001", "1", "0", "0.0025", "0.50"]),
                "size": st.sampled_from(["0", "5", "5.", "219.217767", "150.0", "0.01"]),
                "side": st.sampled_from(["BUY", "SELL"]),
            },
            optional={
                "best_bid": st.sampled_from(["0.49", "0", ".5"]),
                "best_ask": st.sampled_from(["0.51", "1"]),
                "hash": st.text(max_size=5),
            },
        ),
        max_size=4,
    ),
    batched=st.booleans(),
)
def test_fast_path_builds_exactly_what_the_careful_decoder_builds(
    changes: list[dict[str, str]], batched: bool
) -> None:
    event = {
        "event_type": "price_change",
        "market": "0xabc",
        "timestamp": "17",
        "price_changes": changes,
    }
    frame = orjson.dumps([event, event] if batched else event)
    careful = (
        [decode_market_object(obj) for obj in orjson.loads(frame)]
        if batched
        else [decode_market_object(orjson.loads(frame))]
    )
    assert decode_market_frame(frame) == careful
    assert decode_market_frame(frame.decode()) == careful

"""Gamma and CLOB REST decoders against every real and documented sample, and bad bodies."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from bot.core.errors import FrameDecodeError
from bot.core.money import Side
from bot.core.wire import clob, gamma
from bot.core.wire.clob import (
    CURSOR_END,
    CURSOR_START,
    decode_balance_allowance,
    decode_cancel_response,
    decode_clob_market,
    decode_clob_markets_page,
    decode_error_response,
    decode_fee_rate,
    decode_midpoint,
    decode_neg_risk,
    decode_open_order,
    decode_open_orders_page,
    decode_post_order_request,
    decode_post_order_response,
    decode_post_orders_response,
    decode_price,
    decode_rest_book,
    decode_rest_books,
    decode_server_time,
    decode_signed_order,
    decode_spread,
    decode_tick_size,
    decode_trade,
    decode_trades_page,
)
from bot.core.wire.gamma import (
    decode_gamma_event,
    decode_gamma_events,
    decode_gamma_market,
    decode_gamma_markets,
    decode_gamma_tags,
)
from bot.core.wire.market_events import BookSnapshot, Level
from bot.core.wire.user import OrderStatus, OrderType, TraderSide, TradeStatus

if TYPE_CHECKING:
    from collections.abc import Callable

FIXTURES = Path(__file__).parent.parent / "fixtures"


def load(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


REST_SAMPLES: dict[str, Callable[[bytes], Any]] = {
    # CLOB public
    "docs_examples/rest_book_docs.json": decode_rest_book,
    "nautilus_crates/clob_book_response.json": decode_rest_book,
    "nautilus_index/clob_book_response_empty_ask.json": decode_rest_book,
    "nautilus_py_http/book.json": decode_rest_book,
    "nautilus_crates/clob_market_closed_binary_accepting_false.json": decode_clob_market,
    "nautilus_crates/clob_market_closed_binary_accepting_true.json": decode_clob_market,
    "nautilus_py_http/market.json": decode_clob_market,
    "nautilus_py_http/markets.json": decode_clob_markets_page,
    "nautilus_crates/clob_fee_rate_response_nonzero.json": decode_fee_rate,
    "nautilus_crates/clob_fee_rate_response_zero.json": decode_fee_rate,
    # CLOB authenticated
    "docs_examples/post_order_response_delayed_docs.json": decode_post_order_response,
    "docs_examples/post_order_response_live_docs.json": decode_post_order_response,
    "docs_examples/post_order_response_matched_docs.json": decode_post_order_response,
    "nautilus_crates/http_order_response_failed.json": decode_post_order_response,
    "nautilus_crates/http_order_response_ok.json": decode_post_order_response,
    "nautilus_index/http_order_response_async_exec.json": decode_post_order_response,
    "docs_examples/post_orders_batch_post_only_mode_docs.json": decode_post_orders_response,
    "nautilus_index/http_batch_order_response.json": decode_post_orders_response,
    "docs_examples/post_order_error_post_only_mode_docs.json": decode_error_response,
    "nautilus_crates/http_order_response_error_500.json": decode_error_response,
    "docs_examples/post_order_v2_request_docs.json": decode_post_order_request,
    "docs_examples/post_order_v2_request_deposit_wallet_docs.json": decode_post_order_request,
    "nautilus_crates/http_signed_order.json": decode_signed_order,
    "docs_examples/cancel_response_partial_docs.json": decode_cancel_response,
    "nautilus_crates/http_batch_cancel_response.json": decode_cancel_response,
    "nautilus_crates/http_cancel_response_failed.json": decode_cancel_response,
    "nautilus_crates/http_cancel_response_ok.json": decode_cancel_response,
    "nautilus_crates/http_open_order.json": decode_open_order,
    "nautilus_crates/http_open_order_sell_fok.json": decode_open_order,
    "nautilus_crates/http_open_orders_page.json": decode_open_orders_page,
    "nautilus_crates/http_trade_report.json": decode_trade,
    "nautilus_py_ws/trades.json": decode_trade,
    "nautilus_crates/http_trades_page.json": decode_trades_page,
    "nautilus_crates/http_balance_allowance_collateral.json": decode_balance_allowance,
    "nautilus_crates/http_balance_allowance_no_allowance.json": decode_balance_allowance,
    # Gamma
    "nautilus_crates/gamma_market.json": decode_gamma_market,
    "nautilus_crates/gamma_market_closed_binary_accepting_false.json": decode_gamma_market,
    "nautilus_crates/gamma_market_closed_binary_accepting_true.json": decode_gamma_market,
    "nautilus_crates/gamma_market_closed_nonbinary_legacy.json": decode_gamma_market,
    "nautilus_crates/gamma_market_closed_zero_zero_legacy.json": decode_gamma_market,
    "nautilus_crates/gamma_market_sports_market_map_handicap.json": decode_gamma_market,
    "nautilus_crates/gamma_market_sports_market_money_line.json": decode_gamma_market,
    "nautilus_py_http/market_slug.json": decode_gamma_market,
    "nautilus_py_http/markets_list.json": decode_gamma_markets,
    "nautilus_crates/gamma_event.json": decode_gamma_events,
    "nautilus_py_http/event.json": decode_gamma_event,
    "nautilus_py_http/events_list.json": decode_gamma_events,
    "nautilus_crates/gamma_tags.json": decode_gamma_tags,
}


@pytest.mark.parametrize(("name", "decoder"), sorted(REST_SAMPLES.items()))
def test_every_rest_sample_decodes(name: str, decoder: Callable[[bytes], Any]) -> None:
    assert decoder(load(name)) is not None


def test_every_copied_rest_fixture_is_covered() -> None:
    prefixes = ("clob_", "gamma_", "http_", "post_order", "cancel_", "rest_book")
    copied = {
        f"{path.parent.name}/{path.name}"
        for path in FIXTURES.glob("*/*.json")
        if path.name.startswith(prefixes)
        or (path.parent.name == "nautilus_py_http" and path.name != "trades.json")
    }
    assert copied <= set(REST_SAMPLES)


# --- CLOB: books -------------------------------------------------------------------------------


def test_real_rest_book_keeps_wire_order_best_last() -> None:
    book = decode_rest_book(load("nautilus_py_http/book.json"))
    assert isinstance(book, BookSnapshot)
    assert book.asset_id.startswith("2336093998867936")
    assert book.market == "0x1a4f04c2e6c000d9fc524eb12e7333217411a226c34745af140f195c0227cd5f"
    assert book.timestamp_ms == 1_728_799_418_260
    assert book.hash == "2fc4a3d6a98bc164e057589bcb74981852b87412"
    assert book.bids[0] == Level(10_000, 1_000_000_000)
    assert book.bids[-1] == Level(100_000, 125_000_000)  # best bid 0.1 last
    assert book.asks[0] == Level(980_000, 5_000_000_000)
    assert book.asks[-1] == Level(140_000, 705_000_000)  # best ask 0.14 last
    assert Level(380_000, 192_300_000) in book.asks
    assert book.tick_size is None
    assert book.neg_risk is None
    assert book.last_trade_price is None


def test_v2_rest_book_with_metadata_and_empty_side() -> None:
    book = decode_rest_book(load("nautilus_index/clob_book_response_empty_ask.json"))
    assert book.bids == (Level(1_000, 667_120_000), Level(2_000, 6_990_000))
    assert book.asks == ()
    assert book.tick_size == 1_000
    assert book.min_order_size == 5_000_000
    assert book.neg_risk is True
    assert book.last_trade_price is None  # "" on the wire


def test_docs_rest_book_metadata() -> None:
    book = decode_rest_book(load("docs_examples/rest_book_docs.json"))
    assert (book.tick_size, book.min_order_size, book.last_trade_price) == (
        10_000,
        1_000_000,
        450_000,
    )
    assert book.neg_risk is False


def test_post_books_returns_one_snapshot_per_book() -> None:
    one = load("nautilus_crates/clob_book_response.json")
    two = load("nautilus_index/clob_book_response_empty_ask.json")
    books = decode_rest_books(b"[" + one + b"," + two + b"]")
    assert [b.asset_id for b in books] == [
        "12345678901234567890",
        "72610532355343625199299853218161700546393390326785971247545541945337255643692",
    ]
    assert books[0].bids[-1] == Level(500_000, 150_000_000)


# --- CLOB: markets -----------------------------------------------------------------------------


def test_clob_market_neg_risk_and_rewards() -> None:
    market = decode_clob_market(load("nautilus_py_http/market.json"))
    assert market.condition_id == (
        "0xdd22472e552920b8438158ea7238bfadfa4f736aa4cee91a6b86c39ead110917"
    )
    assert (market.minimum_tick_size, market.minimum_order_size) == (1_000, 5_000_000)
    assert market.neg_risk is True
    assert market.neg_risk_market_id.startswith("0xe3b1bc38")
    assert market.accepting_orders
    assert market.enable_order_book
    assert not market.closed
    assert market.accepting_order_timestamp_ms is None
    assert market.end_date_ms == 1_730_764_800_000
    yes, no = market.tokens
    assert (yes.outcome, yes.price, yes.winner) == ("Yes", Decimal("0.4865"), False)
    assert no.token_id.startswith("4833104333661288")
    assert market.rewards is not None
    assert market.rewards.max_spread == Decimal("1.5")
    assert market.rewards.rates[0].rewards_daily_rate == 750
    assert "Politics" in market.tags


def test_resolved_clob_market_winner_and_null_rates() -> None:
    market = decode_clob_market(
        load("nautilus_crates/clob_market_closed_binary_accepting_false.json")
    )
    assert market.closed
    assert not market.accepting_orders
    assert [t.winner for t in market.tokens] == [False, True]
    assert market.rewards is not None
    assert market.rewards.rates == ()
    assert market.accepting_order_timestamp_ms == 1_772_235_203_000


def test_markets_page_cursor() -> None:
    page = decode_clob_markets_page(load("nautilus_py_http/markets.json"))
    assert page.next_cursor == "MTAw"
    assert not page.is_last
    assert (page.limit, page.count, len(page.data)) == (100, 100, 100)
    sizes = {m.minimum_order_size for m in page.data}
    assert {5_000_000, 15_000_000, 14_960_000} <= sizes
    assert all(len(m.tokens) == 2 for m in page.data)
    assert sum(1 for m in page.data if m.tags == ()) >= 1  # "tags": null
    assert CURSOR_START == "MA=="
    assert CURSOR_END == "LTE="


def test_small_public_endpoints() -> None:
    assert decode_tick_size(b'{"minimum_tick_size": 0.01}') == 10_000
    assert decode_tick_size(b'{"minimum_tick_size": 0.0025}') == 2_500
    assert decode_neg_risk(b'{"neg_risk": true}') is True
    assert decode_server_time(b"1761234567") == 1_761_234_567
    assert decode_price(b'{"price": 0.52}') == decode_price(b'{"price": "0.52"}') == 520_000
    assert decode_midpoint(b'{"mid": "0.5"}') == decode_midpoint(b'{"mid_price": 0.5}') == 500_000
    assert decode_spread(b'{"spread": "0.02"}') == 20_000
    assert decode_fee_rate(load("nautilus_crates/clob_fee_rate_response_nonzero.json")) == 150
    assert decode_fee_rate(load("nautilus_crates/clob_fee_rate_response_zero.json")) == 0
    assert decode_fee_rate(b'{"base_fee": 30}') == 30


# --- CLOB: orders ------------------------------------------------------------------------------


def test_post_order_responses() -> None:
    matched = decode_post_order_response(
        load("docs_examples/post_order_response_matched_docs.json")
    )
    assert matched.accepted
    assert matched.status is OrderStatus.MATCHED
    assert matched.order_id == "0xabcdef1234567890abcdef1234567890abcdef12"
    assert matched.trade_ids == ("trade-123",)
    assert matched.transactions_hashes == ("0x1234567890abcdef1234567890abcdef12345678",)
    assert matched.making_amount == 100_000_000 * 10**6  # a decimal string of pUSD/shares
    delayed = decode_post_order_response(
        load("docs_examples/post_order_response_delayed_docs.json")
    )
    assert delayed.status is OrderStatus.DELAYED
    failed = decode_post_order_response(load("nautilus_crates/http_order_response_failed.json"))
    assert not failed.accepted
    assert failed.order_id == ""
    assert failed.status is None
    assert failed.error_msg == "Insufficient balance"
    ok = decode_post_order_response(load("nautilus_crates/http_order_response_ok.json"))
    assert ok.accepted
    assert ok.error_msg == ""
    assert ok.making_amount == 0
    async_exec = decode_post_order_response(
        load("nautilus_index/http_order_response_async_exec.json")
    )
    assert async_exec.trade_ids == ("trade-0x001", "trade-0x002")
    assert len(async_exec.transactions_hashes) == 2


def test_real_making_amount_is_exact() -> None:
    response = decode_post_order_response(
        b'{"success": true, "orderID": "0x84", "status": "matched",'
        b' "makingAmount": "4.599999", "takingAmount": "5.609755", "errorMsg": ""}'
    )
    assert (response.making_amount, response.taking_amount) == (4_599_999, 5_609_755)


def test_batch_response_flags_a_rejected_leg_reported_as_success() -> None:
    ok, rejected, failed = decode_post_orders_response(
        load("nautilus_index/http_batch_order_response.json")
    )
    assert ok.accepted
    assert ok.trade_ids == ("trade-0x201",)
    assert rejected.success
    assert not rejected.accepted
    assert rejected.error_msg.startswith("not enough balance / allowance")
    assert not failed.success
    assert failed.error_msg == "invalid post-only order: order crosses book"
    post_only = decode_post_orders_response(
        load("docs_examples/post_orders_batch_post_only_mode_docs.json")
    )
    assert [r.accepted for r in post_only] == [False, False]
    assert post_only[0].status is None
    assert post_only[0].making_amount == 0


def test_error_bodies() -> None:
    error = decode_error_response(load("docs_examples/post_order_error_post_only_mode_docs.json"))
    assert error.code == "post_only_mode"
    assert error.retry_after_seconds == 79
    assert error.error.startswith("post-only mode")
    plain = decode_error_response(load("nautilus_crates/http_order_response_error_500.json"))
    assert (plain.error, plain.code, plain.retry_after_seconds) == (
        "Internal server error",
        "",
        None,
    )


def test_post_order_request_bodies() -> None:
    request = decode_post_order_request(
        load("docs_examples/post_order_v2_request_deposit_wallet_docs.json")
    )
    assert request.order_type is OrderType.GTC
    assert request.owner == "CLOB_API_KEY"
    assert not request.post_only
    assert not request.defer_exec
    order = request.order
    assert (order.maker_amount, order.taker_amount) == (5_000_000, 10_000_000)
    assert order.side is Side.BUY
    assert order.signature_type == 3
    assert (order.salt, order.expiration, order.timestamp) == (123_456_789, 0, 1_760_000_000)
    signed = decode_signed_order(load("nautilus_crates/http_signed_order.json"))
    assert signed.token_id.startswith("7132104567925221")
    assert signed.timestamp == 1_713_398_400_000


def test_cancel_responses() -> None:
    partial = decode_cancel_response(load("docs_examples/cancel_response_partial_docs.json"))
    assert partial.canceled == ("0xabcdef1234567890abcdef1234567890abcdef12",)
    assert partial.not_canceled == {
        "0x1234567890abcdef1234567890abcdef12345678": "Order already canceled"
    }
    ok = decode_cancel_response(load("nautilus_crates/http_cancel_response_ok.json"))
    assert len(ok.canceled) == 1
    assert ok.not_canceled == {}
    batch = decode_cancel_response(load("nautilus_crates/http_batch_cancel_response.json"))
    assert len(batch.canceled) == 2
    assert len(batch.not_canceled) == 1


def test_open_orders() -> None:
    order = decode_open_order(load("nautilus_crates/http_open_order.json"))
    assert order.status is OrderStatus.LIVE
    assert order.side is Side.BUY
    assert (order.price, order.original_size, order.size_matched) == (
        500_000,
        100_000_000,
        25_000_000,
    )
    assert order.created_at_ms == 1_703_875_200_000  # integer seconds on the wire
    assert order.expiration == 0
    assert order.associate_trades == ("0xabc001",)
    fok = decode_open_order(load("nautilus_crates/http_open_order_sell_fok.json"))
    assert fok.order_type is OrderType.FOK
    assert fok.status is OrderStatus.MATCHED
    assert fok.expiration == 1_735_689_600
    assert fok.associate_trades == ()
    page = decode_open_orders_page(load("nautilus_crates/http_open_orders_page.json"))
    assert page.is_last
    assert [o.order_type for o in page.data] == [OrderType.GTC, OrderType.GTD]
    assert page.limit is None
    assert page.count is None


def test_rest_trades_share_the_user_trade_shape() -> None:
    report = decode_trade(load("nautilus_crates/http_trade_report.json"))
    assert report.status is TradeStatus.CONFIRMED
    assert report.trader_side is TraderSide.TAKER
    assert report.timestamp_ms is None
    assert [m.fee_rate_bps for m in report.maker_orders] == [0, 10]
    assert sum(m.matched_amount for m in report.maker_orders) == 30_000_000
    real = decode_trade(load("nautilus_py_ws/trades.json"))
    assert (real.price, real.size) == (489_000, 5_000_000)
    assert real.match_time_ms == 1_726_043_102_000
    page = decode_trades_page(load("nautilus_crates/http_trades_page.json"))
    assert page.is_last
    assert page.data[0].status is TradeStatus.MINED


def test_balance_allowance() -> None:
    collateral = decode_balance_allowance(
        load("nautilus_crates/http_balance_allowance_collateral.json")
    )
    assert collateral.balance == 1_000_000_000
    assert collateral.allowance == 999_999_999_000_000
    legacy = decode_balance_allowance(
        load("nautilus_crates/http_balance_allowance_no_allowance.json")
    )
    assert legacy.balance == Decimal("250.5")
    assert legacy.allowance is None


# --- Gamma -------------------------------------------------------------------------------------


def test_gamma_market_decodes_json_encoded_strings() -> None:
    market = decode_gamma_market(load("nautilus_crates/gamma_market.json"))
    assert market.id == "1557558"
    assert market.condition_id.startswith("0x78443f961b9a")
    assert market.question_id.startswith("0x15813764bba4")
    assert market.outcomes == ("Up", "Down")
    assert market.outcome_prices == (Decimal("0.505"), Decimal("0.495"))
    assert market.clob_token_ids == (
        "104239898038807136052399800151408521467737075933964991162589336683346093173875",
        "71183960810705820955071415844881728181970340514894896943812046065452395013351",
    )
    assert market.tokens["Down"] == market.clob_token_ids[1]
    assert market.uma_resolution_statuses == ()
    assert (market.tick_size, market.min_order_size) == (10_000, 5_000_000)
    assert market.liquidity == Decimal("20328.3747")
    assert market.volume == Decimal("9.999997")
    assert (market.best_bid, market.best_ask, market.spread) == (
        Decimal("0.5"),
        Decimal("0.51"),
        Decimal("0.009"),
    )
    assert market.enable_order_book
    assert market.accepting_orders
    assert not market.neg_risk
    assert market.end_date_ms == 1_773_307_500_000  # 2026-03-12T09:25:00Z
    assert market.fees_enabled
    assert market.fee_type == "crypto_fees"
    assert (market.maker_base_fee, market.taker_base_fee) == (1000, 1000)
    (event,) = market.events
    assert (event.id, event.slug, event.series_slug) == (
        "260654",
        "btc-updown-5m-1773307200",
        "btc-up-or-down-5m",
    )
    assert event.start_time_ms == 1_773_307_200_000


def test_gamma_sports_market_fee_schedule_and_postgres_dates() -> None:
    market = decode_gamma_market(load("nautilus_crates/gamma_market_sports_market_money_line.json"))
    assert market.fee_schedule == gamma.FeeSchedule(
        rate=30_000, exponent=1, taker_only=True, rebate_rate=250_000
    )
    assert market.seconds_delay == 3
    assert market.game_start_time_ms == 1_775_401_800_000  # "2026-04-05 15:10:00+00"
    assert market.closed_time_ms == 1_775_417_853_000  # "2026-04-05 19:37:33+00"
    assert market.uma_resolution_status == "resolved"
    assert market.uma_resolution_statuses == ("proposed",)
    assert market.outcome_prices == (Decimal(1), Decimal(0))
    assert market.volume == Decimal("26458.188064999995")
    assert market.events[0].id == "346898"


def test_gamma_legacy_markets() -> None:
    scalar = decode_gamma_market(load("nautilus_crates/gamma_market_closed_nonbinary_legacy.json"))
    assert scalar.outcomes == ("Long", "Short")
    assert scalar.outcome_prices[0] == Decimal("0.5843311669077693146635445446077281")
    assert sum(scalar.outcome_prices) == 1
    assert scalar.tick_size is None
    assert scalar.fee_type == ""
    zero = decode_gamma_market(load("nautilus_crates/gamma_market_closed_zero_zero_legacy.json"))
    assert zero.outcome_prices == (Decimal(0), Decimal(0))
    assert zero.closed


def test_gamma_closed_market_still_accepting_orders() -> None:
    market = decode_gamma_market(
        load("nautilus_crates/gamma_market_closed_binary_accepting_true.json")
    )
    assert market.closed
    assert market.accepting_orders
    assert market.outcome_prices == (Decimal(1), Decimal(0))


def test_gamma_trimmed_markets_with_real_arrays() -> None:
    market = decode_gamma_market(load("nautilus_py_http/market_slug.json"))
    assert market.clob_token_ids[0].startswith("4173124550477716")
    assert market.outcomes == ()
    assert market.liquidity == Decimal("9384.9344")
    markets = decode_gamma_markets(load("nautilus_py_http/markets_list.json"))
    assert [m.question_id for m in markets] == ["0x12345", "0x67890", "0xabcde"]  # "questionId"
    assert markets[2].closed
    assert len(markets[1].clob_token_ids) == 2


def test_gamma_neg_risk_event_with_nested_markets() -> None:
    (event,) = decode_gamma_events(load("nautilus_crates/gamma_event.json"))
    assert event.id == "30829"
    assert event.slug == "democratic-presidential-nominee-2028"
    assert event.neg_risk
    assert event.enable_neg_risk
    assert event.neg_risk_augmented
    assert event.neg_risk_market_id.endswith("7814700")
    assert event.liquidity == Decimal("43042905.16152")
    assert [t.slug for t in event.tags][:2] == ["world-elections", "global-elections"]
    assert len(event.markets) == 2
    first = event.markets[0]
    assert first.neg_risk
    assert first.neg_risk_market_id == event.neg_risk_market_id
    assert first.question_id == event.neg_risk_market_id[:-2] + "05"
    assert first.group_item_title == "Stephen A. Smith"
    assert first.outcome_prices == (Decimal("0.0105"), Decimal("0.9895"))
    assert first.tick_size == 1_000
    assert first.fee_type == ""


def test_gamma_trimmed_events() -> None:
    event = decode_gamma_event(load("nautilus_py_http/event.json"))
    assert len(event.markets) == 3
    assert event.markets[0].slug.endswith("25forbelow")
    events = decode_gamma_events(load("nautilus_py_http/events_list.json"))
    assert [e.id for e in events] == ["2890", "2891", "2892"]
    assert events[0].markets[0].condition_id.startswith("0x064d33e3")


def test_gamma_tags() -> None:
    tags = decode_gamma_tags(load("nautilus_crates/gamma_tags.json"))
    assert tags[0] == gamma.GammaTag(
        id="101259", label="Health and Human Services", slug="health-and-human-services"
    )


# --- malformed input ---------------------------------------------------------------------------


def reason_for(decoder: Callable[[bytes], Any], body: bytes) -> str:
    with pytest.raises(FrameDecodeError) as info:
        decoder(body)
    return info.value.reason


def test_gamma_error_paths_use_wire_names() -> None:
    obj = orjson.loads(load("nautilus_crates/gamma_market.json"))
    obj["outcomePrices"] = '["0.5", 0.5, "x"]'
    obj["orderPriceMinTickSize"] = "tiny"
    obj["negRisk"] = "false"
    reason = reason_for(decode_gamma_market, orjson.dumps(obj))
    assert 'expected a decimal, got "x" @ $.outcomePrices[2]' in reason
    assert "@ $.orderPriceMinTickSize" in reason
    assert 'expected true or false, got "false" @ $.negRisk' in reason


def test_gamma_encoded_string_that_is_not_json() -> None:
    obj = orjson.loads(load("nautilus_crates/gamma_market.json"))
    obj["clobTokenIds"] = "[not json"
    reason = reason_for(decode_gamma_market, orjson.dumps(obj))
    assert reason == 'expected JSON inside the string, got "[not json" @ $.clobTokenIds'


def test_gamma_nested_market_error_path() -> None:
    events = orjson.loads(load("nautilus_crates/gamma_event.json"))
    events[0]["markets"][1]["endDate"] = 17
    events[0]["markets"][1]["conditionId"] = None
    reason = reason_for(decode_gamma_events, orjson.dumps(events))
    assert "expected a string, got null @ $[0].markets[1].conditionId" in reason


def test_gamma_list_endpoint_rejects_an_object() -> None:
    reason = reason_for(decode_gamma_markets, load("nautilus_crates/gamma_market.json"))
    assert reason.startswith("expected an array, got {")


def test_book_with_number_levels() -> None:
    body = b'{"market": "0x1", "asset_id": "1", "timestamp": "1", "bids": [{"price": 0.5}]}'
    assert reason_for(decode_rest_book, body) == (
        "expected a decimal string, got 0.5 @ $.bids[0].price; "
        "required field missing @ $.bids[0].size"
    )


def test_clob_market_wrong_types() -> None:
    obj = orjson.loads(load("nautilus_py_http/market.json"))
    obj["tokens"][1]["winner"] = "no"
    obj["minimum_tick_size"] = 0.0000001
    reason = reason_for(decode_clob_market, orjson.dumps(obj))
    assert "@ $.tokens[1].winner" in reason
    assert "expected a decimal number or string, got 1e-7 @ $.minimum_tick_size" in reason


def test_small_endpoints_are_strict() -> None:
    assert reason_for(decode_server_time, b'"1761234567"') == (
        'expected an integer, got "1761234567" @ $'
    )
    assert (
        reason_for(decode_neg_risk, b'{"neg_risk": 1}')
        == "expected true or false, got 1 @ $.neg_risk"
    )
    assert reason_for(decode_midpoint, b"{}") == "required field missing @ $.mid"
    assert reason_for(decode_fee_rate, b'{"base_fee": "1.5"}') == (
        'expected an integer or a digit string, got "1.5" @ $.base_fee'
    )


def test_page_with_a_bad_item() -> None:
    page = orjson.loads(load("nautilus_crates/http_open_orders_page.json"))
    page["data"][1]["side"] = "HOLD"
    reason = reason_for(decode_open_orders_page, orjson.dumps(page))
    assert "@ $.data[1].side" in reason


def test_cancel_response_wrong_shape() -> None:
    reason = reason_for(decode_cancel_response, b'{"canceled": "0x1", "not_canceled": {}}')
    assert reason == 'expected an array, got "0x1" @ $.canceled'


def test_modules_export_what_they_define() -> None:
    for module in (clob, gamma):
        for name in module.__all__:
            assert hasattr(module, name)

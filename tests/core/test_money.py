"""Exact money: parsing, formatting, Decimal round trips, ticks and the V2 taker fee."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.money import (
    ONE,
    TICK_SIZES,
    Side,
    check_tick,
    complement,
    format_units,
    from_decimal,
    notional_units,
    parse_number,
    parse_price,
    parse_units,
    taker_fee_units,
    to_decimal,
)

FIXTURES = Path(__file__).parent.parent / "fixtures"


@pytest.mark.parametrize(
    ("text", "units"),
    [
        ("0.48", 480_000),
        (".48", 480_000),
        ("0", 0),
        ("1", ONE),
        ("5", 5_000_000),
        ("219.217767", 219_217_767),
        ("150.0", 150_000_000),
        ("0.0001", 100),
        ("0.0025", 2_500),
        ("10500100", 10_500_100_000_000),
        ("5.", 5_000_000),
    ],
)
def test_parse_units(text: str, units: int) -> None:
    assert parse_units(text) == units
    assert parse_price(text) == units


@pytest.mark.parametrize(
    "text", ["", ".", "-1", "+1", "1e3", "0.1234567", " 1", "1 ", "nan", "inf", "0x10", "1,5", "٣"]
)
def test_parse_units_rejects_anything_inexact_or_odd(text: str) -> None:
    with pytest.raises(ValueError, match="expected a decimal"):
        parse_units(text)


def test_parse_number_accepts_rest_numbers_exactly() -> None:
    assert parse_number(0.01) == 10_000
    assert parse_number(5) == 5_000_000
    assert parse_number("0.001") == 1_000
    with pytest.raises(ValueError, match="more than 6 decimals"):
        parse_number(0.1234567)
    with pytest.raises(ValueError, match="expected a number"):
        parse_number(True)


@given(st.integers(min_value=0, max_value=10**15))
def test_units_format_parse_round_trip(units: int) -> None:
    assert parse_units(format_units(units)) == units


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_units_decimal_round_trip(units: int) -> None:
    assert from_decimal(to_decimal(units)) == units
    assert to_decimal(units) == Decimal(units) / Decimal(10**6)


@given(st.decimals(min_value=0, max_value=10**9, places=6, allow_nan=False))
def test_decimal_units_round_trip(value: Decimal) -> None:
    assert to_decimal(from_decimal(value)) == value
    assert parse_units(format(value, "f")) == from_decimal(value)


def test_from_decimal_refuses_to_round() -> None:
    with pytest.raises(ValueError, match="more than 6 decimals"):
        from_decimal(Decimal("0.0000001"))


def test_format_is_the_venue_spelling() -> None:
    assert format_units(480_000) == "0.48"
    assert format_units(5_000_000) == "5"
    assert format_units(219_217_767) == "219.217767"
    assert format_units(-2_500) == "-0.0025"


def test_every_polymarket_tick_size_is_supported() -> None:
    assert {format_units(t) for t in TICK_SIZES} == {
        "0.1",
        "0.01",
        "0.001",
        "0.0001",
        "0.005",
        "0.0025",
    }
    assert check_tick(2_500) == 2_500
    with pytest.raises(ValueError, match=r"unsupported tick size 0\.02"):
        check_tick(20_000)


def test_side_and_complement() -> None:
    assert Side.parse("buy") is Side.BUY
    assert Side.BUY.opposite is Side.SELL
    with pytest.raises(ValueError, match="expected BUY or SELL"):
        Side.parse("HOLD")
    assert complement(301_000) == 699_000


def test_notional_rounds_in_the_stated_direction() -> None:
    # 12.8205 shares x 0.78 = 9.99999 exactly; 1.000001 x 0.5 = 0.5000005
    assert notional_units(780_000, 12_820_500, round_up=False) == 9_999_990
    assert notional_units(500_000, 1_000_001, round_up=False) == 500_000
    assert notional_units(500_000, 1_000_001, round_up=True) == 500_001


def test_taker_fee_matches_all_21_real_v2_fills() -> None:
    """VECTORS.md 7b: fee = floor5(C x rate x p x (1 - p)), C in shares, on real Polygon fills."""
    fills = orjson.loads(
        (FIXTURES / "nautilus_index/chain_order_filled_taker_fees.json").read_bytes()
    )
    assert len(fills) == 21
    for fill in fills:
        shares = fill["taker_amount_filled" if fill["side"] == "BUY" else "maker_amount_filled"]
        fee = taker_fee_units(
            int(shares), parse_units(fill["price"]), parse_units(fill["fee_rate"])
        )
        assert fee == int(fill["fee"]), fill


@pytest.mark.parametrize(
    ("rate", "price", "fee"),
    [
        ("0.07", "0.01", "0.0693"),
        ("0.07", "0.5", "1.75"),
        ("0.03", "0.5", "0.75"),
        ("0.04", "0.5", "1"),
        ("0.05", "0.5", "1.25"),
    ],
)
def test_taker_fee_docs_table(rate: str, price: str, fee: str) -> None:
    """VECTORS.md 7c: 100 shares at the category rates."""
    assert taker_fee_units(100 * ONE, parse_units(price), parse_units(rate)) == parse_units(fee)

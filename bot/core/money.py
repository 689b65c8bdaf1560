"""Exact money: prices and sizes as integers in micro-units (1e-6).

Why micro-units: every amount Polymarket settles on chain (pUSD and outcome tokens) has six
decimals, every tick size it uses (0.1, 0.01, 0.001, 0.0001 and the newer 0.005 and 0.0025) is a
whole number of micro-units, and sizes on the wire carry at most six decimals ("219.217767").
So one integer scale represents every price, size, notional of a single share and tick exactly,
integer arithmetic is fast on the hot path, and nothing ever goes through ``float``.

* A price of 0.48 is ``480_000``; the tick 0.0025 is ``2_500``; ``ONE`` (1.0) is ``1_000_000``.
* A size of 219.217767 shares is ``219_217_767``.
* Notional (price x size) has 12 decimals: ``price * size`` is in pico-units (1e-12). Use
  ``notional_units`` to bring it back to micro-units with an explicit rounding direction.

Decimal appears only at the edges (config, reports, order construction), through
``to_decimal``/``from_decimal``, which are exact.
"""

from __future__ import annotations

from decimal import Decimal
from enum import IntEnum
from typing import Final

SCALE: Final = 1_000_000
"""Micro-units per whole unit (one share, one pUSD, a price of 1)."""

ONE: Final = SCALE
"""A price of 1.0: the payout of a winning share."""

DECIMALS: Final = 6

TICK_SIZES: Final[frozenset[int]] = frozenset({100_000, 10_000, 1_000, 100, 5_000, 2_500})
"""The tick sizes Polymarket uses, in micro-units: 0.1, 0.01, 0.001, 0.0001, 0.005, 0.0025."""

_POW10: Final = tuple(10**k for k in range(DECIMALS + 1))
_FEE_DIVISOR: Final = 10_000_000_000_000_000_000  # 10**(24 - 5): keep 5 of 24 decimals
_DIGITS: Final = frozenset("0123456789")

# Prices repeat endlessly on the feed (there are at most 10,001 distinct ones), so parsing them
# through a small cache is a dict lookup on the hot path. Sizes vary too much to cache.
_price_cache: dict[str, int] = {}
_PRICE_CACHE_MAX: Final = 65_536


class Side(IntEnum):
    """Order or book side. ``BUY`` is the bid side of a book, ``SELL`` the ask side."""

    BUY = 0
    SELL = 1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY

    @classmethod
    def parse(cls, text: str) -> Side:
        """Parse the wire spelling (``BUY``/``SELL``, any case)."""
        upper = text.upper()
        if upper == "BUY":
            return cls.BUY
        if upper == "SELL":
            return cls.SELL
        raise ValueError(f"expected BUY or SELL, got {text!r}")


def parse_units(text: str) -> int:
    """Parse a non-negative decimal string ("0.48", ".48", "219.217767", "5") to micro-units.

    Exact: raises ``ValueError`` for anything that is not a plain decimal with at most six
    fractional digits (no sign, exponent, spaces, ``nan`` or extra digits), naming the text.
    """
    whole, dot, frac = text.partition(".")
    if (not whole and not frac) or len(frac) > DECIMALS or (dot and not frac and not whole):
        raise ValueError(f"expected a decimal with at most {DECIMALS} decimals, got {text!r}")
    if not _DIGITS.issuperset(whole) or not _DIGITS.issuperset(frac):
        raise ValueError(f"expected a decimal with at most {DECIMALS} decimals, got {text!r}")
    value = int(whole) * SCALE if whole else 0
    if frac:
        value += int(frac) * _POW10[DECIMALS - len(frac)]
    return value


def parse_price(text: str) -> int:
    """Parse a price string to micro-units (cached). Same rules as ``parse_units``."""
    cached = _price_cache.get(text)
    if cached is not None:
        return cached
    value = parse_units(text)
    if len(_price_cache) < _PRICE_CACHE_MAX:
        _price_cache[text] = value
    return value


def parse_number(value: object) -> int:
    """Micro-units from a JSON value that may be a string or a number (REST is inconsistent).

    Numbers go through their shortest ``repr`` (``0.01`` -> "0.01"), which is exact for the
    values these fields carry (ticks, minimum sizes); anything with more than six decimals is
    rejected rather than rounded.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    if isinstance(value, str):
        return parse_units(value)
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"expected a non-negative number, got {value!r}")
        return value * SCALE
    if isinstance(value, float):
        return from_decimal(Decimal(repr(value)))
    raise ValueError(f"expected a number or a numeric string, got {value!r}")


def format_units(units: int) -> str:
    """Micro-units to the shortest decimal string ("0.48", "5", "219.217767").

    This is the spelling the venue uses on the wire: no trailing zeros, a leading "0".
    """
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), SCALE)
    if not frac:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{frac:06d}".rstrip("0")


def to_decimal(units: int) -> Decimal:
    """Micro-units to an exact ``Decimal``."""
    return Decimal(units).scaleb(-DECIMALS)


def from_decimal(value: Decimal) -> int:
    """An exact ``Decimal`` to micro-units; raises ``ValueError`` if it has more than 6 decimals."""
    scaled = value.scaleb(DECIMALS)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{value} has more than {DECIMALS} decimals")
    return int(scaled)


def check_tick(tick: int) -> int:
    """Return ``tick`` if it is one of Polymarket's tick sizes, else raise ``ValueError``."""
    if tick not in TICK_SIZES:
        allowed = ", ".join(format_units(t) for t in sorted(TICK_SIZES, reverse=True))
        raise ValueError(f"unsupported tick size {format_units(tick)} (expected one of {allowed})")
    return tick


def complement(price: int) -> int:
    """The complementary token's price: a YES bid at p is a NO ask at 1 - p."""
    return ONE - price


def notional_units(price: int, size: int, *, round_up: bool) -> int:
    """``price x size`` in micro-units, rounded in the stated direction (never silently)."""
    pico = price * size
    whole, rest = divmod(pico, SCALE)
    return whole + 1 if (round_up and rest) else whole


def taker_fee_units(size: int, price: int, rate_units: int) -> int:
    """Polymarket's V2 taker fee in micro-units: ``floor5(C x rate x p x (1 - p))``.

    ``size`` (C, shares), ``price`` (p) and ``rate_units`` (e.g. 0.05 -> 50_000) are micro-units.
    The venue floors the fee to 5 decimals of pUSD (PROTOCOL.md section 7.1, VECTORS.md 7b).
    """
    # C * rate * p * (1 - p) carries 4 x 6 = 24 decimals; keep 5 of them, flooring.
    exact = size * rate_units * price * (ONE - price)
    fee_5dp = exact // _FEE_DIVISOR
    return fee_5dp * 10

"""CLOB V2 orders before and after signing: exact amounts, exchange choice, the POST body.

This is the pure half of order signing (PROTOCOL.md section 6). It turns intent-level values
(token, side, price and size in micro-units, tick, neg-risk flag, signature type, funder) into
the exact V2 order struct the exchange signs, and a signed order into the JSON body of
``POST /order``. The EIP-712 hashing and the ECDSA signature are done by Polymarket's own library
in ``bot.shell.signer``: that library (and ``eth-account`` under it) loads httpx, trio and
``socket`` at import time, which the pure core must not.

Amounts. Polymarket's SDK computes maker/taker amounts in binary ``float`` and repairs the noise
with a round-up-then-down step (VECTORS.md section 5). We apply the same rules in exact integer
and ``Fraction`` arithmetic instead, so no ``float`` is on the path to a signed amount; the tests
check every published vector and agreement with the SDK's function. In exact arithmetic a limit
order's notional always fits the amount precision (shares have 2 decimals, prices at most
``amount - 2``), so the repair only matters for market BUYs, whose share count is a quotient.

Prices must lie on the market's tick grid: the SDK would silently round a stray price to the
nearest tick, which for a BUY can mean paying more than the strategy decided. An off-tick price is
a bug upstream and is reported as one (``ValueError`` naming the price and tick). Sizes are
floored to the venue's 2 decimals, never rounded up, as the SDK does.
"""

from __future__ import annotations

import json
from fractions import Fraction
from typing import TYPE_CHECKING, Final

import attrs

from bot.config import Secret, SignatureType
from bot.core.money import ONE, Side, check_tick, format_units
from bot.core.trading import OrderType

if TYPE_CHECKING:
    from collections.abc import Sequence

CHAIN_ID_POLYGON: Final = 137
CHAIN_ID_AMOY: Final = 80002

CTF_EXCHANGE_V2: Final = "0xE111180000d2663C0091e4f400237545B87B996B"
"""The V2 exchange: ``verifyingContract`` for binary markets (PROTOCOL.md 6.1)."""
NEG_RISK_CTF_EXCHANGE_V2: Final = "0xe2222d279d744050d28e00520010520000310F59"
"""The V2 neg-risk exchange: ``verifyingContract`` for markets of a neg-risk event."""

ZERO_ADDRESS: Final = "0x0000000000000000000000000000000000000000"
BYTES32_ZERO: Final = "0x" + "00" * 32

MAX_BATCH: Final = 15
"""The most orders one ``POST /orders`` accepts."""

_SIZE_DECIMALS: Final = 2
_SIZE_STEP: Final = 10_000  # 0.01 share in micro-units
_MAX_SALT: Final = 2**53  # salts travel as JSON numbers; larger ones lose precision in JS clients
_UINT256: Final = 2**256

# Price decimals per tick (micro-units); amount decimals are always price decimals + 2.
_PRICE_DECIMALS: Final[dict[int, int]] = {
    100_000: 1,
    10_000: 2,
    5_000: 3,
    1_000: 3,
    2_500: 4,
    100: 4,
}


@attrs.frozen
class OrderAmounts:
    """What the maker gives and wants, in 1e-6 units (pUSD or shares, both 6 decimals)."""

    maker_amount: int
    taker_amount: int


def _amount_decimals(tick: int) -> int:
    check_tick(tick)
    return _PRICE_DECIMALS[tick] + 2


def _check_price(price: int, tick: int) -> None:
    check_tick(tick)
    if price % tick:
        raise ValueError(
            f"price {format_units(price)} is not on the tick grid {format_units(tick)}"
        )
    if not tick <= price <= ONE - tick:
        raise ValueError(
            f"price {format_units(price)} is outside [{format_units(tick)}, "
            f"{format_units(ONE - tick)}] for tick {format_units(tick)}"
        )


def _floor_size(size: int, what: str) -> int:
    shares = size - size % _SIZE_STEP
    if shares <= 0:
        raise ValueError(
            f"{what} {format_units(size)} is below 0.01 once floored to {_SIZE_DECIMALS} decimals"
        )
    return shares


def _fit(value: Fraction, decimals: int) -> int:
    """The SDK's amount repair, exactly: round up at ``decimals + 4``; if that still has more
    than ``decimals`` decimals, round down at ``decimals``. Returns micro-units.

    ``value`` is in whole units. ``decimals`` is at most 6, so the result is a whole number of
    micro-units (the SDK's final "round half" step never has anything to round).
    """
    fine = 10 ** (decimals + 4)
    up = Fraction(-((-value.numerator * fine) // value.denominator), fine)  # ceil
    coarse = 10**decimals
    if (up * coarse).denominator != 1:
        up = Fraction((up.numerator * coarse) // up.denominator, coarse)  # floor
    micro = up * ONE
    if micro.denominator != 1:  # pragma: no cover - impossible while decimals <= 6
        raise AssertionError(f"amount {up} is not a whole number of micro-units")
    return int(micro)


def limit_order_amounts(side: Side, price: int, size: int, tick: int) -> OrderAmounts:
    """Maker/taker amounts of a limit order of ``size`` shares at ``price`` (micro-units).

    BUY gives ``notional`` pUSD for ``shares``; SELL gives ``shares`` for ``notional``, where
    ``shares`` is ``size`` floored to 0.01 and ``notional = shares x price`` (VECTORS.md 5).

    Raises:
        ValueError: unknown tick, price off the tick grid or outside ``[tick, 1 - tick]``, or a
            size below 0.01 share.
    """
    _check_price(price, tick)
    shares = _floor_size(size, "size")
    notional = _fit(Fraction(shares * price, ONE * ONE), _amount_decimals(tick))
    if side is Side.BUY:
        return OrderAmounts(maker_amount=notional, taker_amount=shares)
    return OrderAmounts(maker_amount=shares, taker_amount=notional)


MARKETABLE_MAKER_DECIMALS: Final = 2
MARKETABLE_TAKER_DECIMALS: Final = 4


def marketable_limit_amounts(side: Side, price: int, size: int, tick: int) -> OrderAmounts:
    """Maker/taker amounts of a FOK/FAK order of ``size`` shares with worst price ``price``.

    The venue checks marketable orders against the *market order* precision, whatever the tick:
    the maker amount at most 2 decimals, the taker amount at most 4 ("invalid amounts, the
    market buy orders maker amount supports a max accuracy of 2 decimals, taker amount a max of
    4 decimals"; the same limit order sent GTC passes). A limit amount (``limit_order_amounts``)
    can have 4 to 6 decimals, so a marketable order is rounded to fit, towards filling:

    * BUY: ``taker = shares``, ``maker = ceil(shares x price, 2 decimals)`` -- at most 0.01 pUSD
      more, which moves the implied price by less than one tick for any size above one share;
    * SELL: ``maker = shares``, ``taker = floor(shares x price, 4 decimals)``.

    Raises:
        ValueError: as ``limit_order_amounts``.
    """
    _check_price(price, tick)
    shares = _floor_size(size, "size")
    exact = Fraction(shares * price, ONE * ONE)  # pUSD, whole units
    if side is Side.BUY:
        step = Fraction(1, 10**MARKETABLE_MAKER_DECIMALS)
        maker = -((-exact) // step) * step  # ceil
        return OrderAmounts(maker_amount=int(maker * ONE), taker_amount=shares)
    step = Fraction(1, 10**MARKETABLE_TAKER_DECIMALS)
    taker = (exact // step) * step  # floor
    return OrderAmounts(maker_amount=shares, taker_amount=int(taker * ONE))


def market_order_amounts(side: Side, price: int, amount: int, tick: int) -> OrderAmounts:
    """Maker/taker amounts of a marketable (FOK/FAK) order with worst price ``price``.

    As the venue defines market orders, ``amount`` is the pUSD to spend for a BUY and the shares
    to sell for a SELL (micro-units), floored to 2 decimals. BUY wants ``amount / price`` shares
    (with the SDK's repair rounding, see ``_fit``); SELL wants ``amount x price`` pUSD.

    Raises:
        ValueError: as ``limit_order_amounts``.
    """
    _check_price(price, tick)
    spend = _floor_size(amount, "amount")
    decimals = _amount_decimals(tick)
    if side is Side.BUY:
        return OrderAmounts(maker_amount=spend, taker_amount=_fit(Fraction(spend, price), decimals))
    return OrderAmounts(
        maker_amount=spend, taker_amount=_fit(Fraction(spend * price, ONE * ONE), decimals)
    )


def market_order_price(
    side: Side, levels: Sequence[tuple[int, int]], amount: int, order_type: OrderType
) -> int:
    """The worst price a FOK/FAK order must accept to fill ``amount`` against ``levels``.

    ``levels`` are ``(price, size)`` of the opposite side, best first (``BookView.asks`` for a
    BUY, ``bids`` for a SELL). ``amount`` is pUSD to spend for a BUY and shares for a SELL, as in
    ``market_order_amounts``. Walks the book until the cumulative notional (BUY) or size (SELL)
    covers ``amount`` and returns that level's price, as the SDK's ``calculate_*_market_price``.
    If the book is too thin, a FOK cannot fill and raises; a FAK takes what there is, so the
    worst level's price is returned.

    Raises:
        ValueError: no levels, a resting order type, or a FOK that the book cannot fill.
    """
    if order_type.rests:
        raise ValueError(f"market orders are FOK or FAK, not {order_type.value}")
    if not levels:
        raise ValueError(f"no match: the book has no levels to {side.name} against")
    target = amount * ONE if side is Side.BUY else amount
    total = 0
    for price, size in levels:
        total += price * size if side is Side.BUY else size
        if total >= target:
            return price
    if order_type is OrderType.FOK:
        unit = "pUSD" if side is Side.BUY else "shares"
        raise ValueError(
            f"no match: the book holds less than {format_units(amount)} {unit} for a FOK "
            f"{side.name}"
        )
    return levels[-1][0]


def exchange_for(neg_risk: bool) -> str:
    """The ``verifyingContract`` for an order: neg-risk markets use the neg-risk exchange.

    Signing a neg-risk order against the plain exchange produces a valid-looking signature that
    the venue rejects as invalid, one of the most reported live-trading failures.
    """
    return NEG_RISK_CTF_EXCHANGE_V2 if neg_risk else CTF_EXCHANGE_V2


def _check_address(value: str, what: str) -> str:
    body = value[2:]
    if not (value[:2] in ("0x", "0X") and len(body) == 40 and _is_hex(body)):
        raise ValueError(f"{what} must be an address (0x and 40 hex digits), got {value!r}")
    return value


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


def _check_bytes32(value: str, what: str) -> str:
    if not (value.startswith("0x") and len(value) == 66 and _is_hex(value[2:])):
        raise ValueError(f"{what} must be bytes32 (0x and 64 hex digits), got {value!r}")
    return value


@attrs.frozen
class UnsignedOrder:
    """A V2 order struct ready to sign (PROTOCOL.md 6.3), plus where and how it is signed.

    Field names follow the signed struct; ``expiration`` is sent but not signed.
    """

    salt: int
    maker: str
    signer: str
    token_id: int
    maker_amount: int
    taker_amount: int
    side: Side
    signature_type: SignatureType
    timestamp_ms: int
    metadata: str
    builder: str
    expiration: int
    exchange: str
    """The ``verifyingContract`` (``exchange_for(neg_risk)``)."""
    chain_id: int


@attrs.frozen
class SignedOrder:
    """An order with its signature and its id (the EIP-712 digest the venue reports as orderID)."""

    order: UnsignedOrder
    signature: str
    order_id: str

    def to_json(self) -> dict[str, object]:
        """The ``order`` object of ``POST /order`` (PROTOCOL.md 6.6), as the V2 SDK builds it.

        ``salt`` and ``signatureType`` are numbers; amounts, ids and times are strings.
        """
        o = self.order
        return {
            "salt": o.salt,
            "maker": o.maker,
            "signer": o.signer,
            "tokenId": str(o.token_id),
            "makerAmount": str(o.maker_amount),
            "takerAmount": str(o.taker_amount),
            "side": o.side.name,
            "expiration": str(o.expiration),
            "signatureType": int(o.signature_type),
            "timestamp": str(o.timestamp_ms),
            "metadata": o.metadata,
            "builder": o.builder,
            "signature": self.signature,
        }


@attrs.frozen
class OrderPost:
    """One element of ``POST /order``/``POST /orders``, already serialised.

    ``body`` is the exact bytes to send and to HMAC-sign (compact JSON, as the SDK sends it). It
    carries the API key as ``owner``, so it is left out of the ``repr``.
    """

    order_id: str
    body: bytes = attrs.field(repr=False)


def build_order(
    *,
    token_id: int | str,
    side: Side,
    maker_amount: int,
    taker_amount: int,
    signer_address: str,
    signature_type: SignatureType,
    funder: str | None,
    neg_risk: bool,
    salt: int,
    timestamp_ms: int,
    expiration_s: int = 0,
    builder: str = BYTES32_ZERO,
    metadata: str = BYTES32_ZERO,
    chain_id: int = CHAIN_ID_POLYGON,
) -> UnsignedOrder:
    """The V2 order struct for amounts from ``limit_order_amounts``/``market_order_amounts``.

    Who is ``maker`` and ``signer`` depends on the signature type (PROTOCOL.md 6.2):
    EOA: both are the EOA (``funder`` must be ``None`` or the EOA itself); POLY_PROXY and
    POLY_GNOSIS_SAFE: ``maker`` is the funder (proxy or Safe), ``signer`` the EOA; POLY_1271:
    both are the deposit wallet (the funder), and the EOA key signs an ERC-7739 wrapper.

    ``salt`` (random, < 2**53) and ``timestamp_ms`` (creation time, ms) are passed in to keep this
    pure; ``expiration_s`` is for GTD orders (0 = none). ``signer_address`` is the EOA address
    of the private key that will sign.

    Raises:
        ValueError: a malformed address, token id, amount, salt or time, or a funder missing
            for a proxy/Safe/deposit-wallet type (the message names the field).
    """
    _check_address(signer_address, "signer address")
    signature_type = SignatureType(signature_type)
    if signature_type is SignatureType.EOA:
        if (
            funder is not None
            and _check_address(funder, "funder").lower() != signer_address.lower()
        ):
            raise ValueError(
                "an EOA order is funded by the signing key itself; set no funder, or use "
                "signature type POLY_PROXY, POLY_GNOSIS_SAFE or POLY_1271 for another wallet"
            )
        maker = signer = signer_address
    else:
        if funder is None:
            raise ValueError(
                f"signature type {signature_type.name} needs the funder (the wallet holding "
                "the funds, POLY_FUNDER)"
            )
        maker = _check_address(funder, "funder")
        signer = funder if signature_type is SignatureType.POLY_1271 else signer_address
    tid = int(token_id)
    if not 0 < tid < _UINT256:
        raise ValueError(f"token id must be a uint256 > 0, got {token_id!r}")
    if maker_amount <= 0 or taker_amount <= 0:
        raise ValueError(
            f"amounts must be positive, got maker {maker_amount}, taker {taker_amount}"
        )
    if not 0 <= salt < _MAX_SALT:
        raise ValueError(f"salt must be in [0, 2**53), got {salt}")
    if timestamp_ms <= 0:
        raise ValueError(f"timestamp_ms must be positive (ms since the epoch), got {timestamp_ms}")
    if expiration_s < 0:
        raise ValueError(f"expiration_s must be >= 0 (0 = none), got {expiration_s}")
    return UnsignedOrder(
        salt=salt,
        maker=maker,
        signer=signer,
        token_id=tid,
        maker_amount=maker_amount,
        taker_amount=taker_amount,
        side=Side(side),
        signature_type=signature_type,
        timestamp_ms=timestamp_ms,
        metadata=_check_bytes32(metadata, "metadata"),
        builder=_check_bytes32(builder, "builder"),
        expiration=expiration_s,
        exchange=exchange_for(neg_risk),
        chain_id=chain_id,
    )


def order_post(
    signed: SignedOrder,
    owner: Secret,
    order_type: OrderType,
    *,
    post_only: bool = False,
    defer_exec: bool = False,
) -> OrderPost:
    """The ``POST /order`` body (PROTOCOL.md 6.6) for one signed order.

    ``owner`` is the API key whose L2 headers sign the request. ``postOnly`` is only valid for
    resting orders (GTC/GTD); asking for it on FOK/FAK is refused here rather than by the venue.
    A GTD order must carry an expiration, other types must not.
    """
    if post_only and not order_type.rests:
        raise ValueError(f"postOnly is only valid for GTC/GTD orders, not {order_type.value}")
    has_expiry = signed.order.expiration != 0
    if (order_type is OrderType.GTD) != has_expiry:
        raise ValueError(
            f"{order_type.value} order with expiration {signed.order.expiration}: GTD orders "
            "need an expiration, other types must have 0"
        )
    payload: dict[str, object] = {
        "order": signed.to_json(),
        "owner": owner.reveal(),
        "orderType": order_type.value,
        "deferExec": defer_exec,
        "postOnly": post_only,
    }
    return OrderPost(order_id=signed.order_id, body=dumps_compact(payload))


def batch_body(posts: Sequence[OrderPost]) -> bytes:
    """The ``POST /orders`` body: a JSON array of up to 15 order posts (PROTOCOL.md 4.2)."""
    if not 1 <= len(posts) <= MAX_BATCH:
        raise ValueError(f"POST /orders takes 1 to {MAX_BATCH} orders, got {len(posts)}")
    return b"[" + b",".join(p.body for p in posts) + b"]"


def dumps_compact(obj: object) -> bytes:
    """JSON the way the SDKs send (and sign) request bodies: compact, non-ASCII kept as is."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()

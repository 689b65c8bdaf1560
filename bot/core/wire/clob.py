"""Typed CLOB REST responses (and the order request body), and their decoders.

Covers the public and authenticated endpoints of ``https://clob.polymarket.com`` a bot uses
(PROTOCOL.md section 4). Everything goes through the shared converter (``bot.core.wire.codec``),
so prices and sizes are exact micro-units and a malformed body raises ``FrameDecodeError`` naming
the wire path. Notes on the shapes:

* ``GET /book`` decodes to the market channel's ``BookSnapshot`` so the order book applies a REST
  snapshot exactly like a WebSocket one. Levels are kept in wire order (real responses list them
  best-*last*, although the docs claim best-first); the book does not depend on the order.
* Paginated endpoints return ``{data[], next_cursor, limit, count}``; start with
  ``CURSOR_START`` and stop when ``next_cursor`` is ``CURSOR_END`` (base64 of ``0`` and ``-1``).
* The REST API mixes JSON numbers and strings for the same quantity (``minimum_tick_size`` is
  ``0.01``, the book's ``tick_size`` is ``"0.01"``; ``base_fee`` is ``30`` or ``"150"``): those
  fields accept both, exactly.
* ``GET /data/trades`` items have the user channel's trade shape and decode to
  ``bot.core.wire.user.UserTrade``; order statuses and types reuse the user channel's enums.
* ``POST /order``'s ``makingAmount``/``takingAmount`` are decimal strings of shares/pUSD
  (``"4.599999"``), empty when nothing matched; ``GET /balance-allowance`` amounts are integer
  strings in base units (1e-6), kept as exact ``Decimal``.
"""

from decimal import Decimal
from typing import Final, Generic, TypeVar

import attrs

from bot.core.money import Side
from bot.core.wire.codec import EpochMs, Ident, Int, NumUnits, Price, Units, decode, wire
from bot.core.wire.market_events import BookSnapshot, Level
from bot.core.wire.user import OrderStatus, OrderType, UserTrade

__all__ = [
    "CURSOR_END",
    "CURSOR_START",
    "BalanceAllowance",
    "CancelResponse",
    "ClobMarket",
    "ClobRewards",
    "ClobToken",
    "ErrorResponse",
    "OpenOrder",
    "Page",
    "PostOrderRequest",
    "PostOrderResponse",
    "RewardRate",
    "SignedOrder",
    "decode_balance_allowance",
    "decode_cancel_response",
    "decode_clob_market",
    "decode_clob_markets_page",
    "decode_error_response",
    "decode_fee_rate",
    "decode_midpoint",
    "decode_neg_risk",
    "decode_open_order",
    "decode_open_orders_page",
    "decode_post_order_request",
    "decode_post_order_response",
    "decode_post_orders_response",
    "decode_price",
    "decode_rest_book",
    "decode_rest_books",
    "decode_server_time",
    "decode_signed_order",
    "decode_spread",
    "decode_tick_size",
    "decode_trade",
    "decode_trades_page",
]

CURSOR_START: Final = "MA=="
"""``next_cursor`` for the first page (base64 of ``0``)."""

CURSOR_END: Final = "LTE="
"""``next_cursor`` after the last page (base64 of ``-1``)."""

T = TypeVar("T")

_NULL: Final = (None,)
_ABSENT: Final = (None, "")


@attrs.frozen
class Page(Generic[T]):
    """One page of a cursor-paginated endpoint."""

    data: tuple[T, ...]
    next_cursor: str
    limit: Int | None = None
    count: Int | None = None

    @property
    def is_last(self) -> bool:
        """True when there are no further pages."""
        return self.next_cursor == CURSOR_END


# --- order book --------------------------------------------------------------------------------


@attrs.frozen
class _Level:
    price: Price
    size: Units


@attrs.frozen
class _RestBook:
    market: str
    asset_id: str
    timestamp: Int
    bids: tuple[_Level, ...] = attrs.field(default=(), metadata=wire(default_on=_NULL))
    asks: tuple[_Level, ...] = attrs.field(default=(), metadata=wire(default_on=_NULL))
    hash: str = attrs.field(default="", metadata=wire(default_on=_NULL))
    tick_size: NumUnits | None = attrs.field(default=None, metadata=wire(default_on=_ABSENT))
    min_order_size: NumUnits | None = attrs.field(default=None, metadata=wire(default_on=_ABSENT))
    last_trade_price: Price | None = attrs.field(default=None, metadata=wire(default_on=_ABSENT))
    neg_risk: bool | None = None

    def snapshot(self) -> BookSnapshot:
        return BookSnapshot(
            asset_id=self.asset_id,
            market=self.market,
            timestamp_ms=self.timestamp,
            hash=self.hash,
            bids=tuple(Level(level.price, level.size) for level in self.bids),
            asks=tuple(Level(level.price, level.size) for level in self.asks),
            tick_size=self.tick_size,
            last_trade_price=self.last_trade_price,
            min_order_size=self.min_order_size,
            neg_risk=self.neg_risk,
        )


def decode_rest_book(data: str | bytes) -> BookSnapshot:
    """Decode ``GET /book?token_id=`` into the same snapshot the market channel produces.

    Raises:
        FrameDecodeError: invalid JSON or a malformed field, naming its wire path.
    """
    return decode(data, _RestBook).snapshot()


def decode_rest_books(data: str | bytes) -> list[BookSnapshot]:
    """Decode ``POST /books`` (an array of books), in response order."""
    return [book.snapshot() for book in decode(data, tuple[_RestBook, ...])]


# --- markets -----------------------------------------------------------------------------------


@attrs.frozen
class ClobToken:
    """One outcome token of a CLOB market. ``price`` is cached, not live; ``winner`` is set once
    the market resolves."""

    token_id: str
    outcome: str
    price: Decimal | None = None
    winner: bool = False


@attrs.frozen
class RewardRate:
    """Daily liquidity-reward budget paid in ``asset_address``."""

    asset_address: str
    rewards_daily_rate: Decimal


@attrs.frozen
class ClobRewards:
    """Liquidity-reward parameters: quotes need ``min_size`` shares within ``max_spread`` cents."""

    rates: tuple[RewardRate, ...] = attrs.field(default=(), metadata=wire(default_on=_NULL))
    min_size: Decimal = Decimal(0)
    max_spread: Decimal = Decimal(0)


@attrs.frozen
class ClobMarket:
    """A CLOB market (``GET /markets/{condition_id}`` and the ``/markets`` pages).

    ``minimum_tick_size`` and ``minimum_order_size`` are micro-units. Time fields are epoch
    milliseconds (UTC), ``None`` when not set.
    """

    condition_id: str
    tokens: tuple[ClobToken, ...]
    minimum_tick_size: NumUnits
    minimum_order_size: NumUnits
    question_id: str = attrs.field(default="", metadata=wire(default_on=_NULL))
    question: str = attrs.field(default="", metadata=wire(default_on=_NULL))
    description: str = attrs.field(default="", metadata=wire(default_on=_NULL))
    market_slug: str = attrs.field(default="", metadata=wire(default_on=_NULL))
    active: bool = False
    closed: bool = False
    archived: bool = False
    accepting_orders: bool = False
    accepting_order_timestamp_ms: EpochMs | None = attrs.field(
        default=None, metadata=wire("accepting_order_timestamp", default_on=_ABSENT)
    )
    enable_order_book: bool = False
    neg_risk: bool = False
    neg_risk_market_id: str = attrs.field(default="", metadata=wire(default_on=_NULL))
    neg_risk_request_id: str = attrs.field(default="", metadata=wire(default_on=_NULL))
    end_date_ms: EpochMs | None = attrs.field(
        default=None, metadata=wire("end_date_iso", default_on=_ABSENT)
    )
    game_start_time_ms: EpochMs | None = attrs.field(
        default=None, metadata=wire("game_start_time", default_on=_ABSENT)
    )
    seconds_delay: Int = attrs.field(default=0, metadata=wire(default_on=_NULL))
    maker_base_fee: Int = attrs.field(default=0, metadata=wire(default_on=_NULL))
    taker_base_fee: Int = attrs.field(default=0, metadata=wire(default_on=_NULL))
    rewards: ClobRewards | None = None
    is_50_50_outcome: bool = False
    tags: tuple[str, ...] = attrs.field(default=(), metadata=wire(default_on=_NULL))


def decode_clob_market(data: str | bytes) -> ClobMarket:
    """Decode ``GET /markets/{condition_id}``. Raises ``FrameDecodeError`` on bad input."""
    return decode(data, ClobMarket)


def decode_clob_markets_page(data: str | bytes) -> Page[ClobMarket]:
    """Decode one page of ``GET /markets`` (or ``/sampling-markets``)."""
    return decode(data, Page[ClobMarket])


# --- small public endpoints --------------------------------------------------------------------


@attrs.frozen
class _TickSize:
    minimum_tick_size: NumUnits


@attrs.frozen
class _NegRisk:
    neg_risk: bool


@attrs.frozen
class _Price:
    price: NumUnits


@attrs.frozen
class _Midpoint:
    mid: NumUnits = attrs.field(metadata=wire(aliases=["mid_price"]))


@attrs.frozen
class _Spread:
    spread: NumUnits


@attrs.frozen
class _FeeRate:
    base_fee: Int


def decode_tick_size(data: str | bytes) -> int:
    """``GET /tick-size`` (``{"minimum_tick_size": 0.01}``) -> micro-units (``10_000``)."""
    return decode(data, _TickSize).minimum_tick_size


def decode_neg_risk(data: str | bytes) -> bool:
    """``GET /neg-risk`` (``{"neg_risk": true}``)."""
    return decode(data, _NegRisk).neg_risk


def decode_server_time(data: str | bytes) -> int:
    """``GET /time``: a bare JSON integer of unix seconds."""
    return decode(data, int)


def decode_price(data: str | bytes) -> int:
    """``GET /price`` (``{"price": 0.52}`` or ``"0.52"``) -> micro-units."""
    return decode(data, _Price).price


def decode_midpoint(data: str | bytes) -> int:
    """``GET /midpoint`` (``{"mid": "0.5"}``, or ``mid_price`` per the openapi) -> micro-units."""
    return decode(data, _Midpoint).mid


def decode_spread(data: str | bytes) -> int:
    """``GET /spread`` (``{"spread": "0.02"}``) -> micro-units."""
    return decode(data, _Spread).spread


def decode_fee_rate(data: str | bytes) -> int:
    """``GET /fee-rate`` (``{"base_fee": 30}`` or ``"150"``) -> basis points."""
    return decode(data, _FeeRate).base_fee


# --- orders ------------------------------------------------------------------------------------


@attrs.frozen
class SignedOrder:
    """A V2 signed order as posted inside ``POST /order`` (PROTOCOL.md 6.6).

    Amounts are already base units (1e-6) on the wire, so they are taken as integers, not parsed
    as decimals. ``timestamp`` is milliseconds, ``expiration`` unix seconds (0: none).
    """

    salt: Int
    maker: str
    signer: str
    token_id: Ident = attrs.field(metadata=wire("tokenId"))
    maker_amount: Int = attrs.field(metadata=wire("makerAmount"))
    taker_amount: Int = attrs.field(metadata=wire("takerAmount"))
    side: Side
    signature_type: Int = attrs.field(metadata=wire("signatureType"))
    signature: str
    expiration: Int = 0
    timestamp: Int = 0
    metadata: str = ""
    builder: str = ""


@attrs.frozen
class PostOrderRequest:
    """The body of ``POST /order`` (one element of ``POST /orders``)."""

    order: SignedOrder
    owner: str
    order_type: OrderType = attrs.field(metadata=wire("orderType"))
    post_only: bool = attrs.field(default=False, metadata=wire("postOnly", default_on=_NULL))
    defer_exec: bool = attrs.field(default=False, metadata=wire("deferExec", default_on=_NULL))


@attrs.frozen
class PostOrderResponse:
    """The result of ``POST /order`` (and each element of ``POST /orders``).

    ``success`` alone is not enough: a rejected batch leg can come back with ``success`` true,
    an empty ``order_id`` and the reason in ``error_msg``; see ``accepted``. ``status`` is the
    insert status (``live``, ``matched``, ``delayed``, ``unmatched``), ``None`` on rejection.
    """

    success: bool
    order_id: str = attrs.field(default="", metadata=wire("orderID", default_on=_NULL))
    status: OrderStatus | None = attrs.field(default=None, metadata=wire(default_on=_ABSENT))
    making_amount: Units = attrs.field(default=0, metadata=wire("makingAmount", default_on=_ABSENT))
    taking_amount: Units = attrs.field(default=0, metadata=wire("takingAmount", default_on=_ABSENT))
    transactions_hashes: tuple[str, ...] = attrs.field(
        default=(), metadata=wire("transactionsHashes", default_on=_NULL)
    )
    trade_ids: tuple[str, ...] = attrs.field(
        default=(), metadata=wire("tradeIDs", default_on=_NULL)
    )
    error_msg: str = attrs.field(default="", metadata=wire("errorMsg", default_on=_NULL))

    @property
    def accepted(self) -> bool:
        """True when the venue took the order (success, an order id and no error message)."""
        return self.success and bool(self.order_id) and not self.error_msg


@attrs.frozen
class ErrorResponse:
    """An error body: ``{"error": ...}`` with optional ``code`` and ``retry_after_seconds``."""

    error: str
    code: str = attrs.field(default="", metadata=wire(default_on=_NULL))
    retry_after_seconds: Int | None = None


@attrs.frozen
class CancelResponse:
    """The result of every cancel endpoint: ids cancelled, and id -> reason for the rest."""

    canceled: tuple[str, ...] = attrs.field(default=(), metadata=wire(default_on=_NULL))
    not_canceled: dict[str, str] = attrs.field(factory=dict, metadata=wire(default_on=_NULL))


@attrs.frozen
class OpenOrder:
    """An order from ``GET /data/order/{id}`` or ``GET /data/orders``.

    Prices and sizes are micro-units; ``expiration`` is unix seconds (0: none);
    ``created_at_ms`` epoch milliseconds.
    """

    id: str
    status: OrderStatus
    market: str
    asset_id: str
    side: Side
    price: Price
    original_size: Units
    status_text: str = attrs.field(metadata=wire("status"))
    size_matched: Units = attrs.field(default=0, metadata=wire(default_on=_ABSENT))
    outcome: str = attrs.field(default="", metadata=wire(default_on=_NULL))
    order_type: OrderType | None = attrs.field(default=None, metadata=wire(default_on=_ABSENT))
    owner: str = attrs.field(default="", metadata=wire(default_on=_NULL))
    maker_address: str = attrs.field(default="", metadata=wire(default_on=_NULL))
    expiration: Int = attrs.field(default=0, metadata=wire(default_on=_ABSENT))
    associate_trades: tuple[str, ...] = attrs.field(default=(), metadata=wire(default_on=_NULL))
    created_at_ms: EpochMs | None = attrs.field(
        default=None, metadata=wire("created_at", default_on=_ABSENT)
    )


@attrs.frozen
class BalanceAllowance:
    """``GET /balance-allowance``: amounts in base units (1e-6 pUSD or shares), as sent.

    The live API sends integer strings (``"1000000000"`` is 1000 pUSD); they are kept as exact
    ``Decimal`` because older fixtures show decimal text (``"250.500000"``). V1 answers carry one
    ``allowance``; V2 answers a per-spender ``allowances`` map (PROTOCOL.md 4.2, exact shape
    UNVERIFIED), so both are kept.
    """

    balance: Decimal
    allowance: Decimal | None = attrs.field(default=None, metadata=wire(default_on=_ABSENT))
    allowances: dict[str, Decimal] = attrs.field(factory=dict, metadata=wire(default_on=_NULL))
    """Per-spender allowances (exchange address -> base units), as V2 reports them."""


def decode_signed_order(data: str | bytes) -> SignedOrder:
    """Decode a signed order object (as in a ``POST /order`` body)."""
    return decode(data, SignedOrder)


def decode_post_order_request(data: str | bytes) -> PostOrderRequest:
    """Decode a ``POST /order`` body (the simulator's side of the API)."""
    return decode(data, PostOrderRequest)


def decode_post_order_response(data: str | bytes) -> PostOrderResponse:
    """Decode the response of ``POST /order``."""
    return decode(data, PostOrderResponse)


def decode_post_orders_response(data: str | bytes) -> list[PostOrderResponse]:
    """Decode the response of ``POST /orders``: one result per order, in request order."""
    return list(decode(data, tuple[PostOrderResponse, ...]))


def decode_error_response(data: str | bytes) -> ErrorResponse:
    """Decode an error body (``{"error": ..., "code"?, "retry_after_seconds"?}``)."""
    return decode(data, ErrorResponse)


def decode_cancel_response(data: str | bytes) -> CancelResponse:
    """Decode the response of ``DELETE /order``, ``/orders``, ``/cancel-all`` and friends."""
    return decode(data, CancelResponse)


def decode_open_order(data: str | bytes) -> OpenOrder:
    """Decode ``GET /data/order/{order_id}``."""
    return decode(data, OpenOrder)


def decode_open_orders_page(data: str | bytes) -> Page[OpenOrder]:
    """Decode one page of ``GET /data/orders``."""
    return decode(data, Page[OpenOrder])


def decode_trade(data: str | bytes) -> UserTrade:
    """Decode one trade of ``GET /data/trades`` (the user channel's trade shape)."""
    return decode(data, UserTrade)


def decode_trades_page(data: str | bytes) -> Page[UserTrade]:
    """Decode one page of ``GET /data/trades``."""
    return decode(data, Page[UserTrade])


def decode_balance_allowance(data: str | bytes) -> BalanceAllowance:
    """Decode ``GET /balance-allowance``."""
    return decode(data, BalanceAllowance)

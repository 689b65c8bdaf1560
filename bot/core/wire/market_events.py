"""Typed events of Polymarket's CLOB market WebSocket channel.

These are the hot-path records: every field a bot acts on, already converted to exact integer
micro-units (``bot.core.money``), built by ``bot.core.wire.market.decode_market_frame``.

They are ``NamedTuple``s on purpose: immutable, slotted, typed, and about twice as fast to build as
frozen attrs classes, which matters at 150,000+ events per second (see ``just bench``). Treat them
as values; never compare them with plain tuples.

Conventions (PROTOCOL.md section 1):

* prices and sizes are micro-units (0.48 -> 480_000); timestamps are integer milliseconds;
* ``asset_id`` is the token id (a decimal string), ``market`` the condition id (``0x`` + 64 hex);
* book levels are kept in the order they arrived (real captures send them worst-to-best: bids
  ascending, asks descending); the order book does not depend on that order;
* a ``price_change`` size is the new total at that level, and 0 removes the level;
* ``best_bid``/``best_ask`` in a price change are the venue's top of book after the change, with an
  empty side reported as 0 (bids) and 1.0 (asks); legacy frames do not carry them (``None``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from bot.core.money import Side


class Level(NamedTuple):
    """One aggregated price level."""

    price: int
    size: int


class BookSnapshot(NamedTuple):
    """``book``: a full aggregated snapshot of one token's book."""

    asset_id: str
    market: str
    timestamp_ms: int
    hash: str
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    tick_size: int | None = None
    last_trade_price: int | None = None
    min_order_size: int | None = None
    neg_risk: bool | None = None


class PriceLevelChange(NamedTuple):
    """One entry of a ``price_change``: the new total size at ``price`` on ``side`` of a token."""

    asset_id: str
    price: int
    size: int
    side: Side
    best_bid: int | None = None
    best_ask: int | None = None
    hash: str | None = None


class PriceChange(NamedTuple):
    """``price_change``: level updates, possibly for both tokens of a market in one event.

    All three wire schemas (the current ``price_changes[]``, the pre-September-2025 ``changes[]``
    and the 2024 one-level-per-object form) decode to this shape; the older ones carry no
    ``best_bid``/``best_ask``.
    """

    market: str
    timestamp_ms: int
    changes: tuple[PriceLevelChange, ...]


class TickSizeChange(NamedTuple):
    """``tick_size_change``: the token's minimum tick moved (near 0.04/0.96)."""

    asset_id: str
    market: str
    old_tick_size: int
    new_tick_size: int
    timestamp_ms: int


class LastTradePrice(NamedTuple):
    """``last_trade_price``: one match. ``side`` is the taker's side. No trade id exists."""

    asset_id: str
    market: str
    price: int
    size: int
    side: Side
    timestamp_ms: int
    fee_rate_bps: int | None = None
    transaction_hash: str | None = None


class BestBidAsk(NamedTuple):
    """``best_bid_ask`` (custom feature): the venue's top of book for a token."""

    asset_id: str
    market: str
    best_bid: int
    best_ask: int
    spread: int
    timestamp_ms: int


class NewMarket(NamedTuple):
    """``new_market`` (custom feature): a market was listed."""

    id: str
    market: str
    question: str
    slug: str
    assets_ids: tuple[str, ...]
    outcomes: tuple[str, ...]
    timestamp_ms: int
    tick_size: int | None = None
    event_slug: str | None = None


class MarketResolved(NamedTuple):
    """``market_resolved`` (custom feature): the market resolved to ``winning_asset_id``."""

    id: str
    market: str
    assets_ids: tuple[str, ...]
    winning_asset_id: str
    winning_outcome: str
    timestamp_ms: int


class Pong(NamedTuple):
    """The literal text frame ``PONG``: the answer to our ``PING``."""


class UnknownEvent(NamedTuple):
    """An object whose ``event_type`` we do not know. Counted by the runtime, never an error."""

    event_type: str
    raw: dict[str, Any]


MarketEvent = (
    BookSnapshot
    | PriceChange
    | TickSizeChange
    | LastTradePrice
    | BestBidAsk
    | NewMarket
    | MarketResolved
    | Pong
    | UnknownEvent
)
"""Everything ``decode_market_frame`` can return."""

"""What the market feed publishes on the bus besides book views: health and must-not-lose events.

Book views go to the bus conflated per token (a strategy only needs the newest one). Everything in
``FeedEvent`` goes through the bus's ordered, bounded event queue instead, because losing one
silently would mislead a strategy:

* ``TokenStale`` / ``TokenFresh``: a token's book stopped (or started again) being known to match
  the venue. Published on the *transition* only: stale when its socket drops, when the watchdog
  finds the socket frozen, or when a ``price_change`` disagrees with our top of book; fresh when
  a snapshot (from the socket, or from REST) replaced it. A strategy should not quote a stale
  token. Every view also carries ``BookView.stale``; the events say *why* and *when*.
* ``ShardState``: one WebSocket session (a *shard* of at most ``assets_per_socket`` tokens)
  changed state, with a human-readable ``detail``.
* Pass-through market events whose loss would matter: ``LastTradePrice`` (trades: no trade id
  exists, so a lost one cannot be recovered), ``TickSizeChange`` (orders off the new grid are
  rejected), ``MarketResolved`` and ``NewMarket``. These are the core's wire records
  (``bot.core.wire.market_events``), unchanged.

The status events are frozen attrs classes (rare, so construction cost does not matter); the
pass-through ones are the core's ``NamedTuple``s.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeAlias

import attrs

from bot.core.wire.market_events import LastTradePrice, MarketResolved, NewMarket, TickSizeChange

__all__ = [
    "FeedEvent",
    "FreshSource",
    "ShardState",
    "ShardStatus",
    "StaleReason",
    "TokenFresh",
    "TokenStale",
]


class StaleReason(StrEnum):
    """Why a token's book is no longer known to match the venue."""

    DISCONNECTED = "disconnected"
    """Its socket closed or failed; the venue replays nothing, so updates were lost."""
    FROZEN = "frozen"
    """The watchdog found its socket alive (``PONG``s) but delivering no market data."""
    DEAD = "dead"
    """The watchdog found its socket dead (no ``PONG`` for three ping intervals)."""
    MISMATCH = "mismatch"
    """A ``price_change`` carried a top of book that disagrees with ours after applying it."""
    BAD_UPDATE = "bad_update"
    """An update could not be applied (e.g. a price outside ``[0, 1]``)."""


class FreshSource(StrEnum):
    """Where the snapshot that made a token fresh came from."""

    WS = "ws"
    """The WebSocket's ``book`` snapshot: the normal case."""
    REST = "rest"
    """REST ``/book(s)``: a resnapshot after a mismatch, or the fallback while the socket is
    down. REST can lag the socket, so treat it as good but not perfect."""


class ShardStatus(StrEnum):
    """The state of one WebSocket session (see ``bot.shell.feed`` for the transitions)."""

    CONNECTING = "connecting"
    """The first connection attempt is in progress."""
    CONNECTED = "connected"
    """Connected and every subscribe frame sent; snapshots and updates flow."""
    FROZEN = "frozen"
    """The watchdog found the socket frozen; a reconnect follows at once."""
    RECONNECTING = "reconnecting"
    """The session ended; waiting out the backoff or connecting again."""
    REST_FALLBACK = "rest_fallback"
    """Down for longer than ``rest_fallback_after_s``: books are polled over REST while the
    reconnect attempts go on."""
    DOWN = "down"
    """The restart budget is exhausted; the feed is raising to the root. Terminal."""


@attrs.frozen
class TokenStale:
    """A token's book is no longer known to match the venue (published on the transition).

    Attributes:
        asset_id: The token.
        reason: Why.
    """

    asset_id: str
    reason: StaleReason


@attrs.frozen
class TokenFresh:
    """A token's book was replaced by a snapshot and matches the venue again (published when the
    token was stale, or when the source changed).

    Attributes:
        asset_id: The token.
        source: Where the snapshot came from.
    """

    asset_id: str
    source: FreshSource = FreshSource.WS


@attrs.frozen
class ShardState:
    """A shard (one WebSocket session) changed state.

    Attributes:
        shard: The shard's index (tokens are split in order, ``assets_per_socket`` per shard).
        state: The new state.
        detail: Why, for humans (the error that ended the session, the watchdog's finding...).
    """

    shard: int
    state: ShardStatus
    detail: str = ""


FeedEvent: TypeAlias = (
    TokenStale
    | TokenFresh
    | ShardState
    | LastTradePrice
    | TickSizeChange
    | MarketResolved
    | NewMarket
)
"""Everything the feed publishes as a must-not-lose event: ``Bus[FeedEvent]``."""

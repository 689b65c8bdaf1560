"""The sim venue's network shell: one ASGI app serving Gamma REST, CLOB REST and the market channel.

Layout on one port of 127.0.0.1 (``serve`` returns the URLs):

* ``<base>/gamma/...`` -- Gamma: ``GET /markets``, ``/markets/{id}``, ``/markets/slug/{slug}``,
  ``/events``, ``/events/{id}``, ``/events/slug/{slug}`` (PROTOCOL.md section 3);
* ``<base>/...`` -- CLOB public REST: ``/``, ``/ok``, ``/time``, ``/version``, ``/book``,
  ``POST /books``, ``/price``, ``/midpoint``, ``/spread``, ``/tick-size`` (also
  ``/tick-size/{id}``), ``/neg-risk``, ``/fee-rate``, ``/markets`` (cursor pages) and
  ``/markets/{condition_id}``, ``/clob-markets/{condition_id}`` (compact: tokens, tick, min size,
  neg risk, fee schedule ``fd``), ``/markets-by-token/{token_id}`` (the parent condition id),
  ``/time`` and ``/version`` (section 4.1);
* ``<base>/sim/forecast`` -- not Polymarket: the hidden forecast of every temperature event, the
  sim's stand-in for a weather service (``bot.shell.forecast.SimForecastProvider``);
* ``ws://<host>/ws/market`` -- the market channel (section 1);
* the private side (sections 2, 4.2, 5): ``POST /auth/api-key`` and ``GET /auth/derive-api-key``
  (L1: the ``ClobAuth`` signature is recovered), and with L2 headers (HMAC over the raw body,
  ``POLY_TIMESTAMP`` within ``L2_MAX_SKEW_S`` of venue time) ``POST /order``, ``POST /orders``,
  ``DELETE /order``, ``/orders``, ``/cancel-all``, ``/cancel-market-orders``,
  ``GET /data/order/{id}``, ``/data/orders``, ``/data/trades``, ``/balance-allowance`` (and
  ``/update``), ``GET /auth/api-keys``, ``DELETE /auth/api-key`` and ``POST /v1/heartbeats``;
  ``ws://<host>/ws/user`` -- the user channel (``order`` and ``trade`` events of one API key).
  Orders are checked (signature recovered under the exchange of the market's neg-risk flag,
  tick, size, balance), matched against the exchange's true books (never against the same
  account's orders) and rested there in time priority, where the simulated flow fills them as
  makers (``settle_flow_fills``); the accounting is the pure ``bot.sim.accounts``. A FOK/FAK
  order whose implied price falls between ticks (the SDKs' market BUYs) is capped at the tick
  its signature allows (``marketable_limit``). Polymarket's own ``py_clob_client_v2`` trades
  here unchanged (``tests/sim/test_official_client.py``).

Everything the venue *knows* lives in the pure model (``bot.sim.universe``, ``bot.sim.exchange``);
this module only moves it over the wire, applies the fault switches (``bot.sim.faults``) and
counts. It never blocks on a client:

* Each WebSocket has a bounded ``Outbox``. The pump (``bot.sim.venue``) is a synchronous
  producer: ``MarketHub.broadcast`` filters a tick's events per connection, encodes one frame and
  *offers* it. A connection whose outbox is full is a slow consumer and is closed
  (code 1013, counted), as a real venue drops a consumer it cannot feed.
* Each WebSocket runs two tasks: a reader (subscribe messages, ``PING``) and a writer (drains the
  outbox into the socket; the fault switches act here). Only the writer awaits the socket.
* Replies to the client's own requests (``PONG``, initial-dump snapshots) bypass the bound: their
  volume is set by the client, and dropping them would break the protocol.

Market-channel behaviour, as documented or reported for the real venue (PROTOCOL.md 1.1-1.5):

* the first subscribe message has ``type`` ``"market"`` (any case) and ``assets_ids``; later
  messages may be further ``type`` messages (clients split subscriptions into frames of <= 100
  ids) or ``{"operation": "subscribe" | "unsubscribe", "assets_ids": [...]}``; a message's
  ``custom_feature_enabled`` (when present) switches the custom events for the connection;
* ``initial_dump`` (default true) sends one ``book`` per newly subscribed asset, batched as JSON
  arrays like the real initial dump;
* an asset already subscribed is ignored (no second snapshot), an unknown asset id is ignored,
  and assets beyond ``max_assets_per_connection`` get no snapshot and no data;
* live events are filtered to the connection's assets (a ``price_change`` keeps only the changes
  of subscribed assets and is dropped if none remain); ``best_bid_ask``, ``new_market`` and
  ``market_resolved`` go only to connections with custom features on; ``new_market`` goes to all
  of those (its assets cannot be subscribed yet), ``market_resolved`` to those holding one of its
  assets; events produced in one pump tick go out as one frame (an object for one event, an array
  for several);
* the text ``PING`` is answered with the text ``PONG`` (also before subscribing);
* anything else the client sends (unknown JSON, binary frames, an ``operation`` message before the
  first subscribe) is ignored and counted: the real venue's reaction is unknown;
* a socket that has not subscribed after ``subscribe_timeout_s`` is closed (code 1008).

REST notes (choices where the real API is unverified are marked so in the constants below):

* Gamma ``/markets`` lists open markets unless ``closed=`` is given (PROTOCOL.md 3.1); ``limit``
  defaults to ``GAMMA_DEFAULT_LIMIT``; ``order`` takes comma-separated fields in either spelling
  (``volume_24hr`` or ``volume24hr``), descending unless ``ascending=true``; list parameters
  (``slug``, ``id``, ``condition_ids``, ``clob_token_ids``) may repeat, use ``[]`` or commas;
  ``tag_slug`` matches the market's and its event's tags.
* Gamma ``/events`` lists the neg-risk events *and* the single-market event of every stand-alone
  binary, as the venue does (every market has a parent event), by id.
* Gamma and CLOB market objects carry the live state (tick, top of book, resolution) rendered at
  most ``METADATA_TTL_MS`` ago: the venue's cached fields lag the books too.
* CLOB ``/markets`` pages hold ``clob_page_size`` markets (the real capture in
  ``tests/fixtures/nautilus_py_http/markets.json`` has 100); the cursor is base64 of the offset.
* Errors are ``{"error": ...}`` JSON with the real messages where known; Gamma answers a bad query
  parameter with 422, the CLOB with 400; an unknown path is Go's plain ``404 page not found``.

Close codes: 1001 for fault drops, 1008 for never subscribing, 1013 for slow consumers. Known
limitation: while ``stop_reading`` is on the venue cannot see a client's close either (it is a
frame it does not read), so such a connection lingers until the switch goes off or a drop.

Errors: hypercorn logs and swallows exceptions raised by an ASGI app. A bug here would then be
invisible, so the app reports any unexpected exception through ``on_crash`` instead, and the
venue re-raises it from ``open_sim_venue``.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import math
import zlib
from collections import deque
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qs, unquote

import attrs
import hypercorn.config
import hypercorn.trio
import orjson
import trio
from eth_keys.datatypes import Signature
from eth_utils.crypto import keccak
from py_clob_client_v2.signing.eip712 import MSG_TO_SIGN, get_clob_auth_domain
from py_clob_client_v2.signing.model import ClobAuth

from bot.config import Secret
from bot.core.auth import (
    POLY_ADDRESS,
    POLY_API_KEY,
    POLY_NONCE,
    POLY_PASSPHRASE,
    POLY_SIGNATURE,
    POLY_TIMESTAMP,
    hmac_matches,
)
from bot.core.money import ONE, Side, format_units, from_decimal
from bot.core.signing import CHAIN_ID_POLYGON, MAX_BATCH, exchange_for
from bot.core.trading import OrderType
from bot.shell.signer import InvalidOrderSignature, order_hash, recover_order_signer
from bot.sim.accounts import (
    CROSSES_OWN_ORDER,
    Accounts,
    OrderRejected,
    RestingOrder,
    order_price,
    plan_taker,
)
from bot.sim.faults import Faults, malformed_frame, pick_malformed_kind
from bot.sim.universe import clob_market_json, gamma_event_json, gamma_market_json, tag_slug

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from hypercorn.typing import (
        ASGIFramework,
        ASGIReceiveCallable,
        ASGISendCallable,
        HTTPScope,
        LifespanScope,
        Scope,
        WebsocketScope,
    )

    from bot.config import SimConfig
    from bot.core.book import OrderBook
    from bot.sim.accounts import Account, TradeRecord
    from bot.sim.exchange import SimExchange, WireEvent
    from bot.sim.universe import SimEvent, SimMarket, Universe

__all__ = [
    "CLOSE_DROPPED",
    "CLOSE_NOT_SUBSCRIBED",
    "CLOSE_SLOW_CONSUMER",
    "MarketConnection",
    "MarketHub",
    "Outbox",
    "ServerStatistics",
    "SimApp",
    "SimUrls",
    "serve",
]

CLOSE_DROPPED: Final = 1001
"""Close code of a fault drop ("going away")."""
CLOSE_NOT_SUBSCRIBED: Final = 1008
"""Close code for a socket that never subscribed ("policy violation")."""
CLOSE_SLOW_CONSUMER: Final = 1013
"""Close code for a consumer whose outbox overflowed ("try again later")."""

MAX_EVENTS_PER_FRAME: Final = 1_000
"""A pump tick with more events for one connection is split into frames of at most this many."""
SNAPSHOT_FRAME_BYTES: Final = 512 * 1024
"""Initial-dump ``book`` arrays are cut at about this size (trio-websocket's default limit for
one message is 1 MiB)."""
CLOSE_GRACE_S: Final = 2.0
"""How long a connection being closed may take to get its close frame out before it is cut."""
BOOKS_PAYLOAD_LIMIT: Final = 500
"""``POST /books`` takes at most this many token ids (beyond: 400 ``Payload exceeds the limit``)."""
GAMMA_DEFAULT_LIMIT: Final = 100
"""Gamma ``limit`` when none is given (the real default is UNVERIFIED)."""
METADATA_TTL_MS: Final = 1_000
"""Gamma and CLOB market objects are re-rendered from the live model at most this often."""
GAMMA_MAX_LIMIT: Final = 500
"""Largest Gamma ``limit`` honoured (larger values are clamped; the real cap is UNVERIFIED)."""

_TEMPERATURE_END_AFTER: Final = timedelta(hours=12)
"""A temperature event ends this long after a moment of the day it is about (``day_ms`` in
``bot.sim.universe._temperature_event``), so its end minus this falls on that day."""
_CUSTOM_EVENTS: Final = frozenset({"best_bid_ask", "new_market", "market_resolved"})
_JSON: Final = (("content-type", "application/json"),)


# --------------------------------------------------------------------------------------------
# URLs


@attrs.frozen
class SimUrls:
    """Where a running sim venue listens.

    Attributes:
        gamma_url: Gamma REST base (``http://127.0.0.1:PORT/gamma``).
        clob_url: CLOB REST base (``http://127.0.0.1:PORT``).
        ws_market_url: Market channel (``ws://127.0.0.1:PORT/ws/market``).
    """

    gamma_url: str
    clob_url: str
    ws_market_url: str

    @classmethod
    def from_base(cls, base: str) -> SimUrls:
        """The URLs of an app bound at ``base`` (``http://host:port``)."""
        base = base.rstrip("/")
        ws_base = "ws://" + base.removeprefix("http://")
        return cls(gamma_url=f"{base}/gamma", clob_url=base, ws_market_url=f"{ws_base}/ws/market")

    @property
    def ws_user_url(self) -> str:
        """User channel (``ws://127.0.0.1:PORT/ws/user``)."""
        return self.ws_market_url.removesuffix("/ws/market") + "/ws/user"

    def as_dict(self) -> dict[str, str]:
        """The JSON object ``polybot sim`` prints first."""
        return {
            "gamma_url": self.gamma_url,
            "clob_url": self.clob_url,
            "ws_market_url": self.ws_market_url,
        }


# --------------------------------------------------------------------------------------------
# The outbox: a bounded FIFO that never blocks its producers


@attrs.define(eq=False, slots=True)
class OutFrame:
    """One text frame queued for a connection.

    Attributes:
        text: The frame.
        events: The events in it (data frames; the malformed-frame fault derives from them).
        due: ``trio.current_time()`` before which it must not be sent (``latency_ms``).
        data: True for pump output (bounded, subject to faults), False for replies (``PONG``,
            snapshots) and the close marker.
        close_code: Set on the close marker: the writer closes the socket with it.
    """

    text: str
    events: list[dict[str, Any]] = attrs.field(factory=list)
    due: float = 0.0
    data: bool = True
    close_code: int | None = None
    close_reason: str = ""


@attrs.define(eq=False)
class Outbox:
    """The frames waiting for one connection's writer.

    ``offer`` never blocks: it refuses a data frame when ``capacity`` data frames are already
    queued (the caller then drops the connection). Replies and the close marker are always
    accepted. One task may ``get``; any task may ``wait_room``.
    """

    capacity: int
    _frames: deque[OutFrame] = attrs.field(factory=deque, init=False)
    _data: int = attrs.field(default=0, init=False)
    _readers: trio.lowlevel.ParkingLot = attrs.field(factory=trio.lowlevel.ParkingLot, init=False)
    _room: trio.lowlevel.ParkingLot = attrs.field(factory=trio.lowlevel.ParkingLot, init=False)
    peak: int = attrs.field(default=0, init=False)

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def data_frames(self) -> int:
        """Data frames queued."""
        return self._data

    def offer(self, frame: OutFrame) -> bool:
        """Queue ``frame``; False (and nothing queued) if it is a data frame and the box is full."""
        if frame.data:
            if self._data >= self.capacity:
                return False
            self._data += 1
        self._frames.append(frame)
        self.peak = max(self.peak, len(self._frames))
        self._readers.unpark()
        return True

    def close_now(self, code: int, reason: str) -> None:
        """Discard everything queued and queue the close marker (sent without delay)."""
        self._frames.clear()
        self._data = 0
        self._frames.append(OutFrame("", data=False, close_code=code, close_reason=reason))
        self._readers.unpark()
        self._room.unpark_all()

    async def get(self) -> OutFrame:
        """The oldest frame, waiting for one. Always a checkpoint."""
        if self._frames:
            await trio.lowlevel.checkpoint()
        while not self._frames:
            await self._readers.park()
        frame = self._frames.popleft()
        if frame.data:
            self._data -= 1
            self._room.unpark_all()
        return frame

    async def wait_room(self, level: int) -> None:
        """Wait until at most ``level`` data frames are queued. Always a checkpoint."""
        await trio.lowlevel.checkpoint()
        while self._data > level:
            await self._room.park()


# --------------------------------------------------------------------------------------------
# Connections and the hub


@attrs.define(eq=False)
class MarketConnection:
    """One market-channel WebSocket: its subscription, outbox and counters."""

    id: int
    outbox: Outbox
    assets: set[str] = attrs.field(factory=set)
    custom_features: bool = False
    subscribed: trio.Event = attrs.field(factory=trio.Event)
    cancel_scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    closing: bool = False
    held: OutFrame | None = None
    frames_sent: int = 0
    events_sent: int = 0
    bytes_sent: int = 0

    def close(self, code: int, reason: str) -> None:
        """Close soon: the writer sends the close frame next; after ``CLOSE_GRACE_S`` it is cut."""
        if self.closing:
            return
        self.closing = True
        self.outbox.close_now(code, reason)
        self.cancel_scope.deadline = min(
            self.cancel_scope.deadline, trio.current_time() + CLOSE_GRACE_S
        )


@attrs.define(eq=False)
class UserConnection:
    """One user-channel WebSocket: the API key it authenticated as and its market filter."""

    outbox: Outbox
    api_key: str | None = None
    markets: set[str] | None = None
    """Condition ids to deliver; ``None``: every market (the subscribe frame had none)."""
    cancel_scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)


@attrs.frozen
class ServerStatistics:
    """Counters of the market channel and REST (``SimApp.statistics()``).

    Attributes:
        connections: Market WebSockets open now.
        connections_total: Market WebSockets accepted since start.
        subscribed_assets: Asset subscriptions across open connections.
        events_sent: Market events written to sockets (a ``price_change`` counts once).
        frames_sent: Text frames written (data, replies and injected faults).
        bytes_sent: Characters of those frames.
        snapshots_sent: ``book`` snapshots sent for subscriptions.
        pongs_sent: ``PONG`` replies.
        slow_consumers_dropped: Connections closed because their outbox overflowed.
        subscribe_timeouts: Connections closed for never subscribing.
        assets_over_limit: Asset ids refused by the per-connection limit.
        unknown_assets: Asset ids the venue does not list.
        duplicate_assets: Asset ids already subscribed on the same connection.
        ignored_messages: Client frames that were neither a subscription nor ``PING``.
        http_requests: REST requests answered (fault answers included).
        peak_outbox: The largest number of frames any outbox has held.
    """

    connections: int
    connections_total: int
    subscribed_assets: int
    events_sent: int
    frames_sent: int
    bytes_sent: int
    snapshots_sent: int
    pongs_sent: int
    slow_consumers_dropped: int
    subscribe_timeouts: int
    assets_over_limit: int
    unknown_assets: int
    duplicate_assets: int
    ignored_messages: int
    http_requests: int
    peak_outbox: int


@attrs.define(eq=False)
class _Counters:
    connections_total: int = 0
    events_sent: int = 0
    frames_sent: int = 0
    bytes_sent: int = 0
    snapshots_sent: int = 0
    pongs_sent: int = 0
    slow_consumers_dropped: int = 0
    subscribe_timeouts: int = 0
    assets_over_limit: int = 0
    unknown_assets: int = 0
    duplicate_assets: int = 0
    ignored_messages: int = 0
    http_requests: int = 0
    peak_outbox: int = 0


def _filter(events: list[dict[str, Any]], assets: set[str], custom: bool) -> list[dict[str, Any]]:
    """The events one connection receives (see the module docstring for the rules)."""
    out: list[dict[str, Any]] = []
    for event in events:
        event_type = event.get("event_type")
        if event_type == "price_change":
            changes = event.get("price_changes")
            if changes is None:  # legacy shapes: routed by their top-level asset_id
                if event.get("asset_id") in assets:
                    out.append(event)
                continue
            kept = [change for change in changes if change.get("asset_id") in assets]
            if len(kept) == len(changes):
                out.append(event)
            elif kept:
                out.append({**event, "price_changes": kept})
        elif event_type in _CUSTOM_EVENTS:
            if not custom:
                continue
            if event_type == "new_market":
                out.append(event)
            elif event_type == "market_resolved":
                if not assets.isdisjoint(event.get("assets_ids", ())):
                    out.append(event)
            elif event.get("asset_id") in assets:
                out.append(event)
        else:
            asset = event.get("asset_id")
            if asset is None or asset in assets:
                out.append(event)
    return out


def encode_frame(events: list[dict[str, Any]]) -> str:
    """One text frame: the object itself for one event, a JSON array for several."""
    return orjson.dumps(events[0] if len(events) == 1 else events).decode()


@attrs.define(eq=False)
class MarketHub:
    """The open market-channel connections and the fan-out to them."""

    faults: Faults
    outbox_frames: int
    connections: dict[int, MarketConnection] = attrs.field(factory=dict)
    counters: _Counters = attrs.field(factory=_Counters)
    _ids: Iterator[int] = attrs.field(factory=lambda: itertools.count(1))

    def open(self) -> MarketConnection:
        """Register a new connection."""
        conn = MarketConnection(next(self._ids), Outbox(self.outbox_frames))
        self.connections[conn.id] = conn
        self.counters.connections_total += 1
        return conn

    def remove(self, conn: MarketConnection) -> None:
        """Forget a finished connection."""
        self.connections.pop(conn.id, None)
        self.counters.peak_outbox = max(self.counters.peak_outbox, conn.outbox.peak)

    def broadcast(self, events: list[dict[str, Any]]) -> int:
        """Offer ``events`` (one pump tick) to every subscribed connection; never blocks.

        Returns:
            The number of frames queued. A connection whose outbox is full is closed as a slow
            consumer; with the ``silent`` fault on, nothing is queued (the frames are counted).
        """
        if not events:
            return 0
        faults = self.faults
        queued = 0
        due = 0.0
        if faults.latency_ms:
            due = trio.current_time() + faults.latency_ms / 1000
        for conn in list(self.connections.values()):
            if conn.closing or not conn.subscribed.is_set():
                continue
            mine = _filter(events, conn.assets, conn.custom_features)
            if not mine:
                continue
            for start in range(0, len(mine), MAX_EVENTS_PER_FRAME):
                chunk = mine[start : start + MAX_EVENTS_PER_FRAME]
                if faults.silent:
                    faults.counters.silenced_frames += 1
                    continue
                frame = OutFrame(encode_frame(chunk), chunk, due)
                if not conn.outbox.offer(frame):
                    self.counters.slow_consumers_dropped += 1
                    conn.close(CLOSE_SLOW_CONSUMER, "slow consumer: outbox full")
                    break
                queued += 1
        return queued

    def drop_all(self, code: int = CLOSE_DROPPED, reason: str = "sim: dropped") -> int:
        """Close every open connection (the drop fault); returns how many."""
        dropped = 0
        for conn in list(self.connections.values()):
            if not conn.closing:
                conn.close(code, reason)
                dropped += 1
        self.faults.counters.drop_rounds += 1
        self.faults.counters.connections_dropped += dropped
        return dropped

    async def wait_room(self, level: int) -> None:
        """Wait until every connection's outbox holds at most ``level`` data frames."""
        await trio.lowlevel.checkpoint()
        while True:
            full = [c for c in self.connections.values() if c.outbox.data_frames > level]
            if not full:
                return
            await full[0].outbox.wait_room(level)

    def idle(self) -> bool:
        """No connection has anything queued or held back."""
        return all(not len(c.outbox) and c.held is None for c in self.connections.values())

    def statistics(self) -> ServerStatistics:
        """A frozen copy of the counters."""
        c = self.counters
        conns = list(self.connections.values())
        return ServerStatistics(
            connections=len(conns),
            connections_total=c.connections_total,
            subscribed_assets=sum(len(conn.assets) for conn in conns),
            events_sent=c.events_sent,
            frames_sent=c.frames_sent,
            bytes_sent=c.bytes_sent,
            snapshots_sent=c.snapshots_sent,
            pongs_sent=c.pongs_sent,
            slow_consumers_dropped=c.slow_consumers_dropped,
            subscribe_timeouts=c.subscribe_timeouts,
            assets_over_limit=c.assets_over_limit,
            unknown_assets=c.unknown_assets,
            duplicate_assets=c.duplicate_assets,
            ignored_messages=c.ignored_messages,
            http_requests=c.http_requests,
            peak_outbox=max([c.peak_outbox, *(conn.outbox.peak for conn in conns)]),
        )


# --------------------------------------------------------------------------------------------
# HTTP plumbing


@attrs.frozen
class Response:
    """A REST answer: status, headers and body."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = _JSON


def _json(data: object, status: int = 200) -> Response:
    return Response(status, orjson.dumps(data))


def _json_number(units: int) -> orjson.Fragment:
    """Micro-units as a JSON *number* (``0.01``), written from the exact decimal text: the venue
    sends numbers in these fields, and no binary float ever holds the value."""
    return orjson.Fragment(format_units(units).encode())


def _error(status: int, message: str) -> Response:
    return _json({"error": message}, status)


_NOT_FOUND_TEXT: Final = Response(
    404, b"404 page not found", (("content-type", "text/plain; charset=utf-8"),)
)


class _BadQuery(ValueError):
    """A query parameter with an invalid value (answered 400/422, naming the parameter)."""


def _query(scope: HTTPScope) -> dict[str, list[str]]:
    return parse_qs(scope["query_string"].decode("latin-1"), keep_blank_values=True)


def _one(query: Mapping[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _many(query: Mapping[str, list[str]], name: str) -> list[str]:
    """Repeated (``slug=a&slug=b``), bracketed (``slug[]=a``) or comma-separated values."""
    values = [*query.get(name, ()), *query.get(f"{name}[]", ())]
    return [part for value in values for part in value.split(",") if part]


def _bool(query: Mapping[str, list[str]], name: str) -> bool | None:
    value = _one(query, name)
    if value is None or value == "":
        return None
    lowered = value.lower()
    if lowered in {"true", "1"}:
        return True
    if lowered in {"false", "0"}:
        return False
    raise _BadQuery(f"{name}: expected true or false, got {value!r}")


def _int(query: Mapping[str, list[str]], name: str, default: int) -> int:
    value = _one(query, name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise _BadQuery(f"{name}: expected an integer, got {value!r}") from None
    if number < 0:
        raise _BadQuery(f"{name}: expected an integer >= 0, got {value!r}")
    return number


def _number(query: Mapping[str, list[str]], name: str) -> float | None:
    value = _one(query, name)
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        raise _BadQuery(f"{name}: expected a number, got {value!r}") from None
    if not math.isfinite(number):
        raise _BadQuery(f"{name}: expected a number, got {value!r}")
    return number


def _date(query: Mapping[str, list[str]], name: str) -> datetime | None:
    value = _one(query, name)
    if value is None or value == "":
        return None
    parsed = _parse_date(value)
    if parsed is None:
        raise _BadQuery(f"{name}: expected an ISO-8601 date, got {value!r}")
    return parsed


def _parse_date(value: object) -> datetime | None:
    """An aware datetime from Gamma's ISO dates (``2026-05-01T12:00:00Z``, ``2026-05-01``)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _as_float(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _camel(name: str) -> str:
    """Gamma sort field names come in both spellings: ``volume_24hr`` -> ``volume24hr``."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _sort_key(field: str) -> Callable[[dict[str, Any]], tuple[int, float, str]]:
    """Numbers (and numeric strings) sort as numbers, other strings as text, missing first."""

    def key(item: dict[str, Any]) -> tuple[int, float, str]:
        value = item.get(field)
        if value is None:
            value = item.get(_camel(field))
        if value is None and field in {"liquidity", "volume"}:
            value = item.get(f"{field}Num")
        if value is None:
            return (0, 0.0, "")
        number = _as_float(value)
        if number is not None:
            return (1, number, "")
        return (2, 0.0, str(value))

    return key


# --------------------------------------------------------------------------------------------
# The app


@attrs.define(eq=False)
class SimApp:
    """The ASGI application of the sim venue (http, websocket and lifespan scopes).

    Args:
        universe: The listed markets and events.
        exchange: The books and the order flow.
        faults: The live fault switches.
        config: Limits (``max_assets_per_connection``, ``outbox_frames``,
            ``subscribe_timeout_s``, ``clob_page_size``).
        clock: The venue time in epoch milliseconds (the venue derives it from
            ``trio.current_time()``).
        on_crash: Called with any unexpected exception raised while serving (a bug).
    """

    universe: Universe
    exchange: SimExchange
    faults: Faults
    config: SimConfig
    clock: Callable[[], int]
    on_crash: Callable[[BaseException], None] = attrs.field(default=lambda _exc: None)
    hub: MarketHub = attrs.field(init=False)
    _tokens: frozenset[str] = attrs.field(init=False)
    _gamma_markets: list[dict[str, Any]] | None = attrs.field(default=None, init=False)
    _gamma_events: list[dict[str, Any]] | None = attrs.field(default=None, init=False)
    _clob_markets: list[dict[str, Any]] | None = attrs.field(default=None, init=False)
    _rendered_ms: int | None = attrs.field(default=None, init=False)
    accounts: Accounts = attrs.field(init=False)
    _heartbeats: dict[str, int] = attrs.field(factory=dict, init=False)
    _user_conns: set[UserConnection] = attrs.field(factory=set, init=False)

    def __attrs_post_init__(self) -> None:
        self.hub = MarketHub(self.faults, self.config.outbox_frames)
        self._tokens = frozenset(self.universe.token_ids())
        # Deterministic per seed, so a restarted venue recognises the keys it issued before.
        venue_secret = f"polybot-sim-venue-{self.config.seed}".encode()
        self.accounts = Accounts(venue_secret, from_decimal(self.config.demo_balance))

    def invalidate(self) -> None:
        """Forget the rendered REST metadata now (after listing or resolving a market)."""
        self._tokens = frozenset(self.universe.token_ids())
        self._gamma_markets = self._gamma_events = self._clob_markets = None
        self._rendered_ms = None

    def _fresh(self) -> None:
        """Drop renderings older than ``METADATA_TTL_MS`` of venue time (Gamma's cached fields
        such as ``bestBid`` lag the books on the real venue too)."""
        now = self.clock()
        if self._rendered_ms is None or now - self._rendered_ms >= METADATA_TTL_MS:
            self._gamma_markets = self._gamma_events = self._clob_markets = None
            self._rendered_ms = now

    def statistics(self) -> ServerStatistics:
        """The hub's counters."""
        return self.hub.statistics()

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        try:
            if scope["type"] == "http":
                await self._http(scope, receive, send)
            elif scope["type"] == "websocket":
                await self._websocket(scope, receive, send)
            else:
                await self._lifespan(scope, receive, send)
        except Exception as exc:
            # Not a retry loop: a bug in the venue. hypercorn would log and swallow it, so hand it
            # to the venue, which cancels itself and re-raises it to its caller.
            self.on_crash(exc)

    # --- lifespan

    async def _lifespan(
        self, _scope: LifespanScope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    # --- http

    async def _http(
        self, scope: HTTPScope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # http.disconnect: the client went away
            body += message["body"]
            more = message["more_body"]
        self.hub.counters.http_requests += 1
        method, path = scope["method"], scope["path"]
        order_post = method == "POST" and path in _ORDER_POSTS
        fault = self.faults.http_fault()
        if fault is None and order_post:
            fault = self.faults.order_fault(single=path == "/order")
        if fault is not None:
            response = Response(fault.status, fault.body, fault.headers)
        else:
            try:
                request_headers = {
                    k.decode("latin-1").upper(): v.decode("latin-1") for k, v in scope["headers"]
                }
                response = self.route(method, path, _query(scope), body, request_headers)
            except _BadQuery as exc:
                response = _error(400, str(exc))
            if (
                order_post
                and path == "/order"
                and self.faults.timeout_after_fill_rate
                and _filled(response)
                and self.faults.withhold_fill()
            ):
                # The order is matched; the answer waits for the client to give up (its read
                # timeout closes the connection), capped so a patient client still gets it.
                with trio.move_on_after(WITHHELD_ANSWER_MAX_S):
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    return
        headers = [(k.encode(), v.encode()) for k, v in response.headers]
        headers.append((b"content-length", str(len(response.body)).encode()))
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": headers,
                "trailers": False,
            }
        )
        await send({"type": "http.response.body", "body": response.body, "more_body": False})

    def route(
        self,
        method: str,
        path: str,
        query: Mapping[str, list[str]],
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """Answer one REST request (sync: nothing here waits). Public for direct unit tests.

        ``headers`` are keyed by upper-case name (``POLY_API_KEY``); only private routes read them.
        """
        private = _PRIVATE_ROUTES.get((method, path))
        if private is not None:
            return private(self, path, query, body, headers or {})
        if method == "GET" and path.startswith("/data/order/"):
            return self._data_order(path, query, body, headers or {})
        if path == "/gamma" or path.startswith("/gamma/"):
            if method != "GET":
                return _error(405, "method not allowed")
            return self._gamma(path.removeprefix("/gamma"), query)
        if method == "POST" and path == "/books":
            return self._books(body)
        if method != "GET":
            return _error(405, "method not allowed")
        if path == "/sim/forecast":
            return self._sim_forecast()
        return self._clob(path, query)

    def _sim_forecast(self) -> Response:
        """``GET /sim/forecast``: every temperature event's hidden forecast, as a weather service
        would give it (mean and sd of the day's maximum, °C, decimal strings); ``day`` is the
        ISO date (``_TEMPERATURE_END_AFTER``). Not a Polymarket endpoint."""
        forecasts = []
        for event in self.universe.events:
            mean, sd = event.forecast_mean_c_tenths, event.forecast_sd_c_tenths
            if event.kind != "temperature" or mean is None or sd is None:
                continue
            end = datetime.strptime(event.end_date_iso, "%Y-%m-%dT%H:%M:%S%z")
            forecasts.append(
                {
                    "event_id": event.id,
                    "city": event.city,
                    "day": (end - _TEMPERATURE_END_AFTER).date().isoformat(),
                    "mean_c": str(Decimal(mean).scaleb(-1)),
                    "sd_c": str(Decimal(sd).scaleb(-1)),
                }
            )
        return _json(forecasts)

    # --- Gamma

    def _gamma_market_list(self) -> list[dict[str, Any]]:
        self._fresh()
        if self._gamma_markets is None:
            state = self.exchange.market_state
            self._gamma_markets = [
                gamma_market_json(m, self.universe, state=state(m.condition_id))
                for m in self.universe.markets
            ]
        return self._gamma_markets

    def _gamma_event_list(self) -> list[dict[str, Any]]:
        """Every event: the neg-risk ones, and the single-market event of each stand-alone
        binary (on the venue every market has a parent event, and ``/events`` lists them)."""
        self._fresh()
        if self._gamma_events is None:
            state = self.exchange.market_state
            events = [
                gamma_event_json(e, self.universe, state_of=state) for e in self.universe.events
            ]
            by_condition = {m["conditionId"]: m for m in self._gamma_market_list()}
            for market in self.universe.markets:
                if market.event_id is None:
                    single = _single_market_event(market, by_condition[market.condition_id])
                    if single is not None:
                        events.append(single)
            events.sort(key=_id_order)
            self._gamma_events = events
        return self._gamma_events

    def _gamma(self, path: str, query: Mapping[str, list[str]]) -> Response:
        parts = [unquote(p) for p in path.strip("/").split("/") if p]
        try:
            if parts == ["markets"]:
                return _json(self._gamma_markets_query(query))
            if parts == ["events"]:
                return _json(self._gamma_events_query(query))
        except _BadQuery as exc:
            return _json({"type": "validation error", "error": str(exc)}, 422)
        if len(parts) in {2, 3} and parts[0] in {"markets", "events"}:
            items = self._gamma_market_list() if parts[0] == "markets" else self._gamma_event_list()
            if len(parts) == 3 and parts[1] == "slug":
                field, wanted = "slug", parts[2]
            elif len(parts) == 2:
                field, wanted = "id", parts[1]
            else:
                return _NOT_FOUND_TEXT
            for item in items:
                if str(item.get(field)) == wanted:
                    return _json(item)
            return _json({"type": "not found error", "error": "id not found"}, 404)
        return _NOT_FOUND_TEXT

    def _market_tag_slugs(self) -> dict[str, set[str]]:
        """condition id -> tag slugs of the market and of its event."""
        slugs: dict[str, set[str]] = {}
        for market in self.universe.markets:
            tags = set(_tag_slugs(market.tags))
            event = _event_of(self.universe, market)
            if event is not None:
                tags.update(_tag_slugs(event.tags))
            slugs[market.condition_id] = tags
        return slugs

    def _gamma_markets_query(self, query: Mapping[str, list[str]]) -> list[dict[str, Any]]:
        items = self._gamma_market_list()
        active = _bool(query, "active")
        # Gamma /markets returns open markets unless closed= is given (PROTOCOL.md 3.1).
        closed = _bool(query, "closed")
        closed = False if closed is None else closed
        archived = _bool(query, "archived")
        ids = set(_many(query, "id"))
        slugs = set(_many(query, "slug"))
        condition_ids = set(_many(query, "condition_ids"))
        token_ids = set(_many(query, "clob_token_ids"))
        tag = _one(query, "tag_slug")
        tag_slugs = self._market_tag_slugs() if tag else {}
        numbers = {
            "liquidityNum": (
                _number(query, "liquidity_num_min"),
                _number(query, "liquidity_num_max"),
            ),
            "volumeNum": (_number(query, "volume_num_min"), _number(query, "volume_num_max")),
        }
        dates = {
            "endDate": (_date(query, "end_date_min"), _date(query, "end_date_max")),
            "startDate": (_date(query, "start_date_min"), _date(query, "start_date_max")),
        }
        out = []
        for item in items:
            if active is not None and item.get("active") is not active:
                continue
            if item.get("closed") is not closed:
                continue
            if archived is not None and bool(item.get("archived")) is not archived:
                continue
            if ids and str(item.get("id")) not in ids:
                continue
            if slugs and item.get("slug") not in slugs:
                continue
            if condition_ids and item.get("conditionId") not in condition_ids:
                continue
            if token_ids and token_ids.isdisjoint(_clob_token_ids(item)):
                continue
            if tag and tag not in tag_slugs.get(str(item.get("conditionId")), ()):
                continue
            if not _in_ranges(item, numbers, dates):
                continue
            out.append(item)
        return _order_and_page(out, query)

    def _gamma_events_query(self, query: Mapping[str, list[str]]) -> list[dict[str, Any]]:
        items = self._gamma_event_list()
        active = _bool(query, "active")
        closed = _bool(query, "closed")
        archived = _bool(query, "archived")
        ids = set(_many(query, "id"))
        slugs = set(_many(query, "slug"))
        tag = _one(query, "tag_slug")
        numbers = {
            "liquidity": (_number(query, "liquidity_min"), _number(query, "liquidity_max")),
            "volume": (_number(query, "volume_min"), _number(query, "volume_max")),
        }
        dates = {
            "endDate": (_date(query, "end_date_min"), _date(query, "end_date_max")),
            "startDate": (_date(query, "start_date_min"), _date(query, "start_date_max")),
        }
        out = []
        for item in items:
            if active is not None and item.get("active") is not active:
                continue
            if closed is not None and item.get("closed") is not closed:
                continue
            if archived is not None and bool(item.get("archived")) is not archived:
                continue
            if ids and str(item.get("id")) not in ids:
                continue
            if slugs and item.get("slug") not in slugs:
                continue
            if tag and tag not in _tag_slugs(item.get("tags", ())):
                continue
            if not _in_ranges(item, numbers, dates):
                continue
            out.append(item)
        return _order_and_page(out, query)

    # --- CLOB

    def _clob_market_list(self) -> list[dict[str, Any]]:
        self._fresh()
        if self._clob_markets is None:
            state = self.exchange.market_state
            self._clob_markets = [
                clob_market_json(m, state=state(m.condition_id)) for m in self.universe.markets
            ]
        return self._clob_markets

    def _clob(self, path: str, query: Mapping[str, list[str]]) -> Response:
        if path in {"/", "/ok"}:
            return _json("OK")
        if path == "/time":
            return _json(self.clock() // 1000)
        if path == "/version":
            return _json({"version": 2})
        if path == "/markets":
            return self._clob_markets_page(query)
        if path.startswith("/markets/"):
            condition_id = unquote(path.removeprefix("/markets/"))
            for market in self._clob_market_list():
                if market.get("condition_id") == condition_id:
                    return _json(market)
            return _error(404, "market not found")
        if path.startswith("/clob-markets/"):
            return self._clob_market_compact(unquote(path.removeprefix("/clob-markets/")))
        if path.startswith("/markets-by-token/"):
            return self._market_by_token(unquote(path.removeprefix("/markets-by-token/")))
        if path.startswith("/tick-size/"):
            return self._tick_size(unquote(path.removeprefix("/tick-size/")))
        if path.startswith("/fee-rate/"):
            return self._fee_rate(unquote(path.removeprefix("/fee-rate/")))
        handler = _TOKEN_ENDPOINTS.get(path)
        if handler is None:
            return _NOT_FOUND_TEXT
        token = _one(query, "token_id")
        if not token:
            return _error(400, "Invalid payload: token_id is required")
        return handler(self, token, query)

    def _known(self, token: str) -> bool:
        return token in self._tokens

    def _book(self, token: str) -> OrderBook:
        return self.exchange.book(token)

    def _rest_book(self, token: str, _query: Mapping[str, list[str]]) -> Response:
        if not self._known(token):
            return _error(404, "No orderbook exists for the requested token id")
        return _json(self.exchange.rest_book_json(token, self.clock()))

    def _books(self, body: bytes) -> Response:
        try:
            items = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            return _error(400, "Invalid payload")
        if not isinstance(items, list) or not all(
            isinstance(item, dict) and isinstance(item.get("token_id"), str) for item in items
        ):
            return _error(400, "Invalid payload")
        if len(items) > BOOKS_PAYLOAD_LIMIT:
            return _error(400, "Payload exceeds the limit")
        now = self.clock()
        # Unknown token ids are left out of the answer (the real venue's reaction is UNVERIFIED).
        return _json(
            [
                self.exchange.rest_book_json(item["token_id"], now)
                for item in items
                if self._known(item["token_id"])
            ]
        )

    def _price(self, token: str, query: Mapping[str, list[str]]) -> Response:
        side = (_one(query, "side") or "").upper()
        if side not in {"BUY", "SELL"}:
            return _error(400, "Invalid side")
        if not self._known(token):
            return _error(404, "No orderbook exists for the requested token id")
        book = self._book(token)
        # BUY pays the best ask, SELL receives the best bid; an empty side reads 1 / 0.
        price = book.best_ask_price if side == "BUY" else book.best_bid_price
        return _json({"price": format_units(price)})

    def _midpoint(self, token: str, _query: Mapping[str, list[str]]) -> Response:
        if not self._known(token):
            return _error(404, "No orderbook exists for the requested token id")
        book = self._book(token)
        # Prices are whole ticks (>= 100 micro-units), so the mid is exact in micro-units.
        return _json({"mid": format_units((book.best_bid_price + book.best_ask_price) // 2)})

    def _spread(self, token: str, _query: Mapping[str, list[str]]) -> Response:
        if not self._known(token):
            return _error(404, "No orderbook exists for the requested token id")
        book = self._book(token)
        return _json({"spread": format_units(book.best_ask_price - book.best_bid_price)})

    def _tick_size(self, token: str, _query: Mapping[str, list[str]] | None = None) -> Response:
        if not self._known(token):
            return _error(404, "No orderbook exists for the requested token id")
        # A JSON number here (0.01), unlike the book's string "0.01" (PROTOCOL.md 4.1).
        # The real venue sends a JSON number here; the bot reads it back exactly (parse_number).
        return _json({"minimum_tick_size": _json_number(self._book(token).tick_size)})

    def _neg_risk(self, token: str, _query: Mapping[str, list[str]]) -> Response:
        market = self._market_of(token)
        if market is None:
            return _error(404, "No orderbook exists for the requested token id")
        return _json({"neg_risk": bool(market.neg_risk)})

    def _fee_rate(self, token: str, _query: Mapping[str, list[str]] | None = None) -> Response:
        market = self._market_of(token)
        if market is None:
            return _error(404, "No orderbook exists for the requested token id")
        base_fee = clob_market_json(market).get("taker_base_fee", 0)
        return _json({"base_fee": base_fee})

    def _clob_market_compact(self, condition_id: str) -> Response:
        """``GET /clob-markets/{condition_id}``: the compact market info the V2 SDKs read before
        building an order (PROTOCOL.md 4.1, 7.1): tokens, tick, minimum size, neg risk, fees."""
        market = next((m for m in self.universe.markets if m.condition_id == condition_id), None)
        if market is None:
            return _error(404, "market not found")
        tick = self.exchange.market_state(condition_id).tick_size or market.tick_size
        base_fee = 1000 if market.fee_rate else 0
        return _json(
            {
                "c": market.condition_id,
                "t": [
                    {"t": market.yes_token, "o": market.outcomes[0]},
                    {"t": market.no_token, "o": market.outcomes[1]},
                ],
                "mts": _json_number(tick),
                "mos": _json_number(market.min_order_size),
                "mbf": base_fee,
                "tbf": base_fee,
                # rate as a number (0.05), exponent 1 as in 2026 production; only takers pay.
                "fd": {"r": _json_number(market.fee_rate), "e": 1, "to": True},
                "nr": bool(market.neg_risk),
                "r": None,
                "gst": None,
                "rfqe": False,
                "itode": False,
                "ibce": False,
                "oas": 0,
            }
        )

    def _market_by_token(self, token: str) -> Response:
        """``GET /markets-by-token/{token_id}``: the token's parent market. The V2 SDKs read only
        ``condition_id`` (to fetch ``/clob-markets`` before a market order); the two token fields
        are as a third-party client reads them from the real venue (UNVERIFIED)."""
        market = self._market_of(token)
        if market is None:
            return _error(404, "market not found")
        return _json(
            {
                "condition_id": market.condition_id,
                "primary_token_id": market.yes_token,
                "secondary_token_id": market.no_token,
            }
        )

    def _market_of(self, token: str) -> SimMarket | None:
        if not self._known(token):
            return None
        return self.universe.market_for_token(token)

    def _clob_markets_page(self, query: Mapping[str, list[str]]) -> Response:
        cursor = _one(query, "next_cursor") or "MA=="
        try:
            offset = int(base64.b64decode(cursor, validate=True).decode("ascii"))
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return _error(400, "invalid next_cursor")
        markets = self._clob_market_list()
        size = self.config.clob_page_size
        if offset < 0:
            data: list[dict[str, Any]] = []
            following = -1
        else:
            data = markets[offset : offset + size]
            following = offset + size if offset + size < len(markets) else -1
        next_cursor = base64.b64encode(str(following).encode()).decode()
        return _json({"data": data, "next_cursor": next_cursor, "limit": size, "count": len(data)})

    # --- the private side (accounts, orders, heartbeats)

    def _l1(self, headers: Mapping[str, str]) -> tuple[str, int] | Response:
        """The (address, nonce) proven by valid L1 headers, else a 401 answer."""
        try:
            address = headers[POLY_ADDRESS]
            timestamp = int(headers[POLY_TIMESTAMP])
            nonce = int(headers.get(POLY_NONCE, "0"))
            signer = recover_clob_auth_signer(address, timestamp, nonce, headers[POLY_SIGNATURE])
        except (KeyError, ValueError):
            return _error(401, L1_ERROR)
        if signer.lower() != address.lower() or nonce < 0:
            return _error(401, L1_ERROR)
        return signer, nonce

    def _api_key(
        self, path: str, _query: Mapping[str, list[str]], _body: bytes, headers: Mapping[str, str]
    ) -> Response:
        """``POST /auth/api-key`` and ``GET /auth/derive-api-key``: the same derived creds."""
        proven = self._l1(headers)
        if isinstance(proven, Response):
            return proven
        account = self.accounts.credentials(*proven)
        return _json(
            {"apiKey": account.api_key, "secret": account.secret, "passphrase": account.passphrase}
        )

    def _api_keys(
        self, path: str, _query: Mapping[str, list[str]], body: bytes, headers: Mapping[str, str]
    ) -> Response:
        """``GET /auth/api-keys`` (the account's keys) and ``DELETE /auth/api-key``.

        Keys are derived from the address and nonce, so a deleted key would be derived again by
        the next L1 request; the sim answers the delete without revoking anything.
        """
        method = "GET" if path == "/auth/api-keys" else "DELETE"
        account = self._l2(method, path, body, headers)
        if isinstance(account, Response):
            return account
        if method == "GET":
            return _json({"apiKeys": [account.api_key]})
        return _json("OK")

    def _l2(
        self, method: str, path: str, body: bytes, headers: Mapping[str, str]
    ) -> Account | Response:
        """The account of valid L2 headers (HMAC over the raw body, fresh timestamp), or 401."""
        account = self.accounts.account(headers.get(POLY_API_KEY, ""))
        try:
            timestamp = int(headers.get(POLY_TIMESTAMP, ""))
        except ValueError:
            return _error(401, L2_ERROR)
        if (
            account is None
            or headers.get(POLY_PASSPHRASE) != account.passphrase
            or headers.get(POLY_ADDRESS, "").lower() != account.address.lower()
            or abs(timestamp - self.clock() // 1000) > L2_MAX_SKEW_S
            or not hmac_matches(
                Secret(account.secret),
                timestamp,
                method,
                path,
                body,
                headers.get(POLY_SIGNATURE, ""),
            )
        ):
            return _error(401, L2_ERROR)
        return account

    def _post_order(
        self, path: str, _query: Mapping[str, list[str]], body: bytes, headers: Mapping[str, str]
    ) -> Response:
        """``POST /order`` (one object) and ``POST /orders`` (an array of up to 15)."""
        account = self._l2("POST", path, body, headers)
        if isinstance(account, Response):
            return account
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _error(400, "Invalid order payload")
        if path == "/order":
            if not isinstance(payload, dict):
                return _error(400, "Invalid order payload")
            result = self._place(account, payload)
            return _json(result, 200 if result["success"] else 400)
        if not isinstance(payload, list) or not 1 <= len(payload) <= MAX_BATCH:
            return _error(400, f"Invalid order payload: 1 to {MAX_BATCH} orders per request")
        return _json([self._place(account, item) for item in payload])

    def _place(self, account: Account, item: object) -> dict[str, Any]:
        """Check, match and rest one order; the venue's per-order result object."""
        try:
            return self._place_checked(account, item)
        except OrderRejected as exc:
            return _order_result(False, "", "", 0, 0, str(exc))

    def _place_checked(self, account: Account, item: object) -> dict[str, Any]:
        if not isinstance(item, dict) or not isinstance(item.get("order"), dict):
            raise OrderRejected("Invalid order payload")
        order = item["order"]
        try:
            order_type = OrderType(str(item.get("orderType", "GTC")))
            token = str(int(order["tokenId"]))
            side = Side.parse(str(order["side"]))
            maker_amount = int(order["makerAmount"])
            taker_amount = int(order["takerAmount"])
            expiration = int(order.get("expiration", "0"))
        except (KeyError, TypeError, ValueError):
            raise OrderRejected("Invalid order payload") from None
        now_s = self.clock() // 1000
        if (order_type is OrderType.GTD) != (expiration != 0) or (
            expiration and expiration <= now_s + GTD_SAFETY_S
        ):
            raise OrderRejected("invalid expiration")
        if item.get("owner") != account.api_key:
            raise OrderRejected("the order owner has to be the owner of the API KEY")
        if not self._known(token):
            raise OrderRejected(f"Invalid order payload: unknown token id {token}")
        market = self.universe.market_for_token(token)
        if self.exchange.is_closed(market.condition_id):
            raise OrderRejected("the market is not yet ready to process new orders")
        exchange = exchange_for(market.neg_risk)
        try:
            signer = recover_order_signer(order, exchange=exchange)
            order_id = order_hash(order, exchange=exchange)
        except InvalidOrderSignature:
            raise OrderRejected(INVALID_SIGNATURE) from None
        if signer.lower() != str(order.get("signer", "")).lower():
            raise OrderRejected(INVALID_SIGNATURE)
        if signer.lower() != account.address.lower():
            raise OrderRejected("the order signer address has to be the address of the API KEY")
        tick = self._book(token).tick_size
        if not order_type.rests and (maker_amount % 10_000 or taker_amount % 100):
            # The venue holds marketable orders to the market-order precision whatever the
            # tick (its own words below); the same amounts sent GTC would pass.
            kind = "buy" if side is Side.BUY else "sell"
            raise OrderRejected(
                f"invalid amounts, the market {kind} orders maker amount supports a max "
                "accuracy of 2 decimals, taker amount a max of 4 decimals"
            )
        try:
            price, size = order_price(side, maker_amount, taker_amount, tick)
        except OrderRejected as exc:
            marketable = (
                None
                if order_type.rests
                else marketable_limit(side, maker_amount, taker_amount, tick)
            )
            if marketable is None:
                raise OrderRejected(f"order {order_id} {exc}") from None
            price, size = marketable
        if order_type.rests and size < market.min_order_size:
            raise OrderRejected(
                f"order {order_id} is invalid. Size ({format_units(size)}) lower than the "
                f"minimum: {format_units(market.min_order_size)}"
            )
        if order_id in self.accounts.orders:
            raise OrderRejected(f"order {order_id} is invalid. Duplicated.")
        self.settle_flow_fills()  # so the matches drained below are this order's own
        # Self-trade prevention: the account's own resting orders are not there for it.
        levels = self.exchange.levels(token, side.opposite, skip_owner=account.api_key)
        plan = plan_taker(
            levels,
            side,
            price,
            size,
            order_type,
            market.fee_rate,
            post_only=bool(item.get("postOnly", False)),
        )
        if plan.rest and order_type.rests:
            own = self.exchange.own_levels(token, side.opposite, account.api_key)
            if own and (own[0][0] <= price if side is Side.BUY else own[0][0] >= price):
                raise OrderRejected(CROSSES_OWN_ORDER)
        self.accounts.check_funds(account, token, side, price, plan)
        now = self.clock()
        is_yes = token == market.yes_token
        resting = RestingOrder(
            order_id=order_id,
            owner=account.api_key,
            maker_address=str(order.get("maker", account.address)),
            market=market.condition_id,
            token_id=token,
            outcome=market.outcomes[0 if is_yes else 1],
            side=side,
            price=price,
            size=size,
            order_type=order_type,
            created_ms=now,
            expiration=expiration,
        )
        events: list[WireEvent] = []
        if plan.filled:
            # The exchange walks the levels ``plan`` was made from, so it fills the same
            # (price, size)s; the account orders it filled come back as its maker matches.
            events.extend(
                self.exchange.trade(token, side, plan.filled, now, taker_owner=account.api_key)
            )
        by_price = {m.price: m.makers for m in self.exchange.drain_maker_matches()}
        orders = self.accounts.orders
        makers = [[(orders[i], s) for i, s in by_price.get(p, ())] for p, _ in plan.fills]
        if not order_type.rests or not plan.rest:
            resting.canceled = plan.filled < size  # a FAK remainder is cancelled
        self.accounts.add(resting)
        records = self.accounts.settle_taker(account, resting, plan, makers, market.fee_rate, now)
        if plan.rest:
            events.extend(
                self.exchange.rest(token, side, price, order_id, account.api_key, plan.rest, now)
            )
        self._publish(events)
        self._user_fills(resting, records, now)
        status = "live" if plan.rest and not plan.filled else "matched"
        shares, pusd = plan.filled, plan.cost
        making, taking = (pusd, shares) if side is Side.BUY else (shares, pusd)
        return _order_result(True, order_id, status, making, taking, "")

    def _publish(self, events: list[WireEvent]) -> None:
        if events:
            self.hub.broadcast(events)

    def _cancel_orders(
        self, orders: list[RestingOrder], *, status: str = "CANCELED"
    ) -> dict[str, Any]:
        """Cancel live orders (removing their size from the book); the venue's cancel answer.
        ``status`` is what the user channel says they became."""
        now = self.clock()
        canceled: list[str] = []
        events: list[WireEvent] = []
        for order in orders:
            if not order.live:
                continue
            order.canceled = True
            canceled.append(order.order_id)
            event = _user_order_json(order, "CANCELLATION", now, cancel_status=status)
            self._user_emit(order.owner, order.market, [event])
            events.extend(self.exchange.cancel_resting(order.order_id, now))
        self._publish(events)
        return {"canceled": canceled, "not_canceled": {}}

    def cancel_resolved(self, condition_id: str) -> int:
        """A market resolved: every account order resting on it is cancelled by the venue, as
        ``CANCELED_MARKET_RESOLVED`` on the user channel (its books are already empty, so the
        book changes nothing). Returns how many."""
        orders = [o for o in self.accounts.orders.values() if o.market == condition_id]
        return len(self._cancel_orders(orders, status="CANCELED_MARKET_RESOLVED")["canceled"])

    def _delete(
        self, path: str, _query: Mapping[str, list[str]], body: bytes, headers: Mapping[str, str]
    ) -> Response:
        """``DELETE /order``, ``/orders``, ``/cancel-all`` and ``/cancel-market-orders``."""
        account = self._l2("DELETE", path, body, headers)
        if isinstance(account, Response):
            return account
        try:
            payload = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            return _error(400, "Invalid payload")
        mine = self.accounts.open_orders(account.api_key)
        if path == "/cancel-all":
            return _json(self._cancel_orders(mine))
        if path == "/cancel-market-orders":
            if not isinstance(payload, dict):
                return _error(400, "Invalid payload")
            market, asset = payload.get("market"), payload.get("asset_id")
            chosen = [
                o
                for o in mine
                if (not market or o.market == market) and (not asset or o.token_id == asset)
            ]
            return _json(self._cancel_orders(chosen))
        if path == "/order":
            ids = [payload.get("orderID")] if isinstance(payload, dict) else []
        else:
            ids = payload if isinstance(payload, list) else []
        if not ids or not all(isinstance(i, str) for i in ids):
            return _error(400, "Invalid payload")
        by_id = {o.order_id: o for o in mine}
        answer = self._cancel_orders([by_id[i] for i in dict.fromkeys(ids) if i in by_id])
        answer["not_canceled"] = {
            i: "Order not found or already canceled" for i in ids if i not in by_id
        }
        return _json(answer)

    def _data_orders(
        self, path: str, query: Mapping[str, list[str]], body: bytes, headers: Mapping[str, str]
    ) -> Response:
        """``GET /data/orders``: the account's open orders (one page)."""
        account = self._l2("GET", path, body, headers)
        if isinstance(account, Response):
            return account
        wanted_id, market, asset = _one(query, "id"), _one(query, "market"), _one(query, "asset_id")
        data = [
            _open_order_json(o)
            for o in self.accounts.open_orders(account.api_key)
            if (not wanted_id or o.order_id == wanted_id)
            and (not market or o.market == market)
            and (not asset or o.token_id == asset)
        ]
        return _json(
            {"data": data, "next_cursor": _END_CURSOR, "limit": len(data), "count": len(data)}
        )

    def _data_order(
        self, path: str, _query: Mapping[str, list[str]], body: bytes, headers: Mapping[str, str]
    ) -> Response:
        """``GET /data/order/{id}``: one of the account's orders in any state (live, matched,
        cancelled), so a client can reconcile an order whose answer it never got; 404 if unknown."""
        account = self._l2("GET", path, body, headers)
        if isinstance(account, Response):
            return account
        order = self.accounts.orders.get(unquote(path.removeprefix("/data/order/")))
        if order is None or order.owner != account.api_key:
            return _error(404, "order not found")
        data = _open_order_json(order)
        if order.canceled:
            data["status"] = "CANCELED"
        elif order.matched >= order.size:
            data["status"] = "MATCHED"
        return _json(data)

    def _data_trades(
        self, path: str, query: Mapping[str, list[str]], body: bytes, headers: Mapping[str, str]
    ) -> Response:
        """``GET /data/trades``: the account's trades as taker or maker (one page), filtered by
        ``id``, ``market``, ``asset_id``, ``maker_address`` and ``after``/``before`` (unix s)."""
        account = self._l2("GET", path, body, headers)
        if isinstance(account, Response):
            return account
        market, asset = _one(query, "market"), _one(query, "asset_id")
        trade_id, maker = _one(query, "id"), (_one(query, "maker_address") or "").lower()
        # Unix seconds, both bounds inclusive (the real API's edge handling is UNVERIFIED).
        after, before = _int(query, "after", 0), _int(query, "before", 0)
        data = [
            _trade_json(t, account.api_key)
            for t in self.accounts.trades
            if (
                t.owner == account.api_key
                or any(m.owner == account.api_key for m, _ in t.maker_orders)
            )
            and (not market or t.market == market)
            and (not asset or t.token_id == asset)
            and (not trade_id or t.trade_id == trade_id)
            and (
                not maker
                or t.maker_address.lower() == maker
                or any(m.maker_address.lower() == maker for m, _ in t.maker_orders)
            )
            and (not after or t.match_ms // 1000 >= after)
            and (not before or t.match_ms // 1000 <= before)
        ]
        return _json(
            {"data": data, "next_cursor": _END_CURSOR, "limit": len(data), "count": len(data)}
        )

    def _balance(
        self, path: str, query: Mapping[str, list[str]], body: bytes, headers: Mapping[str, str]
    ) -> Response:
        """``GET /balance-allowance``: pUSD (COLLATERAL) or one token's shares (CONDITIONAL)."""
        account = self._l2("GET", path, body, headers)
        if isinstance(account, Response):
            return account
        asset_type = (_one(query, "asset_type") or "").upper()
        if asset_type == "COLLATERAL":
            balance = account.balance
        elif asset_type.startswith("CONDITIONAL"):
            token = _one(query, "token_id")
            if not token:
                return _error(400, "Invalid payload: token_id is required")
            balance = account.positions.get(token, 0)
        else:
            return _error(400, f"Invalid asset_type {asset_type!r}: COLLATERAL or CONDITIONAL")
        # Amounts in 1e-6 units, as the venue reports them; allowances are unlimited in the sim.
        return _json(
            {
                "balance": str(balance),
                "allowances": {exchange_for(False): _UNLIMITED, exchange_for(True): _UNLIMITED},
            }
        )

    def _heartbeat(
        self, path: str, _query: Mapping[str, list[str]], body: bytes, headers: Mapping[str, str]
    ) -> Response:
        """``POST /v1/heartbeats``: arms (and re-arms) the account's dead-man switch."""
        account = self._l2("POST", path, body, headers)
        if isinstance(account, Response):
            return account
        self._heartbeats[account.api_key] = self.clock()
        return _json({"heartbeat_id": f"sim-{account.api_key}-{self.clock()}"})

    def expire_heartbeats(self) -> int:
        """Cancel every resting order of accounts whose heartbeat lapsed; how many were cancelled.

        Called periodically by the venue (``SimVenue.run_heartbeats``). A lapsed account is
        disarmed until it sends a heartbeat again.
        """
        now = self.clock()
        lapse_ms = int(self.config.heartbeat_timeout_s * 1000)
        cancelled = 0
        for api_key, last in list(self._heartbeats.items()):
            if now - last > lapse_ms:
                del self._heartbeats[api_key]
                answer = self._cancel_orders(self.accounts.open_orders(api_key))
                cancelled += len(answer["canceled"])
        return cancelled

    def expire_orders(self) -> int:
        """Cancel the GTD orders whose life is over; how many. The venue ends a GTD order
        ``GTD_SAFETY_S`` before its signed ``expiration`` (PROTOCOL.md 4.3, 2.1)."""
        now_s = self.clock() // 1000
        due = [
            o
            for o in self.accounts.orders.values()
            if o.live and o.expiration and o.expiration - GTD_SAFETY_S <= now_s
        ]
        return len(self._cancel_orders(due)["canceled"])

    # --- the user channel

    def _user_emit(self, api_key: str, market: str, events: list[dict[str, Any]]) -> None:
        """Queue ``events`` (one frame) for every user socket of ``api_key`` that wants ``market``.

        A socket whose outbox is full is closed as a slow consumer, as on the market channel.
        """
        if not events:
            return
        text = encode_frame(events)
        for conn in list(self._user_conns):
            if conn.api_key != api_key or (conn.markets is not None and market not in conn.markets):
                continue
            if not conn.outbox.offer(OutFrame(text, events)):
                conn.outbox.close_now(CLOSE_SLOW_CONSUMER, "sim: slow consumer")

    def drop_user_connections(self, reason: str = "sim: dropped") -> int:
        """Close every ``/ws/user`` socket now (what a network blip does); returns how many."""
        conns = list(self._user_conns)
        for conn in conns:
            conn.outbox.close_now(CLOSE_DROPPED, reason)
        return len(conns)

    def user_connection_count(self) -> int:
        """Open ``/ws/user`` sockets."""
        return len(self._user_conns)

    def _user_fills(self, taker: RestingOrder, records: list[TradeRecord], now: int) -> None:
        """The user-channel events of one placement: the taker's order event, then each trade
        ``MATCHED`` and ``CONFIRMED`` to the taker and every account maker (plus their order
        ``UPDATE``)."""
        if taker.live and taker.order_type.rests:
            head = [_user_order_json(taker, "PLACEMENT", now)]
        elif taker.canceled:  # a FAK remainder
            head = [_user_order_json(taker, "UPDATE", now)] if records else []
            head.append(_user_order_json(taker, "CANCELLATION", now))
        else:
            head = [_user_order_json(taker, "UPDATE", now)]
        matched = [_user_trade_json(t, taker.owner, "MATCHED", now) for t in records]
        confirmed = [_user_trade_json(t, taker.owner, "CONFIRMED", now) for t in records]
        self._user_emit(taker.owner, taker.market, [*head, *matched])
        self._user_emit(taker.owner, taker.market, confirmed)
        for record in records:
            self._user_maker_fills(record, now)

    def _user_maker_fills(self, record: TradeRecord, now: int) -> None:
        """Each account maker of a trade gets its order's ``UPDATE`` and the trade ``MATCHED``,
        then ``CONFIRMED`` (as the taker does; the sim has no chain, so no ``MINED`` in
        between)."""
        for maker, _ in record.maker_orders:
            self._user_emit(
                maker.owner,
                maker.market,
                [
                    _user_order_json(maker, "UPDATE", now),
                    _user_trade_json(record, maker.owner, "MATCHED", now),
                ],
            )
            self._user_emit(
                maker.owner, maker.market, [_user_trade_json(record, maker.owner, "CONFIRMED", now)]
            )

    def settle_flow_fills(self) -> int:
        """Book and report the accounts' orders the exchange's own takers filled.

        The simulated flow, the opportunities' competitor and scripted ``trade`` calls fill
        account orders in price-time priority inside the model (``SimExchange``); here each
        such match becomes one trade (``Accounts.settle_flow_match``: balances, ``/data/trades``)
        and the user channel of every maker gets what a real maker fill sends. The venue calls
        it after every broadcast of model events (``SimVenue``). Returns the maker fills booked.
        """
        matches = self.exchange.drain_maker_matches()
        if not matches:
            return 0
        now = self.clock()
        orders = self.accounts.orders
        booked = 0
        for match in matches:
            market = self.universe.market_for_token(match.token_id)
            record = self.accounts.settle_flow_match(
                market=match.condition_id,
                token_id=match.token_id,
                outcome=market.outcomes[0 if match.token_id == market.yes_token else 1],
                side=match.side,
                price=match.price,
                size=match.size,
                makers=[(orders[i], s) for i, s in match.makers],
                fee_rate=market.fee_rate,
                now_ms=now,
            )
            self._user_maker_fills(record, now)
            booked += len(match.makers)
        return booked

    async def _user_websocket(self, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        await send({"type": "websocket.accept", "subprotocol": None, "headers": []})
        conn = UserConnection(Outbox(self.config.outbox_frames))
        self._user_conns.add(conn)
        try:
            with conn.cancel_scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._user_reader, conn, receive)
                    nursery.start_soon(self._user_writer, conn, send)
        finally:
            self._user_conns.discard(conn)

    async def _user_reader(self, conn: UserConnection, receive: ASGIReceiveCallable) -> None:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                conn.cancel_scope.cancel(reason="client closed the user socket")
                return
            if message["type"] != "websocket.receive":
                continue
            text = message.get("text")
            if text is None:
                continue
            if text == "PING":
                conn.outbox.offer(OutFrame("PONG", data=False))
                continue
            self.handle_user_text(conn, text)

    def handle_user_text(self, conn: UserConnection, text: str) -> None:
        """Apply one client frame: the authenticated subscribe, later (un)subscribes.

        Bad credentials close the socket (1008): the real venue's reaction is UNVERIFIED.
        """
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError:
            return
        if not isinstance(data, dict):
            return
        markets = data.get("markets")
        wanted = {m for m in markets if isinstance(m, str)} if isinstance(markets, list) else None
        if conn.api_key is None:
            auth = data.get("auth")
            account = (
                self.accounts.account(str(auth.get("apiKey", "")))
                if isinstance(auth, dict)
                else None
            )
            if (
                account is None
                or not isinstance(auth, dict)
                or auth.get("secret") != account.secret
                or auth.get("passphrase") != account.passphrase
            ):
                conn.outbox.close_now(CLOSE_NOT_SUBSCRIBED, "sim: invalid user-channel auth")
                return
            conn.api_key = account.api_key
            conn.markets = wanted or None
            return
        operation = data.get("operation")
        if wanted is None or operation not in {"subscribe", "unsubscribe"}:
            return
        if operation == "subscribe":
            if conn.markets is not None:
                conn.markets |= wanted
        elif conn.markets is not None:
            conn.markets -= wanted

    async def _user_writer(self, conn: UserConnection, send: ASGISendCallable) -> None:
        while True:
            frame = await conn.outbox.get()
            if frame.close_code is not None:
                await send(
                    {
                        "type": "websocket.close",
                        "code": frame.close_code,
                        "reason": frame.close_reason,
                    }
                )
                conn.cancel_scope.cancel(reason=f"closed by the venue: {frame.close_reason}")
                return
            await send({"type": "websocket.send", "text": frame.text, "bytes": None})

    # --- the market channel

    async def _websocket(
        self, scope: WebsocketScope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        if scope["path"] == "/ws/user":
            await self._user_websocket(receive, send)
            return
        if scope["path"] != "/ws/market":
            # Before accept, a close is answered with HTTP 403 by hypercorn.
            await send({"type": "websocket.close", "code": 1008, "reason": None})
            return
        await send({"type": "websocket.accept", "subprotocol": None, "headers": []})
        conn = self.hub.open()
        try:
            with conn.cancel_scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._reader, conn, receive, conn.cancel_scope)
                    nursery.start_soon(self._writer, conn, send, conn.cancel_scope)
                    nursery.start_soon(self._subscribe_deadline, conn)
        finally:
            self.hub.remove(conn)

    async def _subscribe_deadline(self, conn: MarketConnection) -> None:
        with trio.move_on_after(self.config.subscribe_timeout_s):
            await conn.subscribed.wait()
            return
        self.hub.counters.subscribe_timeouts += 1
        conn.close(CLOSE_NOT_SUBSCRIBED, "no subscription received")

    async def _reader(
        self, conn: MarketConnection, receive: ASGIReceiveCallable, scope: trio.CancelScope
    ) -> None:
        faults = self.faults
        while True:
            if faults.stop_reading:
                faults.counters.unread_pauses += 1
                while faults.stop_reading:
                    await faults.wait_changed()
            message = await receive()
            if message["type"] == "websocket.disconnect":
                scope.cancel(reason="client disconnected")
                return
            if message["type"] != "websocket.receive":
                continue
            text = message.get("text")
            if text is None:
                self.hub.counters.ignored_messages += 1
            elif text == "PING":
                conn.outbox.offer(OutFrame("PONG", data=False, due=self._due()))
            else:
                self.handle_client_text(conn, text)

    def _due(self) -> float:
        latency = self.faults.latency_ms
        return trio.current_time() + latency / 1000 if latency else 0.0

    def handle_client_text(self, conn: MarketConnection, text: str) -> None:
        """Apply one client text frame (other than ``PING``) to ``conn``. Sync on purpose: reading
        the books for the snapshots and adding the assets happen with no checkpoint between, so
        every later event is one the client's snapshot does not already contain."""
        counters = self.hub.counters
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError:
            counters.ignored_messages += 1
            return
        if not isinstance(message, dict) or not isinstance(message.get("assets_ids", []), list):
            counters.ignored_messages += 1
            return
        kind = message.get("type")
        operation = message.get("operation")
        if isinstance(kind, str) and kind.lower() == "market":
            operation = "subscribe"
        elif not conn.subscribed.is_set() or operation not in {"subscribe", "unsubscribe"}:
            counters.ignored_messages += 1
            return
        custom = message.get("custom_feature_enabled")
        if isinstance(custom, bool):
            conn.custom_features = custom
        ids = [asset for asset in message.get("assets_ids", []) if isinstance(asset, str)]
        if operation == "unsubscribe":
            conn.assets.difference_update(ids)
            return
        added: list[str] = []
        limit = self.config.max_assets_per_connection
        for asset in ids:
            if asset in conn.assets:
                counters.duplicate_assets += 1
            elif asset not in self._tokens:
                counters.unknown_assets += 1
            elif len(conn.assets) >= limit:
                counters.assets_over_limit += 1
            else:
                conn.assets.add(asset)
                added.append(asset)
        conn.subscribed.set()
        if added and message.get("initial_dump", True) is not False:
            self._queue_snapshots(conn, added)

    def _queue_snapshots(self, conn: MarketConnection, assets: list[str]) -> None:
        if self.faults.silent:
            # "Alive but no data": the subscription is taken, its snapshots never come.
            self.faults.counters.silenced_frames += 1
            return
        now = self.clock()
        due = self._due()
        batch: list[str] = []
        batch_events: list[dict[str, Any]] = []
        size = 0
        for asset in assets:
            book = self.exchange.book_json(asset, now)
            encoded = orjson.dumps(book).decode()
            if batch and size + len(encoded) > SNAPSHOT_FRAME_BYTES:
                conn.outbox.offer(
                    OutFrame("[" + ",".join(batch) + "]", batch_events, due, data=False)
                )
                batch, batch_events, size = [], [], 0
            batch.append(encoded)
            batch_events.append(book)
            size += len(encoded) + 1
        if batch:
            conn.outbox.offer(OutFrame("[" + ",".join(batch) + "]", batch_events, due, data=False))
        self.hub.counters.snapshots_sent += len(assets)

    async def _writer(
        self, conn: MarketConnection, send: ASGISendCallable, scope: trio.CancelScope
    ) -> None:
        faults = self.faults
        counters = self.hub.counters

        async def write(text: str, events: int = 0) -> None:
            await send({"type": "websocket.send", "text": text, "bytes": None})
            conn.frames_sent += 1
            conn.events_sent += events
            conn.bytes_sent += len(text)
            counters.frames_sent += 1
            counters.events_sent += events
            counters.bytes_sent += len(text)

        while True:
            frame = await conn.outbox.get()
            if frame.close_code is not None:
                await send(
                    {
                        "type": "websocket.close",
                        "code": frame.close_code,
                        "reason": frame.close_reason,
                    }
                )
                scope.cancel(reason=f"closed by the venue: {frame.close_reason}")
                return
            if frame.due and frame.due > trio.current_time():
                faults.counters.delayed_frames += 1
                await trio.sleep_until(frame.due)
            if not frame.data:
                if frame.text == "PONG":
                    counters.pongs_sent += 1
                await write(frame.text, len(frame.events))
                continue
            if faults.hit(faults.malformed_rate):
                kind = pick_malformed_kind(faults.rng)
                faults.counters.malformed_frames += 1
                by_kind = faults.counters.malformed_by_kind
                by_kind[kind] = by_kind.get(kind, 0) + 1
                await write(malformed_frame(kind, frame.events, faults.rng, self.clock()))
            if conn.held is None and faults.hit(faults.reorder_rate):
                faults.counters.reordered_frames += 1
                conn.held = frame
                continue
            await write(frame.text, len(frame.events))
            if faults.hit(faults.duplicate_rate):
                faults.counters.duplicated_frames += 1
                await write(frame.text, len(frame.events))
            if conn.held is not None:
                held, conn.held = conn.held, None
                await write(held.text, len(held.events))


L1_ERROR: Final = "Invalid L1 Request headers"
L2_ERROR: Final = "Unauthorized/Invalid api key"
INVALID_SIGNATURE: Final = "invalid signature"
GTD_SAFETY_S: Final = 60
"""A GTD order ends this long before its ``expiration``; an expiration closer than this to now is
``invalid expiration``."""
L2_MAX_SKEW_S: Final = 30
"""A request whose ``POLY_TIMESTAMP`` is further than this from venue time is refused (the real
allowance is UNVERIFIED)."""
_END_CURSOR: Final = "LTE="  # base64 of "-1": the last page
_UNLIMITED: Final = str(2**256 - 1)


def recover_clob_auth_signer(address: str, timestamp: int, nonce: int, signature: str) -> str:
    """The address that signed the L1 ``ClobAuth`` struct (PROTOCOL.md 5.1), checksummed.

    Raises:
        ValueError: a malformed address or signature.
    """
    try:
        message = ClobAuth(
            address=address, timestamp=str(timestamp), nonce=nonce, message=MSG_TO_SIGN
        )
        digest = keccak(message.signable_bytes(get_clob_auth_domain(CHAIN_ID_POLYGON)))
        raw = bytes.fromhex(signature.removeprefix("0x"))
        if len(raw) != 65:
            raise ValueError("L1 signature must be 65 bytes")
        v = raw[64] - 27 if raw[64] >= 27 else raw[64]
        public = Signature(raw[:64] + bytes([v])).recover_public_key_from_msg_hash(digest)
    except ValueError:
        raise
    except Exception as exc:  # eth-keys / eip712 raise their own validation errors
        raise ValueError(f"malformed L1 signature: {exc}") from None
    return str(public.to_checksum_address())


def marketable_limit(
    side: Side, maker_amount: int, taker_amount: int, tick: int
) -> tuple[int, int] | None:
    """``(price, size)`` of a marketable (FOK/FAK) order whose implied price falls between ticks.

    The SDKs build a market BUY from the pUSD to spend: ``taker = spend / price``, cut to a few
    decimals, so ``maker / taker`` lies a hair above the tick price (VECTORS.md 5: $100 at 0.56
    signs 178.5714 shares, 0.5600000896 each), and the real venue accepts these orders (the
    signed price of a FOK/FAK order is a worst-price cap, PROTOCOL.md 4.3). The cap is the best
    tick price the signature allows: a BUY pays at most the tick at or below ``maker / taker``,
    a SELL takes at least the tick at or above ``taker / maker``. ``size`` is the shares signed
    (BUY: the taker amount; SELL: the maker amount), so no fill asks more than the order signed.

    Returns:
        ``None`` when no tick price inside ``[tick, 1 - tick]`` is allowed, or an amount is not
        positive (the caller then rejects the order with the tick text).
    """
    if maker_amount <= 0 or taker_amount <= 0:
        return None
    if side is Side.BUY:
        shares = taker_amount
        price = maker_amount * ONE // (taker_amount * tick) * tick
    else:
        shares = maker_amount
        price = -(-taker_amount * ONE // (maker_amount * tick)) * tick
    if not tick <= price <= ONE - tick:
        return None
    return price, shares


def _order_result(
    success: bool, order_id: str, status: str, making: int, taking: int, error: str
) -> dict[str, Any]:
    """The venue's per-order answer (PROTOCOL.md 4.2); amounts as decimal strings."""
    return {
        "success": success,
        "orderID": order_id,
        "status": status,
        "makingAmount": format_units(making) if success else "",
        "takingAmount": format_units(taking) if success else "",
        "errorMsg": error,
    }


def _open_order_json(order: RestingOrder) -> dict[str, Any]:
    return {
        "id": order.order_id,
        "status": "LIVE",
        "market": order.market,
        "asset_id": order.token_id,
        "side": order.side.name,
        "original_size": format_units(order.size),
        "size_matched": format_units(order.matched),
        "price": format_units(order.price),
        "outcome": order.outcome,
        "order_type": order.order_type.value,
        "maker_address": order.maker_address,
        "owner": order.owner,
        "expiration": str(order.expiration),
        "associate_trades": list(order.trade_ids),
        "created_at": order.created_ms // 1000,
    }


def _user_order_json(
    order: RestingOrder, kind: str, now_ms: int, *, cancel_status: str = "CANCELED"
) -> dict[str, Any]:
    """An ``order`` event of the user channel (PROTOCOL.md 2.1); ``cancel_status`` is the
    status of a cancelled order (``CANCELED_MARKET_RESOLVED`` when its market resolved)."""
    if order.canceled:
        status = cancel_status
    elif order.matched >= order.size:
        status = "MATCHED"
    else:
        status = "LIVE"
    return {
        "asset_id": order.token_id,
        "associate_trades": list(order.trade_ids) or None,
        "created_at": str(order.created_ms // 1000),
        "event_type": "order",
        "expiration": str(order.expiration),
        "id": order.order_id,
        "maker_address": order.maker_address,
        "market": order.market,
        "order_owner": order.owner,
        "order_type": order.order_type.value,
        "original_size": format_units(order.size),
        "outcome": order.outcome,
        "owner": order.owner,
        "price": format_units(order.price),
        "side": order.side.name,
        "size_matched": format_units(order.matched),
        "status": status,
        "timestamp": str(now_ms),
        "type": kind,
    }


def _user_trade_json(trade: TradeRecord, viewer: str, status: str, now_ms: int) -> dict[str, Any]:
    """A ``trade`` event of the user channel (PROTOCOL.md 2.2) as ``viewer`` receives it."""
    data = _trade_json(trade, viewer)
    data.update(
        {
            "event_type": "trade",
            "status": status,
            "timestamp": str(now_ms),
            "trade_owner": viewer,
            "type": "TRADE",
        }
    )
    return data


def _trade_json(trade: TradeRecord, viewer: str) -> dict[str, Any]:
    seconds = str(trade.match_ms // 1000)
    return {
        "id": trade.trade_id,
        "taker_order_id": trade.taker_order_id,
        "market": trade.market,
        "asset_id": trade.token_id,
        "side": trade.side.name,
        "size": format_units(trade.size),
        "fee_rate_bps": str(trade.fee_rate_bps),
        "price": format_units(trade.price),
        "status": "CONFIRMED",
        "match_time": seconds,
        "last_update": seconds,
        "outcome": trade.outcome,
        "bucket_index": 0,
        "owner": trade.owner,
        "maker_address": trade.maker_address,
        "transaction_hash": "",
        "trader_side": "TAKER" if trade.owner == viewer else "MAKER",
        "maker_orders": [
            {
                "order_id": m.order_id,
                "owner": m.owner,
                "maker_address": m.maker_address,
                "matched_amount": format_units(size),
                "price": format_units(m.price),
                "fee_rate_bps": "0",
                "asset_id": m.token_id,
                "outcome": m.outcome,
                "side": m.side.name,
            }
            for m, size in trade.maker_orders
        ],
    }


_PRIVATE_ROUTES: Final[
    dict[
        tuple[str, str],
        Callable[[SimApp, str, Mapping[str, list[str]], bytes, Mapping[str, str]], Response],
    ]
] = {
    ("POST", "/auth/api-key"): SimApp._api_key,
    ("GET", "/auth/derive-api-key"): SimApp._api_key,
    ("POST", "/order"): SimApp._post_order,
    ("POST", "/orders"): SimApp._post_order,
    ("DELETE", "/order"): SimApp._delete,
    ("DELETE", "/orders"): SimApp._delete,
    ("DELETE", "/cancel-all"): SimApp._delete,
    ("DELETE", "/cancel-market-orders"): SimApp._delete,
    ("GET", "/data/orders"): SimApp._data_orders,
    ("GET", "/data/trades"): SimApp._data_trades,
    ("GET", "/balance-allowance"): SimApp._balance,
    # The sim's balance is always current, so a refresh is a read (its params are checked).
    ("GET", "/balance-allowance/update"): SimApp._balance,
    ("GET", "/auth/api-keys"): SimApp._api_keys,
    ("DELETE", "/auth/api-key"): SimApp._api_keys,
    ("POST", "/v1/heartbeats"): SimApp._heartbeat,
}

_ORDER_POSTS: Final = frozenset({"/order", "/orders"})

WITHHELD_ANSWER_MAX_S: Final = 30.0
"""Longest the ``timeout_after_fill`` fault holds an answer back (real seconds) before it is
sent late after all."""


def _filled(response: Response) -> bool:
    """True for a ``POST /order`` answer of an accepted order that matched (fully or partly)."""
    if response.status != 200:
        return False
    data = orjson.loads(response.body)
    return (
        isinstance(data, dict) and data.get("success") is True and data.get("status") == "matched"
    )


# Token-query endpoints: path -> handler(app, token_id, query).
_TOKEN_ENDPOINTS: Final[dict[str, Callable[[SimApp, str, Mapping[str, list[str]]], Response]]] = {
    "/book": SimApp._rest_book,
    "/price": SimApp._price,
    "/midpoint": SimApp._midpoint,
    "/spread": SimApp._spread,
    "/tick-size": SimApp._tick_size,
    "/neg-risk": SimApp._neg_risk,
    "/fee-rate": SimApp._fee_rate,
}


# --------------------------------------------------------------------------------------------
# Gamma helpers


def _tag_slugs(tags: object) -> list[str]:
    """Slugs from a tag list: labels (``SimMarket.tags``) or Gamma tag objects."""
    if not isinstance(tags, list | tuple):
        return []
    slugs = []
    for tag in tags:
        if isinstance(tag, str):
            slugs.append(tag_slug(tag))
        elif isinstance(tag, dict) and isinstance(tag.get("slug"), str):
            slugs.append(tag["slug"])
    return slugs


def _single_market_event(market: SimMarket, rendered: dict[str, Any]) -> dict[str, Any] | None:
    """The Gamma event of a stand-alone binary: its ``events[0]`` reference with the market
    (without its own ``events[]``, as nested markets are on the venue) and the tags, keys in the
    order of the real sample (``tests/fixtures/nautilus_crates/gamma_event.json``)."""
    refs = rendered.get("events")
    if not refs:
        return None
    tags = [
        {
            "id": str(100_000 + zlib.crc32(label.encode()) % 900_000),
            "label": label,
            "slug": tag_slug(label),
        }
        for label in market.tags
        if label != "All"
    ]
    event: dict[str, Any] = {}
    for key, value in refs[0].items():
        event[key] = value
        if key == "openInterest":
            event["sortBy"] = "price"
        elif key == "commentCount":
            event["markets"] = [{k: v for k, v in rendered.items() if k != "events"}]
            event["tags"] = tags
    event.setdefault("markets", [{k: v for k, v in rendered.items() if k != "events"}])
    event.setdefault("tags", tags)
    return event


def _id_order(item: Mapping[str, Any]) -> tuple[int, str]:
    ident = str(item.get("id", ""))
    return (int(ident), "") if ident.isdigit() else (1 << 62, ident)


def _event_of(universe: Universe, market: SimMarket) -> SimEvent | None:
    if not market.event_id:
        return None
    try:
        return universe.event(market.event_id)
    except KeyError:
        return None


def _clob_token_ids(item: Mapping[str, Any]) -> list[str]:
    raw = item.get("clobTokenIds")
    if isinstance(raw, str):
        try:
            raw = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return []
    return [token for token in raw or () if isinstance(token, str)]


def _in_ranges(
    item: Mapping[str, Any],
    numbers: Mapping[str, tuple[float | None, float | None]],
    dates: Mapping[str, tuple[datetime | None, datetime | None]],
) -> bool:
    for field, (low, high) in numbers.items():
        if low is None and high is None:
            continue
        value = _as_float(item.get(field))
        if value is None and field.endswith("Num"):
            value = _as_float(item.get(field.removesuffix("Num")))
        if (
            value is None
            or (low is not None and value < low)
            or (high is not None and value > high)
        ):
            return False
    for field, (earliest, latest) in dates.items():
        if earliest is None and latest is None:
            continue
        when = _parse_date(item.get(field))
        if when is None:
            return False
        if (earliest is not None and when < earliest) or (latest is not None and when > latest):
            return False
    return True


def _order_and_page(
    items: list[dict[str, Any]], query: Mapping[str, list[str]]
) -> list[dict[str, Any]]:
    """Sort by ``order`` (comma-separated fields; ``ascending`` defaults to false, i.e.
    descending, which is UNVERIFIED for the real API), then apply ``offset`` and ``limit``."""
    order = _many(query, "order")
    if order:
        ascending = _bool(query, "ascending") or False
        # Python's sort is stable: sort by the last key first.
        for field in reversed(order):
            items = sorted(items, key=_sort_key(field), reverse=not ascending)
    offset = _int(query, "offset", 0)
    limit = min(_int(query, "limit", GAMMA_DEFAULT_LIMIT), GAMMA_MAX_LIMIT)
    return items[offset : offset + limit]


# --------------------------------------------------------------------------------------------
# Serving


def hypercorn_config(port: int) -> hypercorn.config.Config:
    """hypercorn settings for a local venue on ``127.0.0.1:port`` (0: a free port)."""
    config = hypercorn.config.Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.loglevel = "WARNING"  # not the "Running on ..." line: the URLs are returned instead
    config.graceful_timeout = 0.5
    config.include_server_header = False  # the venue's own "server" header (e.g. cloudflare) only
    return config


async def serve(
    app: ASGIFramework,
    *,
    port: int = 0,
    task_status: trio.TaskStatus[SimUrls] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` on ``127.0.0.1:port`` until cancelled.

    Use as ``urls = await nursery.start(partial(serve, app, port=0))``: it returns once the socket
    listens, with the bound URLs. Cancelling the nursery stops the server at once (open
    connections are cut, not closed gracefully).
    """
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(
            partial(hypercorn.trio.serve, app, hypercorn_config(port), mode="asgi")
        )
        task_status.started(SimUrls.from_base(binds[0]))

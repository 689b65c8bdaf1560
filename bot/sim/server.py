"""The sim venue's network shell: one ASGI app serving Gamma REST, CLOB REST and the market channel.

Layout on one port of 127.0.0.1 (``serve`` returns the URLs):

* ``<base>/gamma/...`` -- Gamma: ``GET /markets``, ``/markets/{id}``, ``/markets/slug/{slug}``,
  ``/events``, ``/events/{id}``, ``/events/slug/{slug}`` (PROTOCOL.md section 3);
* ``<base>/...`` -- CLOB public REST: ``/``, ``/ok``, ``/time``, ``/version``, ``/book``,
  ``POST /books``, ``/price``, ``/midpoint``, ``/spread``, ``/tick-size`` (also
  ``/tick-size/{id}``), ``/neg-risk``, ``/fee-rate``, ``/markets`` (cursor pages) and
  ``/markets/{condition_id}`` (section 4.1);
* ``<base>/sim/forecast`` -- not Polymarket: the hidden forecast of every temperature event, the
  sim's stand-in for a weather service (``bot.shell.forecast.SimForecastProvider``);
* ``ws://<host>/ws/market`` -- the market channel (section 1).

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

from bot.core.money import format_units
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
    from bot.sim.exchange import SimExchange
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

    def __attrs_post_init__(self) -> None:
        self.hub = MarketHub(self.faults, self.config.outbox_frames)
        self._tokens = frozenset(self.universe.token_ids())

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
        fault = self.faults.http_fault()
        if fault is not None:
            response = Response(fault.status, fault.body, fault.headers)
        else:
            try:
                response = self.route(scope["method"], scope["path"], _query(scope), body)
            except _BadQuery as exc:
                response = _error(400, str(exc))
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
        self, method: str, path: str, query: Mapping[str, list[str]], body: bytes = b""
    ) -> Response:
        """Answer one REST request (sync: nothing here waits). Public for direct unit tests."""
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
        return _json({"minimum_tick_size": float(format_units(self._book(token).tick_size))})

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

    # --- the market channel

    async def _websocket(
        self, scope: WebsocketScope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
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

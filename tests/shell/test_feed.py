"""The supervised market feed: session logic, watchdog, reconnects, REST, statistics.

Most tests drive ``MarketFeed`` through a *scripted* transport (``FakeVenue``: in-memory
connections the test feeds frames into, drops, refuses or silences) and a REST venue on
``httpx.MockTransport``, both answering from the same "true" books. No sockets and no threads, so
these run on the ``autojump_clock`` (TRIO_IDIOMS.md section 7): backoff delays, watchdog deadlines
and refresh gaps are exact in virtual time. A few tests at the end use the sim venue over real
loopback sockets (real clock, small timeouts) for what only a real socket shows.
"""

from __future__ import annotations

import math
import random
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Final

import attrs
import httpx
import orjson
import pytest
import trio
import trio.testing

from bot.config import FeedConfig, SimConfig
from bot.config import Transport as TransportKind
from bot.core.backoff import Backoff
from bot.core.money import ONE
from bot.core.wire.market_events import LastTradePrice, Level, NewMarket, TickSizeChange
from bot.shell.bus import Bus, Subscription
from bot.shell.feed import FeedGaveUp, MarketFeed
from bot.shell.feed_events import (
    FreshSource,
    ShardState,
    ShardStatus,
    StaleReason,
    TokenFresh,
    TokenStale,
)
from bot.shell.logsink import LogReceiver, open_log_channel
from bot.shell.rest import RestClient
from bot.shell.transport import Connection, ConnectionLost
from bot.sim.venue import open_sim_venue
from tests.sim.server_helpers import START_MS, small_config

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from bot.shell.feed_events import FeedEvent

TOKENS: Final = ("1001", "1002", "1003")
MARKET: Final = "0x" + "ab" * 32
T0_MS: Final = 1_782_864_000_000

# A quick but ordinary config for virtual time: 1 s pings, 5 s silence, 1-8 s backoff.
CFG: Final = FeedConfig(
    assets_per_socket=2,
    subscribe_batch_size=1,
    ping_interval_s=1.0,
    silence_timeout_s=5.0,
    reconnect_base_s=1.0,
    reconnect_max_s=8.0,
    restart_budget=50,
    restart_window_s=1_000.0,
    rest_fallback_after_s=10.0,
    rest_fallback_interval_s=2.0,
)


def price(micro: int) -> str:
    return f"{micro / ONE:.6f}".rstrip("0").rstrip(".")


# --- a scripted venue --------------------------------------------------------------------------


@attrs.define(eq=False)
class TrueBook:
    """The venue's book of one token: ``price -> size`` per side, micro-units."""

    bids: dict[int, int] = attrs.field(factory=lambda: {480_000: 100 * ONE, 470_000: 50 * ONE})
    asks: dict[int, int] = attrs.field(factory=lambda: {520_000: 80 * ONE, 530_000: 40 * ONE})

    def levels(self) -> tuple[list[Level], list[Level]]:
        bids = sorted(Level(p, s) for p, s in self.bids.items() if s)
        asks = sorted(Level(p, s) for p, s in self.asks.items() if s)
        return bids, asks

    def best_bid(self) -> int:
        return max((p for p, s in self.bids.items() if s), default=0)

    def best_ask(self) -> int:
        return min((p for p, s in self.asks.items() if s), default=ONE)


class FakeConnection:
    """One in-memory connection: the test pushes frames, the feed receives them."""

    def __init__(self, venue: FakeVenue) -> None:
        self.venue = venue
        self.opened_at = trio.current_time()
        self.sent: list[str] = []
        self._send, self._receive = trio.open_memory_channel[str | None](math.inf)
        self.closed = False

    def push(self, frame: str | dict[str, Any] | list[dict[str, Any]]) -> None:
        text = frame if isinstance(frame, str) else orjson.dumps(frame).decode()
        self._send.send_nowait(text)

    def drop(self) -> None:
        self._send.send_nowait(None)

    async def send(self, text: str) -> None:
        await trio.lowlevel.checkpoint()
        if self.closed:
            raise ConnectionLost("closed")
        self.sent.append(text)
        if text == "PING":
            if self.venue.pong:
                self.push("PONG")
            return
        message = orjson.loads(text)
        ids = [asset for asset in message["assets_ids"] if asset not in self.venue.no_snapshot]
        if ids and self.venue.snapshots:
            self.push([self.venue.book_event(asset) for asset in ids])

    async def receive(self) -> str:
        if self.venue.crash:
            raise RuntimeError("a bug in the transport")
        item = await self._receive.receive()
        if item is None:
            self.closed = True
            raise ConnectionLost("dropped by the test", code=1001)
        return item

    async def receive_many(self) -> list[str]:
        messages = [await self.receive()]
        while True:
            try:
                item = self._receive.receive_nowait()
            except trio.WouldBlock:
                return messages
            if item is None:
                self._send.send_nowait(None)  # the drop, for the next receive
                return messages
            messages.append(item)

    async def aclose(self) -> None:
        self.closed = True


@attrs.define(eq=False)
class FakeVenue:
    """A scripted ``Transport`` plus the REST answers, from the same true books."""

    books: dict[str, TrueBook] = attrs.field(factory=lambda: {t: TrueBook() for t in TOKENS})
    connections: list[FakeConnection] = attrs.field(factory=list)
    refuse: bool = False
    hang: bool = False
    pong: bool = True
    snapshots: bool = True
    crash: bool = False
    no_snapshot: set[str] = attrs.field(factory=set)
    now_ms: int = T0_MS
    rest_requests: list[str] = attrs.field(factory=list)
    rest_gate: trio.Event | None = None
    rest_entered: trio.Event = attrs.field(factory=trio.Event)
    rest_book_override: dict[str, Any] | None = None
    _lot: trio.lowlevel.ParkingLot = attrs.field(factory=trio.lowlevel.ParkingLot)

    name = "fake"

    # --- Transport

    @asynccontextmanager
    async def connect(
        self, url: str, *, receive_buffer: int, max_message: int
    ) -> AsyncIterator[Connection]:
        await trio.lowlevel.checkpoint()
        if self.hang:
            await trio.sleep_forever()
        if self.refuse:
            raise ConnectionLost("refused by the test")
        conn = FakeConnection(self)
        self.connections.append(conn)
        self._lot.unpark_all()
        try:
            yield conn
        finally:
            conn.closed = True

    def connection_for(self, asset: str) -> FakeConnection:
        """The newest connection that subscribed to ``asset``."""
        for conn in reversed(self.connections):
            if any(asset in text for text in conn.sent if text != "PING"):
                return conn
        raise LookupError(asset)

    async def wait_connections(self, n: int) -> FakeConnection:
        """Wait until ``n`` connections were opened; the newest."""
        while len(self.connections) < n:
            await self._lot.park()
        return self.connections[-1]

    # --- wire events

    def tick(self) -> str:
        self.now_ms += 1
        return str(self.now_ms)

    def book_event(self, asset: str) -> dict[str, Any]:
        bids, asks = self.books[asset].levels()
        return {
            "event_type": "book",
            "asset_id": asset,
            "market": MARKET,
            "timestamp": self.tick(),
            "hash": "",
            "bids": [{"price": price(p), "size": price(s)} for p, s in bids],
            "asks": [{"price": price(p), "size": price(s)} for p, s in reversed(asks)],
        }

    def change(
        self, asset: str, side: str, at: int, size: int, *, lie: bool = False
    ) -> dict[str, Any]:
        """Set one level of the truth and return its ``price_change`` (``lie``: a wrong top)."""
        book = self.books[asset]
        (book.bids if side == "BUY" else book.asks)[at] = size
        best_bid = book.best_bid() + (10_000 if lie else 0)
        return {
            "event_type": "price_change",
            "market": MARKET,
            "timestamp": self.tick(),
            "price_changes": [
                {
                    "asset_id": asset,
                    "price": price(at),
                    "size": price(size),
                    "side": side,
                    "hash": "00",
                    "best_bid": price(best_bid),
                    "best_ask": price(book.best_ask()),
                }
            ],
        }

    def rest_book(self, asset: str) -> dict[str, Any]:
        event = self.book_event(asset)
        del event["event_type"]
        return event

    # --- REST (httpx.MockTransport handler)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.rest_requests.append(request.url.path)
        if request.url.path == "/book":
            asset = request.url.params["token_id"]
            if asset not in self.books:
                return httpx.Response(404, json={"error": "No orderbook exists"})
            answer: Any = self.rest_book(asset)
        else:
            ids = [item["token_id"] for item in orjson.loads(request.content)]
            answer = [self.rest_book(asset) for asset in ids if asset in self.books]
        if self.rest_book_override is not None:
            answer = [self.rest_book_override] if isinstance(answer, list) else answer
        self.rest_entered.set()
        if self.rest_gate is not None:
            await self.rest_gate.wait()
        return httpx.Response(200, json=answer)


def drain(sub: Subscription[FeedEvent]) -> list[FeedEvent]:
    """Every event delivered to ``sub`` so far, in order."""
    out: list[FeedEvent] = []
    while True:
        try:
            delivery = sub.receive_nowait()
        except trio.WouldBlock:
            return out
        out.extend(stamped.item for stamped in delivery.events)


def of_type(events: list[FeedEvent], kind: type[Any]) -> list[Any]:
    return [event for event in events if isinstance(event, kind)]


def assert_books_match(feed: MarketFeed, venue: FakeVenue, tokens: tuple[str, ...]) -> None:
    for asset in tokens:
        book = feed.books[asset]
        bids, asks = venue.books[asset].levels()
        assert sorted(book.bids()) == bids, asset
        assert sorted(book.asks()) == asks, asset
        assert not book.stale, asset


@attrs.define
class Running:
    feed: MarketFeed
    venue: FakeVenue
    sub: Subscription[FeedEvent]
    bus: Bus[FeedEvent]
    log: LogReceiver
    nursery: trio.Nursery


@asynccontextmanager
async def running(
    venue: FakeVenue,
    cfg: FeedConfig = CFG,
    tokens: tuple[str, ...] = TOKENS,
    **options: Any,
) -> AsyncIterator[Running]:
    bus: Bus[FeedEvent] = Bus()
    sub = bus.subscribe("test", max_pending=100_000)
    channel, receiver = open_log_channel(10_000)
    async with httpx.AsyncClient(transport=httpx.MockTransport(venue.handle)) as http:
        rest = RestClient(
            http,
            gamma_url="http://venue/gamma",
            clob_url="http://venue",
            backoff=Backoff(0.1, 1.0),
            rng=random.Random(0),
            max_attempts=1,
            rate_limits=(),
        )
        feed = MarketFeed(
            tokens,
            cfg,
            ws_url="ws://venue/ws/market",
            rest=rest,
            bus=bus,
            rng=random.Random(7),
            log=channel,
            transport=venue,
            **options,
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(feed.run)
            yield Running(feed, venue, sub, bus, receiver, nursery)
            nursery.cancel_scope.cancel()


def records(log: LogReceiver, kind: str) -> list[Any]:
    return [r for r in log.receive_batch_nowait(100_000) if r.get("kind") == kind]


# --- sessions ----------------------------------------------------------------------------------


async def test_shards_subscribe_in_batches_and_books_become_fresh(autojump_clock: Any) -> None:
    venue = FakeVenue()
    async with running(venue) as r:
        assert r.feed.shard_count == 2
        assert [r.feed.shard_of(t) for t in TOKENS] == [0, 0, 1]
        await trio.sleep(0.5)
        first, second = venue.connection_for("1001"), venue.connection_for("1003")
        subscribes = [orjson.loads(text) for text in first.sent if text != "PING"]
        assert subscribes == [
            {
                "assets_ids": ["1001"],
                "type": "market",
                "initial_dump": True,
                "custom_feature_enabled": True,
            },
            {
                "operation": "subscribe",
                "assets_ids": ["1002"],
                "initial_dump": True,
                "custom_feature_enabled": True,
            },
        ]
        assert orjson.loads(second.sent[0])["assets_ids"] == ["1003"]
        assert "PING" in first.sent
        assert_books_match(r.feed, venue, TOKENS)
        events = drain(r.sub)
        assert sorted(of_type(events, TokenFresh), key=str) == [
            TokenFresh(t, FreshSource.WS) for t in TOKENS
        ]
        states = [(e.shard, e.state) for e in of_type(events, ShardState)]
        assert states.count((0, ShardStatus.CONNECTING)) == 1
        assert (0, ShardStatus.CONNECTED) in states
        assert (1, ShardStatus.CONNECTED) in states
        with pytest.raises(TypeError):
            r.feed.books["1001"] = r.feed.books["1002"]  # type: ignore[index]


async def test_deltas_before_the_snapshot_are_discarded(autojump_clock: Any) -> None:
    venue = FakeVenue(snapshots=False)
    async with running(venue, tokens=("1001",)) as r:
        conn = await venue.wait_connections(1)
        truth = venue.books["1001"]
        conn.push(venue.change("1001", "BUY", 460_000, 7 * ONE))  # before any snapshot
        await trio.sleep(0.1)
        assert r.feed.books["1001"].stale
        assert r.feed.statistics().shards[0].discarded_changes == 1
        conn.push([venue.book_event("1001")])
        conn.push(venue.change("1001", "SELL", 540_000, 3 * ONE))
        await trio.sleep(0.1)
        assert_books_match(r.feed, venue, ("1001",))
        assert truth.asks[540_000] == 3 * ONE


async def test_reconnects_use_full_jitter_and_a_healthy_session_resets_it(
    autojump_clock: Any,
) -> None:
    venue = FakeVenue()
    expected_rng = random.Random(7)
    backoff = Backoff(CFG.reconnect_base_s, CFG.reconnect_max_s)
    async with running(venue, tokens=("1001",)) as r:
        conn = await venue.wait_connections(1)
        await trio.sleep(1.0)  # connected for less than silence_timeout_s: not healthy
        drain(r.sub)
        for attempt in range(3):
            dropped_at = trio.current_time()
            conn.drop()
            conn = await venue.wait_connections(2 + attempt)
            delay = backoff.delay(attempt, expected_rng)
            assert conn.opened_at == pytest.approx(dropped_at + delay, abs=1e-9)
            await trio.sleep(0.1)  # its snapshot arrives
        events = drain(r.sub)
        assert of_type(events, TokenStale) == [TokenStale("1001", StaleReason.DISCONNECTED)] * 3
        assert of_type(events, TokenFresh) == [TokenFresh("1001")] * 3
        await trio.sleep(CFG.silence_timeout_s + 1)  # a healthy session
        dropped_at = trio.current_time()
        conn.drop()
        conn = await venue.wait_connections(5)
        assert conn.opened_at == pytest.approx(
            dropped_at + backoff.delay(0, expected_rng), abs=1e-9
        )
        stats = r.feed.statistics().shards[0]
        assert (stats.connects, stats.reconnects) == (5, 4)


async def test_an_exhausted_restart_budget_raises_feed_gave_up(autojump_clock: Any) -> None:
    venue = FakeVenue(refuse=True)
    cfg = attrs.evolve(CFG, restart_budget=3)
    bus: Bus[FeedEvent] = Bus()
    sub = bus.subscribe("test", max_pending=1_000)
    async with httpx.AsyncClient(transport=httpx.MockTransport(venue.handle)) as http:
        rest = RestClient(
            http,
            gamma_url="http://v",
            clob_url="http://v",
            backoff=Backoff(0.1, 1),
            rng=random.Random(),
        )
        feed = MarketFeed(
            ("1001",),
            cfg,
            ws_url="ws://v",
            rest=rest,
            bus=bus,
            rng=random.Random(1),
            transport=venue,
        )
        with pytest.raises(FeedGaveUp, match=r"shard 0: gave up: 4 failures within 1000 s"):
            await feed.run()
    states = [e.state for e in of_type(drain(sub), ShardState)]
    assert states[0] is ShardStatus.CONNECTING
    assert states[-1] is ShardStatus.DOWN


async def test_started_after_a_failed_first_attempt_then_connects(autojump_clock: Any) -> None:
    venue = FakeVenue(refuse=True)
    async with running(venue, tokens=("1001",)) as r:
        # run() returned from nursery.start although nothing connected.
        assert venue.connections == []
        assert r.feed.statistics().shards[0].state is ShardStatus.RECONNECTING
        assert r.feed.books["1001"].stale
        venue.refuse = False
        await venue.wait_connections(1)
        await trio.sleep(0.1)
        assert r.feed.statistics().shards[0].state is ShardStatus.CONNECTED
        assert_books_match(r.feed, venue, ("1001",))


async def test_connect_and_subscribe_are_bounded_by_the_silence_timeout(
    autojump_clock: Any,
) -> None:
    venue = FakeVenue(hang=True)
    async with running(venue, tokens=("1001",)) as r:
        started = trio.current_time()
        assert started == pytest.approx(CFG.silence_timeout_s)  # the first attempt timed out
        detail = r.feed.statistics().shards[0].detail
        assert "TooSlowError" in detail
        venue.hang = False
        await venue.wait_connections(1)


async def test_a_bug_is_not_retried(autojump_clock: Any) -> None:
    venue = FakeVenue()
    with pytest.RaisesGroup(RuntimeError, flatten_subgroups=True):
        async with running(venue, tokens=("1001",)):
            await venue.wait_connections(1)
            venue.crash = True
            venue.connections[0].push("PONG")  # wake the reader: its next receive raises
            await trio.sleep_forever()


# --- watchdog ----------------------------------------------------------------------------------


async def test_no_pong_for_three_intervals_is_a_dead_socket(autojump_clock: Any) -> None:
    venue = FakeVenue(pong=False)
    async with running(venue, tokens=("1001",)) as r:
        first = await venue.wait_connections(1)
        second = await venue.wait_connections(2)
        dead_at = first.opened_at + 3 * CFG.ping_interval_s
        assert second.opened_at >= dead_at
        assert second.opened_at <= dead_at + CFG.reconnect_base_s
        events = drain(r.sub)
        assert TokenStale("1001", StaleReason.DEAD) in events
        assert r.feed.statistics().shards[0].dead_detected == 1


async def test_silence_while_rest_shows_moved_books_is_a_frozen_socket(
    autojump_clock: Any,
) -> None:
    venue = FakeVenue()
    async with running(venue, tokens=("1001",)) as r:
        first = await venue.wait_connections(1)
        venue.change("1001", "BUY", 490_000, 9 * ONE)  # the venue moved; the frame never comes
        second = await venue.wait_connections(2)
        assert second.opened_at - first.opened_at == pytest.approx(
            CFG.silence_timeout_s, abs=CFG.reconnect_base_s
        )
        await trio.sleep(0.1)
        events = drain(r.sub)
        states = [e.state for e in of_type(events, ShardState)]
        frozen = states.index(ShardStatus.FROZEN)
        assert states[frozen + 1 :][:2] == [ShardStatus.RECONNECTING, ShardStatus.CONNECTED]
        assert TokenStale("1001", StaleReason.FROZEN) in events
        stats = r.feed.statistics().shards[0]
        assert (stats.frozen_detected, stats.quiet_checks) == (1, 0)
        assert_books_match(r.feed, venue, ("1001",))  # rebuilt from the new snapshot


async def test_silence_in_a_quiet_market_is_not_a_reconnect(autojump_clock: Any) -> None:
    venue = FakeVenue()
    async with running(venue, tokens=("1001",)) as r:
        await venue.wait_connections(1)
        await trio.sleep(3 * CFG.silence_timeout_s + 1)
        stats = r.feed.statistics().shards[0]
        assert len(venue.connections) == 1
        assert stats.quiet_checks == 3
        assert "/books" in venue.rest_requests
        assert not r.feed.books["1001"].stale


async def test_without_the_rest_check_any_silence_reconnects(autojump_clock: Any) -> None:
    venue = FakeVenue()
    async with running(venue, tokens=("1001",), verify_silence_with_rest=False) as r:
        await venue.wait_connections(2)
        assert r.feed.statistics().shards[0].frozen_detected == 1
        assert venue.rest_requests == []


async def test_a_token_without_a_snapshot_gets_a_rest_resnapshot(autojump_clock: Any) -> None:
    venue = FakeVenue(no_snapshot={"1002"})
    async with running(venue, tokens=("1001", "1002")) as r:
        conn = await venue.wait_connections(1)
        conn.push(venue.change("1002", "BUY", 460_000, ONE))  # discarded: no snapshot yet
        await trio.sleep(CFG.silence_timeout_s - 1)
        assert r.feed.books["1002"].stale
        await trio.sleep(1.5)
        assert "/book" in venue.rest_requests  # the resnapshot (the quiet check uses /books)
        assert_books_match(r.feed, venue, ("1001", "1002"))
        assert TokenFresh("1002", FreshSource.REST) in drain(r.sub)
        conn.push(venue.change("1002", "SELL", 550_000, 2 * ONE))  # now applied
        await trio.sleep(0.1)
        assert_books_match(r.feed, venue, ("1002",))


async def test_a_token_rest_cannot_fix_is_retried_a_few_times_only(autojump_clock: Any) -> None:
    venue = FakeVenue(no_snapshot={"1009"})
    async with running(venue, tokens=("1001", "1009"), resnapshot_interval_s=1.0) as r:
        await venue.wait_connections(1)
        await trio.sleep(CFG.silence_timeout_s + 30)
        assert venue.rest_requests.count("/book") == 3
        stats = r.feed.statistics()
        assert (stats.resnapshots, stats.resnapshot_failures) == (3, 3)
        assert r.feed.books["1009"].stale
        assert not r.feed.books["1001"].stale


# --- mismatches and resnapshots ----------------------------------------------------------------


async def test_a_mismatch_is_resnapshotted_at_most_once_per_interval(autojump_clock: Any) -> None:
    venue = FakeVenue()
    async with running(venue, tokens=("1001",), resnapshot_interval_s=3.0) as r:
        conn = await venue.wait_connections(1)
        await trio.sleep(0.1)
        drain(r.sub)
        conn.push(venue.change("1001", "BUY", 460_000, ONE, lie=True))
        await trio.sleep(0.1)
        events = drain(r.sub)
        assert events == [
            TokenStale("1001", StaleReason.MISMATCH),
            TokenFresh("1001", FreshSource.REST),
        ]
        assert_books_match(r.feed, venue, ("1001",))
        conn.push(venue.change("1001", "BUY", 450_000, ONE, lie=True))
        await trio.sleep(1.0)
        assert r.feed.books["1001"].stale  # rate limited: still waiting
        assert r.feed.statistics().resnapshots == 1
        await trio.sleep(2.5)
        stats = r.feed.statistics()
        assert (stats.resnapshots, stats.mismatches) == (2, 2)
        assert_books_match(r.feed, venue, ("1001",))


async def test_a_resnapshot_replays_changes_received_while_it_was_in_flight(
    autojump_clock: Any,
) -> None:
    venue = FakeVenue()
    async with running(venue, tokens=("1001",)) as r:
        conn = await venue.wait_connections(1)
        await trio.sleep(0.1)
        venue.rest_gate = trio.Event()
        conn.push(venue.change("1001", "BUY", 460_000, ONE, lie=True))
        await venue.rest_entered.wait()  # the REST answer is taken now (at its timestamp) ...
        # ... but REST is slow: newer changes arrive on the socket before the answer.
        conn.push(venue.change("1001", "BUY", 480_000, 0))
        conn.push(venue.change("1001", "SELL", 520_000, 5 * ONE))
        await trio.sleep(0.5)
        venue.rest_gate.set()
        await trio.sleep(0.1)
        assert_books_match(r.feed, venue, ("1001",))
        assert r.feed.statistics().mismatches == 1


async def test_changes_older_than_a_rest_snapshot_are_skipped(autojump_clock: Any) -> None:
    venue = FakeVenue()
    async with running(venue, tokens=("1001",)) as r:
        conn = await venue.wait_connections(1)
        await trio.sleep(0.1)
        stale_change = venue.change("1001", "BUY", 465_000, 3 * ONE)  # in flight, not yet seen
        conn.push(venue.change("1001", "BUY", 460_000, ONE, lie=True))
        await trio.sleep(0.1)  # resnapshotted: the REST book already holds the 0.465 level
        conn.push(stale_change)
        conn.push(venue.change("1001", "SELL", 560_000, ONE))
        await trio.sleep(0.1)
        assert_books_match(r.feed, venue, ("1001",))
        stats = r.feed.statistics()
        assert stats.mismatches == 1
        assert stats.shards[0].discarded_changes == 1


# --- malformed frames, pass-through events, recording ------------------------------------------


async def test_malformed_frames_are_counted_and_logged(autojump_clock: Any) -> None:
    venue = FakeVenue()
    async with running(venue, tokens=("1001",)) as r:
        conn = await venue.wait_connections(1)
        conn.push('{"event_type": "book", "asset')
        bad = venue.change("1001", "BUY", 460_000, ONE)
        bad["price_changes"][0]["size"] = 12.5
        conn.push(bad)
        conn.push({"event_type": "brand_new", "market": MARKET})
        conn.push(venue.change("1001", "SELL", 540_000, ONE))
        await trio.sleep(0.1)
        stats = r.feed.statistics()
        assert (stats.malformed, stats.unknown_events) == (2, 1)
        logged = records(r.log, "feed.malformed")
        assert len(logged) == 2
        assert "invalid JSON" in logged[0]["reason"]
        assert "size" in logged[1]["reason"]
        assert logged[0]["excerpt"].startswith('{"event_type": "book"')
        venue.books["1001"].bids[460_000] = 0  # the malformed change never happened
        assert_books_match(r.feed, venue, ("1001",))
        assert len(venue.connections) == 1


async def test_trades_ticks_and_market_announcements_pass_through_once(
    autojump_clock: Any,
) -> None:
    venue = FakeVenue()
    async with running(venue) as r:
        await venue.wait_connections(2)
        await trio.sleep(0.1)
        drain(r.sub)
        trade = {
            "event_type": "last_trade_price",
            "asset_id": "1001",
            "market": MARKET,
            "price": "0.52",
            "size": "10",
            "side": "BUY",
            "timestamp": venue.tick(),
        }
        tick = {
            "event_type": "tick_size_change",
            "asset_id": "1003",
            "market": MARKET,
            "old_tick_size": "0.01",
            "new_tick_size": "0.001",
            "timestamp": venue.tick(),
        }
        listing = {
            "event_type": "new_market",
            "id": "42",
            "market": "0x" + "cd" * 32,
            "question": "?",
            "slug": "s",
            "assets_ids": ["7", "8"],
            "outcomes": ["Yes", "No"],
            "timestamp": venue.tick(),
        }
        venue.connection_for("1001").push([trade, listing])
        await trio.sleep(0.1)
        venue.connection_for("1003").push([tick, listing])  # every shard gets new_market
        await trio.sleep(0.1)
        events = drain(r.sub)
        assert [type(e) for e in events] == [LastTradePrice, NewMarket, TickSizeChange]
        assert r.feed.books["1003"].tick_size == 1_000


async def test_the_recorder_sees_every_frame(autojump_clock: Any) -> None:
    venue = FakeVenue()
    seen: list[tuple[float, str]] = []
    async with running(venue, tokens=("1001",), recorder=lambda t, raw: seen.append((t, raw))):
        conn = await venue.wait_connections(1)
        await trio.sleep(2.5)
        conn.push("not json")
    frames = [raw for _, raw in seen]
    assert frames.count("PONG") == 3
    assert frames[-1] == "not json"
    assert frames[0].startswith('[{"event_type":"book"')
    assert [t for t, _ in seen] == sorted(t for t, _ in seen)


# --- REST fallback -----------------------------------------------------------------------------


async def test_rest_fallback_polls_while_down_and_stops_when_the_socket_returns(
    autojump_clock: Any,
) -> None:
    venue = FakeVenue()
    async with running(venue, tokens=("1001", "1002")) as r:
        conn = await venue.wait_connections(1)
        await trio.sleep(0.1)
        drain(r.sub)
        venue.refuse = True
        down_at = trio.current_time()
        conn.drop()
        await trio.sleep(CFG.rest_fallback_after_s - 0.5)
        assert venue.rest_requests == []
        assert r.feed.books["1001"].stale
        await trio.sleep(1.0)
        assert venue.rest_requests == ["/books"]
        assert_books_match(r.feed, venue, ("1001", "1002"))
        venue.change("1001", "SELL", 510_000, ONE)  # the venue moves; REST shows it
        await trio.sleep(CFG.rest_fallback_interval_s)
        assert venue.rest_requests == ["/books", "/books"]
        assert_books_match(r.feed, venue, ("1001", "1002"))
        events = drain(r.sub)
        assert TokenFresh("1001", FreshSource.REST) in events
        assert [e.state for e in of_type(events, ShardState)][-1] is ShardStatus.REST_FALLBACK
        venue.refuse = False
        await venue.wait_connections(2)
        await trio.sleep(CFG.rest_fallback_interval_s * 3)
        polls = r.feed.statistics().rest_fallback_polls
        assert polls <= (trio.current_time() - down_at) / CFG.rest_fallback_interval_s
        events = drain(r.sub)
        assert TokenFresh("1001", FreshSource.WS) in events
        assert of_type(events, ShardState)[-1].state is ShardStatus.CONNECTED
        assert_books_match(r.feed, venue, ("1001", "1002"))
        await trio.sleep(CFG.rest_fallback_interval_s * 3)
        assert r.feed.statistics().rest_fallback_polls == polls  # stopped


# --- statistics --------------------------------------------------------------------------------


async def test_refresh_gaps_and_event_rate(autojump_clock: Any) -> None:
    venue = FakeVenue()
    async with running(venue, tokens=("1001",)) as r:
        conn = await venue.wait_connections(1)
        await trio.sleep(1.0)
        for gap in (1.0, 1.0, 1.0, 36.0, 1.0):
            conn.push(venue.change("1001", "BUY", 460_000, ONE))
            await trio.sleep(gap)
        gaps = r.feed.statistics().refresh_gaps["1001"]
        # The snapshot, then five changes 1 s apart except one 36 s silence.
        assert gaps.count == 5
        assert gaps.p50 == pytest.approx(1.0)
        assert gaps.max == pytest.approx(36.0)
        assert r.feed.statistics().max_refresh_gap == pytest.approx(36.0)
        for _ in range(150):
            conn.push(venue.change("1001", "BUY", 460_000, ONE))
            await trio.sleep(0.1)
        assert r.feed.statistics().events_per_s == pytest.approx(10.0, rel=0.15)
        assert r.feed.statistics(per_token=False).refresh_gaps == {}


# --- over the sim venue, real sockets ----------------------------------------------------------


@asynccontextmanager
async def feed_on_sim(
    sim: SimConfig, cfg: FeedConfig, **options: Any
) -> AsyncIterator[tuple[Any, MarketFeed, Subscription[FeedEvent]]]:
    async with (
        open_sim_venue(sim, start_epoch_ms=START_MS) as venue,
        httpx.AsyncClient() as http,
    ):
        rest = RestClient(
            http,
            gamma_url=venue.gamma_url,
            clob_url=venue.clob_url,
            backoff=Backoff(0.01, 0.1),
            rng=random.Random(1),
            rate_limits=(),
        )
        bus: Bus[FeedEvent] = Bus()
        sub = bus.subscribe("test", max_pending=1_000_000)
        feed = MarketFeed(
            venue.universe.token_ids(),
            cfg,
            ws_url=venue.ws_market_url,
            rest=rest,
            bus=bus,
            rng=random.Random(2),
            **options,
        )
        async with trio.open_nursery() as nursery:
            with trio.fail_after(5):
                await nursery.start(feed.run)
            yield venue, feed, sub
            nursery.cancel_scope.cancel()


async def wait_for(predicate: Callable[[], bool]) -> None:
    """Poll ``predicate`` (real clock) until it holds; fail after 5 s."""
    with trio.fail_after(5):
        while True:
            if predicate():
                return
            await trio.sleep(0.02)


def sim_feed_config(kind: TransportKind, **changes: Any) -> FeedConfig:
    base = FeedConfig(
        assets_per_socket=16,
        subscribe_batch_size=5,
        ping_interval_s=0.1,
        silence_timeout_s=0.5,
        reconnect_base_s=0.02,
        reconnect_max_s=0.1,
        rest_fallback_after_s=5.0,
        rest_fallback_interval_s=0.2,
        transport=kind,
    )
    return attrs.evolve(base, **changes)


TRANSPORTS: Final = [pytest.param(kind, id=kind.value) for kind in TransportKind]


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_one_connection_per_shard_on_the_sim(kind: TransportKind) -> None:
    async with feed_on_sim(small_config(), sim_feed_config(kind)) as (venue, feed, _sub):
        stats = venue.statistics().server
        assert stats.connections == feed.shard_count == math.ceil(len(feed.books) / 16)
        assert stats.subscribed_assets == len(feed.books)
        assert all(s.state is ShardStatus.CONNECTED for s in feed.statistics().shards)


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_a_venue_that_stops_reading_is_a_dead_socket(kind: TransportKind) -> None:
    async with feed_on_sim(small_config(), sim_feed_config(kind)) as (venue, feed, sub):
        venue.faults.stop_reading = True  # PINGs go unanswered
        await wait_for(
            lambda: (
                all(s.dead_detected for s in feed.statistics().shards)
                and all(book.stale for book in feed.books.values())
            )
        )
        venue.faults.stop_reading = False
        events = drain(sub)
        reasons = {e.asset_id: e.reason for e in of_type(events, TokenStale)}
        assert reasons == dict.fromkeys(feed.books, StaleReason.DEAD), events

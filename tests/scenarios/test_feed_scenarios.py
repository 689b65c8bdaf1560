"""Scenarios: the whole feed against the sim venue's faults, over real loopback sockets.

Every scenario runs once per transport (``FeedConfig.transport``). The venue's pump drives a busy
order flow (500 events/s over a few dozen tokens, split into three shards); the venue's
``exchange`` holds the true books. "The books are right" always means: pause the pump, let the
sockets drain, and then every token's book equals the venue's, level for level, and is not stale.

Real sockets, so the real clock (TRIO_IDIOMS.md section 7) with sub-second timeouts; every wait is
bounded.
"""

from __future__ import annotations

import random
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any, Final

import attrs
import httpx
import pytest
import trio

from bot.config import FeedConfig, SimFaultsConfig
from bot.config import Transport as TransportKind
from bot.core.backoff import Backoff
from bot.core.money import Side
from bot.shell.bus import Bus, Subscription
from bot.shell.feed import MarketFeed
from bot.shell.feed_events import (
    FreshSource,
    ShardState,
    ShardStatus,
    StaleReason,
    TokenFresh,
    TokenStale,
)
from bot.shell.rest import RestClient
from bot.sim.venue import SimVenue, open_sim_venue
from tests.sim.server_helpers import START_MS, small_config

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from bot.shell.feed_events import FeedEvent

pytestmark = pytest.mark.parametrize(
    "kind", [pytest.param(kind, id=kind.value) for kind in TransportKind]
)

WAIT: Final = 5.0


def feed_config(kind: TransportKind, **changes: Any) -> FeedConfig:
    base = FeedConfig(
        assets_per_socket=16,
        subscribe_batch_size=5,
        ping_interval_s=0.1,
        silence_timeout_s=0.5,
        reconnect_base_s=0.02,
        reconnect_max_s=0.2,
        restart_budget=100,
        restart_window_s=60.0,
        rest_fallback_after_s=5.0,
        rest_fallback_interval_s=0.1,
        transport=kind,
    )
    return attrs.evolve(base, **changes)


@attrs.define(eq=False)
class Harness:
    venue: SimVenue
    feed: MarketFeed
    bus: Bus[FeedEvent]
    sub: Subscription[FeedEvent]
    events: list[FeedEvent]
    nursery: trio.Nursery


async def collect(sub: Subscription[FeedEvent], events: list[FeedEvent]) -> None:
    async for delivery in sub:
        events.extend(stamped.item for stamped in delivery.events)


@asynccontextmanager
async def harness(
    cfg: FeedConfig, *, ws_url: Callable[[SimVenue], str] | None = None, **sim: Any
) -> AsyncIterator[Harness]:
    async with (
        open_sim_venue(small_config(**sim), start_epoch_ms=START_MS) as venue,
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
        sub = bus.subscribe("scenario", max_pending=1_000_000)
        feed = MarketFeed(
            venue.universe.token_ids(),
            cfg,
            ws_url=ws_url(venue) if ws_url is not None else venue.ws_market_url,
            rest=rest,
            bus=bus,
            rng=random.Random(2),
            resnapshot_interval_s=0.2,
        )
        events: list[FeedEvent] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(collect, sub, events)
            with trio.fail_after(WAIT):
                await nursery.start(feed.run)
            yield Harness(venue, feed, bus, sub, events, nursery)
            nursery.cancel_scope.cancel()


def wrong_books(h: Harness) -> list[str]:
    """Tokens whose book differs from the venue's (or is stale)."""
    wrong = []
    for token, book in h.feed.books.items():
        truth = h.venue.exchange.book(token)
        if (
            book.stale
            or list(book.bids()) != list(truth.bids())
            or list(book.asks()) != list(truth.asks())
        ):
            wrong.append(token)
    return wrong


async def wait_for(predicate: Callable[[], bool]) -> None:
    """Poll ``predicate`` until it holds; fail after ``WAIT`` seconds."""
    with trio.fail_after(WAIT):
        while True:
            if predicate():
                return
            await trio.sleep(0.02)


async def assert_books_right(h: Harness) -> None:
    """Pause the pump, let the sockets drain, and wait until every book equals the venue's."""
    h.venue.pause_pump()
    await h.venue.wait_idle()
    try:
        await wait_for(lambda: not wrong_books(h))
    except trio.TooSlowError:
        pytest.fail(f"books still wrong: {wrong_books(h)}; {h.feed.statistics(per_token=False)}")


def all_connected(h: Harness) -> bool:
    return all(
        s.state is ShardStatus.CONNECTED and s.tokens_ready == s.tokens
        for s in h.feed.statistics(per_token=False).shards
    )


def shard_states(h: Harness, shard: int) -> list[ShardStatus]:
    return [e.state for e in h.events if isinstance(e, ShardState) and e.shard == shard]


def is_subsequence(needle: list[Any], haystack: list[Any]) -> bool:
    items = iter(haystack)
    return all(any(item == wanted for item in items) for wanted in needle)


# --- 1. repeated drops --------------------------------------------------------------------------


async def test_books_are_right_after_repeated_drops(kind: TransportKind) -> None:
    async with harness(feed_config(kind)) as h:
        assert h.feed.shard_count == 3
        drops = 4
        for _ in range(drops):
            await trio.sleep(0.25)
            assert h.venue.drop_all_connections() > 0
        dropped = h.venue.statistics().faults.connections_dropped

        def recovered() -> bool:
            # Every dropped connection was noticed and retried, and every shard is back.
            reconnects = h.feed.statistics(per_token=False).reconnects
            return reconnects >= dropped and all_connected(h)

        await wait_for(recovered)
        await assert_books_right(h)
        stats = h.feed.statistics(per_token=False)
        assert dropped >= drops  # a drop may find a shard between attempts: not 4 per shard
        assert stats.mismatches == 0
        stale = [e for e in h.events if isinstance(e, TokenStale)]
        assert {e.reason for e in stale} == {StaleReason.DISCONNECTED}
        assert {e.asset_id for e in stale} == set(h.feed.books)


# --- 2. a frozen socket -------------------------------------------------------------------------


async def test_a_frozen_socket_is_detected_and_the_feed_recovers(kind: TransportKind) -> None:
    cfg = feed_config(kind)
    async with harness(cfg) as h:
        await trio.sleep(0.3)
        silenced_at = trio.current_time()
        h.venue.faults.silent = True  # PONGs keep coming, market data stops
        shards = range(h.feed.shard_count)
        await wait_for(lambda: all(ShardStatus.FROZEN in shard_states(h, i) for i in shards))
        detected_in = trio.current_time() - silenced_at
        # Within the watchdog window: the silence timeout, plus the REST check and a margin.
        assert detected_in < cfg.silence_timeout_s + 0.5
        h.venue.faults.silent = False
        await wait_for(lambda: all_connected(h))
        await assert_books_right(h)
        stats = h.feed.statistics(per_token=False)
        for i in shards:
            expected = [ShardStatus.FROZEN, ShardStatus.RECONNECTING, ShardStatus.CONNECTED]
            assert is_subsequence(expected, shard_states(h, i)), shard_states(h, i)
            assert stats.shards[i].frozen_detected >= 1
            assert stats.shards[i].reconnects >= 1
        reasons = {e.reason for e in h.events if isinstance(e, TokenStale)}
        assert StaleReason.FROZEN in reasons, h.events


# --- 3. malformed frames ------------------------------------------------------------------------


async def test_malformed_frames_are_counted_and_books_stay_right(kind: TransportKind) -> None:
    async with harness(feed_config(kind), faults=SimFaultsConfig(malformed_rate=0.1)) as h:
        await trio.sleep(1.5)
        h.venue.faults.malformed_rate = 0.0
        await assert_books_right(h)
        faults = h.venue.statistics().faults
        by_kind = faults.malformed_by_kind
        decode_errors = sum(by_kind.get(k, 0) for k in ("bad_json", "missing_field", "wrong_type"))
        assert faults.malformed_frames >= 20  # 10% of a busy second and a half

        def counted() -> bool:
            stats = h.feed.statistics(per_token=False)
            return stats.malformed == decode_errors and stats.unknown_events == by_kind.get(
                "unknown_event", 0
            )

        await wait_for(counted)
        stats = h.feed.statistics(per_token=False)
        assert stats.connects == h.feed.shard_count  # never fatal: no reconnect
        assert stats.mismatches == 0


# --- 4. a slow consumer -------------------------------------------------------------------------


async def test_a_slow_consumer_does_not_slow_the_feed(kind: TransportKind) -> None:
    # The watchdog is not under test here. With the harness's 0.1 s pings a loaded machine's
    # 0.3 s pause looks like a dead socket (no PONG for three intervals) and every shard
    # reconnects, stranding frames the venue counted as sent: seen in CI. Slow pings, long window.
    cfg = feed_config(kind, ping_interval_s=1.0, silence_timeout_s=5.0)
    async with harness(cfg, events_per_second=3_000.0) as h:

        def counts() -> tuple[int, int]:
            stats = h.feed.statistics(per_token=False)
            read = stats.frames + sum(shard.pongs for shard in stats.shards)
            return read, h.venue.statistics().server.frames_sent

        async def measure(seconds: float) -> tuple[float, float]:
            """Frames the feed read and frames the venue sent, per second, over ``seconds``."""
            read0, sent0 = counts()
            await trio.sleep(seconds)
            read1, sent1 = counts()
            return (read1 - read0) / seconds, (sent1 - sent0) / seconds

        await trio.sleep(0.3)
        alone, _ = await measure(1.0)

        slow = h.bus.subscribe("slow strategy", max_pending=100)
        deliveries = 0

        async def strategy() -> None:
            nonlocal deliveries
            async for _delivery in slow:
                deliveries += 1
                await trio.sleep(0.05)  # a strategy that takes 50 ms per look

        h.nursery.start_soon(partial(strategy), name="slow strategy")
        with_slow, sent = await measure(1.0)
        # The feed keeps up with what the venue sends. (On a loaded machine the venue's own pump,
        # in this process, slows too: comparing with the rate measured alone would test the CPU.)
        assert with_slow == pytest.approx(sent, rel=0.1)
        assert with_slow > 0.5 * alone
        slow_stats = slow.statistics()
        assert 5 <= deliveries <= 25
        assert slow_stats.skipped > 0  # the bus conflated the books for it
        assert h.venue.statistics().server.slow_consumers_dropped == 0
        await assert_books_right(h)

        def read_everything() -> bool:
            # Every data frame the venue wrote (updates, snapshots) was read by the feed, exactly;
            # of the PONGs, which keep coming every ping interval, one may still be in flight.
            stats = h.feed.statistics(per_token=False)
            server = h.venue.statistics().server
            pongs = sum(shard.pongs for shard in stats.shards)
            data_sent = server.frames_sent - server.pongs_sent
            return stats.frames == data_sent and 0 <= server.pongs_sent - pongs <= 1

        reconnects = [shard.reconnects for shard in h.feed.statistics(per_token=False).shards]
        assert reconnects == [0] * len(reconnects), "the watchdog reconnected: not under test here"
        await wait_for(read_everything)


# --- 5. REST fallback ---------------------------------------------------------------------------


@attrs.define(eq=False)
class Proxy:
    """A TCP proxy in front of the venue's WebSocket port that can refuse and cut connections."""

    upstream_port: int
    refuse: bool = False
    scopes: set[trio.CancelScope] = attrs.field(factory=set)
    port: int = 0

    async def handle(self, client: trio.SocketStream) -> None:
        async with client:
            if self.refuse:
                return  # accept, then close at once: the handshake fails
            upstream = await trio.open_tcp_stream("127.0.0.1", self.upstream_port)
            async with upstream:
                with trio.CancelScope() as scope:
                    self.scopes.add(scope)
                    try:
                        async with trio.open_nursery() as nursery:
                            nursery.start_soon(self.pipe, client, upstream, scope)
                            nursery.start_soon(self.pipe, upstream, client, scope)
                    finally:
                        self.scopes.discard(scope)

    @staticmethod
    async def pipe(
        source: trio.SocketStream, sink: trio.SocketStream, scope: trio.CancelScope
    ) -> None:
        try:
            while data := await source.receive_some(65_536):
                await sink.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        scope.cancel()

    def cut_all(self) -> None:
        for scope in list(self.scopes):
            scope.cancel()


async def test_rest_fallback_keeps_books_updated_while_the_socket_is_down(
    kind: TransportKind,
) -> None:
    cfg = feed_config(kind, rest_fallback_after_s=0.3, rest_fallback_interval_s=0.1)
    proxy: Proxy | None = None

    def through_proxy(venue: SimVenue) -> str:
        assert proxy is not None
        proxy.upstream_port = int(venue.ws_market_url.split(":")[2].split("/")[0])
        return f"ws://127.0.0.1:{proxy.port}/ws/market"

    async with trio.open_nursery() as outer:
        proxy = Proxy(0)
        listeners = await outer.start(partial(trio.serve_tcp, proxy.handle, 0, host="127.0.0.1"))
        proxy.port = listeners[0].socket.getsockname()[1]
        async with harness(cfg, ws_url=through_proxy) as h:
            await wait_for(lambda: all_connected(h))
            proxy.refuse = True
            proxy.cut_all()
            shards = range(h.feed.shard_count)
            await wait_for(
                lambda: all(ShardStatus.REST_FALLBACK in shard_states(h, i) for i in shards)
            )
            await trio.sleep(0.5)  # the venue keeps moving; REST polls follow it
            await assert_books_right(h)
            fresh_rest = {
                e.asset_id
                for e in h.events
                if isinstance(e, TokenFresh) and e.source is FreshSource.REST
            }
            assert fresh_rest == set(h.feed.books)
            polls = h.feed.statistics(per_token=False).rest_fallback_polls
            assert polls >= 2 * h.feed.shard_count
            h.venue.resume_pump()
            proxy.refuse = False
            await wait_for(lambda: all_connected(h))
            for i in shards:
                assert shard_states(h, i)[-1] is ShardStatus.CONNECTED
            polls = h.feed.statistics(per_token=False).rest_fallback_polls
            await assert_books_right(h)
            await trio.sleep(0.3)
            # The polling stopped (a poll may have been in flight at the reconnect).
            assert h.feed.statistics(per_token=False).rest_fallback_polls <= polls + len(shards)
        outer.cancel_scope.cancel()


# --- 6. a mismatch ------------------------------------------------------------------------------


async def test_a_mismatch_triggers_a_rest_resnapshot(kind: TransportKind) -> None:
    async with harness(feed_config(kind)) as h:
        await trio.sleep(0.2)
        await assert_books_right(h)  # pump paused from here on
        exchange = h.venue.exchange
        token = next(
            t
            for t in h.feed.books
            if len(list(exchange.book(t).bids())) >= 3
            and exchange.book(t).best_ask_price - exchange.book(t).best_bid_price
            > 2 * exchange.book(t).tick_size
        )
        book = exchange.book(token)
        tick = book.tick_size
        now = h.venue.now_ms()
        # The venue's book changes at the top without telling anyone (the frame is lost) ...
        exchange.set_level(token, Side.BUY, book.best_bid_price + tick, 10_000_000, now)
        # ... then a deep level changes and that frame is sent: it carries the venue's new top.
        deep = list(book.bids())[-1]
        await h.venue.broadcast(exchange.set_level(token, Side.BUY, deep.price, deep.size + 1, now))
        await wait_for(lambda: h.feed.statistics(per_token=False).resnapshots > 0)
        await assert_books_right(h)
        stats = h.feed.statistics(per_token=False)
        assert stats.mismatches >= 1
        assert TokenStale(token, StaleReason.MISMATCH) in h.events
        assert TokenFresh(token, FreshSource.REST) in h.events
        assert stats.connects == h.feed.shard_count  # fixed over REST, no reconnect

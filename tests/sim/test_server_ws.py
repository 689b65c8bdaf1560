"""The sim venue's market channel over a real WebSocket, seen by a plain trio-websocket client.

Real sockets, so the real clock (TRIO_IDIOMS.md section 7). Most tests pause the pump and drive
the model with ``venue.step`` so what arrives is known exactly; ``PING``/``PONG`` marks the point
where everything queued before it has been received.
"""

from __future__ import annotations

import contextlib

import httpx
import orjson
import pytest
import trio

from bot.core.book import OrderBook, apply_price_change
from bot.core.money import Side
from bot.core.wire.market import decode_market_frame
from bot.core.wire.market_events import (
    BestBidAsk,
    BookSnapshot,
    LastTradePrice,
    MarketResolved,
    PriceChange,
    TickSizeChange,
)
from bot.sim.exchange import NoSuitableMarket, OpportunityKind
from bot.sim.server import CLOSE_NOT_SUBSCRIBED
from bot.sim.venue import SimVenueError, open_sim_venue
from tests.sim.server_helpers import (
    START_MS,
    WAIT,
    decode_all,
    event_types,
    fixture_json,
    frames_until_pong,
    keys_in_fixture_order,
    market_ws,
    next_text,
    small_config,
    subscribe,
    wait_closed,
    wire_objects,
)


def _books(frames: list[str]) -> list[BookSnapshot]:
    return [event for event in decode_all(frames) if isinstance(event, BookSnapshot)]


async def test_subscribe_gets_a_batched_initial_dump_shaped_like_the_real_one() -> None:
    async with (
        open_sim_venue(small_config(), start_epoch_ms=START_MS, pump=False) as venue,
        market_ws(venue.ws_market_url) as ws,
    ):
        tokens = venue.universe.token_ids()[:6]
        await subscribe(ws, tokens)
        frames = await frames_until_pong(ws)
        assert len(frames) == 1
        assert frames[0].startswith("[")  # the initial dump comes as one JSON array
        snapshots = _books(frames)
        assert [snapshot.asset_id for snapshot in snapshots] == tokens
        sample = fixture_json("nautilus_index/ws_book_snapshot_captured.json")
        for raw, snapshot in zip(wire_objects(frames), snapshots, strict=True):
            assert keys_in_fixture_order(raw, sample)
            assert raw["event_type"] == "book"
            bids = [level.price for level in snapshot.bids]
            asks = [level.price for level in snapshot.asks]
            assert bids == sorted(bids)  # best last
            assert asks == sorted(asks, reverse=True)
            book = venue.exchange.book(snapshot.asset_id)
            assert sorted(snapshot.bids) == sorted(book.bids())
            assert sorted(snapshot.asks) == sorted(book.asks())


async def test_live_events_are_filtered_to_the_subscribed_asset() -> None:
    async with (
        open_sim_venue(small_config(), start_epoch_ms=START_MS, pump=False) as venue,
        market_ws(venue.ws_market_url) as ws,
    ):
        market = venue.universe.markets[0]
        await subscribe(ws, [market.yes_token])
        await frames_until_pong(ws)
        for _ in range(40):
            await venue.step(25)
        frames = await frames_until_pong(ws)
        events = decode_all(frames)
        assert events, "the busy pump produced nothing for this market"
        for event in events:
            if isinstance(event, PriceChange):
                assert {change.asset_id for change in event.changes} == {market.yes_token}
            else:
                assert getattr(event, "asset_id", market.yes_token) == market.yes_token
        kinds = event_types(frames)
        assert "price_change" in kinds
        assert "best_bid_ask" in kinds


async def test_custom_features_off_means_no_best_bid_ask() -> None:
    async with (
        open_sim_venue(small_config(), start_epoch_ms=START_MS, pump=False) as venue,
        market_ws(venue.ws_market_url) as ws,
    ):
        await subscribe(ws, venue.universe.token_ids(), custom=False)
        await frames_until_pong(ws)
        for _ in range(20):
            await venue.step(25)
        kinds = event_types(await frames_until_pong(ws))
        assert "price_change" in kinds
        assert not kinds & {"best_bid_ask", "market_resolved", "new_market"}


async def test_every_event_type_decodes_and_matches_the_samples() -> None:
    samples = {
        "price_change": "nautilus_crates/ws_market_price_change_msg.json",
        "best_bid_ask": "nautilus_crates/ws_market_best_bid_ask_msg.json",
        "last_trade_price": "nautilus_crates/ws_market_last_trade_msg.json",
        "tick_size_change": "nautilus_crates/ws_market_tick_size_msg.json",
        "market_resolved": "nautilus_crates/ws_market_resolved_msg.json",
        "book": "nautilus_index/ws_book_snapshot_captured.json",
    }
    async with (
        open_sim_venue(small_config(), start_epoch_ms=START_MS, pump=False) as venue,
        market_ws(venue.ws_market_url) as ws,
    ):
        await subscribe(ws, venue.universe.token_ids())
        frames = await frames_until_pong(ws)
        for market in venue.universe.markets[:2]:
            for tick in (1_000, 10_000):
                await venue.broadcast(
                    venue.exchange.set_tick_size(market.condition_id, tick, venue.now_ms())
                )
        for _ in range(40):
            await venue.step(25)
        market = venue.universe.markets[1]
        await venue.resolve(market.condition_id, market.no_token)
        frames += await frames_until_pong(ws)
        events = decode_all(frames)
        kinds = {type(event) for event in events}
        assert {
            BookSnapshot,
            PriceChange,
            BestBidAsk,
            LastTradePrice,
            TickSizeChange,
            MarketResolved,
        } <= kinds
        for raw in wire_objects(frames):
            sample = fixture_json(samples[raw["event_type"]])
            assert set(sample) <= set(raw) | {"last_trade_price"}, raw["event_type"]


async def test_ping_is_answered_before_and_after_subscribing() -> None:
    async with (
        open_sim_venue(small_config(), start_epoch_ms=START_MS, pump=False) as venue,
        market_ws(venue.ws_market_url) as ws,
    ):
        assert await frames_until_pong(ws) == []
        await subscribe(ws, venue.universe.token_ids()[:1])
        assert len(await frames_until_pong(ws)) == 1
        assert venue.statistics().server.pongs_sent == 2


async def test_dynamic_subscribe_and_unsubscribe() -> None:
    async with (
        open_sim_venue(small_config(), start_epoch_ms=START_MS, pump=False) as venue,
        market_ws(venue.ws_market_url) as ws,
    ):
        first, second = venue.universe.markets[:2]
        await subscribe(ws, [first.yes_token])
        await frames_until_pong(ws)
        await ws.send_message(
            orjson.dumps({"operation": "subscribe", "assets_ids": [second.yes_token]}).decode()
        )
        assert [s.asset_id for s in _books(await frames_until_pong(ws))] == [second.yes_token]
        await ws.send_message(
            orjson.dumps({"operation": "unsubscribe", "assets_ids": [first.yes_token]}).decode()
        )
        await frames_until_pong(ws)
        for _ in range(40):
            await venue.step(25)
        assets: set[str] = set()
        for event in decode_all(await frames_until_pong(ws)):
            if isinstance(event, PriceChange):
                assets.update(change.asset_id for change in event.changes)
            elif isinstance(event, BookSnapshot | BestBidAsk | LastTradePrice | TickSizeChange):
                assets.add(event.asset_id)
        assert assets == {second.yes_token}


async def test_duplicate_unknown_and_over_limit_assets_are_ignored() -> None:
    async with (
        open_sim_venue(
            small_config(max_assets_per_connection=3), start_epoch_ms=START_MS, pump=False
        ) as venue,
        market_ws(venue.ws_market_url) as ws,
    ):
        tokens = venue.universe.token_ids()
        await subscribe(ws, [tokens[0], "12345", tokens[1]])
        assert [s.asset_id for s in _books(await frames_until_pong(ws))] == tokens[:2]
        await ws.send_message(
            orjson.dumps({"operation": "subscribe", "assets_ids": tokens[:5]}).decode()
        )
        # tokens[0:2] are duplicates (no second snapshot), tokens[2] fills the limit of 3
        assert [s.asset_id for s in _books(await frames_until_pong(ws))] == [tokens[2]]
        await ws.send_message("something the venue does not understand")
        await ws.send_message(orjson.dumps({"hello": "venue"}).decode())
        await frames_until_pong(ws)
        stats = venue.statistics().server
        assert stats.duplicate_assets == 2
        assert stats.unknown_assets == 1
        assert stats.assets_over_limit == 2
        assert stats.ignored_messages == 2
        assert stats.subscribed_assets == 3


async def test_many_small_subscribe_frames_add_up_and_initial_dump_can_be_off() -> None:
    async with (
        open_sim_venue(small_config(), start_epoch_ms=START_MS, pump=False) as venue,
        market_ws(venue.ws_market_url) as ws,
    ):
        tokens = venue.universe.token_ids()
        await subscribe(ws, tokens[:4], initial_dump=False)
        await subscribe(ws, tokens[4:8])
        await subscribe(ws, tokens[8:10], initial_dump=False)
        snapshots = _books(await frames_until_pong(ws))
        assert [s.asset_id for s in snapshots] == tokens[4:8]
        assert venue.statistics().server.subscribed_assets == 10


async def test_events_of_one_tick_arrive_as_one_array_frame() -> None:
    async with (
        open_sim_venue(small_config(), start_epoch_ms=START_MS, pump=False) as venue,
        market_ws(venue.ws_market_url) as ws,
    ):
        await subscribe(ws, venue.universe.token_ids())
        await frames_until_pong(ws)
        sent = await venue.step(30)
        frames = await frames_until_pong(ws)
        assert len(frames) == 1
        assert frames[0].startswith("[")
        assert wire_objects(frames) == sent


async def test_socket_that_never_subscribes_is_closed() -> None:
    config = small_config(subscribe_timeout_s=0.2)
    async with (
        open_sim_venue(config, start_epoch_ms=START_MS, pump=False) as venue,
        market_ws(venue.ws_market_url) as ws,
    ):
        assert (await wait_closed(ws)).code == CLOSE_NOT_SUBSCRIBED
        assert venue.statistics().server.subscribe_timeouts == 1


async def test_market_resolved_reaches_only_custom_subscribers_of_that_market() -> None:
    async with (
        open_sim_venue(small_config(), start_epoch_ms=START_MS, pump=False) as venue,
        market_ws(venue.ws_market_url) as custom,
        market_ws(venue.ws_market_url) as plain,
        market_ws(venue.ws_market_url) as elsewhere,
    ):
        first, second = venue.universe.markets[:2]
        await subscribe(custom, [first.no_token])
        await subscribe(plain, [first.no_token], custom=False)
        await subscribe(elsewhere, [second.yes_token])
        for ws in (custom, plain, elsewhere):
            await frames_until_pong(ws)
        await venue.resolve(first.condition_id, first.yes_token)
        resolved = [
            e for e in decode_all(await frames_until_pong(custom)) if isinstance(e, MarketResolved)
        ]
        assert [e.winning_asset_id for e in resolved] == [first.yes_token]
        assert "market_resolved" not in event_types(await frames_until_pong(plain))
        assert "market_resolved" not in event_types(await frames_until_pong(elsewhere))


async def test_new_market_goes_to_every_custom_subscriber() -> None:
    async with (
        open_sim_venue(small_config(), start_epoch_ms=START_MS, pump=False) as venue,
        market_ws(venue.ws_market_url) as custom,
        market_ws(venue.ws_market_url) as plain,
    ):
        await subscribe(custom, [], custom=True)  # empty assets: new_market for everything
        await subscribe(plain, venue.universe.token_ids()[:1], custom=False)
        await frames_until_pong(custom)
        await frames_until_pong(plain)
        sample = fixture_json("nautilus_crates/ws_market_new_market_msg.json")
        await venue.broadcast([sample])
        assert event_types(await frames_until_pong(custom)) == {"new_market"}
        assert event_types(await frames_until_pong(plain)) == set()


async def test_slow_consumer_is_dropped_without_blocking_the_venue() -> None:
    config = small_config(outbox_frames=4)
    async with (
        open_sim_venue(config, start_epoch_ms=START_MS, pump=False) as venue,
        market_ws(venue.ws_market_url, message_queue_size=1) as slow,
        market_ws(venue.ws_market_url) as healthy,
    ):
        token = venue.universe.token_ids()[0]
        await subscribe(slow, [token], custom=False)
        await subscribe(healthy, [token], custom=False)
        await frames_until_pong(slow)
        await frames_until_pong(healthy)
        # ~40 MB of frames that the slow client never reads: the socket buffers fill, then its
        # outbox, and the venue drops it. Each broadcast returns at once all the same.
        padding = "x" * 1_000_000
        big = {"event_type": "sim_padding", "asset_id": token, "padding": padding}
        with trio.fail_after(WAIT):
            while venue.statistics().server.slow_consumers_dropped == 0:
                await venue.broadcast([big])
                await healthy.get_message()
        assert venue.app.hub.statistics().slow_consumers_dropped == 1
        # the healthy client is unaffected and still served
        assert await frames_until_pong(healthy) is not None


async def test_client_books_equal_the_venue_books_after_a_busy_session() -> None:
    """Apply every received frame to fresh OrderBooks: they must end equal to the true books."""
    config = small_config(events_per_second=3_000.0, opportunity_rate=5.0)
    async with (
        open_sim_venue(config, start_epoch_ms=START_MS) as venue,
        market_ws(venue.ws_market_url) as ws,
    ):
        tokens = venue.universe.token_ids()
        books = {token: OrderBook(token) for token in tokens}
        mismatches = 0

        def apply(frame: str) -> None:
            nonlocal mismatches
            for event in decode_market_frame(frame):
                if isinstance(event, BookSnapshot):
                    books[event.asset_id].apply_snapshot(event)
                elif isinstance(event, PriceChange):
                    mismatches += len(apply_price_change(books, event))
                elif isinstance(event, TickSizeChange):
                    books[event.asset_id].apply_tick_size_change(event)

        for start in range(0, len(tokens), 10):  # several small subscribe frames
            await subscribe(ws, tokens[start : start + 10])
        with trio.move_on_after(0.4):
            while True:
                apply(await next_text(ws))
        for kind in OpportunityKind:
            # The Poisson injections may already hold every suitable market.
            with contextlib.suppress(NoSuitableMarket):
                await venue.inject(kind)
        with trio.move_on_after(0.3):
            while True:
                apply(await next_text(ws))
        market = venue.universe.markets[0]
        await venue.resolve(market.condition_id, market.yes_token)
        venue.pause_pump()
        for frame in await frames_until_pong(ws):
            apply(frame)
        stats = venue.statistics()
        assert stats.steps > 300
        assert stats.exchange.trades > 0
        assert mismatches == 0
        for token in tokens:
            truth = venue.exchange.book(token)
            assert list(books[token].bids()) == list(truth.bids()), token
            assert list(books[token].asks()) == list(truth.asks()), token
            assert books[token].tick_size == truth.tick_size


async def test_same_seed_same_frames_through_the_server() -> None:
    async def session(seed: int) -> list[str]:
        config = small_config(seed=seed)
        async with (
            open_sim_venue(config, start_epoch_ms=START_MS, pump=False) as venue,
            market_ws(venue.ws_market_url) as ws,
        ):
            await subscribe(ws, venue.universe.token_ids())
            await frames_until_pong(ws)  # snapshots carry the live clock: not compared
            for tick in range(20):
                await venue.step(10, now_ms=START_MS + tick)
            return await frames_until_pong(ws)

    first = await session(7)
    assert first
    assert await session(7) == first
    assert await session(8) != first


async def test_caller_errors_pass_through_unchanged() -> None:
    with pytest.raises(KeyError):
        async with open_sim_venue(small_config(), start_epoch_ms=START_MS):
            raise KeyError("the caller's own error, not an exception group")


async def test_a_crash_in_the_pump_is_one_venue_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: object) -> None:
        raise RuntimeError("a bug in the model")

    async def serve() -> None:
        async with open_sim_venue(small_config(), start_epoch_ms=START_MS) as venue:
            monkeypatch.setattr(type(venue.exchange), "step", broken)
            await trio.sleep(WAIT)

    with pytest.raises(SimVenueError, match="a bug in the model") as info:
        await serve()
    assert isinstance(info.value.__cause__, BaseExceptionGroup)


async def test_a_crash_serving_a_request_is_one_venue_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*_args: object) -> None:
        raise RuntimeError("a bug in a handler")

    async def serve() -> None:
        async with open_sim_venue(small_config(), start_epoch_ms=START_MS) as venue:
            monkeypatch.setattr(type(venue.app), "route", broken)
            async with httpx.AsyncClient(timeout=WAIT) as client:
                with contextlib.suppress(httpx.HTTPError):
                    await client.get(f"{venue.clob_url}/ok")
                await trio.sleep(WAIT)

    with pytest.raises(SimVenueError, match="a bug in a handler") as info:
        await serve()
    assert isinstance(info.value.__cause__, RuntimeError)


async def test_side_is_a_wire_string() -> None:
    # last_trade_price carries the taker side as "BUY"/"SELL"
    async with (
        open_sim_venue(small_config(), start_epoch_ms=START_MS, pump=False) as venue,
        market_ws(venue.ws_market_url) as ws,
    ):
        token = venue.universe.token_ids()[0]
        await subscribe(ws, [token])
        await frames_until_pong(ws)
        await venue.broadcast(venue.exchange.trade(token, Side.BUY, 5_000_000, venue.now_ms()))
        trades = [
            raw
            for raw in wire_objects(await frames_until_pong(ws))
            if raw["event_type"] == "last_trade_price"
        ]
        assert trades
        assert {raw["side"] for raw in trades} == {"BUY"}

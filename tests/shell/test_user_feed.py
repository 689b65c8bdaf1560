"""The user channel against the embedded sim venue: events, reconnect + reconcile, no secrets.

Real sockets, so the real clock (TRIO_IDIOMS.md section 7); every wait is bounded.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

import trio

from bot.config import FeedConfig, Secret
from bot.core.auth import ApiCreds
from bot.core.money import ONE, Side
from bot.core.trading import Liquidity, OrderStatus, OrderType, OrderUpdate
from bot.core.user_events import FillConfirmed, UserFill
from bot.shell.logsink import open_log_channel
from bot.shell.transport import ConnectionLost
from bot.shell.user_feed import UserFeed, UserFeedGaveUp
from tests.sim.server_helpers import WAIT
from tests.sim.trading_helpers import asks, binary, trading_venue

if TYPE_CHECKING:
    from collections.abc import Callable

    from bot.shell.logsink import LogChannel
    from bot.shell.transport import Connection
    from bot.sim.venue import SimVenue
    from tests.sim.trading_helpers import Trader

CFG = FeedConfig(
    ping_interval_s=0.2, silence_timeout_s=1.0, reconnect_base_s=0.05, reconnect_max_s=0.2
)


class Recorder:
    """Collects the feed's events and wakes waiters when one arrives."""

    def __init__(self) -> None:
        self.events: list[object] = []
        self._changed = trio.Event()

    def __call__(self, event: object) -> None:
        self.events.append(event)
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for(self, predicate: Callable[[list[object]], bool]) -> None:
        with trio.fail_after(WAIT):
            while not predicate(self.events):
                await self._changed.wait()


def make_feed(
    venue: SimVenue,
    trader: Trader,
    markets: list[str],
    recorder: Recorder,
    reconcile: Any,
    log: LogChannel | None = None,
) -> UserFeed:
    return UserFeed(
        venue.ws_user_url,
        trader.creds,
        markets,
        CFG,
        on_event=recorder,
        reconcile=reconcile,
        rng=random.Random(3),
        log=log,
    )


async def test_marketable_order_yields_order_update_and_fill_then_confirmation() -> None:
    async with trading_venue() as (venue, trader):
        market = binary(venue)
        token = market.yes_token
        price, _ = asks(venue, token)[0]
        recorder = Recorder()
        reconciles: list[float] = []

        async def reconcile() -> None:
            reconciles.append(trio.current_time())

        feed = make_feed(venue, trader, [market.condition_id], recorder, reconcile)
        async with trio.open_nursery() as nursery:
            with trio.fail_after(WAIT):
                await nursery.start(feed.run)
            assert feed.ready
            assert len(reconciles) == 1
            order_id, body = trader.order_body(
                market, token, Side.BUY, price, 2 * ONE, OrderType.FOK
            )
            response = await trader.place(body)
            assert response.json()["status"] == "matched", response.text
            await recorder.wait_for(lambda ev: any(isinstance(e, FillConfirmed) for e in ev))
            updates = [e for e in recorder.events if isinstance(e, OrderUpdate)]
            assert [(u.order_id, u.status, u.filled, u.size) for u in updates] == [
                (order_id, OrderStatus.MATCHED, 2 * ONE, 2 * ONE)
            ]
            [fill_event] = [e for e in recorder.events if isinstance(e, UserFill)]
            fill = fill_event.fill
            assert fill_event.provisional  # MATCHED first...
            assert (fill.order_id, fill.token_id, fill.side, fill.price, fill.size) == (
                order_id,
                token,
                Side.BUY,
                price,
                2 * ONE,
            )
            assert fill.liquidity is Liquidity.TAKER
            [confirmed] = [e for e in recorder.events if isinstance(e, FillConfirmed)]
            assert confirmed.fills == (fill,)  # ...then CONFIRMED, the same fill, once
            stats = feed.statistics()
            assert (stats.malformed, stats.connects, stats.reconnects) == (0, 1, 0)
            nursery.cancel_scope.cancel()


async def test_dropped_connection_reconnects_and_reconciles_again_without_leaking_secrets() -> None:
    async with trading_venue() as (venue, trader):
        market = binary(venue)
        recorder = Recorder()
        reconciled = trio.Event()
        count = 0

        async def reconcile() -> None:
            nonlocal count
            count += 1
            if count == 2:
                reconciled.set()

        channel, receiver = open_log_channel(10_000)
        feed = make_feed(venue, trader, [market.condition_id], recorder, reconcile, channel)
        async with trio.open_nursery() as nursery:
            with trio.fail_after(WAIT):
                await nursery.start(feed.run)
            assert venue.app.user_connection_count() == 1
            assert venue.app.drop_user_connections("sim: dropped by the test") == 1
            with trio.fail_after(WAIT):
                await reconciled.wait()
            assert feed.ready
            stats = feed.statistics()
            assert (stats.connects, stats.reconnects, stats.reconciles) == (2, 1, 2)
            assert "ConnectionLost" in stats.last_error
            # Still delivering after the reconnect.
            token = market.yes_token
            price, _ = asks(venue, token)[0]
            order_id, body = trader.order_body(market, token, Side.BUY, price, ONE, OrderType.FOK)
            assert (await trader.place(body)).json()["status"] == "matched"
            await recorder.wait_for(
                lambda ev: any(isinstance(e, UserFill) and e.fill.order_id == order_id for e in ev)
            )
            nursery.cancel_scope.cancel()
        records = receiver.receive_batch_nowait(100_000)
        kinds = {r.get("kind") for r in records}
        assert "user_feed.state" in kinds
        text = repr(records) + repr(feed.statistics())
        for secret in (trader.creds.api_key, trader.creds.secret, trader.creds.passphrase):
            assert secret.reveal() not in text


class _JunkThenSilence:
    """A fake transport: one malformed frame, then a PONG-less silence (a dead socket)."""

    name = "fake"

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.connects = 0

    def connect(self, url: str, *, receive_buffer: int, max_message: int) -> Any:
        outer = self

        class _Conn:
            def __init__(self) -> None:
                self.frames = ['{"event_type": "order", "id": 5}', "not json"]

            async def send(self, text: str) -> None:
                outer.sent.append(text)

            async def receive(self) -> str:
                return (await self.receive_many())[0]

            async def receive_many(self) -> list[str]:
                if self.frames:
                    frames, self.frames = self.frames, []
                    return frames
                await trio.sleep_forever()
                raise AssertionError("unreachable")

            async def aclose(self) -> None:
                return None

        class _Ctx:
            async def __aenter__(self) -> Connection:
                outer.connects += 1
                if outer.connects > 2:
                    raise ConnectionLost("refused")
                return _Conn()

            async def __aexit__(self, *exc: object) -> None:
                return None

        return _Ctx()


async def test_malformed_frames_are_counted_and_silence_reconnects_until_the_budget_ends(
    autojump_clock: trio.testing.MockClock,
) -> None:
    transport = _JunkThenSilence()
    cfg = FeedConfig(
        ping_interval_s=1.0,
        silence_timeout_s=5.0,
        reconnect_base_s=0.5,
        reconnect_max_s=1.0,
        restart_budget=3,
        restart_window_s=100.0,
    )
    channel, receiver = open_log_channel(1000)
    creds = ApiCreds(Secret("key-uuid"), Secret("c2VjcmV0LXNlY3JldA=="), Secret("pass-phrase"))
    events: list[object] = []
    feed = UserFeed(
        "ws://venue/ws/user",
        creds,
        ["0xcond"],
        cfg,
        on_event=events.append,
        reconcile=None,
        rng=random.Random(1),
        log=channel,
        transport=transport,
    )
    start = trio.current_time()
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(feed.run)
            assert feed.ready
    except* UserFeedGaveUp as group:
        [gave_up] = group.exceptions
        assert "gave up" in str(gave_up)
    else:
        raise AssertionError("expected UserFeedGaveUp")
    stats = feed.statistics()
    assert events == []
    assert stats.malformed == 4  # two bad frames per session, two sessions
    assert stats.connects == 2
    assert not stats.ready
    # Each session ended by the watchdog after silence_timeout_s, not earlier.
    assert trio.current_time() - start >= 2 * cfg.silence_timeout_s
    first = transport.sent[0]
    assert '"type":"user"' in first
    assert '"markets":["0xcond"]' in first
    assert transport.sent[1] == "PING"
    records = receiver.receive_batch_nowait(1000)
    malformed = [r for r in records if r.get("kind") == "user_feed.malformed"]
    assert len(malformed) == 4
    assert any("not json" in str(r["excerpt"]) for r in malformed)
    text = repr(records)
    assert "UserFeedStale" in text
    for secret in ("c2VjcmV0LXNlY3JldA==", "pass-phrase"):
        assert secret not in text

"""Live execution end to end against the embedded sim venue: real signatures, real HTTP, the user
channel, reconciliation, the dead-man heartbeat and the shutdown cancel-all.

The first tests drive the engine with the live venue directly (``Rig``): the engine decides,
``LiveVenue`` signs and posts over loopback, the sim venue matches, and what comes back through
the user channel is pumped into ``Engine.absorb`` as the execution task would. The last ones
run the whole bot (``run_bot(live=True)``) and stop it as SIGINT would.

What is checked is checked at the venue (``venue.app.accounts``): orders it holds, orders still
resting. Real sockets, so the real clock (TRIO_IDIOMS.md section 7); every wait is bounded.
"""

from __future__ import annotations

import random
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

import attrs
import httpx
import pytest
import trio

from bot.app import VenueUrls, run_bot
from bot.config import Config, Secret, Secrets
from bot.core.book import BookView
from bot.core.engine import Engine
from bot.core.money import ONE, Side
from bot.core.portfolio import Portfolio
from bot.core.risk import RiskGate, RiskLimits
from bot.core.trading import Basket, CancelAll, Fill, OrderStatus, OrderType, OrderUpdate, Place
from bot.core.wire.market_events import Level
from bot.report import build_report, render_table
from bot.runtime_cli import demo_discovery
from bot.shell.discovery import discover
from bot.shell.journal import open_journal
from bot.shell.live_venue import ORDER_SENT, LiveTradingRefused, LiveVenue
from bot.shell.snapshot import take_snapshot
from bot.shell.user_feed import UserFeed
from bot.sim.venue import open_sim_venue
from tests.bot_helpers import captured_logs, enable_only
from tests.sim.server_helpers import START_MS, WAIT, sim_rest, sim_wallet, small_config

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    from bot.config import DiscoveryConfig
    from bot.core.trading import ExecEvent, Intent
    from bot.core.universe import Universe
    from bot.shell.clob_trading import TradingClient
    from bot.shell.rest import RestClient
    from bot.sim.universe import SimMarket
    from bot.sim.venue import SimVenue

KEY: Final = Secret("0x" + "7a" * 32)
SHARES: Final = 10 * ONE


@attrs.define
class Rig:
    venue: SimVenue
    engine: Engine
    live: LiveVenue
    feed: UserFeed
    http: httpx.AsyncClient
    events: list[ExecEvent] = attrs.field(factory=list)
    logs: list[str] = attrs.field(factory=list)
    api_key: str = ""
    sent: list[tuple[str, str]] = attrs.field(factory=list)
    """(method, path) of every request our client sent."""

    def submit(self, *intents: Intent) -> None:
        out = self.engine.submit("s", list(intents), trio.current_time(), 0)
        assert out.rejections == [], out.rejections
        self.events.extend(out.events)

    async def wait_for(self, what: Callable[[], bool], why: str) -> None:
        await poll(what, why, f"events: {self.events}")

    def updates(self, status: OrderStatus) -> list[OrderUpdate]:
        return [e for e in self.events if isinstance(e, OrderUpdate) and e.status is status]

    def fills(self) -> list[Fill]:
        return [e for e in self.events if isinstance(e, Fill)]

    def resting_at_venue(self) -> list[str]:
        return [o.order_id for o in self.venue.app.accounts.open_orders(self.api_key)]


def relaxed(cfg: Config) -> DiscoveryConfig:
    """The demo's discovery (every sim market), capped at six markets."""
    return attrs.evolve(demo_discovery(cfg.discovery), max_markets=6)


async def universe_of(rest: RestClient) -> Universe:
    """The engine's universe, discovered over the sim's REST API as the bot does it."""
    return await discover(rest, relaxed(Config()), now=datetime.fromtimestamp(START_MS / 1000, UTC))


async def poll(what: Callable[[], bool], why: str, context: str = "") -> None:
    """Wait (bounded) for a condition on state another process-like party changes (the venue
    over a real socket): there is no event to wait on, so look every 10 ms."""
    deadline = trio.current_time() + WAIT
    while not what():
        assert trio.current_time() < deadline, f"timed out waiting for {why}; {context}"
        await trio.sleep(0.01)


@asynccontextmanager
async def rig(
    *,
    read_timeout: float = WAIT,
    heartbeat_s: float = 1.0,
    user_channel: bool = True,
    reconcile_s: float = 60.0,
    **sim: object,
) -> AsyncIterator[Rig]:
    sent: list[tuple[str, str]] = []

    async def note(request: httpx.Request) -> None:
        sent.append((request.method, request.url.path))

    with captured_logs() as logs:
        async with (
            open_sim_venue(small_config(**sim), start_epoch_ms=START_MS, pump=False) as venue,
            httpx.AsyncClient(
                timeout=httpx.Timeout(WAIT, read=read_timeout), event_hooks={"request": [note]}
            ) as http,
            trio.open_nursery() as nursery,
        ):
            venue.faults.retry_after_s = 0
            rest = sim_rest(http, venue, seed=3, max_attempts=4)
            wallet = await sim_wallet(rest, KEY)
            creds = wallet.creds
            universe = await universe_of(rest)

            async def record(item: object) -> None:
                pass

            live = LiveVenue(
                wallet.client,
                universe,
                creds.api_key.reveal(),
                record=record,
                heartbeat_s=heartbeat_s,
                reconcile_s=reconcile_s,
                fill_wait_s=1.0,
                grace_s=WAIT,
            )
            cfg = Config()
            feed = UserFeed(
                venue.ws_user_url,
                creds,
                [],
                attrs.evolve(cfg.feed, ping_interval_s=0.2, silence_timeout_s=2.0),
                on_event=live.on_user_event,
                reconcile=live.reconcile,
                rng=random.Random(4),
                mapper=live.mapper,
            )

            def views(token: str) -> BookView:
                """The venue's true book (the pump is off: it moves only by our orders)."""
                book = venue.exchange.book(token)
                bids = tuple(Level(lv.price, lv.size) for lv in book.bids())
                asks = tuple(Level(lv.price, lv.size) for lv in book.asks())
                return BookView(
                    asset_id=token,
                    best_bid=bids[0] if bids else None,
                    best_ask=asks[0] if asks else None,
                    bids=bids,
                    asks=asks,
                    tick_size=universe.market_for_token(token).tick_size,
                    last_update_ms=1,
                    stale=False,
                )

            engine = Engine(
                universe,
                Portfolio(),
                RiskGate(RiskLimits.from_config(cfg.risk)),
                live,
                views,
                id_prefix="live-t-o",
            )
            r = Rig(
                venue,
                engine,
                live,
                feed,
                http,
                logs=logs,
                api_key=creds.api_key.reveal(),
                sent=sent,
            )

            async def pump() -> None:
                async for item in live.outbox:
                    if isinstance(item, Fill | OrderUpdate):
                        r.events.extend(engine.absorb([item], trio.current_time()).events)

            nursery.start_soon(pump)
            await nursery.start(live.run)
            if user_channel:
                await nursery.start(feed.run)
            with trio.fail_after(6 * WAIT):
                yield r
            nursery.cancel_scope.cancel()
        secrets = (KEY.reveal(), KEY.reveal()[2:], creds.secret.reveal(), creds.passphrase.reveal())
        joined = "\n".join(logs)
        assert logs
        for secret in secrets:
            assert secret not in joined


def market_of(r: Rig) -> SimMarket:
    venue = r.venue
    known = {m.condition_id for m in r.engine.universe.markets}
    for market in venue.universe.markets:
        if market.neg_risk or market.condition_id not in known:
            continue
        asks = list(venue.exchange.book(market.yes_token).asks())
        if asks and 200_000 <= asks[0].price <= 800_000 and asks[0].size >= 2 * SHARES:
            bids = list(venue.exchange.book(market.yes_token).bids())
            if bids and bids[0].price > 20_000:
                return market
    raise AssertionError("no suitable market in the sim universe")


def best_ask(venue: SimVenue, token: str) -> int:
    return next(iter(venue.exchange.book(token).asks())).price


async def test_a_resting_order_is_placed_then_cancelled_at_the_venue() -> None:
    async with rig() as r:
        market = market_of(r)
        r.submit(Place(market.yes_token, Side.BUY, 20_000, SHARES))
        await r.wait_for(lambda: r.updates(OrderStatus.LIVE) != [], "the order to rest")
        assert len(r.resting_at_venue()) == 1
        (order,) = r.engine.open_orders("s").values()
        from bot.core.trading import Cancel

        r.submit(Cancel(order.id))
        await r.wait_for(lambda: r.updates(OrderStatus.CANCELED) != [], "the cancel")
        assert r.resting_at_venue() == []
        assert list(r.engine.all_open_orders()) == []
        assert len(r.venue.app.accounts.orders) == 1  # one order ever reached the venue


async def test_positions_are_checked_against_the_venue_balances() -> None:
    async with rig() as r:
        market = market_of(r)
        token = market.yes_token
        r.submit(Place(token, Side.BUY, best_ask(r.venue, token), SHARES, OrderType.FOK))
        await r.wait_for(lambda: r.updates(OrderStatus.MATCHED) != [], "the buy")
        assert await r.live.check_positions({token: SHARES}) == []
        (line,) = await r.live.check_positions({token: 2 * SHARES})
        assert "the journal holds 20, the venue 10" in line


async def test_a_resolved_market_cancels_its_resting_orders_at_the_venue() -> None:
    async with rig() as r:
        market = market_of(r)
        r.submit(Place(market.yes_token, Side.BUY, 20_000, SHARES))
        await r.wait_for(lambda: r.updates(OrderStatus.LIVE) != [], "the order to rest")
        await r.venue.resolve(market.condition_id, market.no_token)
        await r.wait_for(lambda: r.updates(OrderStatus.CANCELED) != [], "the venue's cancel")
        (ended,) = r.updates(OrderStatus.CANCELED)
        assert ended.reason == "market_resolved"
        assert r.resting_at_venue() == []
        assert list(r.engine.all_open_orders()) == []


async def test_cancelling_everything_is_one_request() -> None:
    async with rig() as r:
        market = market_of(r)
        for price in (20_000, 30_000, 40_000):
            r.submit(Place(market.yes_token, Side.BUY, price, SHARES))
        await r.wait_for(lambda: len(r.updates(OrderStatus.LIVE)) == 3, "three resting orders")
        r.submit(CancelAll())  # what the kill switch and pulling all quotes do
        await r.wait_for(lambda: len(r.updates(OrderStatus.CANCELED)) == 3, "three cancels")
        assert r.resting_at_venue() == []
        assert r.sent.count(("DELETE", "/orders")) == 1
        assert ("DELETE", "/order") not in r.sent


async def test_a_marketable_order_fills_through_the_user_channel_before_it_ends() -> None:
    async with rig() as r:
        market = market_of(r)
        price = best_ask(r.venue, market.yes_token)
        r.submit(Place(market.yes_token, Side.BUY, price, SHARES, OrderType.FOK))
        await r.wait_for(lambda: r.updates(OrderStatus.MATCHED) != [], "the fill")
        fills = r.fills()
        assert sum(f.size for f in fills) == SHARES
        end = next(i for i, e in enumerate(r.events) if isinstance(e, OrderUpdate))
        assert all(r.events.index(f) < end for f in fills)  # fills first, as on paper
        assert r.engine.ledger.position(market.yes_token) == SHARES
        assert fills[0].fee > 0
        assert fills[0].order_id.startswith("live-t-o")
        await r.wait_for(lambda: r.live.stats.confirmed_fills >= 1, "the trade to confirm")


async def test_a_basket_goes_out_leg_by_leg_and_completes_sets() -> None:
    async with rig() as r:
        market = market_of(r)
        legs = tuple(
            Place(t, Side.BUY, best_ask(r.venue, t), SHARES, OrderType.FOK)
            for t in (market.yes_token, market.no_token)
        )
        r.submit(Basket(market.condition_id, legs, edge=0))
        await r.wait_for(lambda: len(r.updates(OrderStatus.MATCHED)) == 2, "both legs")
        assert r.engine.ledger.position(market.yes_token) == SHARES
        assert r.engine.ledger.position(market.no_token) == SHARES


async def test_a_timeout_after_a_fill_is_reconciled_without_a_second_order() -> None:
    async with rig(read_timeout=0.5) as r:
        r.venue.faults.timeout_after_fill_rate = 1.0
        market = market_of(r)
        price = best_ask(r.venue, market.yes_token)
        r.submit(Place(market.yes_token, Side.BUY, price, SHARES, OrderType.FOK))
        # The user channel may tell of the match before the post times out; either way the
        # post's unknown outcome is reconciled by the order's id, not by sending it again.
        await r.wait_for(lambda: r.live.stats.reconciled_orders == 1, "the reconciliation")
        assert len(r.updates(OrderStatus.MATCHED)) == 1
        assert r.live.stats.outcome_unknown == 1
        assert r.live.stats.reconciled_orders == 1
        assert len(r.venue.app.accounts.orders) == 1  # never sent twice
        assert sum(f.size for f in r.fills()) == SHARES  # one fill, not one per report


async def test_a_heartbeat_lapse_cancels_resting_orders_and_the_bot_hears_of_it() -> None:
    # One beat at start, the next only after 60 s: the venue's 0.5 s timeout lapses first.
    async with rig(heartbeat_s=60.0, heartbeat_timeout_s=0.5) as r:
        market = market_of(r)
        r.submit(Place(market.yes_token, Side.BUY, 20_000, SHARES))
        await r.wait_for(lambda: r.updates(OrderStatus.CANCELED) != [], "the lapse cancel")
        assert r.resting_at_venue() == []
        assert list(r.engine.all_open_orders()) == []


async def test_orders_left_by_a_dead_run_are_cancelled_at_start_and_others_left_alone() -> None:
    # No user channel: the test decides when the first reconciliation (the start's) happens.
    async with rig(user_channel=False) as r:
        market = market_of(r)

        async def rest_one() -> str:
            # Another process with the same key (signed the same way, not through this run).
            placed = await r.live._client.place(
                market.yes_token, Side.BUY, 20_000, SHARES, tick=10_000, neg_risk=False
            )
            return placed.order_id

        left_behind = await rest_one()
        assert r.resting_at_venue() == [left_behind]
        await r.live.reconcile()  # at start: a dead run's order goes
        assert r.resting_at_venue() == []
        assert r.live.stats.orphans_cancelled == 1
        other = await rest_one()  # after start: another program's, not ours to cancel
        await r.live.reconcile()
        await r.live.reconcile()
        assert r.resting_at_venue() == [other]
        assert r.live.stats.orphans_cancelled == 1
        assert sum("did not place (left alone)" in line for line in r.logs) == 1


async def test_periodic_reconciliation_ends_an_order_the_channel_never_reported() -> None:
    async with rig(user_channel=False, reconcile_s=0.2) as r:
        market = market_of(r)
        r.submit(Place(market.yes_token, Side.BUY, 20_000, SHARES))
        await r.wait_for(lambda: r.updates(OrderStatus.LIVE) != [], "the order to rest")
        (order,) = r.engine.open_orders("s").values()
        # Cancelled behind our back (the website, another program): no channel tells us.
        venue_id = r.live._orders[order.id].venue_id
        await r.live._client.cancel(venue_id)
        await r.wait_for(lambda: r.updates(OrderStatus.CANCELED) != [], "the periodic pass")
        assert list(r.engine.all_open_orders()) == []


async def test_a_sell_of_shares_just_bought_refreshes_their_balance_first() -> None:
    async with rig() as r:
        market = market_of(r)
        token = market.yes_token
        r.submit(Place(token, Side.BUY, best_ask(r.venue, token), SHARES, OrderType.FOK))
        await r.wait_for(lambda: r.updates(OrderStatus.MATCHED) != [], "the buy")
        assert ("GET", "/balance-allowance/update") not in r.sent  # buys need no refresh
        bid = next(iter(r.venue.exchange.book(token).bids())).price
        r.submit(Place(token, Side.SELL, bid, SHARES, OrderType.FOK))
        await r.wait_for(lambda: len(r.updates(OrderStatus.MATCHED)) == 2, "the sell")
        refresh = r.sent.index(("GET", "/balance-allowance/update"))
        assert refresh < len(r.sent) - 1 - r.sent[::-1].index(("POST", "/order"))
        assert r.engine.ledger.position(token) == 0


async def test_reconciliation_recovers_a_fill_the_user_channel_missed() -> None:
    # No user channel at all here: only reconciliation can learn of the fill.
    async with rig(user_channel=False) as r:
        market = market_of(r)
        token = market.yes_token
        tick = r.engine.universe.market_for_token(token).tick_size
        ask = best_ask(r.venue, token)
        price = next(iter(r.venue.exchange.book(token).bids())).price + tick
        assert price < ask
        r.submit(Place(token, Side.BUY, price, SHARES))  # improves the bid: rests
        await r.wait_for(lambda: r.updates(OrderStatus.LIVE) != [], "the order to rest")
        other = await counterparty(r)
        await other.place(
            token, Side.BUY, ask, SHARES, tick=tick, neg_risk=False, order_type=OrderType.FOK
        )
        await other.place(
            token, Side.SELL, price, SHARES, tick=tick, neg_risk=False, order_type=OrderType.FOK
        )
        assert r.fills() == []  # nobody told us
        await r.live.reconcile()
        await r.wait_for(lambda: r.updates(OrderStatus.MATCHED) != [], "the reconciled end")
        (fill,) = r.fills()
        assert (fill.side, fill.size, fill.price, fill.strategy) == (Side.BUY, SHARES, price, "s")
        assert r.engine.ledger.position(token) == SHARES
        await r.live.reconcile()  # a second pass adds nothing
        assert len(r.fills()) == 1


async def counterparty(r: Rig) -> TradingClient:
    """Another wallet trading on the same venue (its own credentials, same HTTP client)."""
    wallet = await sim_wallet(sim_rest(r.http, r.venue, seed=5), Secret("0x" + "3d" * 32))
    return wallet.client


# --- the whole bot ------------------------------------------------------------------------------


def live_config(tmp_path: Path) -> Config:
    cfg = enable_only(Config(), {"market_making"})
    return attrs.evolve(
        cfg,
        discovery=relaxed(cfg),
        log=attrs.evolve(cfg.log, dir=tmp_path / "logs"),
        execution=attrs.evolve(cfg.execution, journal=tmp_path / "journal.sqlite"),
        secrets=Secrets(private_key=KEY),
    )


async def test_the_whole_bot_quotes_live_and_a_stop_leaves_nothing_resting(tmp_path: Path) -> None:
    cfg = live_config(tmp_path)
    with captured_logs() as logs:
        async with open_sim_venue(
            attrs.evolve(small_config(), events_per_second=50.0), start_epoch_ms=START_MS
        ) as venue:
            urls = VenueUrls(
                venue.gamma_url, venue.clob_url, venue.ws_market_url, venue.ws_user_url
            )
            with trio.fail_after(30):
                async with trio.open_nursery() as nursery:
                    handle = await nursery.start(
                        lambda task_status: run_bot(
                            cfg, urls, console=False, live=True, task_status=task_status
                        )
                    )
                    assert handle.live is not None
                    api_key = handle.live.mapper._api_key

                    def resting() -> list[str]:
                        return [o.order_id for o in venue.app.accounts.open_orders(api_key)]

                    await poll(lambda: len(resting()) >= 2, "the market maker's quotes")
                    health = handle.health()
                    assert health["execution"]["mode"] == "live"
                    assert health["live"]["heartbeat_ok"] is True
                    assert health["user_feed"]["ready"] is True
                    live = take_snapshot(handle, trio.current_time())["live"]
                    assert live["heartbeat_ok"] is True
                    assert live["user_channel_ready"] is True
                    assert live["heartbeat_age_s"] is not None
                    handle.cancel_scope.cancel()  # what SIGINT does
            assert resting() == []  # the shielded cancel-all ran before the bot returned
            assert handle.live.stats.shutdown.endswith("nothing rests")
        async with open_journal(cfg.execution.journal) as journal:
            decisions = await journal.load_decisions()
            fills = await journal.load_fills()
        sent = [d for d in decisions if d.kind == ORDER_SENT]
        assert len(sent) >= 2
        report = render_table(build_report(cfg.execution.journal))
        outputs = "\n".join(logs) + (tmp_path / "logs" / "polybot.jsonl").read_text() + str(report)
        for secret in (KEY.reveal(), KEY.reveal()[2:]):
            assert secret not in outputs
        assert all(f.strategy == "market_making" for f in fills)


async def test_live_trading_refuses_to_start_without_a_working_dead_man_switch(
    tmp_path: Path,
) -> None:
    # API credentials the venue does not know: every L2 request, the heartbeat first, is 401.
    bad = Secrets(
        private_key=KEY,
        api_key=Secret("00000000-0000-0000-0000-000000000000"),
        api_secret=Secret("c2VjcmV0LXRoYXQtaXMtd3Jvbmc="),
        api_passphrase=Secret("wrong"),
    )
    cfg = attrs.evolve(live_config(tmp_path), secrets=bad)
    async with open_sim_venue(small_config(), start_epoch_ms=START_MS) as venue:
        urls = VenueUrls(venue.gamma_url, venue.clob_url, venue.ws_market_url, venue.ws_user_url)
        with pytest.RaisesGroup(
            pytest.RaisesExc(LiveTradingRefused, match="refused the first dead-man heartbeat"),
            flatten_subgroups=True,
        ):
            with trio.fail_after(20):
                await run_bot(cfg, urls, console=False, live=True)
        assert venue.app.accounts.orders == {}  # nothing was ever sent


async def test_live_trading_refuses_to_start_when_the_user_channel_does_not_come_up(
    tmp_path: Path,
) -> None:
    cfg = live_config(tmp_path)
    async with open_sim_venue(small_config(), start_epoch_ms=START_MS) as venue:
        # Nothing listens there: the fills would go unseen.
        urls = VenueUrls(venue.gamma_url, venue.clob_url, venue.ws_market_url, "ws://127.0.0.1:9/")
        with pytest.RaisesGroup(
            pytest.RaisesExc(LiveTradingRefused, match="user channel .* did not come up"),
            flatten_subgroups=True,
        ):
            with trio.fail_after(20):
                await run_bot(cfg, urls, console=False, live=True)
        assert venue.app.accounts.orders == {}

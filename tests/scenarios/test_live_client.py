"""The live trading client end to end against the embedded sim venue, with its error injection.

Everything here is the real thing except the venue: ``TradingClient`` on a ``RestClient`` over
real loopback HTTP, orders signed by ``OrderSigner`` (Polymarket's library) with a test key, and
API credentials derived with L1 headers from the sim, which checks every L2 HMAC and recovers
every order's signer. The venue's pump is paused, so the books change only through our orders.

What is counted is counted on both sides: the requests the client actually sent (a recording
transport) and the orders the venue actually holds (``venue.app.accounts.orders``), so "no second
order" is proven by the venue, not assumed from the client.

Real sockets, so the real clock (TRIO_IDIOMS.md section 7); every wait is bounded and short.
"""

from __future__ import annotations

import random
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Final

import attrs
import httpx
import orjson
import pytest
import trio

from bot.config import Secret
from bot.core.money import ONE, Side, taker_fee_units
from bot.core.trading import OrderType
from bot.core.wire.market_events import PriceChange
from bot.core.wire.user import OrderStatus
from bot.shell.clob_trading import AssetType, OrderOutcomeUnknown, TradingClient, VenueRejected
from bot.sim.venue import open_sim_venue
from tests.bot_helpers import captured_logs
from tests.sim.server_helpers import (
    START_MS,
    WAIT,
    decode_all,
    frames_until_pong,
    market_ws,
    sim_rest,
    sim_wallet,
    small_config,
    subscribe,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from bot.core.auth import ApiCreds
    from bot.sim.universe import SimMarket
    from bot.sim.venue import SimVenue

KEY: Final = Secret("0x" + "6e" * 32)
SHARES: Final = 10 * ONE


class RecordingTransport(httpx.AsyncHTTPTransport):
    """The real transport, noting ``(method, path)`` of every request actually sent."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append((request.method, request.url.path))
        return await super().handle_async_request(request)

    def count(self, method: str, path: str) -> int:
        return self.sent.count((method, path))


@attrs.define
class Live:
    venue: SimVenue
    client: TradingClient
    transport: RecordingTransport
    creds: ApiCreds
    logs: list[str]

    @property
    def venue_orders(self) -> int:
        """Orders the venue holds for anyone (placed, filled or cancelled)."""
        return len(self.venue.app.accounts.orders)

    async def collateral(self) -> int:
        return int((await self.client.balance_allowance(AssetType.COLLATERAL)).balance)

    def secrets(self) -> tuple[str, ...]:
        return (
            KEY.reveal(),
            KEY.reveal().removeprefix("0x"),
            self.creds.api_key.reveal(),
            self.creds.secret.reveal(),
            self.creds.passphrase.reveal(),
        )


@asynccontextmanager
async def live(*, read_timeout: float = WAIT) -> AsyncIterator[Live]:
    transport = RecordingTransport()
    with captured_logs() as logs:
        async with (
            open_sim_venue(small_config(), start_epoch_ms=START_MS, pump=False) as venue,
            httpx.AsyncClient(
                transport=transport, timeout=httpx.Timeout(WAIT, read=read_timeout)
            ) as http,
        ):
            venue.faults.retry_after_s = 0  # keep 425 retries fast
            wallet = await sim_wallet(sim_rest(http, venue, seed=7, max_attempts=4), KEY)
            harness = Live(venue, wallet.client, transport, wallet.creds, logs)
            with trio.fail_after(4 * WAIT):
                yield harness
            # No secret in any log line of the whole scenario (fault paths included).
            joined = "\n".join(logs)
            assert logs, "the scenario logged nothing: the secret scan would prove nothing"
            for secret in harness.secrets():
                assert secret not in joined


def market_of(venue: SimVenue, *, neg_risk: bool = False) -> SimMarket:
    """A market of the wanted kind whose YES best ask can take a 10-share FOK worth >= $1."""
    for market in venue.universe.markets:
        if market.neg_risk != neg_risk:
            continue
        asks = list(venue.exchange.book(market.yes_token).asks())
        if asks and 200_000 <= asks[0].price <= 800_000 and asks[0].size >= SHARES:
            return market
    raise AssertionError(f"no suitable market (neg_risk={neg_risk}) in the sim universe")


def seed_drawing(pattern: tuple[bool, ...], rate: float) -> random.Random:
    """A ``Random`` whose first draws hit (``True``) or miss ``rate`` in ``pattern`` order, so a
    fault fires exactly where the test wants it."""
    for seed in range(10_000):
        rng = random.Random(seed)
        if all((rng.random() < rate) == hit for hit in pattern):
            return random.Random(seed)
    raise AssertionError(f"no seed draws {pattern} at rate {rate}")


def resting_price(venue: SimVenue, token: str) -> int:
    """A BUY price on the tick grid, below the best bid, where no level rests yet."""
    book = venue.exchange.book(token)
    taken = {level.price for level in book.bids()}
    tick = book.tick_size
    for price in range(2 * tick, book.best_bid_price, tick):
        if price not in taken:
            return price
    raise AssertionError(f"no free bid level on {token}")


async def place_gtc(h: Live, market: SimMarket) -> tuple[str, int]:
    token = market.yes_token
    price = resting_price(h.venue, token)
    result = await h.client.place(
        token,
        Side.BUY,
        price,
        SHARES,
        tick=h.venue.exchange.book(token).tick_size,
        neg_risk=market.neg_risk,
    )
    return result.order_id, price


# --- the happy paths


@pytest.mark.parametrize("neg_risk", [False, True], ids=["binary", "neg_risk"])
async def test_gtc_rests_is_listed_and_shown_on_the_market_channel_then_cancels(
    neg_risk: bool,
) -> None:
    async with live() as h:
        market = market_of(h.venue, neg_risk=neg_risk)
        token = market.yes_token
        async with market_ws(h.venue.ws_market_url) as ws:
            await subscribe(ws, [token])
            await frames_until_pong(ws)  # the initial book
            order_id, price = await place_gtc(h, market)

            listed = await h.client.open_orders(market=market.condition_id)
            assert [(o.id, o.status, o.price, o.original_size) for o in listed] == [
                (order_id, OrderStatus.LIVE, price, SHARES)
            ]
            levels = [
                (c.asset_id, c.side, c.price, c.size)
                for event in decode_all(await frames_until_pong(ws))
                if isinstance(event, PriceChange)
                for c in event.changes
            ]
            assert (token, Side.BUY, price, SHARES) in levels

            answer = await h.client.cancel(order_id)
            assert answer.canceled == (order_id,)
            assert await h.client.open_orders(market=market.condition_id) == []
            levels = [
                (c.asset_id, c.side, c.price, c.size)
                for event in decode_all(await frames_until_pong(ws))
                if isinstance(event, PriceChange)
                for c in event.changes
            ]
            assert (token, Side.BUY, price, 0) in levels
        found = await h.client.order(order_id)
        assert found is not None
        assert found.status is OrderStatus.CANCELED
        assert h.venue_orders == 1


async def test_marketable_fok_fills_and_balance_and_trades_agree() -> None:
    async with live() as h:
        market = market_of(h.venue)
        token = market.yes_token
        best = next(iter(h.venue.exchange.book(token).asks()))
        before = await h.collateral()
        result = await h.client.place(
            token,
            Side.BUY,
            best.price,
            SHARES,
            tick=h.venue.exchange.book(token).tick_size,
            neg_risk=False,
            order_type=OrderType.FOK,
        )
        assert result.response is not None
        assert result.response.status is OrderStatus.MATCHED

        cost = best.price * SHARES // ONE
        fee = taker_fee_units(SHARES, best.price, market.fee_rate)
        assert before - await h.collateral() == cost + fee
        shares = await h.client.balance_allowance(AssetType.CONDITIONAL, token)
        assert int(shares.balance) == SHARES
        trades = await h.client.trades(market=market.condition_id)
        assert [(t.taker_order_id, t.side, t.price, t.size) for t in trades] == [
            (result.order_id, Side.BUY, best.price, SHARES)
        ]


async def test_private_key_routes_and_compact_market_info() -> None:
    async with live() as h:
        market = market_of(h.venue, neg_risk=True)
        raw = await h.client._private("GET", "/auth/api-keys", idempotent=True)
        assert orjson.loads(raw) == {"apiKeys": [h.creds.api_key.reveal()]}
        async with httpx.AsyncClient(base_url=h.venue.clob_url) as plain:
            with trio.fail_after(WAIT):
                compact = (await plain.get(f"/clob-markets/{market.condition_id}")).json()
                missing = await plain.get("/clob-markets/0xnot-a-market")
                unsigned = await plain.get("/data/order/0x00")
        assert compact["t"] == [
            {"t": market.yes_token, "o": market.outcomes[0]},
            {"t": market.no_token, "o": market.outcomes[1]},
        ]
        assert compact["nr"] is True
        assert compact["mts"] * ONE == h.venue.exchange.book(market.yes_token).tick_size
        assert compact["mos"] * ONE == market.min_order_size
        assert compact["fd"] == {"r": market.fee_rate / ONE, "e": 1, "to": True}
        assert missing.status_code == 404
        assert unsigned.status_code == 401
        assert await h.client.order("0x" + "00" * 32) is None


# --- error injection


async def test_timeout_after_fill_is_reconciled_without_a_second_order() -> None:
    async with live(read_timeout=0.5) as h:
        market = market_of(h.venue)
        token = market.yes_token
        best = next(iter(h.venue.exchange.book(token).asks()))
        before = await h.collateral()
        h.venue.faults.timeout_after_fill_rate = 1.0
        with pytest.raises(OrderOutcomeUnknown) as caught:
            await h.client.place(
                token,
                Side.BUY,
                best.price,
                SHARES,
                tick=h.venue.exchange.book(token).tick_size,
                neg_risk=False,
                order_type=OrderType.FOK,
            )
        h.venue.faults.timeout_after_fill_rate = 0.0
        (order_id,) = caught.value.order_ids
        assert h.client.unconfirmed == {order_id}
        assert h.venue.faults.statistics().timeouts_after_fill == 1

        result = await h.client.reconcile(order_id)
        assert result.found
        assert result.status is OrderStatus.MATCHED
        assert result.order is not None
        assert result.order.size_matched == SHARES
        assert h.client.unconfirmed == frozenset()
        # Sent once, held once, paid once.
        assert h.transport.count("POST", "/order") == 1
        assert h.venue_orders == 1
        fee = taker_fee_units(SHARES, best.price, market.fee_rate)
        assert before - await h.collateral() == best.price * SHARES // ONE + fee


async def test_order_425_is_retried_and_the_order_lands_once() -> None:
    async with live() as h:
        h.venue.faults.rng = seed_drawing((True, False), 0.5)
        h.venue.faults.order_425_rate = 0.5
        order_id, _price = await place_gtc(h, market_of(h.venue))
        assert h.venue.faults.statistics().order_425 == 1
        assert h.transport.count("POST", "/order") == 2
        assert h.venue_orders == 1
        assert [o.id for o in await h.client.open_orders()] == [order_id]


async def test_balance_reject_refreshes_once_and_the_retry_lands() -> None:
    async with live() as h:
        h.venue.faults.rng = seed_drawing((True, False), 0.5)
        h.venue.faults.balance_reject_rate = 0.5
        order_id, _price = await place_gtc(h, market_of(h.venue))
        assert h.venue.faults.statistics().balance_rejects == 1
        assert h.transport.count("POST", "/order") == 2
        assert h.transport.count("GET", "/balance-allowance/update") == 1
        assert [o.id for o in await h.client.open_orders()] == [order_id]


async def test_persistent_balance_reject_is_raised_after_one_refresh() -> None:
    async with live() as h:
        h.venue.faults.balance_reject_rate = 1.0
        with pytest.raises(VenueRejected) as caught:
            await place_gtc(h, market_of(h.venue))
        assert caught.value.balance
        assert not caught.value.bug
        assert h.transport.count("POST", "/order") == 2
        assert h.transport.count("GET", "/balance-allowance/update") == 1
        assert h.venue_orders == 0
        assert h.client.unconfirmed == frozenset()

"""Polymarket's own V2 Python client (``py_clob_client_v2``), unchanged, trading on the sim venue.

The sim claims to speak the real wire protocol; the strongest check of that claim is the official
SDK. Nothing here is ours except the venue: the client derives its API key with an L1 signature,
reads tick size, neg-risk flag, version and market info from the venue, builds and signs V2 orders
itself (choosing the neg-risk exchange on its own), posts them with L2 HMAC headers, lists open
orders and trades, and cancels one, many and all. Every effect is checked at the venue too
(``venue.app.accounts``, the true books), not only in the client's return values.

The one client option set is ``use_server_time=True``: the venue's clock starts at ``START_MS``
(2026-07-01), and the client otherwise stamps its L2 headers with the machine's clock, which the
venue refuses as skewed (``L2_MAX_SKEW_S``). With the option it reads ``GET /time`` first, as it
would against a real venue when the machine's clock is off.

The client is synchronous (a blocking ``httpx.Client``), so every call runs in a worker thread
(``trio.to_thread.run_sync``) while the venue keeps serving in the trio loop. Real sockets, so the
real clock (TRIO_IDIOMS.md section 7); every call is bounded by ``fail_after``.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any, Final

import attrs
import pytest
import trio
from py_clob_client_v2 import (
    ApiCreds,
    AssetType,
    BalanceAllowanceParams,
    ClobClient,
    MarketOrderArgsV2,
    OpenOrderParams,
    OrderArgsV2,
    OrderMarketCancelParams,
    OrderPayload,
    OrderType,
    PostOrdersV2Args,
    TradeParams,
)
from py_clob_client_v2.exceptions import PolyApiException
from py_clob_client_v2.order_utils.model.order_data_v2 import order_to_json_v2

from bot.core.money import ONE, Side, format_units, parse_units
from bot.core.signing import CHAIN_ID_POLYGON, CTF_EXCHANGE_V2, NEG_RISK_CTF_EXCHANGE_V2
from bot.shell.signer import recover_order_signer
from bot.sim.server import marketable_limit
from bot.sim.venue import open_sim_venue
from tests.sim.server_helpers import START_MS, small_config

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from bot.sim.accounts import Account
    from bot.sim.universe import SimMarket
    from bot.sim.venue import SimVenue

KEY: Final = "0x" + "6e" * 32
"""A throwaway key: the sim accepts any key that signs its L1 headers."""
CALL_LIMIT_S: Final = 15.0
"""Bound on one client call (the client's own HTTP timeout is 5 s per request; a call may make
a few requests)."""
TICK_CENT: Final = ONE // 100
SHARES: Final = 5
"""Order size in shares: the sim's minimum order size for resting orders."""


@attrs.define
class Official:
    venue: SimVenue
    client: ClobClient
    creds: ApiCreds

    @property
    def account(self) -> Account:
        account = self.venue.app.accounts.account(self.creds.api_key)
        assert account is not None
        return account

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one blocking client call in a worker thread, bounded.

        The thread is not abandoned on timeout (a request the venue is still answering would
        outlive the test); the client's own 5 s HTTP timeout ends it, then ``fail_after`` fires.
        """
        with trio.fail_after(CALL_LIMIT_S):
            return await trio.to_thread.run_sync(partial(fn, *args, **kwargs))


@asynccontextmanager
async def official() -> AsyncIterator[Official]:
    async with open_sim_venue(small_config(), start_epoch_ms=START_MS, pump=False) as venue:
        client = ClobClient(
            venue.clob_url, chain_id=CHAIN_ID_POLYGON, key=KEY, use_server_time=True
        )
        with trio.fail_after(CALL_LIMIT_S):
            creds = await trio.to_thread.run_sync(client.create_or_derive_api_key)
        client.set_api_creds(creds)
        yield Official(venue, client, creds)


def binary(venue: SimVenue) -> SimMarket:
    return next(m for m in venue.universe.markets if not m.neg_risk)


def neg_risk(venue: SimVenue) -> SimMarket:
    """A neg-risk market on a 0.01 tick (on finer ticks the SDK signs market-BUY takers with 5
    decimals, which the real venue is reported to refuse: py-clob-client-v2 issue #99)."""
    return next(
        m
        for m in venue.universe.markets
        if m.neg_risk and venue.exchange.book(m.yes_token).tick_size == TICK_CENT
    )


def as_float(units: int) -> float:
    """A micro-unit price as the float the client takes (exact decimal text first)."""
    return float(format_units(units))


def level_size(venue: SimVenue, token: str, side: Side, price: int) -> int:
    book = venue.exchange.book(token)
    levels = book.bids() if side is Side.BUY else book.asks()
    return next((lv.size for lv in levels if lv.price == price), 0)


def resting_bid_price(venue: SimVenue, token: str) -> int:
    """A bid price that cannot cross: two ticks under the best ask, at least one tick."""
    book = venue.exchange.book(token)
    return max(book.best_ask_price - 2 * book.tick_size, book.tick_size)


# --------------------------------------------------------------------------------------------


async def test_api_keys_created_and_derived_alike() -> None:
    async with official() as o:
        created = await o.call(o.client.create_api_key)
        derived = await o.call(o.client.derive_api_key)
        assert created == derived == o.creds
        assert o.account.address.lower() == o.client.get_address().lower()
        assert (await o.call(o.client.get_api_keys)) == {"apiKeys": [o.creds.api_key]}


async def test_gtc_buy_rests_is_listed_and_cancelled() -> None:
    async with official() as o:
        market = binary(o.venue)
        token = market.yes_token
        price = resting_bid_price(o.venue, token)
        before = level_size(o.venue, token, Side.BUY, price)

        answer = await o.call(
            o.client.create_and_post_order,
            OrderArgsV2(token_id=token, price=as_float(price), size=SHARES, side="BUY"),
        )
        assert answer["success"] is True, answer
        assert answer["status"] == "live"
        order_id = answer["orderID"]
        held = o.venue.app.accounts.orders[order_id]
        assert (held.live, held.price, held.size) == (True, price, SHARES * ONE)
        assert level_size(o.venue, token, Side.BUY, price) == before + SHARES * ONE

        listed = await o.call(o.client.get_open_orders)
        assert [(x["id"], x["price"], x["side"]) for x in listed] == [
            (order_id, format_units(price), "BUY")
        ]
        only = await o.call(o.client.get_open_orders, OpenOrderParams(market=market.condition_id))
        assert [x["id"] for x in only] == [order_id]
        assert (await o.call(o.client.get_order, order_id))["status"] == "LIVE"

        cancelled = await o.call(o.client.cancel_order, OrderPayload(orderID=order_id))
        assert cancelled == {"canceled": [order_id], "not_canceled": {}}
        assert o.venue.app.accounts.orders[order_id].canceled
        assert level_size(o.venue, token, Side.BUY, price) == before
        assert (await o.call(o.client.get_open_orders)) == []
        assert (await o.call(o.client.get_order, order_id))["status"] == "CANCELED"


async def test_marketable_order_fills_and_trade_is_listed() -> None:
    async with official() as o:
        market = binary(o.venue)
        token = market.yes_token
        ask = o.venue.exchange.book(token).best_ask_price
        start = o.account.balance

        answer = await o.call(
            o.client.create_and_post_order,
            OrderArgsV2(token_id=token, price=as_float(ask), size=SHARES, side="BUY"),
            order_type=OrderType.FOK,
        )
        assert answer["success"] is True, answer
        assert answer["status"] == "matched"
        order_id = answer["orderID"]
        assert o.venue.app.accounts.orders[order_id].matched == SHARES * ONE
        assert o.account.positions[token] == SHARES * ONE
        (trade,) = o.venue.app.accounts.trades
        assert start - o.account.balance == ask * SHARES + trade.fee  # the notional and the fee

        trades = await o.call(o.client.get_trades, TradeParams(market=market.condition_id))
        assert [(t["taker_order_id"], t["side"], t["price"], t["size"]) for t in trades] == [
            (order_id, "BUY", format_units(ask), format_units(SHARES * ONE))
        ]
        assert trades[0]["trader_side"] == "TAKER"
        # A second fill elsewhere: the filters pick trades out, as the client's polling needs.
        other = [m for m in o.venue.universe.markets if not m.neg_risk][1]
        other_ask = o.venue.exchange.book(other.yes_token).best_ask_price
        await o.call(
            o.client.create_and_post_order,
            OrderArgsV2(
                token_id=other.yes_token, price=as_float(other_ask), size=SHARES, side="BUY"
            ),
            order_type=OrderType.FAK,
        )
        assert len(await o.call(o.client.get_trades)) == 2
        by_id = await o.call(o.client.get_trades, TradeParams(id=trades[0]["id"]))
        assert [t["id"] for t in by_id] == [trades[0]["id"]]
        mine = await o.call(o.client.get_trades, TradeParams(maker_address=o.account.address))
        assert len(mine) == 2
        now_s = o.venue.now_ms() // 1000
        assert await o.call(o.client.get_trades, TradeParams(after=now_s + 1)) == []
        assert len(await o.call(o.client.get_trades, TradeParams(before=now_s))) == 2

        collateral = await o.call(
            o.client.get_balance_allowance,
            BalanceAllowanceParams(asset_type=AssetType.COLLATERAL),
        )
        assert int(collateral["balance"]) == o.account.balance
        shares = await o.call(
            o.client.get_balance_allowance,
            BalanceAllowanceParams(asset_type=AssetType.CONDITIONAL, token_id=token),
        )
        assert int(shares["balance"]) == SHARES * ONE == o.account.positions[token]
        assert (await o.call(o.client.get_open_orders)) == []


async def test_batch_post_then_cancel_many_market_and_all() -> None:
    async with official() as o:
        tokens = [m.yes_token for m in o.venue.universe.markets if not m.neg_risk][:2]
        tokens.append(neg_risk(o.venue).yes_token)
        orders = [
            await o.call(
                o.client.create_order,
                OrderArgsV2(
                    token_id=token,
                    price=as_float(resting_bid_price(o.venue, token)),
                    size=SHARES,
                    side="BUY",
                ),
            )
            for token in tokens
        ]
        answers = await o.call(
            o.client.post_orders, [PostOrdersV2Args(order=order) for order in orders]
        )
        assert [a["success"] for a in answers] == [True, True, True], answers
        ids = [a["orderID"] for a in answers]
        assert len(o.venue.app.accounts.open_orders(o.creds.api_key)) == 3

        many = await o.call(o.client.cancel_orders, [ids[0], ids[0], "0xunknown"])
        assert many["canceled"] == [ids[0]]
        assert set(many["not_canceled"]) == {"0xunknown"}

        first_market = o.venue.universe.market_for_token(tokens[1]).condition_id
        by_market = await o.call(
            o.client.cancel_market_orders, OrderMarketCancelParams(market=first_market)
        )
        assert by_market["canceled"] == [ids[1]]
        assert {x["id"] for x in await o.call(o.client.get_open_orders)} == {ids[2]}

        everything = await o.call(o.client.cancel_all)
        assert everything["canceled"] == [ids[2]]
        assert o.venue.app.accounts.open_orders(o.creds.api_key) == []
        assert (await o.call(o.client.get_open_orders)) == []
        assert all(o.venue.app.accounts.orders[i].canceled for i in ids)


async def test_neg_risk_market_order_signed_for_the_neg_risk_exchange() -> None:
    async with official() as o:
        market = neg_risk(o.venue)
        token = market.yes_token
        best = next(iter(o.venue.exchange.book(token).asks()))
        spend = Decimal(2)  # pUSD; marketable orders must be worth at least $1
        assert best.size * best.price // ONE > parse_units(str(spend))  # one level fills it
        start = o.account.balance

        signed = await o.call(
            o.client.create_market_order,
            MarketOrderArgsV2(token_id=token, amount=float(spend), side="BUY"),
        )
        body = order_to_json_v2(signed, o.creds.api_key, OrderType.FOK)
        address = o.client.get_address()
        # The client looked the market up and chose the neg-risk exchange by itself.
        assert recover_order_signer(body, exchange=NEG_RISK_CTF_EXCHANGE_V2) == address
        assert recover_order_signer(body, exchange=CTF_EXCHANGE_V2) != address

        # The SDK signs spend / price shares cut to 4 decimals, so the implied price lies just
        # above the tick; the venue caps it at the tick the signature allows, as the real one
        # accepts these orders.
        maker, taker = int(signed.makerAmount), int(signed.takerAmount)
        assert maker * ONE % taker != 0
        answer = await o.call(o.client.post_order, signed, OrderType.FOK)
        assert answer["success"] is True, answer
        assert answer["status"] == "matched"
        held = o.venue.app.accounts.orders[answer["orderID"]]
        assert (held.market, held.price) == (market.condition_id, best.price)
        assert held.matched == held.size == taker
        assert o.account.positions[token] == taker
        (trade,) = o.venue.app.accounts.trades
        # Paid the level's price for the signed shares: never more than the signed spend.
        assert start - o.account.balance == best.price * taker // ONE + trade.fee
        assert best.price * taker // ONE <= maker
        listed = await o.call(o.client.get_trades, TradeParams(asset_id=token))
        assert [t["taker_order_id"] for t in listed] == [answer["orderID"]]


async def test_rejections_come_back_as_client_errors() -> None:
    async with official() as o:
        token = binary(o.venue).yes_token
        book = o.venue.exchange.book(token)
        # A FOK buy for far more than the ask side holds is killed, and nothing is held.
        too_many = sum(lv.size for lv in book.asks()) // ONE + 100
        with pytest.raises(PolyApiException) as caught:
            await o.call(
                o.client.create_and_post_order,
                OrderArgsV2(
                    token_id=token,
                    price=as_float(ONE - book.tick_size),
                    size=too_many,
                    side="BUY",
                ),
                order_type=OrderType.FOK,
            )
        assert caught.value.status_code == 400
        assert "fully filled" in str(caught.value.error_msg)
        # A market order's amounts posted as a resting GTC: a resting price must sit on the tick.
        signed = await o.call(
            o.client.create_market_order,
            MarketOrderArgsV2(token_id=token, amount=2.0, side="BUY"),
        )
        assert int(signed.makerAmount) * ONE % int(signed.takerAmount) != 0
        with pytest.raises(PolyApiException) as caught:
            await o.call(o.client.post_order, signed, OrderType.GTC)
        assert caught.value.status_code == 400
        assert "breaks minimum tick size rule" in str(caught.value.error_msg)
        assert o.venue.app.accounts.orders == {}


def test_marketable_limit_is_the_tick_the_signature_allows() -> None:
    # VECTORS.md 5: a $100 market BUY at 0.56 (tick 0.01) and at 0.056 (tick 0.001).
    assert marketable_limit(Side.BUY, 100_000_000, 178_571_400, 10_000) == (560_000, 178_571_400)
    assert marketable_limit(Side.BUY, 100_000_000, 1_785_714_280, 1_000) == (56_000, 1_785_714_280)
    # A SELL wanting a hair over 0.56 a share takes no less than 0.57.
    assert marketable_limit(Side.SELL, 100_000_000, 56_000_001, 10_000) == (570_000, 100_000_000)
    # Nothing allowed inside [tick, 1 - tick], or empty amounts: no price.
    assert marketable_limit(Side.BUY, 5_000, 1_000_000, 10_000) is None
    assert marketable_limit(Side.SELL, 1_000_000, 999_999, 10_000) is None
    assert marketable_limit(Side.BUY, 0, 1_000_000, 10_000) is None

"""The sim venue's private side over real HTTP: keys, signed orders, matching, cancels, heartbeats.

Orders are signed with the bot's own ``OrderSigner`` (Polymarket's library underneath) and posted
with plain httpx and the bot's L2 header code, so the venue is checked against the real wire
shapes. The pump is paused: the books only change through our orders. Real sockets, so the real
clock (TRIO_IDIOMS.md section 7); every wait is bounded.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs
import orjson
import pytest
import trio

from bot.config import Secret
from bot.core.auth import l2_headers
from bot.core.money import ONE, Side, format_units, taker_fee_units
from bot.core.trading import OrderType
from bot.core.wire.market_events import PriceChange
from bot.core.wire.user import (
    OrderEventType,
    OrderStatus,
    TraderSide,
    TradeStatus,
    UserOrder,
    UserTrade,
    decode_user_frame,
)
from bot.shell.signer import OrderSigner
from bot.sim.accounts import (
    FOK_NOT_FILLED,
    NOT_ENOUGH_BALANCE,
    OrderRejected,
    order_price,
    plan_taker,
)
from tests.sim.server_helpers import (
    decode_all,
    frames_until_pong,
    market_ws,
    subscribe,
    wait_closed,
)

if TYPE_CHECKING:
    from bot.core.wire.user import UserEvent
    from bot.sim.venue import SimVenue

from tests.sim.trading_helpers import (
    OTHER_KEY,
    TICK_CENT,
    Trader,
    api_creds,
    asks,
    bids,
    binary,
    trading_venue,
)


async def test_api_key_and_derive_give_the_same_credentials_and_the_demo_balance() -> None:
    async with trading_venue(demo_balance=Decimal("250")) as (venue, trader):
        again = trader.signer.l1_headers(venue.now_ms() // 1000)
        response = await trader.client.get("/auth/derive-api-key", headers=dict(again))
        assert response.status_code == 200
        assert response.json()["apiKey"] == trader.creds.api_key.reveal()
        assert response.json()["secret"] == trader.creds.secret.reveal()
        assert await trader.balance() == 250 * ONE
        assert await trader.balance(binary(venue).yes_token) == 0


async def test_l1_signature_of_another_address_is_refused() -> None:
    async with trading_venue() as (venue, trader):
        headers = dict(OrderSigner(OTHER_KEY).l1_headers(venue.now_ms() // 1000))
        headers["POLY_ADDRESS"] = trader.signer.address  # claims an address it cannot sign for
        response = await trader.client.post("/auth/api-key", headers=headers)
        assert response.status_code == 401
        assert response.json() == {"error": "Invalid L1 Request headers"}


# --- L2 authentication


async def test_bad_hmac_and_stale_timestamp_are_401() -> None:
    async with trading_venue() as (venue, trader):
        market = binary(venue)
        _, body = trader.order_body(market, market.yes_token, Side.BUY, 10_000, 5 * ONE)
        now = venue.now_ms() // 1000
        good = dict(
            l2_headers(
                trader.signer.address,
                trader.creds,
                timestamp=now,
                method="POST",
                path="/order",
                body=body,
            )
        )
        tampered = body.replace(b'"GTC"', b'"FOK"')
        response = await trader.client.post("/order", content=tampered, headers=good)
        assert response.status_code == 401
        assert response.json() == {"error": "Unauthorized/Invalid api key"}
        stale = dict(
            l2_headers(
                trader.signer.address,
                trader.creds,
                timestamp=now - 31,
                method="POST",
                path="/order",
                body=body,
            )
        )
        response = await trader.client.post("/order", content=body, headers=stale)
        assert response.status_code == 401
        assert venue.app.accounts.orders == {}


# --- orders


async def test_marketable_buy_fills_at_the_book_prices_with_the_taker_fee() -> None:
    async with trading_venue() as (venue, trader):
        market = binary(venue)
        token = market.yes_token
        ladder = asks(venue, token)
        (p1, s1), (p2, _s2) = ladder[0], ladder[1]
        size = s1 + 5 * ONE  # the whole best level and 5 shares of the next
        before = await trader.balance()
        order_id, body = trader.order_body(market, token, Side.BUY, p2, size, OrderType.FOK)
        response = await trader.place(body)
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["success"] is True
        assert result["orderID"] == order_id
        assert result["status"] == "matched"
        assert result["errorMsg"] == ""
        cost = p1 * s1 // ONE + p2 * 5 * ONE // ONE
        fee = taker_fee_units(s1, p1, market.fee_rate) + taker_fee_units(
            5 * ONE, p2, market.fee_rate
        )
        assert fee > 0
        assert before - await trader.balance() == cost + fee
        assert await trader.balance(token) == size
        assert asks(venue, token)[0] == (p2, ladder[1][1] - 5 * ONE)
        # The NO book mirrors it: its best bid at 1 - p2 shrank the same way.
        assert bids(venue, market.no_token)[0] == (ONE - p2, ladder[1][1] - 5 * ONE)
        trades = (await trader.request("GET", "/data/trades")).json()["data"]
        assert [(t["price"], t["size"], t["trader_side"]) for t in trades] == [
            (format_units(p1), format_units(s1), "TAKER"),
            (format_units(p2), "5", "TAKER"),
        ]


async def test_fok_that_cannot_fill_is_killed_and_changes_nothing() -> None:
    async with trading_venue() as (venue, trader):
        market = binary(venue)
        token = market.yes_token
        ladder = asks(venue, token)
        p1, s1 = ladder[0]
        _, body = trader.order_body(market, token, Side.BUY, p1, s1 + ONE, OrderType.FOK)
        response = await trader.place(body)
        assert response.status_code == 400
        assert response.json()["success"] is False
        assert response.json()["errorMsg"] == FOK_NOT_FILLED
        assert asks(venue, token) == ladder


async def test_marketable_orders_are_held_to_the_market_order_precision() -> None:
    async with trading_venue() as (venue, trader):
        market = binary(venue)
        token = market.yes_token
        assert venue.exchange.book(token).tick_size == 10_000
        best = asks(venue, token)[0][0]
        # 10.37 shares at a 0.01 price: a limit maker amount with 4 decimals.
        _, body = trader.order_body(market, token, Side.BUY, best, 10_370_000, OrderType.FOK)
        response = await trader.place(body)
        assert response.status_code == 400
        assert "maker amount supports a max accuracy of 2 decimals" in response.json()["errorMsg"]
        # The very same amounts resting (GTC, below the book) are fine.
        _, body = trader.order_body(market, token, Side.BUY, 10_000, 10_370_000)
        assert (await trader.place(body)).json()["status"] == "live"


async def test_gtc_rests_in_the_book_and_on_the_market_channel_then_cancel_removes_it() -> None:
    async with trading_venue() as (venue, trader):
        market = binary(venue)
        token = market.yes_token
        best_bid = bids(venue, token)[0][0]
        price = best_bid - venue.exchange.book(token).tick_size  # behind the touch: rests
        before = dict(bids(venue, token)).get(price, 0)
        async with market_ws(venue.ws_market_url) as ws:
            await subscribe(ws, [token], initial_dump=False)
            await frames_until_pong(ws)
            order_id, body = trader.order_body(market, token, Side.BUY, price, 10 * ONE)
            result = (await trader.place(body)).json()
            assert (result["success"], result["status"]) == (True, "live")
            assert dict(bids(venue, token))[price] == before + 10 * ONE
            changes = [
                change
                for event in decode_all(await frames_until_pong(ws))
                if isinstance(event, PriceChange)
                for change in event.changes
                if change.asset_id == token
            ]
            assert (price, before + 10 * ONE, Side.BUY) in [
                (c.price, c.size, c.side) for c in changes
            ]
        listed = (await trader.request("GET", "/data/orders")).json()["data"]
        assert [o["id"] for o in listed] == [order_id]
        # The open BUY reserves its notional.
        left = 10_000 * ONE - price * 10
        assert venue.app.accounts.available_pusd(trader_account(venue, trader)) == left
        body = orjson.dumps({"orderID": order_id})
        answer = (await trader.request("DELETE", "/order", body)).json()
        assert answer == {"canceled": [order_id], "not_canceled": {}}
        assert dict(bids(venue, token)).get(price, 0) == before
        assert (await trader.request("GET", "/data/orders")).json()["data"] == []


def trader_account(venue: SimVenue, trader: Trader) -> Any:
    account = venue.app.accounts.account(trader.creds.api_key.reveal())
    assert account is not None
    return account


async def test_an_order_signed_by_another_key_is_rejected_as_invalid_signature() -> None:
    async with trading_venue() as (venue, trader):
        market = binary(venue)
        _, body = trader.order_body(market, market.yes_token, Side.BUY, 10_000, 5 * ONE)
        data = orjson.loads(body)
        data["order"]["takerAmount"] = str(int(data["order"]["takerAmount"]) * 2)  # tampered
        response = await trader.place(orjson.dumps(data))
        assert response.status_code == 400
        assert response.json()["errorMsg"] == "invalid signature"
        # Signed correctly, but by a key that is not the API key's address.
        _, body = trader.order_body(
            market, market.yes_token, Side.BUY, 10_000, 5 * ONE, signer=OrderSigner(OTHER_KEY)
        )
        response = await trader.place(body)
        assert response.json()["errorMsg"] == (
            "the order signer address has to be the address of the API KEY"
        )
        assert venue.app.accounts.orders == {}


async def test_sell_without_shares_and_buy_beyond_the_balance_are_balance_errors() -> None:
    async with trading_venue(demo_balance=Decimal("1")) as (venue, trader):
        market = binary(venue)
        token = market.yes_token
        best_bid = bids(venue, token)[0][0]
        _, body = trader.order_body(market, token, Side.SELL, best_bid, 5 * ONE, OrderType.FAK)
        response = await trader.place(body)
        assert response.json()["errorMsg"] == NOT_ENOUGH_BALANCE
        _, body = trader.order_body(market, token, Side.BUY, 10_000, 200 * ONE)  # $2 > $1
        response = await trader.place(body)
        assert response.json()["errorMsg"] == NOT_ENOUGH_BALANCE
        assert await trader.balance() == ONE


async def test_batch_of_orders_and_cancel_all() -> None:
    async with trading_venue() as (venue, trader):
        market = binary(venue)
        token = market.yes_token
        posts = [
            trader.order_body(market, token, Side.BUY, 10_000 + i * TICK_CENT, 5 * ONE)[1]
            for i in range(3)
        ]
        body = b"[" + b",".join(posts) + b"]"
        results = (await trader.request("POST", "/orders", body)).json()
        assert [r["success"] for r in results] == [True, True, True]
        answer = (await trader.request("DELETE", "/cancel-all")).json()
        assert sorted(answer["canceled"]) == sorted(r["orderID"] for r in results)
        assert venue.app.accounts.open_orders(trader.creds.api_key.reveal()) == []


async def test_heartbeat_lapse_cancels_resting_orders() -> None:
    async with trading_venue(heartbeat_timeout_s=0.3) as (venue, trader):
        market = binary(venue)
        token = market.yes_token
        before = dict(bids(venue, token)).get(10_000, 0)
        order_id, body = trader.order_body(market, token, Side.BUY, 10_000, 5 * ONE)
        assert (await trader.place(body)).json()["status"] == "live"
        response = await trader.request("POST", "/v1/heartbeats", b'{"heartbeat_id":""}')
        assert response.status_code == 200
        assert "heartbeat_id" in response.json()
        # Kept alive while it beats ...
        for _ in range(3):
            await trio.sleep(0.15)
            await trader.request("POST", "/v1/heartbeats", b'{"heartbeat_id":""}')
        assert venue.app.accounts.orders[order_id].live
        # ... and cancelled once it stops.
        # (lapse 0.3 s, checked every 0.075 s: cancelled well within 0.6 s of the last beat)
        await trio.sleep(0.6)
        assert not venue.app.accounts.orders[order_id].live
        assert dict(bids(venue, token)).get(10_000, 0) == before


# --- pure checks


def test_order_price_must_be_on_the_tick() -> None:
    assert order_price(Side.BUY, 2_600_000, 5_000_000, TICK_CENT) == (520_000, 5_000_000)
    assert order_price(Side.SELL, 5_000_000, 2_600_000, TICK_CENT) == (520_000, 5_000_000)
    with pytest.raises(
        OrderRejected, match=re.escape("Price (0.525) breaks minimum tick size rule: 0.01")
    ):
        order_price(Side.BUY, 2_625_000, 5_000_000, TICK_CENT)  # 0.525


# --- the user channel


async def user_socket_frames(ws: Any) -> list[UserEvent]:
    """Every user-channel event received before the ``PONG`` (decoded strictly)."""
    frames = await frames_until_pong(ws)
    return [event for frame in frames for event in decode_user_frame(frame)]


def auth_frame(trader: Trader, markets: list[str] | None = None) -> str:
    message: dict[str, Any] = {
        "auth": {
            "apiKey": trader.creds.api_key.reveal(),
            "secret": trader.creds.secret.reveal(),
            "passphrase": trader.creds.passphrase.reveal(),
        },
        "type": "user",
    }
    if markets is not None:
        message["markets"] = markets
    return orjson.dumps(message).decode()


async def test_user_channel_delivers_order_and_trade_events_to_taker_and_maker() -> None:
    async with trading_venue() as (venue, taker):
        market = binary(venue)
        token = market.yes_token
        maker_signer = OrderSigner(OTHER_KEY)
        maker = Trader(
            venue, taker.client, maker_signer, await api_creds(venue, taker.client, maker_signer)
        )
        tick = venue.exchange.book(token).tick_size
        # The maker rests a NO bid that crosses nothing; the taker's YES SELL ... is not needed:
        # a YES BUY at the mirror price lifts it from the YES asks (mint).
        best_ask = asks(venue, token)[0][0]
        no_price = ONE - (best_ask - tick)  # YES ask one tick inside the spread
        async with (
            market_ws(venue.ws_user_url) as taker_ws,
            market_ws(venue.ws_user_url) as maker_ws,
        ):
            await taker_ws.send_message(auth_frame(taker, [market.condition_id]))
            await maker_ws.send_message(auth_frame(maker))
            await frames_until_pong(taker_ws)
            await frames_until_pong(maker_ws)
            maker_id, body = maker.order_body(market, market.no_token, Side.BUY, no_price, 6 * ONE)
            assert (await maker.place(body)).json()["status"] == "live"
            assert asks(venue, token)[0] == (best_ask - tick, 6 * ONE)
            [placement] = await user_socket_frames(maker_ws)
            assert isinstance(placement, UserOrder)
            assert (placement.id, placement.type, placement.status) == (
                maker_id,
                OrderEventType.PLACEMENT,
                OrderStatus.LIVE,
            )
            assert (placement.asset_id, placement.price) == (market.no_token, no_price)
            taker_id, body = taker.order_body(
                market, token, Side.BUY, best_ask - tick, 5 * ONE, OrderType.FOK
            )
            assert (await taker.place(body)).json()["status"] == "matched"
            events = await user_socket_frames(taker_ws)
            order_events = [e for e in events if isinstance(e, UserOrder)]
            trades = [e for e in events if isinstance(e, UserTrade)]
            assert [(e.id, e.type, e.status, e.size_matched) for e in order_events] == [
                (taker_id, OrderEventType.UPDATE, OrderStatus.MATCHED, 5 * ONE)
            ]
            assert [(t.status, t.trader_side, t.price, t.size) for t in trades] == [
                (TradeStatus.MATCHED, TraderSide.TAKER, best_ask - tick, 5 * ONE),
                (TradeStatus.CONFIRMED, TraderSide.TAKER, best_ask - tick, 5 * ONE),
            ]
            maker_events = await user_socket_frames(maker_ws)
            update = next(e for e in maker_events if isinstance(e, UserOrder))
            assert (update.id, update.type, update.size_matched) == (
                maker_id,
                OrderEventType.UPDATE,
                5 * ONE,
            )
            maker_trades = [e for e in maker_events if isinstance(e, UserTrade)]
            assert [t.trader_side for t in maker_trades] == [TraderSide.MAKER] * 2
            assert [(m.order_id, m.matched_amount) for m in maker_trades[0].maker_orders] == [
                (maker_id, 5 * ONE)
            ]
            # The maker bought 5 NO at its price and paid no fee; one share stays on the book.
            assert await maker.balance(market.no_token) == 5 * ONE
            assert await maker.balance() == 10_000 * ONE - no_price * 5
            assert asks(venue, token)[0] == (best_ask - tick, ONE)
            cancel = orjson.dumps({"orderID": maker_id})
            assert (await maker.request("DELETE", "/order", cancel)).json()["canceled"] == [
                maker_id
            ]
            [cancellation] = await user_socket_frames(maker_ws)
            assert isinstance(cancellation, UserOrder)
            assert (cancellation.type, cancellation.status) == (
                OrderEventType.CANCELLATION,
                OrderStatus.CANCELED,
            )
            assert asks(venue, token)[0] == (best_ask, dict(asks(venue, token))[best_ask])
            # The taker's socket is filtered to its market and saw none of the maker's events.
            assert await user_socket_frames(taker_ws) == []


async def test_user_channel_with_bad_credentials_is_closed() -> None:
    async with trading_venue() as (venue, trader):
        trader.creds = attrs.evolve(trader.creds, secret=Secret("bm90IHRoZSBzZWNyZXQ="))
        async with market_ws(venue.ws_user_url) as ws:
            await ws.send_message(auth_frame(trader))
            reason = await wait_closed(ws)
            assert reason.code == 1008


def test_plan_taker_walks_levels_up_to_the_limit_and_applies_the_time_in_force() -> None:
    levels = [(500_000, 3 * ONE), (510_000, 4 * ONE), (520_000, 9 * ONE)]
    rate = 50_000
    plan = plan_taker(levels, Side.BUY, 510_000, 10 * ONE, OrderType.GTC, rate)
    assert plan.fills == ((500_000, 3 * ONE), (510_000, 4 * ONE))
    assert (plan.filled, plan.rest) == (7 * ONE, 3 * ONE)
    assert plan.cost == 1_500_000 + 2_040_000
    assert plan.fee == taker_fee_units(3 * ONE, 500_000, rate) + taker_fee_units(
        4 * ONE, 510_000, rate
    )
    fak = plan_taker(levels, Side.BUY, 510_000, 10 * ONE, OrderType.FAK, rate)
    assert (fak.filled, fak.rest) == (7 * ONE, 0)
    with pytest.raises(OrderRejected, match="FAK orders are partially filled"):
        plan_taker(levels, Side.BUY, 490_000, ONE, OrderType.FAK, rate)
    with pytest.raises(OrderRejected, match="order crosses book"):
        plan_taker(levels, Side.BUY, 500_000, ONE, OrderType.GTC, rate, post_only=True)
    # A SELL walks bids (best first) down to its limit.
    bids_ = [(490_000, 2 * ONE), (480_000, 2 * ONE)]
    sell = plan_taker(bids_, Side.SELL, 485_000, 3 * ONE, OrderType.GTC, rate)
    assert (sell.fills, sell.rest) == (((490_000, 2 * ONE),), ONE)


async def test_gtd_needs_a_future_expiration_and_is_cancelled_a_minute_before_it() -> None:
    async with trading_venue(heartbeat_timeout_s=0.3) as (venue, trader):
        market = binary(venue)
        token = market.yes_token
        before = dict(bids(venue, token)).get(10_000, 0)
        now_s = venue.now_ms() // 1000
        _, body = trader.order_body(
            market, token, Side.BUY, 10_000, 5 * ONE, OrderType.GTD, expiration_s=now_s + 60
        )
        assert (await trader.place(body)).json()["errorMsg"] == "invalid expiration"
        order_id, body = trader.order_body(
            market, token, Side.BUY, 10_000, 5 * ONE, OrderType.GTD, expiration_s=now_s + 61
        )
        assert (await trader.place(body)).json()["status"] == "live"
        assert dict(bids(venue, token))[10_000] == before + 5 * ONE
        # Ends at expiration - 60 = now_s + 1: within ~1 s, checked every 0.075 s.
        await trio.sleep(1.3)
        assert not venue.app.accounts.orders[order_id].live
        assert dict(bids(venue, token)).get(10_000, 0) == before

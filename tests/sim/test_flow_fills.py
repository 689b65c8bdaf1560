"""Accounts' resting orders inside the sim's books: the simulated flow fills them as makers.

First the pure model (``SimExchange``): a level's queue in price-time priority, flow cancels that
never eat an account's size, self-trade prevention. Then the venue over real sockets: a resting
bid filled by simulated sell flow shows up on ``/ws/user`` as the maker fill the bot's own
``UserEventMapper`` books, with the balances moved exactly; and an account never trades with
itself over REST. Real sockets, so the real clock (TRIO_IDIOMS.md section 7); every wait is
bounded.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from bot.core.money import ONE, Side, parse_units
from bot.core.trading import Fill, Liquidity, OrderStatus, OrderType, OrderUpdate
from bot.core.user_events import FillConfirmed, UserEventMapper, UserFill
from bot.core.wire.user import decode_user_frame
from bot.sim.accounts import CROSSES_OWN_ORDER, FOK_NOT_FILLED
from bot.sim.exchange import FlowConfig, MakerMatch, SimExchange
from bot.sim.universe import UniverseConfig, generate_universe
from tests.sim.server_helpers import START_MS, frames_until_pong, market_ws
from tests.sim.trading_helpers import Trader, asks, bids, binary, trading_venue

if TYPE_CHECKING:
    from bot.sim.universe import SimMarket

BUY = Side.BUY
SELL = Side.SELL


def u(text: str) -> int:
    return parse_units(text)


def one_market(seed: int = 3) -> tuple[SimMarket, SimExchange]:
    """An exchange over a single stand-alone binary, so every ``step`` acts on it."""
    universe = generate_universe(
        UniverseConfig(n_binary=1, n_temperature_events=0, n_election_events=0, epoch_ms=START_MS),
        random.Random(seed),
    )
    exchange = SimExchange(universe, FlowConfig(), random.Random(seed + 1), START_MS)
    return universe.markets[0], exchange


def level(exchange: SimExchange, token: str, side: Side, price: int) -> int:
    return dict(exchange.levels(token, side)).get(price, 0)


def changes_at(events: list[dict[str, Any]], token: str, price: int) -> list[str]:
    """The new sizes (wire text) the ``price_change`` events give ``token``'s level at ``price``."""
    text = f"{price / ONE:g}"
    return [
        change["size"]
        for event in events
        if event["event_type"] == "price_change"
        for change in event["price_changes"]
        if change["asset_id"] == token and change["price"] == text
    ]


# --- the pure model -----------------------------------------------------------------------------


def test_a_level_fills_in_price_time_priority_and_scripted_cancels_leave_the_account() -> None:
    market, exchange = one_market()
    yes = market.yes_token
    exchange.set_book(yes, [(u("0.40"), u("100"))], [(u("0.45"), u("100"))], START_MS)
    exchange.rest(yes, BUY, u("0.40"), "A", "alice", u("10"), START_MS)
    assert exchange.queue_ahead("A") == u("100")  # what was displayed when it arrived
    exchange.set_level(yes, BUY, u("0.40"), u("160"), START_MS)  # 50 more join behind it
    assert exchange.queue_ahead("A") == u("100")
    exchange.trade(yes, SELL, u("90"), START_MS)
    assert exchange.drain_maker_matches() == []  # all of it from the size ahead
    assert (exchange.queue_ahead("A"), level(exchange, yes, BUY, u("0.40"))) == (u("10"), u("70"))
    exchange.trade(yes, SELL, u("15"), START_MS)  # the last 10 ahead, then 5 of ours
    assert exchange.drain_maker_matches() == [
        MakerMatch(market.condition_id, yes, SELL, u("0.40"), u("15"), (("A", u("5")),))
    ]
    assert (exchange.resting_size("A"), exchange.queue_ahead("A")) == (u("5"), 0)
    # A script removing the level takes only the simulated 50 behind us.
    events = exchange.set_level(yes, BUY, u("0.40"), 0, START_MS)
    assert changes_at(events, yes, u("0.40")) == ["5"]
    assert level(exchange, yes, BUY, u("0.40")) == u("5")
    exchange.trade(yes, SELL, u("20"), START_MS)
    [match] = exchange.drain_maker_matches()
    assert (match.size, match.makers) == (u("5"), (("A", u("5")),))
    assert exchange.resting_size("A") == 0
    assert exchange.levels(yes, BUY) == []
    with pytest.raises(KeyError, match="does not rest"):
        exchange.queue_ahead("A")


def test_orders_on_both_tokens_share_one_queue_and_matches_come_in_the_takers_token() -> None:
    market, exchange = one_market()
    yes, no = market.yes_token, market.no_token
    exchange.set_book(yes, [(u("0.40"), u("3"))], [(u("0.45"), u("100"))], START_MS)
    exchange.rest(yes, BUY, u("0.40"), "A", "alice", u("10"), START_MS)
    exchange.rest(no, SELL, u("0.60"), "B", "bob", u("7"), START_MS)  # the same level, mirrored
    assert exchange.queue_ahead("B") == u("13")
    assert exchange.levels(no, SELL)[0] == (u("0.60"), u("20"))
    exchange.trade(no, BUY, u("15"), START_MS)  # lifts the NO asks, i.e. hits the YES bids
    assert exchange.drain_maker_matches() == [
        MakerMatch(
            market.condition_id, no, BUY, u("0.60"), u("15"), (("A", u("10")), ("B", u("2")))
        )
    ]
    assert exchange.resting_size("B") == u("5")
    events = exchange.cancel_resting("B", START_MS)
    assert changes_at(events, no, u("0.60")) == ["0"]
    assert exchange.cancel_resting("B", START_MS) == []


def test_a_takers_own_orders_are_walked_past() -> None:
    market, exchange = one_market()
    yes = market.yes_token
    exchange.set_book(yes, [(u("0.40"), u("100")), (u("0.39"), u("50"))], [], START_MS)
    exchange.rest(yes, BUY, u("0.40"), "A", "alice", u("10"), START_MS)
    exchange.rest(yes, BUY, u("0.40"), "B", "bob", u("10"), START_MS)
    assert exchange.levels(yes, BUY, skip_owner="alice") == [
        (u("0.40"), u("110")),
        (u("0.39"), u("50")),
    ]
    assert exchange.own_levels(yes, BUY, "alice") == [(u("0.40"), u("10"))]
    exchange.trade(yes, SELL, u("115"), START_MS, taker_owner="alice")
    assert exchange.drain_maker_matches() == [
        MakerMatch(market.condition_id, yes, SELL, u("0.40"), u("110"), (("B", u("10")),), "alice"),
    ]
    # Alice's bid kept its place and its size; the taker went on to the next level.
    assert exchange.resting_size("A") == u("10")
    assert exchange.levels(yes, BUY) == [(u("0.40"), u("10")), (u("0.39"), u("45"))]
    assert exchange.levels(yes, BUY, skip_owner="alice") == [(u("0.39"), u("45"))]


def test_the_flow_fills_accounts_in_queue_order_and_never_cancels_their_size() -> None:
    market, exchange = one_market(seed=5)
    yes, no = market.yes_token, market.no_token
    where: dict[str, tuple[str, Side, int]] = {}  # order id -> (token, side, price) it rests at
    remaining: dict[str, int] = {}
    serial = 0

    def rest_at_touch(token: str, side: Side, now: int) -> None:
        nonlocal serial
        top = exchange.levels(token, side)
        if not top:
            return
        serial += 1
        order_id = f"{token[:4]}-{side.name}-{serial}"
        exchange.rest(token, side, top[0][0], order_id, "alice", u("25"), now)
        where[order_id] = (token, side, top[0][0])
        remaining[order_id] = u("25")

    for token, side in ((yes, BUY), (yes, SELL), (no, BUY)):
        rest_at_touch(token, side, START_MS)
    fills = queued_fills = clamped = 0
    for i in range(6_000):
        now = START_MS + i
        ahead = {order_id: exchange.queue_ahead(order_id) for order_id in remaining}
        shown = {order_id: level(exchange, *where[order_id]) for order_id in remaining}
        traded = any(e["event_type"] == "last_trade_price" for e in exchange.step(now))
        for match in exchange.drain_maker_matches():
            # One step is one action: the taker took the size ahead of an order, then the order.
            for order_id, size in match.makers:
                before = remaining[order_id]
                assert size == min(before, match.size - ahead[order_id]), (i, match)
                remaining[order_id] -= size
                fills += 1
                queued_fills += ahead[order_id] > 0
        for order_id, (token, side, price) in list(where.items()):
            assert exchange.resting_size(order_id) == remaining[order_id]
            if remaining[order_id]:
                # Flow only cancels flow: the level always shows at least the account's size,
                # and the size ahead of an order never grows (new size joins behind it).
                after = level(exchange, token, side, price)
                assert after >= remaining[order_id]
                assert exchange.queue_ahead(order_id) <= ahead[order_id]
                # A cancel of the whole level (no trade) left exactly the accounts' orders.
                clamped += not traded and shown[order_id] > after == remaining[order_id]
                if i % 100 or exchange.levels(token, side)[0][0] == price:
                    continue
                exchange.cancel_resting(order_id, now)  # left behind: quote at the touch again
            del where[order_id], remaining[order_id]
            rest_at_touch(token, side, now)
    assert fills >= 30, fills
    assert queued_fills >= 15, queued_fills  # queue position mattered, not just empty levels
    assert clamped >= 5, clamped
    stats = exchange.statistics()
    assert stats.events["price_change"] > 1_000


# --- over the wire ------------------------------------------------------------------------------


def auth_frame(trader: Trader) -> str:
    creds = trader.creds
    auth = {
        "apiKey": creds.api_key.reveal(),
        "secret": creds.secret.reveal(),
        "passphrase": creds.passphrase.reveal(),
    }
    return orjson.dumps({"auth": auth, "type": "user"}).decode()


async def test_simulated_sell_flow_fills_a_resting_bid_as_a_maker_on_the_user_channel() -> None:
    one = {"binary_markets": 1, "temperature_events": 0, "election_events": 0}
    async with trading_venue(**one) as (venue, trader):
        market = binary(venue)
        yes = market.yes_token
        price, displayed = bids(venue, yes)[0]
        api_key = trader.creds.api_key.reveal()
        start = await trader.balance()
        async with market_ws(venue.ws_user_url) as ws:
            await ws.send_message(auth_frame(trader))
            await frames_until_pong(ws)
            order_id, body = trader.order_body(market, yes, BUY, price, 10 * ONE)
            assert (await trader.place(body)).json()["status"] == "live"
            assert venue.exchange.queue_ahead(order_id) == displayed
            await frames_until_pong(ws)  # the PLACEMENT
            order = venue.app.accounts.orders[order_id]
            for _ in range(5_000):
                ahead = venue.exchange.queue_ahead(order_id)
                events = await venue.step()
                if order.matched:
                    break
            else:
                pytest.fail("the flow never reached the resting bid")
            filled = order.matched
            # The step's taker sold through the size ahead of the bid, then into it.
            traded = sum(
                parse_units(e["size"])
                for e in events
                if e["event_type"] == "last_trade_price"
                and e["asset_id"] == yes
                and e["price"] == f"{price / ONE:g}"
            )
            assert filled == min(10 * ONE, traded - ahead) > 0
            assert venue.exchange.resting_size(order_id) == 10 * ONE - filled
            # Maker: no fee; the reserved pUSD pays for the shares.
            assert await trader.balance() == start - price * filled // ONE
            assert await trader.balance(yes) == filled
            frames = await frames_until_pong(ws)
        mapper = UserEventMapper(api_key)
        out = [
            item
            for frame in frames
            for event in decode_user_frame(frame)
            for item in mapper.apply(event, 1.0)
        ]
        updates = [e for e in out if isinstance(e, OrderUpdate)]
        assert [(e.order_id, e.filled, e.status) for e in updates] == [
            (order_id, filled, OrderStatus.LIVE if filled < 10 * ONE else OrderStatus.MATCHED)
        ]
        [first] = [e for e in out if isinstance(e, UserFill)]
        fill: Fill = first.fill
        assert (fill.order_id, fill.token_id, fill.side, fill.price, fill.size) == (
            order_id,
            yes,
            BUY,
            price,
            filled,
        )
        assert (fill.liquidity, fill.fee, first.provisional) == (Liquidity.MAKER, 0, True)
        [confirmed] = [e for e in out if isinstance(e, FillConfirmed)]
        assert confirmed.trade_id == first.trade_id
        trades = (await trader.request("GET", "/data/trades")).json()["data"]
        assert [(t["id"], t["trader_side"]) for t in trades] == [(first.trade_id, "MAKER")]
        assert trades[0]["owner"] != api_key  # the taker is the simulated flow


async def test_an_account_never_trades_with_its_own_resting_order() -> None:
    async with trading_venue(demo_balance=Decimal("1000000")) as (venue, trader):
        market = binary(venue)
        yes = market.yes_token
        ask, displayed = asks(venue, yes)[0]
        # A NO bid at 1 - ask is a YES ask at ``ask``: it joins that level behind ``displayed``.
        mine, body = trader.order_body(market, market.no_token, BUY, ONE - ask, 10 * ONE)
        assert (await trader.place(body)).json()["status"] == "live"
        assert asks(venue, yes)[0] == (ask, displayed + 10 * ONE)
        # Only ``displayed`` is there for us: a FOK for one share more is killed.
        _, body = trader.order_body(market, yes, BUY, ask, displayed + ONE, OrderType.FOK)
        assert (await trader.place(body)).json()["errorMsg"] == FOK_NOT_FILLED
        _, body = trader.order_body(market, yes, BUY, ask, displayed + 5 * ONE, OrderType.FAK)
        result = (await trader.place(body)).json()
        assert (result["status"], result["takingAmount"]) == ("matched", f"{displayed / ONE:g}")
        assert venue.app.accounts.orders[mine].matched == 0
        assert venue.exchange.resting_size(mine) == 10 * ONE
        assert asks(venue, yes)[0] == (ask, 10 * ONE)  # only our own order is left there
        # A buy that would rest at (or through) our own ask is refused, post-only or not.
        for post_only in (False, True):
            _, body = trader.order_body(market, yes, BUY, ask, 5 * ONE)
            if post_only:
                body = orjson.dumps({**orjson.loads(body), "postOnly": True})
            assert (await trader.place(body)).json()["errorMsg"] == CROSSES_OWN_ORDER
        assert await trader.balance(yes) == displayed
        assert asks(venue, yes)[0] == (ask, 10 * ONE)

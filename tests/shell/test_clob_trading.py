"""The live trading client against a scripted venue on ``httpx.MockTransport`` (no sockets).

The fake venue checks what the real one checks on every private request: the L2 HMAC over the
exact body bytes received, the API key and passphrase, and a timestamp within a second of *its*
clock. The local clock of every client here runs an hour slow, so a client that stamped requests
with local time would fail every check. Time is virtual (``autojump_clock``), so retries and
``Retry-After`` are asserted as exact timestamps.
"""

from __future__ import annotations

import base64
import random
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import orjson
import pytest
import trio
from loguru import logger

from bot.config import Secret, SignatureType
from bot.core.auth import ApiCreds, hmac_matches
from bot.core.backoff import Backoff
from bot.core.money import Side
from bot.core.signing import exchange_for
from bot.core.wire.user import OrderStatus
from bot.shell.clob_trading import (
    ALL_RATE_LIMITS,
    AssetType,
    OrderOutcomeUnknown,
    OrderRequest,
    TradingClient,
    VenueRejected,
)
from bot.shell.rest import OutcomeUnknown, RegionBlocked, RestClient
from bot.shell.signer import OrderSigner, order_hash

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

FIXTURES = Path(__file__).parent.parent / "fixtures"
CLOB = "http://venue.test"
PRIVATE_KEY = "0x" + "cd" * 32
API_KEY = "11111111-2222-3333-4444-555555555555"
API_SECRET = base64.urlsafe_b64encode(b"polybot-test-hmac-secret-32bytes").decode()
PASSPHRASE = "correct-horse-battery-staple"
SECRETS = (PRIVATE_KEY, PRIVATE_KEY.removeprefix("0x"), API_KEY, API_SECRET, PASSPHRASE)
TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
EPOCH = 1_760_000_000.0
SKEW_S = -3600.0
"""The local clock runs an hour slow."""


def venue_now() -> float:
    return EPOCH + trio.current_time()


def local_clock() -> float:
    return venue_now() + SKEW_S


def reply(
    status: int, body: Any = None, **headers: str
) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _request: httpx.Response(status, json=body, headers=headers)


def accept(request: httpx.Request) -> httpx.Response:
    """The venue's answer to a good ``POST /order``: the id it derives from the signed order."""
    oid = order_hash(request.content, exchange=exchange_for(False))
    return httpx.Response(200, json={"success": True, "orderID": oid, "status": "live"})


def timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("timed out waiting for the answer", request=request)


class Venue:
    """Routes ``(method, path)`` to scripted replies (the last one repeats) and checks L2 auth."""

    def __init__(self) -> None:
        self.scripts: dict[tuple[str, str], list[Callable[[httpx.Request], httpx.Response]]] = {}
        self.requests: list[httpx.Request] = []
        self.times: list[float] = []
        self.auth_failures: list[str] = []

    def script(
        self, method: str, path: str, *replies: Callable[[httpx.Request], httpx.Response]
    ) -> None:
        self.scripts[(method, path)] = list(replies)

    def sent(self, method: str, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if (r.method, r.url.path) == (method, path)]

    def times_of(self, method: str, path: str) -> list[float]:
        return [
            t
            for r, t in zip(self.requests, self.times, strict=True)
            if (r.method, r.url.path) == (method, path)
        ]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.times.append(trio.current_time())
        if request.url.path == "/time":
            return httpx.Response(200, text=str(int(venue_now())))
        self._check_auth(request)
        replies = self.scripts.get((request.method, request.url.path))
        if not replies:
            return httpx.Response(404, json={"error": f"not found: {request.url.path}"})
        handler = replies.pop(0) if len(replies) > 1 else replies[0]
        return handler(request)

    def _check_auth(self, request: httpx.Request) -> None:
        h = request.headers
        where = f"{request.method} {request.url.path}"
        if h.get("POLY_API_KEY") != API_KEY or h.get("POLY_PASSPHRASE") != PASSPHRASE:
            self.auth_failures.append(f"{where}: bad key or passphrase")
            return
        timestamp = int(h["POLY_TIMESTAMP"])
        if abs(timestamp - venue_now()) > 1:
            self.auth_failures.append(f"{where}: timestamp {timestamp} vs {venue_now()}")
        if not hmac_matches(
            Secret(API_SECRET),
            timestamp,
            request.method,
            request.url.path,
            request.content,
            h["POLY_SIGNATURE"],
        ):
            self.auth_failures.append(f"{where}: HMAC does not match the body")


@asynccontextmanager
async def trading(venue: Venue, *, max_attempts: int = 4) -> AsyncIterator[TradingClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(venue)) as http:
        rest = RestClient(
            http,
            gamma_url=CLOB + "/gamma",
            clob_url=CLOB,
            backoff=Backoff(base_s=1.0, max_s=8.0),
            rng=random.Random(7),
            max_attempts=max_attempts,
            rate_limits=ALL_RATE_LIMITS,
        )
        yield TradingClient(
            rest,
            creds=ApiCreds(Secret(API_KEY), Secret(API_SECRET), Secret(PASSPHRASE)),
            signer=SIGNER,
            signature_type=SignatureType.EOA,
            wall_clock=local_clock,
            clock_refresh_s=60.0,
        )


SIGNER = OrderSigner(Secret(PRIVATE_KEY))


async def place(client: TradingClient, side: Side = Side.BUY, price: int = 520_000) -> Any:
    return await client.place(TOKEN, side, price, 10_000_000, tick=10_000, neg_risk=False)


def body_id(request: httpx.Request) -> str:
    return order_hash(request.content, exchange=exchange_for(False))


@pytest.fixture
def venue() -> Venue:
    return Venue()


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="DEBUG", format="{message} {extra}")
    yield lines
    logger.remove(sink)


# --------------------------------------------------------------------------------------------


async def test_place_signs_the_exact_body_with_venue_time(
    venue: Venue, autojump_clock: trio.testing.MockClock
) -> None:
    venue.script("POST", "/order", accept)
    async with trading(venue) as client:
        result = await place(client)
        assert client.clock_offset_s == pytest.approx(-SKEW_S, abs=1.0)
    [post] = venue.sent("POST", "/order")
    assert venue.auth_failures == []
    assert post.headers["POLY_ADDRESS"] == SIGNER.address
    assert int(post.headers["POLY_TIMESTAMP"]) == int(venue_now())  # not the local clock
    assert result.accepted
    assert result.order_id == body_id(post)
    assert result.response is not None
    assert result.response.status is OrderStatus.LIVE
    body = orjson.loads(post.content)
    assert body["owner"] == API_KEY
    assert body["orderType"] == "GTC"
    # 10 shares at 0.52: the BUY gives 5.2 pUSD for 10 shares.
    assert (body["order"]["makerAmount"], body["order"]["takerAmount"]) == ("5200000", "10000000")
    assert client.unconfirmed == frozenset()


async def test_a_tampered_body_would_not_verify(
    venue: Venue, autojump_clock: trio.testing.MockClock
) -> None:
    """The venue check is not vacuous: the same signature over other bytes fails."""
    venue.script("POST", "/order", accept)
    async with trading(venue) as client:
        await place(client)
    [post] = venue.sent("POST", "/order")
    ts = int(post.headers["POLY_TIMESTAMP"])
    tampered = post.content.replace(b'"GTC"', b'"FOK"')
    sig = post.headers["POLY_SIGNATURE"]
    assert not hmac_matches(Secret(API_SECRET), ts, "POST", "/order", tampered, sig)
    assert not hmac_matches(Secret(API_SECRET), ts + 1, "POST", "/order", post.content, sig)


async def test_clock_offset_is_refreshed_periodically(
    venue: Venue, autojump_clock: trio.testing.MockClock
) -> None:
    venue.script("GET", "/data/orders", reply(200, {"data": [], "next_cursor": "LTE="}))
    async with trading(venue) as client:
        await client.open_orders()
        await client.open_orders()
        await trio.sleep(61)
        await client.open_orders()
    assert venue.times_of("GET", "/time") == [0.0, 61.0]
    assert venue.auth_failures == []


async def test_425_and_503_are_retried_with_fresh_headers_then_succeed(
    venue: Venue, autojump_clock: trio.testing.MockClock
) -> None:
    venue.script(
        "POST",
        "/order",
        reply(425, {"error": "matching engine restarting"}),
        reply(503, {"error": "Trading is currently disabled"}),
        accept,
    )
    async with trading(venue) as client:
        result = await place(client)
    posts = venue.sent("POST", "/order")
    assert len(posts) == 3
    assert {p.content for p in posts} == {posts[0].content}  # the same signed order each time
    assert result.order_id == body_id(posts[0])
    assert venue.auth_failures == []  # each retry was stamped with the venue's time at send
    times = venue.times_of("POST", "/order")
    assert times[1] > times[0]
    assert times[2] > times[1]


async def test_429_honours_retry_after(
    venue: Venue, autojump_clock: trio.testing.MockClock
) -> None:
    venue.script(
        "POST", "/order", reply(429, {"error": "slow down"}, **{"Retry-After": "7"}), accept
    )
    async with trading(venue) as client:
        await place(client)
    first, second = venue.times_of("POST", "/order")
    assert second - first == pytest.approx(7.0)
    assert venue.auth_failures == []


async def test_html_403_raises_region_blocked(
    venue: Venue, autojump_clock: trio.testing.MockClock
) -> None:
    venue.script(
        "POST",
        "/order",
        lambda _r: httpx.Response(
            403,
            text="<!DOCTYPE html><html>Sorry, you have been blocked</html>",
            headers={"content-type": "text/html"},
        ),
    )
    async with trading(venue) as client:
        with pytest.raises(RegionBlocked, match="region is blocked"):
            await place(client)
        assert client.unconfirmed == frozenset()
    assert len(venue.sent("POST", "/order")) == 1


async def test_balance_reject_refreshes_once_and_retries_once(
    venue: Venue, autojump_clock: trio.testing.MockClock
) -> None:
    venue.script("POST", "/order", reply(400, {"error": "not enough balance / allowance"}), accept)
    venue.script("GET", "/balance-allowance/update", reply(200, {}))
    async with trading(venue) as client:
        result = await place(client, side=Side.SELL)
    posts = venue.sent("POST", "/order")
    [update] = venue.sent("GET", "/balance-allowance/update")
    assert len(posts) == 2
    assert posts[0].content == posts[1].content
    assert result.order_id == body_id(posts[1])
    assert (
        venue.requests.index(posts[0])
        < venue.requests.index(update)
        < venue.requests.index(posts[1])
    )
    # A SELL spends outcome tokens: the conditional balance of that token is refreshed.
    assert dict(update.url.params) == {
        "asset_type": "CONDITIONAL",
        "signature_type": "0",
        "token_id": TOKEN,
    }
    assert venue.auth_failures == []


async def test_a_second_balance_reject_is_raised(
    venue: Venue, autojump_clock: trio.testing.MockClock
) -> None:
    venue.script(
        "POST",
        "/order",
        lambda _r: httpx.Response(
            200,
            json={"success": False, "orderID": "", "errorMsg": "not enough balance / allowance"},
        ),
    )
    venue.script("GET", "/balance-allowance/update", reply(200, {}))
    async with trading(venue) as client:
        with pytest.raises(VenueRejected) as caught:
            await place(client)
        assert client.unconfirmed == frozenset()
    assert caught.value.balance
    assert not caught.value.bug
    assert len(venue.sent("POST", "/order")) == 2
    [update] = venue.sent("GET", "/balance-allowance/update")
    assert update.url.params["asset_type"] == "COLLATERAL"


async def test_tick_reject_is_a_bug_and_not_retried(
    venue: Venue, autojump_clock: trio.testing.MockClock
) -> None:
    message = "order 0xabc is invalid. Price (0.525) breaks minimum tick size rule: 0.01"
    venue.script(
        "POST", "/order", reply(400, {"error": message, "code": "INVALID_ORDER_MIN_TICK_SIZE"})
    )
    async with trading(venue) as client:
        with pytest.raises(VenueRejected) as caught:
            await place(client)
    assert caught.value.bug
    assert caught.value.status == 400
    assert "bug" in str(caught.value)
    assert len(venue.sent("POST", "/order")) == 1
    assert venue.sent("GET", "/balance-allowance/update") == []


async def test_timeout_raises_outcome_unknown_with_the_order_id_and_reconcile_finds_it(
    venue: Venue, autojump_clock: trio.testing.MockClock
) -> None:
    venue.script("POST", "/order", timeout)
    async with trading(venue) as client:
        with pytest.raises(OutcomeUnknown) as caught:
            await place(client)
        [post] = venue.sent("POST", "/order")  # never re-sent
        expected = body_id(post)
        assert isinstance(caught.value, OrderOutcomeUnknown)
        assert caught.value.order_ids == (expected,)
        assert client.unconfirmed == {expected}
        venue.script(
            "GET",
            f"/data/order/{expected}",
            reply(
                200,
                {
                    "id": expected,
                    "status": "MATCHED",
                    "market": "0xdd22",
                    "asset_id": TOKEN,
                    "side": "BUY",
                    "price": "0.52",
                    "original_size": "10",
                    "size_matched": "10",
                },
            ),
        )
        found = await client.reconcile(expected)
        assert client.unconfirmed == frozenset()
    assert found.found
    assert found.status is OrderStatus.MATCHED
    assert found.order is not None
    assert found.order.size_matched == 10_000_000
    assert len(venue.sent("POST", "/order")) == 1
    assert venue.auth_failures == []


async def test_reconcile_falls_back_to_trades(
    venue: Venue, autojump_clock: trio.testing.MockClock
) -> None:
    trade = orjson.loads((FIXTURES / "nautilus_crates/http_trade_report.json").read_bytes())
    trade["taker_order_id"] = "0xours"
    other = {**trade, "id": "t2", "taker_order_id": "0xsomeone-else"}
    venue.script("GET", "/data/order/0xours", reply(404, {"error": "order not found"}))
    venue.script("GET", "/data/order/0xlost", reply(200, None))
    venue.script("GET", "/data/trades", reply(200, {"data": [trade, other], "next_cursor": "LTE="}))
    async with trading(venue) as client:
        ours = await client.reconcile("0xours", since_s=1_700_000_000)
        lost = await client.reconcile("0xlost")
    assert ours.found
    assert ours.order is None
    assert [t.id for t in ours.trades] == [trade["id"]]
    assert not lost.found
    assert lost.status is None
    assert venue.sent("GET", "/data/trades")[0].url.params["after"] == "1700000000"


async def test_batch_over_15_is_refused_before_signing(
    venue: Venue, autojump_clock: trio.testing.MockClock
) -> None:
    request = OrderRequest(TOKEN, Side.BUY, 520_000, 10_000_000, tick=10_000, neg_risk=False)
    async with trading(venue) as client:
        with pytest.raises(ValueError, match="1 to 15 orders, got 16"):
            await client.place_batch([request] * 16)
    assert venue.requests == []


async def test_batch_reports_each_leg(venue: Venue, autojump_clock: trio.testing.MockClock) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        first, _ = orjson.loads(request.content)
        oid = order_hash(first, exchange=exchange_for(False))
        return httpx.Response(
            200,
            json=[
                {"success": True, "orderID": oid, "status": "live"},
                {
                    "success": True,
                    "orderID": "",
                    "errorMsg": "invalid post-only order: order crosses book",
                },
            ],
        )

    venue.script("POST", "/orders", answer)
    buy = OrderRequest(TOKEN, Side.BUY, 520_000, 10_000_000, tick=10_000, neg_risk=False)
    cross = OrderRequest(
        TOKEN, Side.SELL, 100_000, 10_000_000, tick=10_000, neg_risk=False, post_only=True
    )
    async with trading(venue) as client:
        ok, refused = await client.place_batch([buy, cross])
        assert client.unconfirmed == frozenset()
    [post] = venue.sent("POST", "/orders")
    legs = orjson.loads(post.content)
    assert [leg["postOnly"] for leg in legs] == [False, True]
    assert ok.accepted
    assert ok.order_id == order_hash(legs[0], exchange=exchange_for(False))
    assert not refused.accepted
    assert refused.rejection is not None
    assert refused.order_id == order_hash(legs[1], exchange=exchange_for(False))
    assert "crosses book" in refused.rejection.message
    assert not refused.rejection.bug
    assert venue.auth_failures == []


async def test_cancels_are_signed_and_retried_on_5xx(
    venue: Venue, autojump_clock: trio.testing.MockClock
) -> None:
    venue.script(
        "DELETE", "/order", reply(500, {"error": "internal"}), reply(200, {"canceled": ["0x1"]})
    )
    venue.script(
        "DELETE", "/orders", reply(200, {"canceled": ["0x1"], "not_canceled": {"0x2": "matched"}})
    )
    venue.script("DELETE", "/cancel-all", reply(200, {"canceled": []}))
    venue.script("DELETE", "/cancel-market-orders", reply(200, {"canceled": ["0x3"]}))
    async with trading(venue) as client:
        one = await client.cancel("0x1")
        many = await client.cancel_many(["0x1", "0x2"])
        everything = await client.cancel_all()
        market = await client.cancel_market(market="0xcond")
    assert one.canceled == ("0x1",)
    assert len(venue.sent("DELETE", "/order")) == 2
    assert orjson.loads(venue.sent("DELETE", "/order")[0].content) == {"orderID": "0x1"}
    assert many.not_canceled == {"0x2": "matched"}
    assert everything.canceled == ()
    assert venue.sent("DELETE", "/cancel-all")[0].content == b""
    assert market.canceled == ("0x3",)
    assert orjson.loads(venue.sent("DELETE", "/cancel-market-orders")[0].content) == {
        "market": "0xcond"
    }
    assert venue.auth_failures == []


async def test_open_orders_follow_the_cursor_and_balance_reads(
    venue: Venue, autojump_clock: trio.testing.MockClock
) -> None:
    order = {
        "id": "0x1",
        "status": "LIVE",
        "market": "0xm",
        "asset_id": TOKEN,
        "side": "SELL",
        "price": "0.6",
        "original_size": "5",
    }
    venue.script(
        "GET",
        "/data/orders",
        reply(200, {"data": [order], "next_cursor": "MTA="}),
        reply(200, {"data": [{**order, "id": "0x2"}], "next_cursor": "LTE="}),
    )
    venue.script("GET", "/balance-allowance", reply(200, {"balance": "1000000000"}))
    async with trading(venue) as client:
        orders = await client.open_orders(market="0xm")
        balance = await client.balance_allowance(AssetType.COLLATERAL)
        with pytest.raises(ValueError, match="token_id"):
            await client.balance_allowance(AssetType.CONDITIONAL)
    assert [o.id for o in orders] == ["0x1", "0x2"]
    cursors = [r.url.params["next_cursor"] for r in venue.sent("GET", "/data/orders")]
    assert cursors == ["MA==", "MTA="]
    assert balance.balance == 1_000_000_000
    assert venue.auth_failures == []


async def test_heartbeat_chains_ids_and_restarts_on_a_stale_one(
    venue: Venue, autojump_clock: trio.testing.MockClock
) -> None:
    venue.script(
        "POST",
        "/v1/heartbeats",
        reply(200, {"heartbeat_id": "hb-1"}),
        reply(400, {"error": "invalid heartbeat id"}),
        reply(200, {"heartbeat_id": "hb-2"}),
    )
    async with trading(venue) as client:
        assert await client.heartbeat() == "hb-1"
        assert await client.heartbeat() == "hb-2"
    sent = [orjson.loads(r.content)["heartbeat_id"] for r in venue.sent("POST", "/v1/heartbeats")]
    assert sent == ["", "hb-1", ""]


async def test_no_secret_in_logs_or_errors(
    venue: Venue, log_lines: list[str], autojump_clock: trio.testing.MockClock
) -> None:
    venue.script(
        "POST",
        "/order",
        reply(400, {"error": "not enough balance / allowance"}),
        reply(
            400, {"error": "Size (1) lower than the minimum: 5", "code": "INVALID_ORDER_MIN_SIZE"}
        ),
        timeout,
    )
    venue.script("GET", "/balance-allowance/update", reply(200, {}))
    errors: list[BaseException] = []
    async with trading(venue) as client:
        for _ in range(2):
            try:
                await place(client)
            except (VenueRejected, OutcomeUnknown) as exc:
                errors.append(exc)
        texts = [repr(client), *log_lines]
    assert [type(e) for e in errors] == [VenueRejected, OrderOutcomeUnknown]
    assert log_lines  # the rejects and the unknown outcome were logged
    for error in errors:
        texts += [str(error), repr(error), str(error.__cause__)]
    for text in texts:
        for secret in SECRETS:
            assert secret not in text

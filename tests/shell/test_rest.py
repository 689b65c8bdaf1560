"""The REST layer against ``httpx.MockTransport`` on the autojump clock: no sockets, virtual time.

Every handler records ``trio.current_time()`` per request, so retries, ``Retry-After`` and the
rate limiter are asserted as exact virtual timestamps.
"""

from __future__ import annotations

import random
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import orjson
import pytest
import trio
import trio.testing

from bot.core.backoff import Backoff
from bot.core.errors import FrameDecodeError, RemoteProtocolError
from bot.core.wire.clob import CURSOR_END, CURSOR_START
from bot.shell.rest import (
    BOOKS_PER_REQUEST,
    DEFAULT_RATE_LIMITS,
    GAMMA_MAX_OFFSET,
    REGION_BLOCKED_MESSAGE,
    Api,
    OutcomeUnknown,
    RateLimit,
    RateLimiter,
    RegionBlocked,
    RestClient,
    RestError,
    SlidingWindow,
    VenueUnavailable,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterable

FIXTURES = Path(__file__).parent.parent / "fixtures"
GAMMA = "http://venue.test/gamma"
CLOB = "http://venue.test"
BACKOFF = Backoff(base_s=1.0, max_s=8.0)
SEED = 1234


class Recorder:
    """Wraps a handler: records each request and its virtual time."""

    def __init__(self, handler: Callable[[httpx.Request], httpx.Response]) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []
        self.times: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.times.append(trio.current_time())
        return self.handler(request)

    @property
    def paths(self) -> list[str]:
        return [r.url.path for r in self.requests]


@asynccontextmanager
async def rest_client(
    handler: Callable[[httpx.Request], httpx.Response],
    *,
    max_attempts: int = 4,
    rate_limits: Iterable[RateLimit] = (),
) -> AsyncIterator[tuple[RestClient, Recorder]]:
    recorder = Recorder(handler)
    async with httpx.AsyncClient(transport=httpx.MockTransport(recorder)) as client:
        rest = RestClient(
            client,
            gamma_url=GAMMA + "/",  # a trailing slash is tolerated
            clob_url=CLOB,
            backoff=BACKOFF,
            rng=random.Random(SEED),
            max_attempts=max_attempts,
            rate_limits=rate_limits,
        )
        yield rest, recorder


def json_response(data: Any, status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(
        status, content=orjson.dumps(data), headers={"content-type": "application/json", **headers}
    )


def script(*responses: httpx.Response | Exception) -> Callable[[httpx.Request], httpx.Response]:
    """A handler answering with ``responses`` in order (exceptions are raised)."""
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        item = queue.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    return handler


def expected_delays(*attempts: int) -> list[float]:
    """The backoff delays the client draws, from a generator seeded like the client's."""
    rng = random.Random(SEED)
    return [BACKOFF.delay(attempt, rng) for attempt in attempts]


# --- plain requests ----------------------------------------------------------------------------


async def test_get_json_builds_urls_and_passes_params(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with rest_client(script(json_response({"ok": True}), json_response([1]))) as (rest, rec):
        assert await rest.get_json(Api.GAMMA, "/events", {"active": True, "id": ["1", "2"]}) == {
            "ok": True
        }
        assert await rest.get_json(Api.CLOB, "/ok") == [1]
    assert str(rec.requests[0].url) == f"{GAMMA}/events?active=true&id=1&id=2"
    assert str(rec.requests[1].url) == f"{CLOB}/ok"


async def test_post_sends_json(autojump_clock: trio.testing.MockClock) -> None:
    async with rest_client(script(json_response({"done": 1}))) as (rest, rec):
        assert await rest.post_json(Api.CLOB, "/x", [{"token_id": "1"}]) == {"done": 1}
    (request,) = rec.requests
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/json"
    assert orjson.loads(request.content) == [{"token_id": "1"}]


async def test_path_must_be_absolute(autojump_clock: trio.testing.MockClock) -> None:
    async with rest_client(script()) as (rest, _rec):
        with pytest.raises(ValueError, match="must start with '/'"):
            await rest.get(Api.CLOB, "time")


async def test_fetch_server_time_and_tick_size(autojump_clock: trio.testing.MockClock) -> None:
    answers = script(json_response(1_760_000_000), json_response({"minimum_tick_size": 0.001}))
    async with rest_client(answers) as (rest, rec):
        assert await rest.fetch_server_time() == 1_760_000_000
        assert await rest.fetch_tick_size("42") == 1_000
    assert rec.paths == ["/time", "/tick-size"]
    assert rec.requests[1].url.params["token_id"] == "42"


async def test_fetch_book_decodes_a_real_capture(autojump_clock: trio.testing.MockClock) -> None:
    body = (FIXTURES / "nautilus_py_http/book.json").read_bytes()
    answers = script(httpx.Response(200, content=body))
    async with rest_client(answers) as (rest, rec):
        book = await rest.fetch_book("123")
    assert rec.requests[0].url.params["token_id"] == "123"
    assert book.bids
    assert book.asks


# --- pagination --------------------------------------------------------------------------------


def gamma_listing(items: list[dict[str, Any]]) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        limit = int(request.url.params["limit"])
        offset = int(request.url.params["offset"])
        return json_response(items[offset : offset + limit])

    return handler


@pytest.mark.parametrize(("total", "pages"), [(0, 1), (99, 1), (100, 2), (250, 3), (300, 4)])
async def test_gamma_markets_pages_until_a_short_page(
    autojump_clock: trio.testing.MockClock, total: int, pages: int
) -> None:
    items = [{"conditionId": f"0x{n}"} for n in range(total)]
    lines: list[str] = []
    async with rest_client(gamma_listing(items)) as (rest, rec):
        markets = await rest.fetch_gamma_markets({"closed": False}, progress=lines.append)
    assert [m.condition_id for m in markets] == [item["conditionId"] for item in items]
    assert [int(r.url.params["offset"]) for r in rec.requests] == [100 * n for n in range(pages)]
    assert all(r.url.params["limit"] == "100" for r in rec.requests)
    assert all(r.url.params["closed"] == "false" for r in rec.requests)
    assert rec.paths == ["/gamma/markets"] * pages
    assert lines[-1] == f"gamma /markets: {total} markets (page {pages})"


async def test_gamma_events_pages_with_a_custom_page_size(
    autojump_clock: trio.testing.MockClock,
) -> None:
    items = [{"id": str(n), "title": f"E{n}"} for n in range(7)]
    lines: list[str] = []
    async with rest_client(gamma_listing(items)) as (rest, rec):
        events = await rest.fetch_gamma_events(page_size=3, progress=lines.append)
    assert [e.id for e in events] == [str(n) for n in range(7)]
    assert [r.url.params["offset"] for r in rec.requests] == ["0", "3", "6"]
    assert lines == [
        "gamma /events: 3 events (page 1)",
        "gamma /events: 6 events (page 2)",
        "gamma /events: 7 events (page 3)",
    ]


async def test_gamma_paging_stops_at_the_offset_limit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    page = [{"conditionId": "0x1"}] * 100

    def endless(request: httpx.Request) -> httpx.Response:
        assert int(request.url.params["offset"]) <= GAMMA_MAX_OFFSET
        return json_response(page)

    lines: list[str] = []
    async with rest_client(endless) as (rest, rec):
        markets = await rest.fetch_gamma_markets(progress=lines.append)
    assert len(rec.requests) == GAMMA_MAX_OFFSET // 100 + 1
    assert len(markets) == len(rec.requests) * 100
    assert lines[-1] == "gamma /markets: stopped at Gamma's offset limit 10000"


@pytest.mark.parametrize("size", [0, 101, 500])
async def test_gamma_page_size_is_capped(autojump_clock: trio.testing.MockClock, size: int) -> None:
    async with rest_client(script()) as (rest, rec):
        with pytest.raises(ValueError, match=r"page_size must be 1\.\.100"):
            await rest.fetch_gamma_markets(page_size=size)
    assert rec.requests == []


def clob_market(n: int) -> dict[str, Any]:
    return {
        "condition_id": f"0x{n}",
        "tokens": [{"token_id": f"{n}1", "outcome": "Yes"}, {"token_id": f"{n}2", "outcome": "No"}],
        "minimum_tick_size": 0.01,
        "minimum_order_size": 5,
    }


async def test_clob_markets_follow_next_cursor(autojump_clock: trio.testing.MockClock) -> None:
    pages = {
        CURSOR_START: {"data": [clob_market(1), clob_market(2)], "next_cursor": "Mg=="},
        "Mg==": {"data": [clob_market(3)], "next_cursor": "Mw=="},
        "Mw==": {"data": [], "next_cursor": CURSOR_END},
    }

    def handler(request: httpx.Request) -> httpx.Response:
        return json_response(pages[request.url.params["next_cursor"]])

    lines: list[str] = []
    async with rest_client(handler) as (rest, rec):
        markets = await rest.fetch_clob_markets(progress=lines.append)
    assert [m.condition_id for m in markets] == ["0x1", "0x2", "0x3"]
    assert [r.url.params["next_cursor"] for r in rec.requests] == [CURSOR_START, "Mg==", "Mw=="]
    assert lines[-1] == "clob /markets: 3 markets (page 3)"


async def test_real_clob_markets_page(autojump_clock: trio.testing.MockClock) -> None:
    body = (FIXTURES / "nautilus_py_http/markets.json").read_bytes()
    last = orjson.dumps({"data": [], "next_cursor": CURSOR_END})
    first_cursor = orjson.loads(body)["next_cursor"]

    def handler(request: httpx.Request) -> httpx.Response:
        cursor = request.url.params["next_cursor"]
        return httpx.Response(200, content=body if cursor == CURSOR_START else last)

    async with rest_client(handler) as (rest, rec):
        markets = await rest.fetch_clob_markets()
    assert len(markets) == len(orjson.loads(body)["data"])
    assert [r.url.params["next_cursor"] for r in rec.requests] == [CURSOR_START, first_cursor]


async def test_repeated_cursor_is_a_protocol_error(autojump_clock: trio.testing.MockClock) -> None:
    loop = json_response({"data": [clob_market(1)], "next_cursor": CURSOR_START})
    async with rest_client(lambda _request: loop) as (rest, rec):
        with pytest.raises(RemoteProtocolError, match="repeated the cursor 'MA=='"):
            await rest.fetch_clob_markets()
    assert len(rec.requests) == 1


async def test_books_are_posted_in_chunks(autojump_clock: trio.testing.MockClock) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        asked = orjson.loads(request.content)
        books = [
            {
                "market": "0xm",
                "asset_id": item["token_id"],
                "timestamp": "1",
                "bids": [],
                "asks": [],
            }
            for item in asked
        ]
        return json_response(books)

    tokens = [str(n) for n in range(2 * BOOKS_PER_REQUEST + 1)]
    async with rest_client(handler) as (rest, rec):
        books = await rest.fetch_books(tokens)
    assert [len(orjson.loads(r.content)) for r in rec.requests] == [500, 500, 1]
    assert rec.paths == ["/books"] * 3
    assert [b.asset_id for b in books] == tokens


async def test_no_books_no_request(autojump_clock: trio.testing.MockClock) -> None:
    async with rest_client(script()) as (rest, rec):
        assert await rest.fetch_books([]) == []
    assert rec.requests == []


# --- retries -----------------------------------------------------------------------------------


async def test_429_waits_for_retry_after(autojump_clock: trio.testing.MockClock) -> None:
    answers = script(
        json_response({"error": "Too Many Requests"}, 429, **{"retry-after": "7"}),
        json_response(5),
    )
    async with rest_client(answers) as (rest, rec):
        start = trio.current_time()
        assert await rest.get_json(Api.CLOB, "/time") == 5
        assert trio.current_time() - start == pytest.approx(7.0)
        stats = rest.statistics()
    assert rec.times == [pytest.approx(start), pytest.approx(start + 7.0)]
    assert (stats.requests, stats.retries, stats.throttled) == (2, 1, 1)


async def test_retry_after_from_the_body(autojump_clock: trio.testing.MockClock) -> None:
    body = {"error": "post-only mode", "code": "post_only_mode", "retry_after_seconds": 79}
    answers = script(json_response(body, 503), json_response(5))
    async with rest_client(answers) as (rest, rec):
        assert await rest.get_json(Api.CLOB, "/time") == 5
    assert rec.times[1] - rec.times[0] == pytest.approx(79.0)


async def test_http_date_retry_after_falls_back_to_backoff(
    autojump_clock: trio.testing.MockClock,
) -> None:
    date = "Wed, 21 Oct 2026 07:28:00 GMT"
    answers = script(json_response({}, 429, **{"retry-after": date}), json_response(5))
    async with rest_client(answers) as (rest, rec):
        await rest.get_json(Api.CLOB, "/time")
    assert rec.times[1] - rec.times[0] == pytest.approx(expected_delays(0)[0])


async def test_425_and_503_are_retried_with_backoff(autojump_clock: trio.testing.MockClock) -> None:
    answers = script(
        json_response({"error": "Too Early"}, 425),
        json_response({"error": "Trading is currently disabled"}, 503),
        json_response(5),
    )
    async with rest_client(answers) as (rest, rec):
        assert await rest.get_json(Api.CLOB, "/time") == 5
    first, second = expected_delays(0, 1)
    assert rec.times[1] - rec.times[0] == pytest.approx(first)
    assert rec.times[2] - rec.times[1] == pytest.approx(second)
    assert 0 <= first <= 1.0
    assert 0 <= second <= 2.0


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectError("connection refused"),
        httpx.ReadTimeout("timed out"),
        httpx.RemoteProtocolError("peer closed connection"),
    ],
)
async def test_transport_errors_are_retried(
    autojump_clock: trio.testing.MockClock, error: Exception
) -> None:
    async with rest_client(script(error, json_response(5))) as (rest, rec):
        assert await rest.get_json(Api.CLOB, "/time") == 5
    assert rec.times[1] - rec.times[0] == pytest.approx(expected_delays(0)[0])


async def test_exhausted_attempts_raise_venue_unavailable(
    autojump_clock: trio.testing.MockClock,
) -> None:
    answers = script(*(json_response({"error": "bad gateway"}, 502) for _ in range(3)))
    async with rest_client(answers, max_attempts=3) as (rest, rec):
        with pytest.raises(VenueUnavailable) as caught:
            await rest.get(Api.CLOB, "/time")
    assert len(rec.requests) == 3
    assert caught.value.attempts == 3
    assert caught.value.status == 502
    assert caught.value.message == "HTTP 502: bad gateway"
    assert str(caught.value) == f"gave up after 3 attempts ({CLOB}/time): HTTP 502: bad gateway"
    # Two backoff sleeps, none after the last attempt.
    assert rec.times[-1] - rec.times[0] == pytest.approx(sum(expected_delays(0, 1)))


async def test_exhausted_transport_errors_chain_the_cause(
    autojump_clock: trio.testing.MockClock,
) -> None:
    answers = script(httpx.ConnectError("refused"), httpx.ConnectError("still refused"))
    async with rest_client(answers, max_attempts=2) as (rest, _rec):
        with pytest.raises(VenueUnavailable) as caught:
            await rest.get(Api.GAMMA, "/events")
    assert caught.value.status is None
    assert caught.value.message == "ConnectError: still refused"
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


async def test_bugs_are_not_retried(autojump_clock: trio.testing.MockClock) -> None:
    async with rest_client(script(httpx.UnsupportedProtocol("ftp?"))) as (rest, rec):
        with pytest.raises(httpx.UnsupportedProtocol):
            await rest.get(Api.CLOB, "/time")
    assert len(rec.requests) == 1


async def test_non_idempotent_post_is_not_resent_after_it_may_have_arrived(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with rest_client(script(httpx.ReadTimeout("slow"))) as (rest, rec):
        with pytest.raises(OutcomeUnknown, match="may or may not have taken effect") as caught:
            await rest.post(Api.CLOB, "/order", {"order": {}})
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
    assert len(rec.requests) == 1

    async with rest_client(script(json_response({"error": "could not insert order"}, 500))) as (
        rest,
        rec,
    ):
        with pytest.raises(RestError) as error:
            await rest.post(Api.CLOB, "/order", {"order": {}})
    assert error.value.status == 500
    assert len(rec.requests) == 1


async def test_non_idempotent_post_is_resent_when_the_venue_never_saw_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    answers = script(
        httpx.ConnectError("refused"),
        json_response({"error": "Too Many Requests"}, 429),
        json_response({"error": "Too Early"}, 425),
        json_response({"success": True}),
    )
    async with rest_client(answers) as (rest, rec):
        assert await rest.post_json(Api.CLOB, "/order", {}) == {"success": True}
    assert len(rec.requests) == 4


async def test_idempotent_post_is_retried_on_5xx(autojump_clock: trio.testing.MockClock) -> None:
    answers = script(json_response({"error": "oops"}, 500), json_response([]))
    async with rest_client(answers) as (rest, rec):
        assert await rest.fetch_books(["1"]) == []
    assert len(rec.requests) == 2


# --- errors that are not retried ---------------------------------------------------------------

CLOUDFLARE_HTML = b"""<!DOCTYPE html>
<html lang="en-US"><head><title>Attention Required! | Cloudflare</title></head>
<body><h1>Sorry, you have been blocked</h1></body></html>"""


@pytest.mark.parametrize("content_type", ["text/html; charset=UTF-8", ""])
async def test_html_403_is_region_blocked(
    autojump_clock: trio.testing.MockClock, content_type: str
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    answers = script(httpx.Response(403, content=CLOUDFLARE_HTML, headers=headers))
    async with rest_client(answers) as (rest, rec):
        with pytest.raises(RegionBlocked) as caught:
            await rest.get(Api.GAMMA, "/events")
    assert len(rec.requests) == 1
    assert str(caught.value) == f"{REGION_BLOCKED_MESSAGE} ({GAMMA}/events)"
    assert str(caught.value).startswith(
        "Polymarket answered HTTP 403 with an HTML page: trading from this region is blocked"
    )


async def test_json_403_is_a_rest_error(autojump_clock: trio.testing.MockClock) -> None:
    answers = script(json_response({"error": "Unauthorized/Invalid api key"}, 403))
    async with rest_client(answers) as (rest, _rec):
        with pytest.raises(RestError) as caught:
            await rest.get(Api.CLOB, "/data/orders")
    assert caught.value.status == 403
    assert caught.value.message == "Unauthorized/Invalid api key"


async def test_404_carries_the_venue_text(autojump_clock: trio.testing.MockClock) -> None:
    body = {"error": "No orderbook exists for the requested token id"}
    async with rest_client(script(json_response(body, 404))) as (rest, rec):
        with pytest.raises(RestError) as caught:
            await rest.fetch_book("999")
    assert len(rec.requests) == 1
    assert caught.value.status == 404
    assert caught.value.message == "No orderbook exists for the requested token id"
    assert str(caught.value) == (
        f"HTTP 404: No orderbook exists for the requested token id ({CLOB}/book)"
    )


async def test_error_code_and_non_json_bodies(autojump_clock: trio.testing.MockClock) -> None:
    answers = script(
        json_response({"error": "Invalid order payload", "code": "INVALID"}, 400),
        httpx.Response(422, content=b"offset too large"),
        httpx.Response(400),
    )
    async with rest_client(answers) as (rest, _rec):
        with pytest.raises(RestError) as first:
            await rest.get(Api.CLOB, "/x")
        with pytest.raises(RestError) as second:
            await rest.get(Api.GAMMA, "/markets")
        with pytest.raises(RestError) as third:
            await rest.get(Api.CLOB, "/y")
    assert (first.value.message, first.value.code) == ("Invalid order payload", "INVALID")
    assert (second.value.status, second.value.message) == (422, "offset too large")
    assert third.value.message == "Bad Request"


@pytest.mark.parametrize(
    "body", [b"{not json", b'{"minimum_tick_size": "abc"}', b"<html>maintenance</html>"]
)
async def test_malformed_body_is_a_frame_decode_error(
    autojump_clock: trio.testing.MockClock, body: bytes
) -> None:
    async with rest_client(script(httpx.Response(200, content=body))) as (rest, rec):
        with pytest.raises(FrameDecodeError):
            await rest.fetch_tick_size("1")
    assert len(rec.requests) == 1


async def test_malformed_gamma_page(autojump_clock: trio.testing.MockClock) -> None:
    answers = script(json_response([{"conditionId": 5}]))
    async with rest_client(answers) as (rest, _rec):
        with pytest.raises(FrameDecodeError, match="conditionId"):
            await rest.fetch_gamma_markets()


# --- rate limiting -----------------------------------------------------------------------------


async def test_rate_limiter_spaces_requests(autojump_clock: trio.testing.MockClock) -> None:
    limits = (RateLimit(Api.CLOB, "/book", 2, 10.0),)
    book = {"market": "m", "asset_id": "a", "timestamp": "1"}

    def handler(request: httpx.Request) -> httpx.Response:
        return json_response([book] if request.url.path == "/books" else book)

    async with rest_client(handler, rate_limits=limits) as (rest, rec):
        start = trio.current_time()
        for _ in range(5):
            await rest.fetch_book("a")
        await rest.fetch_books(["a"])  # /books is another family: not delayed
        stats = rest.statistics()
    offsets = [t - start for t in rec.times]
    assert offsets == pytest.approx([0, 0, 10, 10, 20, 20])
    assert stats.rate_limited == 2


async def test_default_limits_hold_tick_size_to_200_per_10s(
    autojump_clock: trio.testing.MockClock,
) -> None:
    answer = json_response({"minimum_tick_size": 0.01})
    async with rest_client(lambda _r: answer, rate_limits=DEFAULT_RATE_LIMITS) as (rest, rec):
        start = trio.current_time()
        for _ in range(201):
            await rest.fetch_tick_size("1")
    assert rec.times[199] - start == pytest.approx(0)
    assert rec.times[200] - start == pytest.approx(10.0)


async def test_concurrent_requests_share_the_window(autojump_clock: trio.testing.MockClock) -> None:
    limits = (RateLimit(Api.GAMMA, None, 3, 1.0),)
    async with rest_client(lambda _r: json_response([]), rate_limits=limits) as (rest, rec):
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            for path in ("/events", "/markets", "/tags", "/events", "/markets", "/tags", "/x"):
                nursery.start_soon(rest.get, Api.GAMMA, path)
    assert sorted(t - start for t in rec.times) == pytest.approx([0, 0, 0, 1, 1, 1, 2])


def test_rate_limit_coverage() -> None:
    book = RateLimit(Api.CLOB, "/book", 1)
    assert book.covers(Api.CLOB, "/book")
    assert not book.covers(Api.CLOB, "/books")
    assert not book.covers(Api.GAMMA, "/book")
    markets = RateLimit(Api.GAMMA, "/markets", 1)
    assert markets.covers(Api.GAMMA, "/markets/123")
    assert not markets.covers(Api.GAMMA, "/markets-x")
    assert RateLimit(Api.GAMMA, None, 1).covers(Api.GAMMA, "/anything")


def test_sliding_window_is_pure() -> None:
    window = SlidingWindow(2, 10.0)
    assert window.wait_time(0.0) == 0.0
    window.record(0.0)
    window.record(3.0)
    assert window.wait_time(4.0) == pytest.approx(6.0)
    assert window.wait_time(10.0) == 0.0  # the event at 0 left the window exactly at 10
    assert len(window) == 1
    with pytest.raises(ValueError, match="need limit"):
        SlidingWindow(0, 1.0)


def test_limiter_takes_the_strictest_covering_window() -> None:
    limiter = RateLimiter(
        (RateLimit(Api.CLOB, None, 3, 10.0), RateLimit(Api.CLOB, "/book", 1, 2.0))
    )
    limiter.record(Api.CLOB, "/book", 0.0)
    assert limiter.wait_time(Api.CLOB, "/book", 0.5) == pytest.approx(1.5)
    assert limiter.wait_time(Api.CLOB, "/time", 0.5) == 0.0
    limiter.record(Api.CLOB, "/time", 0.5)
    limiter.record(Api.CLOB, "/time", 0.6)
    assert limiter.wait_time(Api.CLOB, "/time", 1.0) == pytest.approx(9.0)
    assert limiter.wait_time(Api.GAMMA, "/events", 1.0) == 0.0


# --- cancellation ------------------------------------------------------------------------------


async def test_caller_deadline_cancels_a_hanging_request(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def hang(_request: httpx.Request) -> httpx.Response:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async with httpx.AsyncClient(transport=httpx.MockTransport(hang)) as client:
        rest = RestClient(
            client, gamma_url=GAMMA, clob_url=CLOB, backoff=BACKOFF, rng=random.Random(0)
        )
        start = trio.current_time()
        with pytest.raises(trio.TooSlowError):
            with trio.fail_after(3):
                await rest.get(Api.CLOB, "/time")
        assert trio.current_time() - start == pytest.approx(3.0)


async def test_caller_deadline_cancels_the_backoff_sleep(
    autojump_clock: trio.testing.MockClock,
) -> None:
    answer = json_response({"error": "slow down"}, 429, **{"retry-after": "60"})
    async with rest_client(lambda _r: answer) as (rest, rec):
        with trio.move_on_after(5) as scope:
            await rest.get(Api.CLOB, "/time")
    assert scope.cancelled_caught
    assert len(rec.requests) == 1


async def test_max_attempts_must_be_positive() -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(script())) as client:
        with pytest.raises(ValueError, match="max_attempts"):
            RestClient(
                client,
                gamma_url=GAMMA,
                clob_url=CLOB,
                backoff=BACKOFF,
                rng=random.Random(0),
                max_attempts=0,
            )

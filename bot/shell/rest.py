"""A thin async REST layer over the venue's Gamma and CLOB APIs.

One ``httpx.AsyncClient`` is created by the composition root (``async with httpx.AsyncClient()``)
and shared by everything; ``RestClient`` only borrows it, so connection pooling and keep-alive
work across callers, and tests swap in ``httpx.MockTransport`` with no sockets (STYLE.md 5).

What the layer adds to httpx, and why:

* **Retries, only for what is transient.** 429 (rate limited), 425 (matching engine
  restarting) and 5xx are retried with jittered exponential backoff (``bot.core.backoff``), as
  are transport errors (timeouts, resets, refused connections). A ``Retry-After`` header (or the
  venue's ``retry_after_seconds`` body field) replaces the backoff delay: the venue knows
  better. Every other failure raises at once: an HTML 403 is Cloudflare's region block
  (``RegionBlocked``: retrying cannot help), other 4xx are our mistake (``RestError`` carrying
  the venue's ``{"error": ...}`` text). After ``max_attempts`` the last failure surfaces as
  ``VenueUnavailable``.
* **Safe retries for non-idempotent requests.** A ``POST`` that may have reached the venue
  (a read timeout, a 500) is never re-sent unless the caller says it is idempotent
  (``POST /books`` is a read): re-sending an order could place it twice. 429, 425 and failures
  to *connect* are always safe, because the venue never saw the request. An ambiguous transport
  failure raises ``OutcomeUnknown`` so the caller reconciles before acting again.
* **Client-side rate limiting** per endpoint family (PROTOCOL.md 4.5), so bulk discovery and REST
  fallback polling stay under Cloudflare's sliding windows instead of collecting 429s. The limiter
  is a sliding-window log on ``trio.current_time()``; it delays, never drops.
* **Typed helpers** that page through listings and decode with the core's decoders; a malformed
  body raises the core's ``FrameDecodeError``.

Timeouts: no function here takes a ``timeout``; callers bound whole operations with
``trio.fail_after``/``move_on_after`` (TRIO_IDIOMS.md 1). httpx's per-operation timeouts (connect,
read, write, pool; configured on the client) remain as a safety net and count as transient.

Synopsis::

    async with httpx.AsyncClient(timeout=cfg.venue.http_timeout_s) as http:
        rest = RestClient(http, gamma_url=cfg.venue.gamma_url, clob_url=cfg.venue.clob_url,
                          backoff=Backoff(0.5, 10.0), rng=random.Random(), max_attempts=5)
        with trio.fail_after(60):
            books = await rest.fetch_books(token_ids)
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Collection, Mapping, Sequence
from enum import StrEnum
from itertools import count
from typing import TYPE_CHECKING, Any, Final, TypeAlias, TypeVar

import attrs
import httpx
import orjson
import trio

from bot.core.errors import RemoteProtocolError, excerpt
from bot.core.wire.clob import (
    CURSOR_END,
    CURSOR_START,
    decode_clob_markets_page,
    decode_rest_book,
    decode_rest_books,
    decode_server_time,
    decode_tick_size,
)
from bot.core.wire.codec import parse_json
from bot.core.wire.gamma import decode_gamma_events, decode_gamma_markets

if TYPE_CHECKING:
    import random
    from collections.abc import Callable, Iterable

    from bot.core.backoff import Backoff
    from bot.core.wire.clob import ClobMarket
    from bot.core.wire.gamma import GammaEvent, GammaMarket
    from bot.core.wire.market_events import BookSnapshot

__all__ = [
    "BOOKS_PER_REQUEST",
    "DEFAULT_RATE_LIMITS",
    "GAMMA_MAX_OFFSET",
    "GAMMA_PAGE_SIZE",
    "REGION_BLOCKED_MESSAGE",
    "Api",
    "OutcomeUnknown",
    "Params",
    "RateLimit",
    "RateLimiter",
    "RegionBlocked",
    "RestClient",
    "RestError",
    "RestFailure",
    "RestStatistics",
    "SlidingWindow",
    "VenueUnavailable",
]

T = TypeVar("T")

Params: TypeAlias = Mapping[str, str | int | float | bool | Sequence[str | int]]
"""Query parameters: scalars, or sequences for repeated keys (``clob_token_ids[]``)."""

BOOKS_PER_REQUEST: Final = 500
"""``POST /books`` answers ``400 Payload exceeds the limit`` above this many token ids."""

GAMMA_PAGE_SIZE: Final = 100
"""Items per Gamma listing page. Gamma silently caps ``limit`` at 100 (nautilus_trader#4086),
so asking for more would make the first page look like the last one."""

GAMMA_MAX_OFFSET: Final = 10_000
"""Gamma answers 422 for larger offsets (nautilus_trader#4086); paging stops there."""

REGION_BLOCKED_MESSAGE: Final = (
    "Polymarket answered HTTP 403 with an HTML page: trading from this region is blocked"
)

_MAX_CURSOR_PAGES: Final = 10_000
_ALWAYS_SAFE_STATUSES: Final = frozenset({425, 429})
"""Answers that guarantee the venue did not act on the request, so even a POST may be re-sent."""


class Api(StrEnum):
    """Which of the venue's REST services a request goes to."""

    GAMMA = "gamma"
    CLOB = "clob"


# --------------------------------------------------------------------------------------------
# Errors


class RestFailure(Exception):
    """Base of the errors this module raises (decoding problems raise ``FrameDecodeError``)."""


class RestError(RestFailure):
    """The venue rejected the request with a non-retryable HTTP status (mostly 4xx).

    Attributes:
        status: The HTTP status code.
        message: The venue's ``error`` text, or an excerpt of the body.
        code: The venue's symbolic ``code`` field, "" when absent.
        url: The request URL (without the query string).
    """

    def __init__(self, status: int, message: str, *, code: str = "", url: str = "") -> None:
        self.status = status
        self.message = message
        self.code = code
        self.url = url
        where = f" ({url})" if url else ""
        super().__init__(f"HTTP {status}: {message}{where}")


class RegionBlocked(RestFailure):
    """Cloudflare answered 403 with its HTML block page: this IP's region may not trade.

    Never retried: it will not change until the bot runs from an allowed region.
    """

    status: Final = 403

    def __init__(self, url: str = "") -> None:
        self.url = url
        where = f" ({url})" if url else ""
        super().__init__(f"{REGION_BLOCKED_MESSAGE}{where}")


class OutcomeUnknown(RestFailure):
    """A non-idempotent request failed after it may have reached the venue (a read timeout, a
    dropped connection): it may or may not have taken effect, so it was not re-sent.

    The caller must find out (e.g. list open orders) before acting again. The transport error is
    chained as ``__cause__``.

    Attributes:
        url: The request URL.
    """

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        super().__init__(f"{url}: the request may or may not have taken effect: {reason}")


class VenueUnavailable(RestFailure):
    """Every attempt failed transiently (429/425/5xx or a transport error).

    The last transport error, if any, is chained as ``__cause__``.

    Attributes:
        attempts: How many attempts were made.
        status: The last HTTP status, ``None`` if the last attempt got no response.
        message: What the last attempt saw.
    """

    def __init__(self, attempts: int, status: int | None, message: str, *, url: str = "") -> None:
        self.attempts = attempts
        self.status = status
        self.message = message
        self.url = url
        super().__init__(f"gave up after {attempts} attempts ({url}): {message}")


# --------------------------------------------------------------------------------------------
# Rate limiting


@attrs.frozen
class RateLimit:
    """At most ``limit`` requests per ``window_s`` seconds to one endpoint family.

    Attributes:
        api: The service.
        path: The path the limit covers (also its sub-paths: ``/markets`` covers
            ``/markets/123``, not ``/markets-x``); ``None`` covers every path of ``api``.
        limit: Requests allowed per window; >= 1.
        window_s: The sliding window, in seconds; > 0.
    """

    api: Api
    path: str | None
    limit: int
    window_s: float = 10.0

    def covers(self, api: Api, path: str) -> bool:
        """True when a request to ``api`` at ``path`` counts against this limit."""
        if api is not self.api:
            return False
        return self.path is None or path == self.path or path.startswith(self.path + "/")


DEFAULT_RATE_LIMITS: Final[tuple[RateLimit, ...]] = (
    RateLimit(Api.GAMMA, None, 4_000),
    RateLimit(Api.GAMMA, "/events", 500),
    RateLimit(Api.GAMMA, "/markets", 300),
    RateLimit(Api.CLOB, None, 9_000),
    RateLimit(Api.CLOB, "/book", 1_500),
    RateLimit(Api.CLOB, "/books", 500),
    RateLimit(Api.CLOB, "/price", 1_500),
    RateLimit(Api.CLOB, "/prices", 500),
    RateLimit(Api.CLOB, "/midpoint", 1_500),
    RateLimit(Api.CLOB, "/midpoints", 500),
    RateLimit(Api.CLOB, "/tick-size", 200),
)
"""PROTOCOL.md 4.5 (docs, June 2026): Cloudflare's per-10 s windows for the public endpoints."""


class SlidingWindow:
    """A sliding-window log: at most ``limit`` events in any ``window_s`` seconds. Pure (``now``
    is passed in), so it is tested without trio.

    Memory is one float per event in the window (``limit`` at most).
    """

    def __init__(self, limit: int, window_s: float) -> None:
        if limit < 1 or not (math.isfinite(window_s) and window_s > 0):
            raise ValueError(f"need limit >= 1 and window_s > 0, got {limit}, {window_s}")
        self.limit = limit
        self.window_s = window_s
        self._times: deque[float] = deque()

    def _prune(self, now: float) -> None:
        cutoff = now - self.window_s
        while self._times and self._times[0] <= cutoff:
            self._times.popleft()

    def wait_time(self, now: float) -> float:
        """Seconds until one more event fits (0 if it fits now)."""
        self._prune(now)
        if len(self._times) < self.limit:
            return 0.0
        return self._times[0] + self.window_s - now

    def record(self, now: float) -> None:
        """Count an event at ``now``."""
        self._times.append(now)

    def __len__(self) -> int:
        return len(self._times)


class RateLimiter:
    """Sliding windows for a set of ``RateLimit`` rules; a request must fit all that cover it."""

    def __init__(self, limits: Iterable[RateLimit] = DEFAULT_RATE_LIMITS) -> None:
        self._rules = [(rule, SlidingWindow(rule.limit, rule.window_s)) for rule in limits]
        self.waits = 0
        """Requests that had to wait for a window."""

    def wait_time(self, api: Api, path: str, now: float) -> float:
        """Seconds until a request to ``api``/``path`` fits every covering window."""
        waits = [w.wait_time(now) for rule, w in self._rules if rule.covers(api, path)]
        return max(waits, default=0.0)

    def record(self, api: Api, path: str, now: float) -> None:
        """Count a request in every covering window."""
        for rule, window in self._rules:
            if rule.covers(api, path):
                window.record(now)

    async def acquire(self, api: Api, path: str) -> None:
        """Wait until the request fits, then count it. Always a checkpoint."""
        waited = False
        while (wait := self.wait_time(api, path, trio.current_time())) > 0:
            waited = True
            await trio.sleep(wait)
        # No await between the check above and this record: another task cannot take the slot.
        self.record(api, path, trio.current_time())
        if waited:
            self.waits += 1
        else:
            await trio.lowlevel.checkpoint()


# --------------------------------------------------------------------------------------------
# The client


@attrs.frozen
class RestStatistics:
    """Counters of a ``RestClient`` since it was made.

    Attributes:
        requests: HTTP requests sent (every attempt counts).
        retries: Attempts that were retries.
        rate_limited: Requests the client-side limiter delayed.
        throttled: Responses with status 429.
    """

    requests: int
    retries: int
    rate_limited: int
    throttled: int


class RestClient:
    """Retrying, rate-limited access to Gamma and the CLOB over a borrowed ``httpx.AsyncClient``.

    Args:
        client: The shared client; its transport, timeouts and lifetime belong to the caller.
        gamma_url: Gamma's base URL (may carry a path prefix, like the sim's ``/gamma``).
        clob_url: The CLOB's base URL.
        backoff: Delay policy between attempts.
        rng: Randomness for the backoff jitter (seed it in tests).
        max_attempts: Attempts per request, including the first; >= 1.
        rate_limits: Client-side limits; ``DEFAULT_RATE_LIMITS`` by default, ``()`` for none.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        gamma_url: str,
        clob_url: str,
        backoff: Backoff,
        rng: random.Random,
        max_attempts: int = 5,
        rate_limits: Iterable[RateLimit] = DEFAULT_RATE_LIMITS,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        self._client = client
        self._bases = {Api.GAMMA: gamma_url.rstrip("/"), Api.CLOB: clob_url.rstrip("/")}
        self._backoff = backoff
        self._rng = rng
        self._max_attempts = max_attempts
        self._limiter = RateLimiter(rate_limits)
        self._requests = 0
        self._retries = 0
        self._throttled = 0

    def statistics(self) -> RestStatistics:
        """A snapshot of the counters."""
        return RestStatistics(
            requests=self._requests,
            retries=self._retries,
            rate_limited=self._limiter.waits,
            throttled=self._throttled,
        )

    def url(self, api: Api, path: str) -> str:
        """The absolute URL of ``path`` (which starts with ``/``) on ``api``."""
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/', got {path!r}")
        return self._bases[api] + path

    # --- raw requests --------------------------------------------------------------------------

    async def get(self, api: Api, path: str, params: Params | None = None) -> bytes:
        """``GET`` and return the body of a 2xx answer, retrying transient failures.

        Raises:
            RegionBlocked: HTML 403 (Cloudflare region block).
            RestError: any other non-retryable status.
            VenueUnavailable: every attempt failed transiently.
        """
        return await self._request("GET", api, path, params=params, body=None, idempotent=True)

    async def get_json(self, api: Api, path: str, params: Params | None = None) -> Any:
        """``GET`` and parse the JSON body. Raises as ``get``, and ``FrameDecodeError``."""
        return parse_json(await self.get(api, path, params))

    async def post(self, api: Api, path: str, body: Any, *, idempotent: bool = False) -> bytes:
        """``POST`` a JSON body and return the body of a 2xx answer.

        Args:
            api: The service.
            path: The endpoint path.
            body: Plain JSON data (dicts, lists, strings, numbers); serialised with orjson.
            idempotent: True if sending the request twice is harmless (a read such as
                ``POST /books``). Otherwise only failures that prove the venue did not act on
                it (429, 425, connection failures) are retried; a 5xx raises ``RestError``.

        Raises:
            RegionBlocked, RestError, VenueUnavailable: as ``get``.
            OutcomeUnknown: not ``idempotent``, and the request failed after it may have
                reached the venue.
        """
        content = orjson.dumps(body)
        return await self._request(
            "POST", api, path, params=None, body=content, idempotent=idempotent
        )

    async def request(
        self,
        method: str,
        api: Api,
        path: str,
        *,
        params: Params | None = None,
        content: bytes | None = None,
        headers: Callable[[], Mapping[str, str]] | None = None,
        idempotent: bool,
        retry_statuses: Collection[int] = (),
    ) -> bytes:
        """Any method with the same retries, limits and error mapping as ``get``/``post``.

        For authenticated callers (``bot.shell.clob_trading``): ``content`` is sent byte for
        byte (so it can be HMAC-signed), and ``headers`` is called before *every* attempt, so
        a retry carries a fresh timestamp and signature rather than a stale one.
        ``retry_statuses`` are statuses the caller knows the venue did not act on (e.g. 503
        "trading disabled" for an order), retried even when not ``idempotent``.

        Raises:
            As ``post``.
        """
        return await self._request(
            method,
            api,
            path,
            params=params,
            body=content,
            idempotent=idempotent,
            headers_factory=headers,
            retry_statuses=retry_statuses,
        )

    async def post_json(self, api: Api, path: str, body: Any, *, idempotent: bool = False) -> Any:
        """``post`` and parse the JSON answer. Raises as ``post``, and ``FrameDecodeError``."""
        return parse_json(await self.post(api, path, body, idempotent=idempotent))

    async def _request(
        self,
        method: str,
        api: Api,
        path: str,
        *,
        params: Params | None,
        body: bytes | None,
        idempotent: bool,
        headers_factory: Callable[[], Mapping[str, str]] | None = None,
        retry_statuses: Collection[int] = (),
    ) -> bytes:
        url = self.url(api, path)
        base_headers = {"content-type": "application/json"} if body is not None else {}
        last_status: int | None = None
        last_message = ""
        last_error: httpx.TransportError | None = None
        for attempt in range(self._max_attempts):
            if attempt:
                self._retries += 1
            await self._limiter.acquire(api, path)
            self._requests += 1
            retry_after: float | None = None
            headers = (
                {**base_headers, **headers_factory()} if headers_factory else base_headers or None
            )
            try:
                response = await self._client.request(
                    method, url, params=params, content=body, headers=headers
                )
            except httpx.TransportError as exc:
                if _is_bug(exc):
                    raise  # a bad URL or a request we built wrong: never weather
                if not _transient(exc, idempotent=idempotent):
                    raise OutcomeUnknown(url, f"{type(exc).__name__}: {exc}") from exc
                last_status, last_message, last_error = None, f"{type(exc).__name__}: {exc}", exc
            else:
                status = response.status_code
                if response.is_success:
                    return response.content
                if status == 403 and _is_html(response):
                    raise RegionBlocked(url)
                message, code, body_retry_after = _error_details(response)
                if status not in retry_statuses and not _retryable(status, idempotent=idempotent):
                    raise RestError(status, message, code=code, url=url)
                if status == 429:
                    self._throttled += 1
                last_status, last_message, last_error = status, f"HTTP {status}: {message}", None
                retry_after = _retry_after(response)
                if retry_after is None:
                    retry_after = body_retry_after
            if attempt + 1 == self._max_attempts:
                break
            delay = (
                retry_after if retry_after is not None else self._backoff.delay(attempt, self._rng)
            )
            await trio.sleep(delay)
        raise VenueUnavailable(
            self._max_attempts, last_status, last_message, url=url
        ) from last_error

    # --- typed helpers -------------------------------------------------------------------------

    async def fetch_gamma_markets(
        self,
        params: Params | None = None,
        *,
        page_size: int = GAMMA_PAGE_SIZE,
        progress: Callable[[str], None] | None = None,
    ) -> list[GammaMarket]:
        """Every market of ``GET /markets`` matching ``params``, paging with ``limit``/``offset``.

        Stops at the first short page, or at ``GAMMA_MAX_OFFSET``. ``progress`` gets one line per
        page (``gamma /markets: 300 markets (page 3)``).

        Raises:
            ValueError: ``page_size`` is not in 1..``GAMMA_PAGE_SIZE``.
            FrameDecodeError: a page is malformed.
            RegionBlocked, RestError, VenueUnavailable: as ``get``.
        """
        return await self._offset_pages(
            "/markets", params, decode_gamma_markets, "markets", page_size, progress
        )

    async def fetch_gamma_events(
        self,
        params: Params | None = None,
        *,
        page_size: int = GAMMA_PAGE_SIZE,
        progress: Callable[[str], None] | None = None,
    ) -> list[GammaEvent]:
        """Every event of ``GET /events`` matching ``params``, with embedded markets.

        Paged like ``fetch_gamma_markets``. Note that Gamma's ``closed`` defaults to *true* on
        ``/events`` in practice (polymarket-cli#71): pass ``closed=false`` for open events.
        """
        return await self._offset_pages(
            "/events", params, decode_gamma_events, "events", page_size, progress
        )

    async def _offset_pages(
        self,
        path: str,
        params: Params | None,
        decode: Callable[[bytes], list[T]],
        noun: str,
        page_size: int,
        progress: Callable[[str], None] | None,
    ) -> list[T]:
        if not 1 <= page_size <= GAMMA_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{GAMMA_PAGE_SIZE}, got {page_size}")
        items: list[T] = []
        for page_number in count(1):
            offset = (page_number - 1) * page_size
            query = {**(params or {}), "limit": page_size, "offset": offset}
            page = decode(await self.get(Api.GAMMA, path, query))
            items.extend(page)
            if progress is not None:
                progress(f"gamma {path}: {len(items)} {noun} (page {page_number})")
            if len(page) < page_size:
                break
            if offset + page_size > GAMMA_MAX_OFFSET:
                if progress is not None:
                    progress(f"gamma {path}: stopped at Gamma's offset limit {GAMMA_MAX_OFFSET}")
                break
        return items

    async def fetch_clob_markets(
        self, *, progress: Callable[[str], None] | None = None
    ) -> list[ClobMarket]:
        """Every market of the CLOB's ``GET /markets``, following ``next_cursor``.

        Starts at ``CURSOR_START`` (``MA==``) and stops at ``CURSOR_END`` (``LTE=``) or an empty
        cursor.

        Raises:
            RemoteProtocolError: the venue repeats a cursor (it would loop forever).
            FrameDecodeError, RegionBlocked, RestError, VenueUnavailable: as above.
        """
        markets: list[ClobMarket] = []
        cursor = CURSOR_START
        seen = {cursor}
        for page_number in range(1, _MAX_CURSOR_PAGES + 1):
            page = decode_clob_markets_page(
                await self.get(Api.CLOB, "/markets", {"next_cursor": cursor})
            )
            markets.extend(page.data)
            if progress is not None:
                progress(f"clob /markets: {len(markets)} markets (page {page_number})")
            cursor = page.next_cursor
            if cursor in ("", CURSOR_END):
                return markets
            if cursor in seen:
                raise RemoteProtocolError(f"clob /markets repeated the cursor {cursor!r}")
            seen.add(cursor)
        raise RemoteProtocolError(f"clob /markets did not end within {_MAX_CURSOR_PAGES} pages")

    async def fetch_books(self, token_ids: Sequence[str]) -> list[BookSnapshot]:
        """Books for ``token_ids`` via ``POST /books``, in chunks of ``BOOKS_PER_REQUEST``.

        Returns the books in the venue's response order, chunk after chunk. Tokens without a book
        are typically absent from the answer rather than an error.
        """
        books: list[BookSnapshot] = []
        for start in range(0, len(token_ids), BOOKS_PER_REQUEST):
            chunk = token_ids[start : start + BOOKS_PER_REQUEST]
            body = [{"token_id": token_id} for token_id in chunk]
            books.extend(
                decode_rest_books(await self.post(Api.CLOB, "/books", body, idempotent=True))
            )
        return books

    async def fetch_book(self, token_id: str) -> BookSnapshot:
        """``GET /book?token_id=``. A token without a book raises ``RestError`` (404)."""
        return decode_rest_book(await self.get(Api.CLOB, "/book", {"token_id": token_id}))

    async def fetch_tick_size(self, token_id: str) -> int:
        """``GET /tick-size?token_id=`` in micro-units (0.01 -> ``10_000``)."""
        return decode_tick_size(await self.get(Api.CLOB, "/tick-size", {"token_id": token_id}))

    async def fetch_server_time(self) -> int:
        """``GET /time``: the venue's clock, unix seconds."""
        return decode_server_time(await self.get(Api.CLOB, "/time"))


# --------------------------------------------------------------------------------------------
# Response classification


def _is_bug(exc: httpx.TransportError) -> bool:
    return isinstance(exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError)


def _transient(exc: httpx.TransportError, *, idempotent: bool) -> bool:
    """Whether a transport error may be retried (``_is_bug`` errors are excluded first)."""
    if idempotent:
        return True
    # The request never left: the venue cannot have acted on it.
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


def _retryable(status: int, *, idempotent: bool) -> bool:
    if status in _ALWAYS_SAFE_STATUSES:
        return True
    return idempotent and 500 <= status <= 599


def _is_html(response: httpx.Response) -> bool:
    if "html" in response.headers.get("content-type", "").lower():
        return True
    head = response.content[:64].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html"))


def _error_details(response: httpx.Response) -> tuple[str, str, float | None]:
    """``(message, code, retry_after_seconds)`` from an error body.

    The CLOB answers ``{"error": ..., "code"?, "retry_after_seconds"?}``; anything else
    (text, HTML, another JSON shape) becomes a short excerpt, or the reason phrase when empty.
    """
    try:
        data = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        error = data.get("error")
        if error is None:
            error = data.get("message")
        code = data.get("code")
        retry = data.get("retry_after_seconds")
        return (
            str(error) if error is not None else excerpt(response.content),
            str(code) if code is not None else "",
            _seconds(retry),
        )
    text = excerpt(response.content) if response.content else response.reason_phrase
    return text, "", None


def _retry_after(response: httpx.Response) -> float | None:
    """The ``Retry-After`` header in seconds; ``None`` when absent or an HTTP date."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return _seconds(float(value))
    except ValueError:
        return None  # the HTTP-date form: fall back to our own backoff


def _seconds(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = float(value)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None

"""The live CLOB trading client: signed orders, cancels and account reads over L2 REST.

It sits on ``bot.shell.rest.RestClient`` (one shared ``httpx.AsyncClient``, retries,
``Retry-After``, client-side rate limits, ``RegionBlocked`` for Cloudflare's HTML 403) and
adds what private trading needs (PROTOCOL.md 4.2-4.5, 5, 6.6):

* **L2 headers on every private request**, HMAC-signed over the exact body bytes sent and
  stamped with the *venue's* time: the offset to ``GET /time`` is measured at first use and
  re-measured every ``clock_refresh_s``, so a skewed local clock cannot turn requests into 401s.
  Headers are rebuilt for every attempt, so a retry never carries a stale timestamp.
* **Orders built and signed off the event loop.** Amounts come from ``bot.core.signing`` (exact
  integers); the EIP-712 signature (~1.6 ms) runs in ``trio.to_thread.run_sync``.
* **Error mapping** (issue 6, item 3): 425, 429 and 503 are answers the venue did not act on and
  are retried with backoff or ``Retry-After`` (``RestClient``); cancels and reads are idempotent,
  so every 5xx is retried for them. A ``not enough balance / allowance`` reject refreshes the
  venue's balance cache and retries the *same* signed order once. Tick and size rejects raise
  ``VenueRejected`` with ``bug=True``: our rounding disagreed with the venue, retrying cannot help.
* **Never double-send** (item 5): an order's id is its EIP-712 digest, known before sending. If a
  ``POST /order`` fails after it may have reached the venue (a read timeout, a 500/502/504, a
  cancellation) the id stays in ``unconfirmed`` and ``OrderOutcomeUnknown`` (an
  ``OutcomeUnknown``) carries it; ``reconcile(order_id)`` looks the order up before anyone may
  act again. Re-sending the *same* ``OrderPost`` is then harmless: the venue rejects a second
  copy of an order id as ``Duplicated``.

Rate limits: build the ``RestClient`` with ``rate_limits=ALL_RATE_LIMITS`` so the private
endpoint windows of PROTOCOL.md 4.5 (``TRADING_RATE_LIMITS``) apply too.

No secret is logged or put in an exception: header mappings redact themselves, order bodies
(which carry the API key as ``owner``) are never logged, and messages name ids and statuses only.
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import TYPE_CHECKING, Final, TypeVar

import attrs
import orjson
import trio
from loguru import logger

from bot.config import SignatureType
from bot.core.auth import AuthHeaders, l2_headers, venue_timestamp
from bot.core.errors import RemoteProtocolError
from bot.core.money import Side
from bot.core.signing import (
    MAX_BATCH,
    OrderPost,
    batch_body,
    build_order,
    dumps_compact,
    limit_order_amounts,
    marketable_limit_amounts,
    order_post,
)
from bot.core.trading import OrderType
from bot.core.wire.clob import (
    CURSOR_END,
    CURSOR_START,
    BalanceAllowance,
    CancelResponse,
    OpenOrder,
    PostOrderResponse,
    decode_balance_allowance,
    decode_cancel_response,
    decode_open_order,
    decode_open_orders_page,
    decode_post_order_response,
    decode_post_orders_response,
    decode_trades_page,
)
from bot.shell.rest import (
    DEFAULT_RATE_LIMITS,
    Api,
    OutcomeUnknown,
    RateLimit,
    RegionBlocked,
    RestError,
    RestFailure,
    VenueUnavailable,
)
from bot.shell.signer import new_salt

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from bot.core.auth import ApiCreds
    from bot.core.signing import SignedOrder, UnsignedOrder
    from bot.core.wire.clob import Page
    from bot.core.wire.user import OrderStatus, UserTrade
    from bot.shell.rest import Params, RestClient
    from bot.shell.signer import OrderSigner

__all__ = [
    "ALL_RATE_LIMITS",
    "MAX_CANCEL_IDS",
    "TRADING_RATE_LIMITS",
    "AssetType",
    "OrderOutcomeUnknown",
    "OrderRequest",
    "PlaceResult",
    "ReconcileResult",
    "TradingClient",
    "VenueRejected",
]

MAX_CANCEL_IDS: Final = 1000
"""``DELETE /orders`` takes at most this many ids (PROTOCOL.md 4.2)."""

_T = TypeVar("_T")
_TEN_MIN: Final = 600.0

TRADING_RATE_LIMITS: Final[tuple[RateLimit, ...]] = (
    # POST and DELETE share a path here, so each pair of windows takes the smaller limit.
    RateLimit(Api.CLOB, "/order", 5_000),
    RateLimit(Api.CLOB, "/order", 120_000, _TEN_MIN),
    RateLimit(Api.CLOB, "/orders", 2_000),
    RateLimit(Api.CLOB, "/orders", 15_000, _TEN_MIN),
    RateLimit(Api.CLOB, "/cancel-all", 250),
    RateLimit(Api.CLOB, "/cancel-all", 6_000, _TEN_MIN),
    RateLimit(Api.CLOB, "/cancel-market-orders", 1_500),
    RateLimit(Api.CLOB, "/cancel-market-orders", 21_000, _TEN_MIN),
    RateLimit(Api.CLOB, "/data/orders", 500),
    RateLimit(Api.CLOB, "/data/trades", 500),
    RateLimit(Api.CLOB, "/balance-allowance", 200),
    RateLimit(Api.CLOB, "/balance-allowance/update", 50),
)
"""PROTOCOL.md 4.5: Cloudflare's windows for the private endpoints (per 10 s unless noted)."""

ALL_RATE_LIMITS: Final = DEFAULT_RATE_LIMITS + TRADING_RATE_LIMITS
"""What a ``RestClient`` used for trading should be built with."""

_NOT_ACTED_ON: Final = frozenset({503})
"""Order statuses besides 425/429 that mean the venue did not take the order: 503 is
"trading disabled", "cancel-only" or post-only mode after an engine restart (PROTOCOL.md 4.4)."""

_BUG_CODES: Final = frozenset({"INVALID_ORDER_MIN_TICK_SIZE", "INVALID_ORDER_MIN_SIZE"})
_BUG_TEXTS: Final = ("minimum tick size", "lower than the minimum", "invalid order payload")
_BALANCE_CODE: Final = "INVALID_ORDER_NOT_ENOUGH_BALANCE"
_BALANCE_TEXT: Final = "not enough balance"


class AssetType(StrEnum):
    """``asset_type`` of ``GET /balance-allowance``."""

    COLLATERAL = "COLLATERAL"
    CONDITIONAL = "CONDITIONAL"


# --------------------------------------------------------------------------------------------
# Errors


class VenueRejected(RestFailure):
    """The venue refused an order; it was not placed.

    Attributes:
        message: The venue's reason (``error``/``errorMsg``).
        code: Its symbolic code, "" when absent.
        status: The HTTP status (200 when the reject came in a success body).
        order_id: The refused order's id.
        bug: True for tick and size rejects: our own rounding or validation disagreed with the
            venue's rules, so the order must not be retried and the mismatch must be fixed.
        balance: True for ``not enough balance / allowance``.
    """

    def __init__(
        self,
        message: str,
        *,
        order_id: str,
        status: int,
        code: str = "",
    ) -> None:
        self.message = message
        self.code = code
        self.status = status
        self.order_id = order_id
        lowered = message.lower()
        self.bug = code in _BUG_CODES or any(text in lowered for text in _BUG_TEXTS)
        self.balance = code == _BALANCE_CODE or _BALANCE_TEXT in lowered
        kind = " (a bug on our side: tick/size rules disagree with the venue)" if self.bug else ""
        super().__init__(f"order {order_id} rejected (HTTP {status}): {message}{kind}")


class OrderOutcomeUnknown(OutcomeUnknown):
    """An order submission may or may not have reached the venue.

    Nothing was re-sent. Call ``TradingClient.reconcile`` for each id before acting again; a
    re-send of the same ``OrderPost`` (same id) is the only safe re-send.

    Attributes:
        order_ids: The ids of the orders in the request (one, or a batch's).
    """

    def __init__(self, url: str, order_ids: Sequence[str], reason: str) -> None:
        self.order_ids = tuple(order_ids)
        super().__init__(url, f"orders {', '.join(self.order_ids)}: {reason}")


# --------------------------------------------------------------------------------------------
# Values


@attrs.frozen
class OrderRequest:
    """One limit order to build, sign and post (prices and sizes in micro-units).

    Attributes:
        token_id: The outcome token.
        side: BUY or SELL.
        price: On the ``tick`` grid (an off-grid price is refused before signing).
        size: Shares; floored to 0.01 share.
        tick: The market's tick size.
        neg_risk: Sign against the neg-risk exchange.
        order_type: Time in force.
        post_only: Reject instead of taking (GTC/GTD only).
        expiration_s: Unix seconds for GTD, 0 otherwise.
    """

    token_id: str
    side: Side
    price: int
    size: int
    tick: int
    neg_risk: bool
    order_type: OrderType = OrderType.GTC
    post_only: bool = False
    expiration_s: int = 0


@attrs.frozen
class PlaceResult:
    """An order the venue accepted (or, in a batch, refused: see ``rejection``).

    Attributes:
        order_id: The order's id (known before sending).
        response: The venue's answer (insert status, matched amounts, trade ids), ``None`` for
            a rejected batch leg.
        rejection: Why a batch leg was refused, ``None`` when accepted.
    """

    order_id: str
    response: PostOrderResponse | None
    rejection: VenueRejected | None = None

    @property
    def accepted(self) -> bool:
        return self.rejection is None


@attrs.frozen
class ReconcileResult:
    """What the venue knows about an order whose submission outcome was unknown.

    Attributes:
        order_id: The id looked up.
        order: The order as ``GET /data/order/{id}`` reports it, ``None`` if unknown there.
        trades: Trades that involve the order (looked up only when the order was not found,
            e.g. a FOK that filled and left no order record).
    """

    order_id: str
    order: OpenOrder | None
    trades: tuple[UserTrade, ...] = ()

    @property
    def found(self) -> bool:
        """True when the venue has the order (resting, matched or cancelled) or trades of it."""
        return self.order is not None or bool(self.trades)

    @property
    def status(self) -> OrderStatus | None:
        """The order's status, ``None`` when there is no order record."""
        return self.order.status if self.order is not None else None


# --------------------------------------------------------------------------------------------
# The client


class TradingClient:
    """Authenticated CLOB trading over a shared ``RestClient``.

    Args:
        rest: The REST client (build it with ``rate_limits=ALL_RATE_LIMITS``).
        creds: L2 API credentials; ``creds.api_key`` is also each order's ``owner``.
        signer: Signs orders; its address is ``POLY_ADDRESS`` and the orders' signer.
        signature_type: The wallet's signature type (EOA, proxy, Safe, deposit wallet).
        funder: The wallet holding the funds for non-EOA types, ``None`` for EOA.
        wall_clock: Local unix time; only its offset to the venue matters (tests skew it).
        clock_refresh_s: Re-measure the venue clock offset after this many seconds.
    """

    def __init__(
        self,
        rest: RestClient,
        *,
        creds: ApiCreds,
        signer: OrderSigner,
        signature_type: SignatureType,
        funder: str | None = None,
        wall_clock: Callable[[], float] = time.time,
        clock_refresh_s: float = 300.0,
    ) -> None:
        if not clock_refresh_s > 0:
            raise ValueError(f"clock_refresh_s must be > 0, got {clock_refresh_s}")
        self._rest = rest
        self._creds = creds
        self._signer = signer
        self._address = signer.address
        self._signature_type = SignatureType(signature_type)
        self._funder = funder
        self._wall = wall_clock
        self._clock_refresh_s = clock_refresh_s
        self._offset_s: float | None = None
        self._offset_measured_at = 0.0
        self._heartbeat_id = ""
        self._unconfirmed: set[str] = set()

    def __repr__(self) -> str:
        return (
            f"TradingClient(address={self._address!r}, signature_type={self._signature_type.name})"
        )

    # --- clock ---------------------------------------------------------------------------------

    @property
    def clock_offset_s(self) -> float | None:
        """``venue time - local time`` as last measured, ``None`` before the first measurement."""
        return self._offset_s

    async def sync_clock(self) -> float:
        """Measure the offset to the venue's clock with ``GET /time`` and return it.

        ``/time`` is whole seconds (floored), so the venue's true time is taken as the middle of
        that second, against the middle of the local request interval.
        """
        before = self._wall()
        server_s = await self._rest.fetch_server_time()
        after = self._wall()
        self._offset_s = server_s + 0.5 - (before + after) / 2
        self._offset_measured_at = trio.current_time()
        logger.debug("venue clock offset {:+.3f} s", self._offset_s)
        return self._offset_s

    async def _ensure_clock(self) -> float:
        if (
            self._offset_s is None
            or trio.current_time() - self._offset_measured_at >= self._clock_refresh_s
        ):
            return await self.sync_clock()
        return self._offset_s

    async def venue_now(self) -> float:
        """The venue's current unix time in seconds (measuring the offset if due)."""
        return self._wall() + await self._ensure_clock()

    # --- private requests ----------------------------------------------------------------------

    async def _private(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        content: bytes | None = None,
        idempotent: bool,
        retry_statuses: frozenset[int] = frozenset(),
    ) -> bytes:
        await self._ensure_clock()

        def headers() -> AuthHeaders:
            offset = self._offset_s
            assert offset is not None  # set by _ensure_clock above
            return l2_headers(
                self._address,
                self._creds,
                timestamp=venue_timestamp(self._wall(), offset),
                method=method,
                path=path,
                body=content,
            )

        return await self._rest.request(
            method,
            Api.CLOB,
            path,
            params=params,
            content=content,
            headers=headers,
            idempotent=idempotent,
            retry_statuses=retry_statuses,
        )

    # --- orders --------------------------------------------------------------------------------

    @property
    def unconfirmed(self) -> frozenset[str]:
        """Ids of orders sent whose outcome is not known yet (reconcile them before re-sending)."""
        return frozenset(self._unconfirmed)

    async def prepare(self, request: OrderRequest) -> OrderPost:
        """Build and sign ``request`` (in a worker thread): the exact body and its order id.

        Raises:
            ValueError: an off-tick price, a size below 0.01, a bad address or GTD/expiry mix.
        """
        return (await self.prepare_many([request]))[0]

    async def prepare_many(self, requests: Sequence[OrderRequest]) -> list[OrderPost]:
        """``prepare`` for several orders, signed together in one worker thread call."""
        now_ms = int(await self.venue_now() * 1000)
        unsigned = [self._unsigned(r, now_ms) for r in requests]
        sign = self._signer.sign

        def sign_all() -> list[SignedOrder]:
            return [sign(u) for u in unsigned]

        signed = await trio.to_thread.run_sync(sign_all)
        return [
            order_post(s, self._creds.api_key, r.order_type, post_only=r.post_only)
            for s, r in zip(signed, requests, strict=True)
        ]

    def _unsigned(self, request: OrderRequest, now_ms: int) -> UnsignedOrder:
        # Marketable orders must fit the venue's market-order precision (maker 2 decimals,
        # taker 4), which a limit order's exact amounts often do not.
        amounts_for = limit_order_amounts if request.order_type.rests else marketable_limit_amounts
        amounts = amounts_for(request.side, request.price, request.size, request.tick)
        return build_order(
            token_id=request.token_id,
            side=request.side,
            maker_amount=amounts.maker_amount,
            taker_amount=amounts.taker_amount,
            signer_address=self._address,
            signature_type=self._signature_type,
            funder=self._funder,
            neg_risk=request.neg_risk,
            salt=new_salt(),
            timestamp_ms=now_ms,
            expiration_s=request.expiration_s,
        )

    async def place(
        self,
        token_id: str,
        side: Side,
        price: int,
        size: int,
        *,
        tick: int,
        neg_risk: bool,
        order_type: OrderType = OrderType.GTC,
        post_only: bool = False,
        expiration_s: int = 0,
    ) -> PlaceResult:
        """Build, sign and ``POST /order`` one limit order.

        Raises:
            VenueRejected: the venue refused it (after one balance refresh for a balance reject).
            OrderOutcomeUnknown: it may have reached the venue; reconcile ``order_ids``.
            RegionBlocked: Cloudflare's region block; stop trading.
            VenueUnavailable: 425/429/503 on every attempt; the order was not placed.
            ValueError: the request itself is invalid (see ``prepare``).
        """
        request = OrderRequest(
            token_id=token_id,
            side=side,
            price=price,
            size=size,
            tick=tick,
            neg_risk=neg_risk,
            order_type=order_type,
            post_only=post_only,
            expiration_s=expiration_s,
        )
        return await self.submit(await self.prepare(request), request)

    async def submit(self, post: OrderPost, request: OrderRequest) -> PlaceResult:
        """``POST /order`` an already signed order; re-submitting the same ``post`` after a
        reconcile is safe (the venue refuses a second copy of an order id).

        Raises:
            As ``place``.
        """
        self._unconfirmed.add(post.order_id)
        refreshed = False
        while True:
            try:
                raw = await self._send_orders("/order", post.body, (post.order_id,))
            except RestError as exc:
                rejection = VenueRejected(
                    exc.message, order_id=post.order_id, status=exc.status, code=exc.code
                )
            else:
                response = decode_post_order_response(raw)
                if response.accepted:
                    self._unconfirmed.discard(post.order_id)
                    if response.order_id != post.order_id:
                        logger.warning(
                            "venue reported order id {} for our order {}",
                            response.order_id,
                            post.order_id,
                        )
                    return PlaceResult(post.order_id, response)
                rejection = VenueRejected(response.error_msg, order_id=post.order_id, status=200)
            if rejection.balance and not refreshed:
                refreshed = True
                logger.warning(
                    "order {} rejected for balance/allowance: refreshing and retrying once",
                    post.order_id,
                )
                await self.refresh_balance_for(request.side, request.token_id)
                continue
            self._unconfirmed.discard(post.order_id)
            if rejection.bug:
                logger.error("{}", rejection)
            raise rejection

    async def _send_orders(self, path: str, body: bytes, order_ids: Sequence[str]) -> bytes:
        """POST order(s), mapping failures to what they say about the orders' fate.

        Returns the 2xx body; ``RestError`` (a definite 4xx reject) propagates. Ids stay in
        ``unconfirmed`` unless the venue certainly did not act.
        """
        url = self._rest.url(Api.CLOB, path)
        try:
            return await self._private(
                "POST", path, content=body, idempotent=False, retry_statuses=_NOT_ACTED_ON
            )
        except OutcomeUnknown as exc:
            logger.warning("outcome unknown for orders {}: {}", ", ".join(order_ids), exc)
            raise OrderOutcomeUnknown(url, order_ids, str(exc)) from exc
        except RestError as exc:
            if exc.status >= 500:
                # A 500/502/504 on an order may come after the engine took it: reconcile.
                logger.warning("HTTP {} for orders {}: outcome unknown", exc.status, order_ids)
                raise OrderOutcomeUnknown(
                    url, order_ids, f"HTTP {exc.status}: {exc.message}"
                ) from exc
            raise
        except (RegionBlocked, VenueUnavailable):
            # HTML 403 comes from Cloudflare, and 425/429/503 were never acted on.
            self._unconfirmed.difference_update(order_ids)
            raise

    async def place_batch(self, requests: Sequence[OrderRequest]) -> list[PlaceResult]:
        """Build, sign and ``POST /orders`` up to ``MAX_BATCH`` (15) orders.

        Per-leg rejects come back as ``PlaceResult.rejection`` (a batch is not retried: legs
        may have been placed); a leg the venue answered with an empty id is a rejection too.

        Raises:
            ValueError: more than 15 or no orders (checked before anything is signed).
            OrderOutcomeUnknown, RegionBlocked, VenueUnavailable: as ``place``, for the batch.
            RestError: the venue refused the whole batch.
        """
        if not 1 <= len(requests) <= MAX_BATCH:
            raise ValueError(f"POST /orders takes 1 to {MAX_BATCH} orders, got {len(requests)}")
        posts = await self.prepare_many(requests)
        ids = [p.order_id for p in posts]
        self._unconfirmed.update(ids)
        try:
            raw = await self._send_orders("/orders", batch_body(posts), ids)
        except RestError:
            self._unconfirmed.difference_update(ids)
            raise
        responses = decode_post_orders_response(raw)
        if len(responses) != len(posts):
            raise OrderOutcomeUnknown(
                self._rest.url(Api.CLOB, "/orders"),
                ids,
                f"venue answered {len(responses)} results for {len(posts)} orders",
            )
        results: list[PlaceResult] = []
        for post, response in zip(posts, responses, strict=True):
            self._unconfirmed.discard(post.order_id)
            if response.accepted:
                results.append(PlaceResult(post.order_id, response))
            else:
                reason = response.error_msg or "rejected without a reason"
                results.append(
                    PlaceResult(
                        post.order_id,
                        None,
                        VenueRejected(reason, order_id=post.order_id, status=200),
                    )
                )
        return results

    # --- cancels -------------------------------------------------------------------------------

    async def _cancel(self, path: str, body: object | None) -> CancelResponse:
        content = dumps_compact(body) if body is not None else None
        raw = await self._private("DELETE", path, content=content, idempotent=True)
        return decode_cancel_response(raw)

    async def cancel(self, order_id: str) -> CancelResponse:
        """``DELETE /order``. Cancelling is idempotent, so every transient failure is retried."""
        return await self._cancel("/order", {"orderID": order_id})

    async def cancel_many(self, order_ids: Sequence[str]) -> CancelResponse:
        """``DELETE /orders`` in chunks of ``MAX_CANCEL_IDS``; the answers are merged."""
        canceled: list[str] = []
        not_canceled: dict[str, str] = {}
        for start in range(0, len(order_ids), MAX_CANCEL_IDS):
            answer = await self._cancel("/orders", list(order_ids[start : start + MAX_CANCEL_IDS]))
            canceled.extend(answer.canceled)
            not_canceled.update(answer.not_canceled)
        return CancelResponse(canceled=tuple(canceled), not_canceled=not_canceled)

    async def cancel_all(self) -> CancelResponse:
        """``DELETE /cancel-all``: every open order of this API key."""
        return await self._cancel("/cancel-all", None)

    async def cancel_market(
        self, *, market: str | None = None, asset_id: str | None = None
    ) -> CancelResponse:
        """``DELETE /cancel-market-orders`` for a market (condition id) and/or one token."""
        if market is None and asset_id is None:
            raise ValueError("cancel_market needs a market (condition id) or an asset_id")
        body = {k: v for k, v in (("market", market), ("asset_id", asset_id)) if v is not None}
        return await self._cancel("/cancel-market-orders", body)

    # --- reads ---------------------------------------------------------------------------------

    async def _pages(
        self, path: str, params: dict[str, str | int], decode: Callable[[bytes], Page[_T]]
    ) -> list[_T]:
        items: list[_T] = []
        cursor = CURSOR_START
        seen = {cursor}
        while True:
            page = decode(
                await self._private(
                    "GET", path, params={**params, "next_cursor": cursor}, idempotent=True
                )
            )
            items.extend(page.data)
            cursor = page.next_cursor
            if cursor in ("", CURSOR_END):
                return items
            if cursor in seen:
                raise RemoteProtocolError(f"clob {path} repeated the cursor {cursor!r}")
            seen.add(cursor)

    async def open_orders(
        self, *, market: str | None = None, asset_id: str | None = None
    ) -> list[OpenOrder]:
        """``GET /data/orders``, every page."""
        params: dict[str, str | int] = {}
        if market is not None:
            params["market"] = market
        if asset_id is not None:
            params["asset_id"] = asset_id
        return await self._pages("/data/orders", params, decode_open_orders_page)

    async def trades(
        self, *, after: int | None = None, market: str | None = None, asset_id: str | None = None
    ) -> list[UserTrade]:
        """``GET /data/trades`` (``after``: unix seconds), every page."""
        params: dict[str, str | int] = {}
        if after is not None:
            params["after"] = after
        if market is not None:
            params["market"] = market
        if asset_id is not None:
            params["asset_id"] = asset_id
        return await self._pages("/data/trades", params, decode_trades_page)

    async def order(self, order_id: str) -> OpenOrder | None:
        """``GET /data/order/{id}``; ``None`` when the venue does not know the id."""
        try:
            raw = await self._private("GET", f"/data/order/{order_id}", idempotent=True)
        except RestError as exc:
            if exc.status == 404:
                return None
            raise
        if raw.strip() in (b"", b"null", b"{}", b'""'):
            return None
        return decode_open_order(raw)

    async def reconcile(self, order_id: str, *, since_s: int | None = None) -> ReconcileResult:
        """Find out what became of an order whose submission outcome is unknown.

        Looks the order up by id; if the venue has no record, searches trades (since
        ``since_s``, unix seconds) for it as taker or maker. Afterwards the id is no longer
        ``unconfirmed``. Not found means the order did not land; re-sending the *same* signed
        order is safe either way (the venue refuses a duplicate id).
        """
        found = await self.order(order_id)
        trades: tuple[UserTrade, ...] = ()
        if found is None:
            trades = tuple(
                t
                for t in await self.trades(after=since_s)
                if t.taker_order_id == order_id
                or any(m.order_id == order_id for m in t.maker_orders)
            )
        self._unconfirmed.discard(order_id)
        result = ReconcileResult(order_id, found, trades)
        logger.info(
            "reconciled order {}: {}",
            order_id,
            result.status if found is not None else ("traded" if trades else "not found"),
        )
        return result

    def _balance_params(self, asset_type: AssetType, token_id: str | None) -> dict[str, str | int]:
        if (asset_type is AssetType.CONDITIONAL) != (token_id is not None):
            raise ValueError("a token_id is needed for CONDITIONAL balances, and only for them")
        params: dict[str, str | int] = {
            "asset_type": asset_type.value,
            "signature_type": int(self._signature_type),
        }
        if token_id is not None:
            params["token_id"] = token_id
        return params

    async def balance_allowance(
        self, asset_type: AssetType, token_id: str | None = None
    ) -> BalanceAllowance:
        """``GET /balance-allowance`` for pUSD (COLLATERAL) or one outcome token (CONDITIONAL)."""
        params = self._balance_params(asset_type, token_id)
        raw = await self._private("GET", "/balance-allowance", params=params, idempotent=True)
        return decode_balance_allowance(raw)

    async def refresh_balance_allowance(
        self, asset_type: AssetType, token_id: str | None = None
    ) -> None:
        """``GET /balance-allowance/update``: make the venue re-read the chain (after funding,
        approving, or a fill that the venue's cache has not caught up with)."""
        params = self._balance_params(asset_type, token_id)
        await self._private("GET", "/balance-allowance/update", params=params, idempotent=True)

    async def refresh_balance_for(self, side: Side, token_id: str) -> None:
        """Refresh what an order of ``side`` spends: pUSD for a BUY, the token for a SELL."""
        if side is Side.BUY:
            await self.refresh_balance_allowance(AssetType.COLLATERAL)
        else:
            await self.refresh_balance_allowance(AssetType.CONDITIONAL, token_id)

    # --- heartbeat -----------------------------------------------------------------------------

    async def heartbeat(self) -> str:
        """``POST /v1/heartbeats`` with the last id; returns the new id.

        Once started, a missed beat (10 s + 5 s grace) makes the venue cancel every open order.
        A stale id is answered with 400; the chain is then restarted once with an empty id.
        """
        for attempt in range(2):
            content = dumps_compact({"heartbeat_id": self._heartbeat_id})
            try:
                raw = await self._private(
                    "POST", "/v1/heartbeats", content=content, idempotent=True
                )
            except RestError as exc:
                if exc.status != 400 or attempt or not self._heartbeat_id:
                    raise
                logger.warning("heartbeat id rejected ({}); restarting the chain", exc.message)
                self._heartbeat_id = ""
                continue
            data = orjson.loads(raw)
            beat = data.get("heartbeat_id") if isinstance(data, dict) else None
            if not isinstance(beat, str):
                raise RemoteProtocolError(f"heartbeat answer has no heartbeat_id: {raw[:200]!r}")
            self._heartbeat_id = beat
            return beat
        raise AssertionError("unreachable")  # pragma: no cover

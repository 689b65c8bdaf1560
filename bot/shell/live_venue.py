"""The live venue: the engine's ``Venue`` backed by the real CLOB (or the sim venue's private side).

The engine is synchronous and the paper venue answers at once; the CLOB answers later, over
REST and the user channel. ``LiveVenue`` bridges the two without the engine knowing:

* ``submit``/``cancel`` (called by the engine inside the execution task) only *queue* work and
  return ``[]``. Worker tasks sign each order off the loop, journal the mapping from our order
  id to the venue's (the EIP-712 digest, known before sending) *before* the order leaves, post
  it, and report what became of it. Everything the venue tells us comes back through ``outbox``,
  which the execution task reads and hands to ``Engine.absorb``: the same ``OrderUpdate`` and
  ``Fill`` events the paper venue produces, under our own order ids.
* **The user channel is the truth for fills.** A REST answer says how much matched (that drives
  a basket's next leg), but shares and cash change only on the channel's trade events, once per
  trade (``UserEventMapper`` drops repeats; the portfolio drops a fill id it has seen). Fills
  are *provisional* until their trade is ``CONFIRMED``; a ``FAILED`` trade takes its fills back
  (``FillReversed``). ``statistics()`` keeps provisional and confirmed apart.
* An order's final status is held back until its fills have arrived (or ``fill_wait_s`` has
  passed), so a strategy sees fills before the order's end, as on paper, and a basket's leg
  risk is priced from real fills.
* **Balances before sells**: the venue's balance cache lags behind fills, so a sell of a
  token that filled since its last refresh refreshes it first (a reject still refreshes and
  retries once, ``TradingClient.submit``).
* **Never double-send.** A post whose outcome is unknown (timeout, 5xx) is reconciled by its
  expected id (``TradingClient.reconcile``) and reported as the venue says: placed, filled, or
  not placed. It is never sent again.
* **Reconciliation** at start, after every user-channel reconnect and every ``reconcile_s``:
  the channel does not replay what was missed, so open orders and recent trades are read over
  REST. At start, orders the venue holds that this process did not place (left by a crashed
  run) are cancelled; later ones belong to another program on the same wallet and are only
  reported. Orders we think rest but the venue does not list are looked up and ended; missed
  trades become fills.
* **The dead-man heartbeat** beats every ``heartbeat_s`` from before the first order: if this
  process hangs or dies, the venue cancels everything within ~15 s.
* **Shutdown**: however ``run`` ends (SIGINT, SIGTERM, a fatal error), a shielded cancel-all,
  then a check that nothing rests, within ``grace_s``; the result is logged.

No secret is logged: ids, statuses and amounts only.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Final

import attrs
import trio
from loguru import logger

from bot.core.money import Side, format_units, notional_units
from bot.core.trading import Decision, Fill, Order, OrderStatus, OrderUpdate
from bot.core.user_events import (
    FillConfirmed,
    TradeFailed,
    UserEventMapper,
    UserFill,
    map_order_status,
)
from bot.shell.clob_trading import (
    MAX_CANCEL_IDS,
    AssetType,
    OrderOutcomeUnknown,
    OrderRequest,
    VenueRejected,
)
from bot.shell.rest import RegionBlocked, RestFailure

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Mapping

    from bot.core.book import BookView
    from bot.core.trading import ExecEvent
    from bot.core.universe import Universe
    from bot.core.wire.clob import OpenOrder, PostOrderResponse
    from bot.core.wire.market_events import LastTradePrice
    from bot.core.wire.user import UserTrade
    from bot.shell.clob_trading import TradingClient

__all__ = [
    "ORDER_SENT",
    "TRADE_FAILED",
    "FillReversed",
    "LiveStats",
    "LiveTradingRefused",
    "LiveVenue",
]

ORDER_SENT: Final = "order.sent"
"""The decision that journals our order id -> the venue's, before the order is posted."""
TRADE_FAILED: Final = "trade.failed"
"""The decision that journals a provisional fill taken back (replayed at start)."""


class LiveTradingRefused(Exception):
    """Live trading cannot start safely; the message says why and what to check (never a
    secret): missing keys, a first heartbeat the venue refused (no dead-man switch), a user
    channel that did not come up (fills would go unseen)."""


@attrs.frozen
class FillReversed:
    """A provisional fill whose trade failed on chain: the execution task undoes it."""

    fill: Fill
    trade_id: str


@attrs.define(eq=False)
class LiveStats:
    """Counters of the live venue (the health record shows them)."""

    posted: int = 0
    rejected: int = 0
    outcome_unknown: int = 0
    reconciled_orders: int = 0
    cancels_sent: int = 0
    orphans_cancelled: int = 0
    provisional_fills: int = 0
    confirmed_fills: int = 0
    failed_fills: int = 0
    provisional_notional: int = 0
    """Micro-pUSD of fills whose trades are not ``CONFIRMED`` yet."""
    heartbeats: int = 0
    heartbeat_failures: int = 0
    heartbeat_ok: bool = False
    heartbeat_last_ok_at: float | None = None
    """Monotonic seconds of the last acknowledged beat."""
    reconciles: int = 0
    late_fills_released: int = 0
    shutdown: str = ""


@attrs.define(eq=False)
class _Live:
    """What we track of one of our orders."""

    order: Order
    venue_id: str = ""
    state: str = "queued"
    """queued -> signing -> posting -> placed | done."""
    cancel_reason: str | None = None
    reported: tuple[OrderStatus, int] | None = None
    fills_seen: int = 0
    held: OrderUpdate | None = None
    held_since: float = 0.0


class LiveVenue:
    """The engine's venue over the CLOB (see the module docstring).

    Args:
        client: the authenticated trading client.
        api_key: our API key (the owner of our maker orders in trade events).
        universe: the markets (tick sizes, neg-risk flags).
        record: journals an item and returns once it is committed.
        known: venue order id -> (our id, strategy) for orders of earlier runs (from the journal).
        workers: orders signed and posted concurrently.
        heartbeat_s: the dead-man heartbeat interval (the venue cancels after 10 s + 5 s).
        fill_wait_s: how long an order's end waits for its fills before it is reported anyway.
        grace_s: the shutdown cancel-all and its check must finish within this.
        trades_lookback_s: how far back the first reconciliation reads trades.
        reconcile_s: how often open orders and trades are reconciled besides at (re)connects.
    """

    def __init__(
        self,
        client: TradingClient,
        universe: Universe,
        api_key: str,
        *,
        record: Callable[[Any], Awaitable[None]],
        known: Mapping[str, tuple[str, str]] | None = None,
        workers: int = 4,
        heartbeat_s: float = 5.0,
        fill_wait_s: float = 5.0,
        grace_s: float = 5.0,
        trades_lookback_s: int = 3_600,
        reconcile_s: float = 60.0,
    ) -> None:
        self._client = client
        self._universe = universe
        self._record = record
        self._workers = workers
        self._heartbeat_s = heartbeat_s
        self._fill_wait_s = fill_wait_s
        self._grace_s = grace_s
        self._trades_lookback_s = trades_lookback_s
        self._orders: dict[str, _Live] = {}
        """our order id -> its state (until it ends and its fills are in)."""
        self._by_venue: dict[str, str] = {}
        """venue order id -> our order id."""
        self._strategy_by_venue: dict[str, str] = {v: s for v, (_, s) in (known or {}).items()}
        self._local_by_venue: dict[str, str] = {v: o for v, (o, _) in (known or {}).items()}
        self._provisional: dict[str, tuple[Fill, ...]] = {}
        self._trades_after: int | None = None
        self._filled_since_refresh: set[str] = set()
        self._foreign: set[str] = set()
        """Venue order ids seen resting after start that this run did not place."""
        self._reconcile_lock = trio.Lock()
        self._reconcile_s = reconcile_s
        """Tokens with fills since their balance was last refreshed (refresh before a sell)."""
        self._queue_send, self._queue = trio.open_memory_channel[str](math.inf)
        self._cancels_send, self._cancels = trio.open_memory_channel[str](math.inf)
        self._outbox_send, self.outbox = trio.open_memory_channel[object](math.inf)
        self.stats = LiveStats()
        self.mapper = UserEventMapper(api_key, strategy_of=self.strategy_of, is_ours=self.is_ours)
        """The user channel's state machine (give it to ``UserFeed``); reconciliation feeds
        missed trades through it too, so a trade seen both ways counts once."""

    # --- the engine's Venue protocol (synchronous: queue and return) ----------------------------

    def submit(
        self, order: Order, view: BookView | None, now: float, ts_ms: int
    ) -> list[ExecEvent]:
        self._orders[order.id] = _Live(order)
        self._queue_send.send_nowait(order.id)
        return []

    def cancel(self, order_id: str, now: float, reason: str = "canceled") -> list[ExecEvent]:
        live = self._orders.get(order_id)
        if live is None or live.state == "done":
            return []
        if live.cancel_reason is not None:
            return []  # already on its way
        live.cancel_reason = reason
        if live.state == "queued":  # never left: it ends here
            live.state = "done"
            live.reported = (OrderStatus.CANCELED, live.order.filled)
            del self._orders[order_id]
            return [self._end(live, OrderStatus.CANCELED, live.order.filled, reason, now)]
        if live.state == "placed":
            self._cancels_send.send_nowait(order_id)
        # signing/posting: the worker cancels it once the venue has it
        return []

    def watches(self, token_id: str) -> bool:
        return False  # fills come from the venue, not from our copy of the book

    def on_book(self, view: BookView, now: float, ts_ms: int) -> list[ExecEvent]:
        return []

    def on_trade(self, trade: LastTradePrice, now: float, ts_ms: int) -> list[ExecEvent]:
        return []

    # --- the user channel (UserFeed's callbacks) ------------------------------------------------

    def strategy_of(self, venue_id: str) -> str | None:
        """The strategy that placed a venue order id (this run's or a journaled earlier one)."""
        local = self._by_venue.get(venue_id)
        if local is not None and local in self._orders:
            return self._orders[local].order.strategy
        return self._strategy_by_venue.get(venue_id)

    def is_ours(self, venue_id: str) -> bool:
        return venue_id in self._by_venue or venue_id in self._strategy_by_venue

    def on_user_event(self, event: object) -> None:
        """One event from ``UserEventMapper`` (must not block: it only posts to ``outbox``)."""
        now = trio.current_time()
        if isinstance(event, OrderUpdate):
            self._venue_update(event, now)
        elif isinstance(event, UserFill):
            self._fill(event.fill, event.trade_id, provisional=event.provisional, now=now)
        elif isinstance(event, FillConfirmed):
            fills = self._provisional.pop(event.trade_id, ())
            self.stats.confirmed_fills += len(fills)
            self.stats.provisional_fills -= len(fills)
            self.stats.provisional_notional -= sum(_notional(f) for f in fills)
        elif isinstance(event, TradeFailed):
            fills = self._provisional.pop(event.trade_id, ())
            self.stats.provisional_fills -= len(fills)
            self.stats.provisional_notional -= sum(_notional(f) for f in fills)
            for fill in fills:
                self.stats.failed_fills += 1
                self._post(FillReversed(fill, event.trade_id))

    async def reconcile(self) -> None:
        """Bring our view in line with the venue's: after every user-channel (re)connect, and
        every ``reconcile_s`` (a channel that stays up can still miss an event)."""
        async with self._reconcile_lock:
            await self._reconcile()

    async def _reconcile(self) -> None:
        client = self._client
        first = self.stats.reconciles == 0
        self.stats.reconciles += 1
        venue_now = int(await client.venue_now())
        after = self._trades_after
        if after is None:
            after = venue_now - self._trades_lookback_s
        open_orders = await client.open_orders()
        listed: set[str] = set()
        orphans: list[str] = []
        now = trio.current_time()
        for open_order in open_orders:
            local = self._by_venue.get(open_order.id)
            if local is None:
                orphans.append(open_order.id)
                continue
            listed.add(open_order.id)
            live = self._orders.get(local)
            if live is not None:
                self._from_open_order(live, open_order, now)
        if orphans and not first:
            # After start, an order we did not place is another program's (same wallet): not
            # ours to cancel.
            new = [o for o in orphans if o not in self._foreign]
            self._foreign.update(new)
            if new:
                logger.warning(
                    "{} order(s) rest at the venue that this run did not place (left alone)",
                    len(new),
                )
        elif orphans:
            # At start: resting orders left by a run that died without its shutdown
            # cancel-all. Nothing here manages them, so they go.
            logger.warning(
                "cancelling {} order(s) resting at the venue that this run did not place",
                len(orphans),
            )
            result = await client.cancel_many(orphans)
            self.stats.orphans_cancelled += len(result.canceled)
            self._post(
                Decision(
                    "execution",
                    "orders.orphans_cancelled",
                    "",
                    {
                        "canceled": str(len(result.canceled)),
                        "failed": str(len(result.not_canceled)),
                    },
                )
            )
        for live in list(self._orders.values()):
            if live.state != "placed" or live.venue_id in listed:
                continue
            # Not resting any more: it ended while we were not listening (or never landed).
            await self._reconcile_one(live, "not at the venue (reconciled)")
        trades = await client.trades(after=max(0, after))
        self._trades_after = venue_now - 60  # overlap: the mapper drops what it saw
        self._replay_trades(trades)

    def _replay_trades(self, trades: Iterable[UserTrade]) -> None:
        now = trio.current_time()
        for trade in trades:
            for event in self.mapper.apply(trade, now):
                self.on_user_event(event)

    async def check_positions(self, held: Mapping[str, int]) -> list[str]:
        """Compare the journal's positions with the venue's token balances, once at start.

        The journal is our record; the venue's balance is the truth. They differ when trades
        happened that we never saw (older than the trades look-back, made by hand on the
        website, or by another program with the same wallet). Each difference is logged and
        journaled (``positions.mismatch``) so the trader knows at once; positions are not
        changed (which strategy owns an unexplained difference is the trader's call).

        Returns:
            One line per token that differs.
        """
        lines: list[str] = []
        for token, shares in sorted(held.items()):
            try:
                answer = await self._client.balance_allowance(AssetType.CONDITIONAL, token)
            except RestFailure as exc:
                lines.append(f"{token[:12]}: balance not read ({exc})")
                continue
            venue = int(answer.balance)
            if venue != shares:
                lines.append(
                    f"{token[:12]}: the journal holds {format_units(shares)}, "
                    f"the venue {format_units(venue)}"
                )
        if lines:
            logger.warning("positions differ from the venue: {}", "; ".join(lines))
            self._post(
                Decision("execution", "positions.mismatch", "", {"tokens": "; ".join(lines)})
            )
        elif held:
            logger.info("positions match the venue's balances ({} tokens)", len(held))
        return lines

    # --- tasks ----------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Heartbeat, order workers and the held-back-ends clock until cancelled; then the
        shielded cancel-all. Started (``task_status``) once the first heartbeat is in, so the
        dead-man switch covers the first order."""
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self._heartbeat)
                if not self.stats.heartbeat_ok:
                    raise LiveTradingRefused(
                        "the venue refused the first dead-man heartbeat, so a hung bot's orders "
                        "would not be cancelled; not trading (see the log; `polybot doctor` "
                        "checks auth)"
                    )
                for n in range(self._workers):
                    nursery.start_soon(self._worker, name=f"live venue worker {n}")
                nursery.start_soon(self._canceller, name="live venue: cancels")
                nursery.start_soon(self._release_late, name="live venue: held ends")
                nursery.start_soon(self._reconcile_every, name="live venue: reconcile")
                task_status.started()
        finally:
            with trio.CancelScope(
                shield=True, deadline=trio.current_time() + self._grace_s
            ) as scope:
                await self.shutdown()
            if scope.cancelled_caught:
                self.stats.shutdown = (
                    f"cancel-all did not finish within {self._grace_s:g}s; orders may still "
                    "rest (the lapsed heartbeat makes the venue cancel them)"
                )
                logger.error("shutdown: {}", self.stats.shutdown)

    async def shutdown(self) -> str:
        """Cancel every order of the account and check that nothing rests; log the result."""
        try:
            result = await self._client.cancel_all()
            resting = await self._client.open_orders()
        except (RestFailure, OSError, trio.TooSlowError) as exc:
            outcome = (
                f"cancel-all FAILED: {exc}; orders may still rest "
                "(the lapsed heartbeat makes the venue cancel them)"
            )
            logger.error("shutdown: {}", outcome)
        else:
            if resting:
                outcome = f"{len(resting)} order(s) still rest after cancel-all: " + ", ".join(
                    o.id[:18] for o in resting[:10]
                )
                logger.error("shutdown: {}", outcome)
            else:
                outcome = f"cancel-all done ({len(result.canceled)} cancelled); nothing rests"
                logger.info("shutdown: {}", outcome)
        self.stats.shutdown = outcome
        return outcome

    async def _heartbeat(self, *, task_status: trio.TaskStatus[None]) -> None:
        started = False
        while True:
            try:
                await self._client.heartbeat()
            except RegionBlocked:
                raise
            except RestFailure as exc:
                self.stats.heartbeat_failures += 1
                self.stats.heartbeat_ok = False
                logger.error("heartbeat failed ({}); the venue cancels orders after 15 s", exc)
            else:
                self.stats.heartbeats += 1
                self.stats.heartbeat_ok = True
                self.stats.heartbeat_last_ok_at = trio.current_time()
            if not started:
                started = True
                task_status.started()
            await trio.sleep(self._heartbeat_s)

    async def _reconcile_every(self) -> None:
        while True:
            await trio.sleep(self._reconcile_s)
            try:
                await self.reconcile()
            except RegionBlocked:
                raise
            except RestFailure as exc:  # the next one, or the next reconnect, tries again
                logger.warning("periodic reconciliation failed: {}", exc)

    async def _release_late(self) -> None:
        """Report ends whose fills did not all arrive within ``fill_wait_s`` anyway."""
        while True:
            await trio.sleep(self._fill_wait_s / 4)
            now = trio.current_time()
            for live in list(self._orders.values()):
                if live.held is not None and now - live.held_since >= self._fill_wait_s:
                    self.stats.late_fills_released += 1
                    logger.warning(
                        "order {}: {} matched but only {} filled on the user channel after {}s",
                        live.order.id,
                        format_units(live.held.filled),
                        format_units(live.fills_seen),
                        self._fill_wait_s,
                    )
                    self._release(live)

    async def _worker(self) -> None:
        async for order_id in self._queue:
            await self._place_queued(order_id)

    async def _canceller(self) -> None:
        """One task for every cancel: whatever is waiting goes out in one request (``DELETE
        /orders``), so the kill switch or pulling every quote is one round trip, not one per
        order. (Several workers would each take one cancel off the channel as it arrives.)"""
        async for order_id in self._cancels:
            batch = [order_id]
            while len(batch) < MAX_CANCEL_IDS:
                try:
                    batch.append(self._cancels.receive_nowait())
                except trio.WouldBlock:
                    break
            await self._cancel(
                [
                    live
                    for live in (self._orders.get(oid) for oid in batch)
                    if live is not None and live.state == "placed"
                ]
            )

    async def _place_queued(self, order_id: str) -> None:
        live = self._orders.get(order_id)
        if live is not None and live.state == "queued":
            await self._place(live)

    async def _place(self, live: _Live) -> None:
        order = live.order
        market = self._universe.market_for_token(order.token_id)
        request = OrderRequest(
            token_id=order.token_id,
            side=order.side,
            price=order.price,
            size=order.size,
            tick=market.tick_size,
            neg_risk=market.neg_risk,
            order_type=order.order_type,
            post_only=order.post_only,
        )
        live.state = "signing"
        if order.side is Side.SELL and order.token_id in self._filled_since_refresh:
            # The venue caches balances and lags behind fills: a sell of shares just bought
            # would be refused for "not enough balance". Refresh the token's first.
            self._filled_since_refresh.discard(order.token_id)
            try:
                await self._client.refresh_balance_for(Side.SELL, order.token_id)
            except RestFailure as exc:
                logger.warning("balance refresh before a sell failed: {}", exc)
        try:
            post = await self._client.prepare(request)
        except ValueError as exc:  # our request is invalid: a bug, said as such
            live.state = "done"
            self._post_end(live, OrderStatus.REJECTED, 0, f"not signed: {exc}")
            return
        live.venue_id = post.order_id
        self._by_venue[post.order_id] = order.id
        await self._record(
            Decision(
                order.strategy,
                ORDER_SENT,
                order.id,
                {"venue_id": post.order_id, "token": order.token_id},
            )
        )
        live.state = "posting"
        self.stats.posted += 1
        try:
            result = await self._client.submit(post, request)
        except VenueRejected as exc:
            self.stats.rejected += 1
            live.state = "done"
            self._post_end(live, OrderStatus.REJECTED, 0, exc.message or str(exc))
            return
        except OrderOutcomeUnknown as exc:
            self.stats.outcome_unknown += 1
            logger.warning("order {}: outcome unknown ({}); reconciling", order.id, exc)
            await self._reconcile_one(live)
            return
        except RegionBlocked:
            live.state = "done"
            self._post_end(live, OrderStatus.REJECTED, 0, "region blocked")
            raise
        except RestFailure as exc:  # 425/429/503 on every attempt: the venue did not act
            self.stats.rejected += 1
            live.state = "done"
            self._post_end(live, OrderStatus.REJECTED, 0, f"venue unavailable: {exc}")
            return
        assert result.response is not None
        if live.state == "posting":  # (the user channel may have ended it already)
            self._from_response(live, result.response)
        if live.state == "placed" and live.cancel_reason is not None:
            await self._cancel([live])  # cancelled while it was on its way

    async def _reconcile_one(
        self, live: _Live, missing: str = "not placed (reconciled after a timeout)"
    ) -> None:
        try:
            found = await self._client.reconcile(live.venue_id)
        except RestFailure as exc:
            # Still unknown: keep it as placed; the next reconciliation (or its fills) says more.
            logger.error("order {}: reconcile failed ({}); kept as placed", live.order.id, exc)
            live.state = "placed"
            return
        self.stats.reconciled_orders += 1
        now = trio.current_time()
        if found.order is not None:
            live.state = "placed"
            self._from_open_order(live, found.order, now)
        elif found.trades:
            # A marketable order that matched leaves only trades: feed them through the mapper.
            live.state = "placed"
            matched = sum(_our_size(t, live.venue_id) for t in found.trades)
            self._replay_trades(found.trades)
            status = OrderStatus.MATCHED if matched >= live.order.size else OrderStatus.CANCELED
            live.state = "done"
            self._post_end(live, status, matched, "reconciled")
        else:
            live.state = "done"
            self._post_end(live, OrderStatus.REJECTED, 0, missing)

    async def _cancel(self, lives: list[_Live]) -> None:
        if not lives:
            return
        self.stats.cancels_sent += 1
        try:
            if len(lives) == 1:
                result = await self._client.cancel(lives[0].venue_id)
            else:
                result = await self._client.cancel_many([live.venue_id for live in lives])
        except RestFailure as exc:
            logger.error(
                "cancel of {} order(s) failed ({}): {}",
                len(lives),
                ", ".join(live.order.id for live in lives[:5]),
                exc,
            )
            for live in lives:
                live.cancel_reason = None  # a later cancel may try again
            return
        canceled = set(result.canceled)
        for live in lives:
            if live.venue_id in canceled and live.state == "placed":
                live.state = "done"
                self._post_end(
                    live, OrderStatus.CANCELED, live.order.filled, live.cancel_reason or "canceled"
                )
        # not_canceled: already matched or gone; the user channel / reconciliation say how

    # --- turning venue answers into events ------------------------------------------------------

    def _from_response(self, live: _Live, response: PostOrderResponse) -> None:
        order = live.order
        matched = response.taking_amount if order.side is Side.BUY else response.making_amount
        matched = min(matched, order.size)
        if response.status is not None and response.status.value in ("delayed", "unmatched"):
            live.state = "placed"  # held back by the venue: the user channel tells the rest
            self._post_update(live, OrderStatus.LIVE, 0, "")
        elif order.order_type.rests and matched < order.size:
            live.state = "placed"
            self._post_update(live, OrderStatus.LIVE, matched, "")
        else:
            live.state = "done"
            status = OrderStatus.MATCHED if matched >= order.size else OrderStatus.CANCELED
            reason = "" if status is OrderStatus.MATCHED else f"{order.order_type.lower()}_unfilled"
            self._post_end(live, status, matched, reason)

    def _from_open_order(self, live: _Live, open_order: OpenOrder, now: float) -> None:
        status = map_order_status(
            open_order.status,
            order_type=open_order.order_type,
            filled=open_order.size_matched,
            size=open_order.original_size,
        )
        if status is OrderStatus.LIVE:
            self._post_update(live, status, open_order.size_matched, "")
        else:
            live.state = "done"
            self._post_end(live, status, open_order.size_matched, open_order.status_text.lower())

    def _venue_update(self, update: OrderUpdate, now: float) -> None:
        local = self._by_venue.get(update.order_id)
        live = self._orders.get(local) if local is not None else None
        if live is None:
            return  # not this run's (an earlier run's fills still come through as fills)
        if live.state in ("signing", "posting"):
            # The channel can beat the REST answer; the answer decides the state, not this.
            if update.status.terminal:
                live.state = "done"
                self._post_end(live, update.status, update.filled, update.reason)
            return
        if update.status.terminal:
            live.state = "done"
            self._post_end(live, update.status, update.filled, update.reason)
        else:
            self._post_update(live, update.status, update.filled, update.reason)

    def _fill(self, fill: Fill, trade_id: str, *, provisional: bool, now: float) -> None:
        venue_id = fill.order_id
        local = self._by_venue.get(venue_id) or self._local_by_venue.get(venue_id) or venue_id
        fill = attrs.evolve(fill, order_id=local, strategy=fill.strategy or "unattributed")
        if provisional:
            self._provisional[trade_id] = (*self._provisional.get(trade_id, ()), fill)
            self.stats.provisional_fills += 1
            self.stats.provisional_notional += _notional(fill)
        else:
            self.stats.confirmed_fills += 1
        self._post(fill)
        self._filled_since_refresh.add(fill.token_id)
        live = self._orders.get(local)
        if live is not None:
            live.fills_seen += fill.size
            if live.held is not None and live.fills_seen >= live.held.filled:
                self._release(live)

    def _post_update(self, live: _Live, status: OrderStatus, filled: int, reason: str) -> None:
        """A non-terminal change (live, more filled), reported once per change."""
        filled = max(filled, live.order.filled)
        if live.reported == (status, filled):
            return
        live.order.filled = filled
        live.order.status = status
        live.reported = (status, filled)
        self._post(self._update(live, status, filled, reason))

    def _post_end(self, live: _Live, status: OrderStatus, filled: int, reason: str) -> None:
        """The order's end: reported once its fills are in (or ``fill_wait_s`` later)."""
        if live.held is not None or (live.reported is not None and live.reported[0].terminal):
            return
        filled = max(filled, live.order.filled)
        update = self._end(live, status, filled, reason, trio.current_time())
        if live.fills_seen >= filled:
            live.reported = (status, filled)
            self._orders.pop(live.order.id, None)
            self._post(update)
        else:
            live.held, live.held_since = update, trio.current_time()

    def _release(self, live: _Live) -> None:
        update, live.held = live.held, None
        if update is None:
            return
        live.reported = (update.status, update.filled)
        self._orders.pop(live.order.id, None)
        self._post(update)

    def _end(
        self, live: _Live, status: OrderStatus, filled: int, reason: str, now: float
    ) -> OrderUpdate:
        live.order.filled = filled
        live.order.status = status
        return self._update(live, status, filled, reason, now)

    def _update(
        self,
        live: _Live,
        status: OrderStatus,
        filled: int,
        reason: str,
        now: float | None = None,
    ) -> OrderUpdate:
        order = live.order
        return OrderUpdate(
            order.id,
            order.strategy,
            order.token_id,
            order.side,
            order.price,
            order.size,
            filled,
            status,
            reason,
            trio.current_time() if now is None else now,
        )

    def _post(self, item: object) -> None:
        self._outbox_send.send_nowait(item)


def _notional(fill: Fill) -> int:
    return notional_units(fill.price, fill.size, round_up=fill.side is Side.BUY)


def _our_size(trade: UserTrade, venue_id: str) -> int:
    if trade.taker_order_id == venue_id:
        return trade.size
    return sum(m.matched_amount for m in trade.maker_orders if m.order_id == venue_id)

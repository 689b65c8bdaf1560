"""The execution task: strategies' intents in, orders to the venue, fills journaled and routed back.

One task owns the engine (``bot.core.engine``), so orders, positions and risk have one writer.
It runs three loops in its own nursery:

* **intents**: ``Submission``s from the strategy tasks (a bounded channel: a strategy that floods
  it waits, nobody else); each goes through risk to the venue;
* **market**: its own bus subscription; every book view and trade goes to the paper venue,
  which fills resting orders at their queue position; ``TokenStale``/``TokenFresh`` keep the
  engine's stale set (the risk veto); a resolved market cancels its orders;
* **risk clock**: every ``loss_check_s`` the day's PnL is computed and the kill switch may trip.

Everything the engine produces is journaled first (``await journal.record``: backpressure, never
a drop, acknowledged once committed) and then posted to the strategy it belongs to (its own bus
subscription, in order with its market data), logged, and counted. Refusals are logged with their
reason and journaled as ``order.rejected`` decisions.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import trio
from loguru import logger

from bot.core.engine import EngineOutput
from bot.core.money import format_units
from bot.core.trading import Decision, Fill, OrderStatus, OrderUpdate, Place
from bot.core.wire.market_events import LastTradePrice, MarketResolved
from bot.shell.feed_events import TokenFresh, TokenStale

if TYPE_CHECKING:
    from collections.abc import Mapping

    from bot.core.engine import Engine, Rejection
    from bot.shell.bus import Subscription
    from bot.shell.logsink import LogChannel
    from bot.shell.runner import Submission


RESOLVED = "market.resolved"
"""The decision kind that records a settlement (replayed at start by ``resume``)."""


class JournalSink(Protocol):
    """Where execution records go (``bot.shell.journal.Journal``)."""

    async def record(self, item: Any) -> None: ...

    async def record_marks(self, marks: Mapping[str, int], *, ts_ms: int | None = None) -> None: ...


@attrs.define(eq=False)
class ExecutionStats:
    """Counters of the execution task (read by the health line)."""

    submissions: int = 0
    fills: int = 0
    rejections: int = 0
    fees: int = 0
    trades_seen: int = 0
    market_resyncs: int = 0


def wall_ms() -> int:
    """Wall-clock epoch milliseconds (journal and report times only)."""
    return time.time_ns() // 1_000_000


@attrs.define(eq=False)
class Execution:
    """The execution task (see the module docstring).

    Attributes:
        engine: orders, risk and the portfolio.
        journal: where every order update, fill and decision is recorded.
        log: the JSON-lines log.
        market: the task's own bus subscription (book views and trades for the paper venue).
        inboxes: each strategy's bus subscription, to post its own order updates and fills.
        loss_check_s: how often the day's PnL is checked against the kill switch.
    """

    engine: Engine
    journal: JournalSink
    log: LogChannel
    market: Subscription[Any]
    inboxes: Mapping[str, Subscription[Any]]
    loss_check_s: float = 1.0
    stats: ExecutionStats = attrs.field(factory=ExecutionStats)
    _rejected_ids: int = attrs.field(default=0, init=False)

    async def run(
        self,
        intents: trio.MemoryReceiveChannel[Submission],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._intents, intents, name="execution: intents")
            nursery.start_soon(self._market, name="execution: market")
            nursery.start_soon(self._risk_clock, name="execution: risk clock")
            task_status.started()

    async def _intents(self, intents: trio.MemoryReceiveChannel[Submission]) -> None:
        async with intents:
            async for submission in intents:
                self.stats.submissions += 1
                for decision in submission.decisions:
                    await self.journal.record(decision)
                if submission.intents:
                    out = self.engine.submit(
                        submission.strategy, submission.intents, trio.current_time(), wall_ms()
                    )
                    await self._emit(out)

    async def _market(self) -> None:
        engine = self.engine
        async for delivery in self.market:
            now = trio.current_time()
            ts_ms = wall_ms()
            for stamped in delivery.events:
                event = stamped.item
                if isinstance(event, LastTradePrice):
                    self.stats.trades_seen += 1
                    await self._emit(engine.on_trade(event, now, ts_ms))
                elif isinstance(event, TokenStale):
                    engine.stale.add(event.asset_id)
                elif isinstance(event, TokenFresh):
                    engine.stale.discard(event.asset_id)
                elif isinstance(event, MarketResolved):
                    await self._resolved(event, now)
            if delivery.resync is not None:
                self.stats.market_resyncs += 1
                logger.warning(
                    "execution lost {} market events (trades may be missed by paper fills)",
                    delivery.resync.lost,
                )
            for token, update in delivery.books.items():
                if engine.wants_book(token):  # else no view is built for it (lazy views)
                    await self._emit(engine.on_book(update.view, now, ts_ms))

    async def _resolved(self, event: MarketResolved, now: float) -> None:
        """Cancel what rests on a resolved market and settle its positions (journaled, so a
        restart settles them again after replaying the fills)."""
        for token in event.assets_ids:
            await self._emit(self.engine.cancel_all(None, token, now, "market_resolved"))
        paid = self.engine.ledger.resolve(
            event.market, event.winning_asset_id or None, event.assets_ids
        )
        decision = Decision(
            "execution",
            RESOLVED,
            event.market,
            {
                "winner": event.winning_asset_id,
                "tokens": ",".join(event.assets_ids),
                "paid": format_units(paid),
            },
        )
        await self._emit(EngineOutput(decisions=[decision]))

    async def _risk_clock(self) -> None:
        while True:
            await trio.sleep(self.loss_check_s)
            ts_ms = wall_ms()
            await self._emit(self.engine.check_loss(trio.current_time(), ts_ms))
            marks = self.engine.marks()
            if marks:  # open positions are valued at the mid in the report
                await self.journal.record_marks(marks, ts_ms=ts_ms)

    async def _emit(self, out: EngineOutput) -> None:
        if not (out.events or out.rejections or out.decisions):
            return
        now = trio.current_time()
        for event in out.events:
            await self.journal.record(event)
            if isinstance(event, Fill):
                self.stats.fills += 1
                self.stats.fees += event.fee
                self.log.offer(
                    {
                        "kind": "fill",
                        "strategy": event.strategy,
                        "order_id": event.order_id,
                        "token": event.token_id,
                        "side": event.side.name,
                        "price": format_units(event.price),
                        "size": format_units(event.size),
                        "fee": format_units(event.fee),
                        "liquidity": str(event.liquidity),
                    },
                    essential=True,
                )
                logger.info(
                    "fill {} {} {} @ {} fee {} ({}, {})",
                    event.strategy,
                    event.side.name,
                    format_units(event.size),
                    format_units(event.price),
                    format_units(event.fee),
                    event.liquidity,
                    event.token_id[:12],
                )
            elif isinstance(event, OrderUpdate):
                self.log.offer(
                    {
                        "kind": "order",
                        "strategy": event.strategy,
                        "order_id": event.order_id,
                        "token": event.token_id,
                        "status": str(event.status),
                        "reason": event.reason,
                        "filled": format_units(event.filled),
                    }
                )
            inbox = self.inboxes.get(event.strategy)
            if inbox is not None and not inbox.closed:
                inbox.post(event, now)
        for rejection in out.rejections:
            await self._rejected(rejection)
        for decision in out.decisions:
            await self.journal.record(decision)
            self.log.offer(
                {
                    "kind": "decision",
                    "strategy": decision.strategy,
                    "decision": decision.kind,
                    "key": decision.key,
                    **decision.detail,
                },
                essential=True,
            )
            logger.warning(
                "{} {} {}",
                decision.kind,
                decision.key[:12],
                " ".join(f"{k}={v}" for k, v in decision.detail.items()),
            )

    async def _rejected(self, rejection: Rejection) -> None:
        self.stats.rejections += 1
        intent = rejection.intent
        detail: dict[str, str] = {"reason": rejection.reason, "intent": type(intent).__name__}
        key = ""
        if isinstance(intent, Place):
            key = intent.token_id
            detail.update(
                side=intent.side.name,
                price=format_units(intent.price),
                size=format_units(intent.size),
            )
        elif hasattr(intent, "key"):
            key = str(intent.key)
        decision = Decision(rejection.strategy, "order.rejected", key, detail)
        await self.journal.record(decision)
        # The strategy hears of it like a venue rejection, so it can forget the order it expects.
        places = [intent] if isinstance(intent, Place) else list(getattr(intent, "legs", ()))
        inbox = self.inboxes.get(rejection.strategy)
        for place in places:
            self._rejected_ids += 1
            if inbox is not None and not inbox.closed:
                inbox.post(
                    OrderUpdate(
                        f"rejected-{self._rejected_ids}",
                        rejection.strategy,
                        place.token_id,
                        place.side,
                        place.price,
                        place.size,
                        0,
                        OrderStatus.REJECTED,
                        rejection.reason,
                        rejection.at,
                    ),
                    trio.current_time(),
                )
        self.log.offer(
            {"kind": "rejection", "strategy": rejection.strategy, "key": key, **detail},
            essential=True,
        )
        logger.warning("{} order rejected: {}", rejection.strategy, rejection.reason)

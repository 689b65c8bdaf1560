"""The execution task: strategies' intents in, orders to the venue, fills journaled and routed back.

One task owns the engine (``bot.core.engine``), so orders, positions and risk have one writer.
It runs three loops in its own nursery:

* **intents**: ``Submission``s from the strategy tasks (a bounded channel: a strategy that floods
  it waits, nobody else); each goes through risk to the venue;
* **market**: its own bus subscription; every book view and trade goes to the paper venue,
  which fills resting orders at their queue position; ``TokenStale``/``TokenFresh`` keep the
  engine's stale set (the risk veto); a resolved market cancels its orders;
* **risk clock**: every ``loss_check_s`` the day's PnL is computed and the kill switch may trip;
* **venue** (live trading only): what the live venue (``bot.shell.live_venue``) learned on its
  own -- REST answers, user-channel fills and order changes, fills taken back because their trade
  failed on chain -- goes through ``Engine.absorb`` like everything else.

Everything the engine produces is journaled first (``await journal.record``: backpressure, never
a drop, acknowledged once committed) and then posted to the strategy it belongs to (its own bus
subscription, in order with its market data), logged, and counted. Refusals are logged with their
reason and journaled as ``order.rejected`` decisions.
"""

from __future__ import annotations

import re
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Final, Protocol

import attrs
import trio
from loguru import logger

from bot.core.engine import EngineOutput
from bot.core.money import format_units
from bot.core.trading import Decision, Fill, OrderStatus, OrderUpdate, Place
from bot.core.wire.market_events import LastTradePrice, MarketResolved
from bot.shell.feed_events import TokenFresh, TokenStale
from bot.shell.live_venue import TRADE_FAILED, FillReversed

if TYPE_CHECKING:
    from collections.abc import Mapping

    from bot.core.engine import Engine, Rejection
    from bot.core.trading import ExecEvent
    from bot.shell.bus import Subscription
    from bot.shell.logsink import LogChannel
    from bot.shell.runner import Submission


RECENT_DECISIONS: Final = 200
"""Decisions kept in ``Execution.recent_decisions`` for the dashboards."""

RESOLVED = "market.resolved"
"""The decision kind that records a settlement (replayed at start by ``resume``)."""


class JournalSink(Protocol):
    """Where execution records go (``bot.shell.journal.Journal``)."""

    async def record(self, item: Any) -> None: ...

    async def record_marks(self, marks: Mapping[str, int], *, ts_ms: int | None = None) -> None: ...


_REASON_PREFIXES: Final = (
    # Risk's sentences (``bot.core.risk``) and the engine's own refusals, by how they begin,
    # then the live venue's own (``bot.shell.live_venue``).
    ("kill switch", "kill_switch"),
    ("paused", "paused"),
    ("unknown token", "unknown_token"),
    ("no book yet", "no_book"),
    ("stale book", "stale_book"),
    ("marketable order worth", "min_notional"),
    ("notional ", "max_order_notional"),
    ("cannot sell", "no_short"),
    ("order rate", "order_rate"),
    ("basket legs must be", "basket_shape"),
    ("not signed", "not_signed"),
    ("region blocked", "region_blocked"),
    ("venue unavailable", "venue_unavailable"),
    ("not placed", "not_placed"),
)
_REASON_CONTAINS: Final = (
    # Risk's sentences, then the CLOB's error texts (PROTOCOL.md 4.4), first match wins.
    ("is not on the", "off_tick"),
    ("is not a positive multiple", "size_step"),
    ("below the minimum order size", "min_size"),
    ("max_position_shares", "max_position"),
    ("max_total_exposure", "max_exposure"),
    ("belongs to", "not_owner"),
    ("not enough balance", "balance"),
    ("balance is not enough", "balance"),
    ("breaks minimum tick size", "price_off_tick"),
    ("lower than the minimum", "min_size"),
    ("min size: $1", "min_notional"),
    ("duplicated", "duplicated"),
    ("invalid expiration", "expiration"),
    ("post-only mode", "post_only_mode"),
    ("post-only", "post_only_crosses"),
    ("crosses the book", "crosses_book"),
    ("fok orders", "fok_unfilled"),
    ("fak order", "fak_unfilled"),
    ("not yet ready", "market_not_ready"),
    ("trading is currently", "trading_disabled"),
    ("order_version_mismatch", "version_mismatch"),
    ("api key", "auth"),
    ("l1 request", "auth"),
    ("address banned", "account"),
    ("closed only mode", "account"),
    ("maker address not allowed", "account"),
    ("could not", "venue_error"),
)
_VENUE_CODES: Final = frozenset(
    {
        # The paper venue's reasons (``bot.core.paper``) and the user channel's.
        "no_book",
        "post_only_crosses",
        "price_out_of_range",
        "price_off_tick",
        "invalid_size",
        "post_only_not_resting",
        "invalid",
        "balance",
    }
)
_CODE_RE: Final = re.compile(r"([a-z][a-z_]*)(?::|$)")
_LEG_RE: Final = re.compile(r"leg \S+: ")

REJECT_REASONS: Final = frozenset(
    {label for _, label in _REASON_PREFIXES}
    | {label for _, label in _REASON_CONTAINS}
    | _VENUE_CODES
    | {"other"}
)
"""Every label ``reject_reason_label`` can return: a small fixed set, so a metric or an alert
labelled by reason has a bounded number of series however the sentences vary."""


def reject_reason_label(reason: str) -> str:
    """The short label of a rejection reason (one of ``REJECT_REASONS``).

    Risk's reasons are sentences with token ids and amounts in them ("position 10.00 + 5.00
    would exceed max_position_shares ..."), the paper venue's start with a code
    ("price_off_tick: ..."), the CLOB's are its error texts ("order 0x.. is invalid. Size (1)
    lower than the minimum: 5"); a basket's refusal is its leg's reason behind ``leg <token>:``.
    Anything not recognised is ``other`` (the full sentence is in the log and the journal).
    """
    text = _LEG_RE.sub("", reason.strip(), count=1).lower()
    match = _CODE_RE.match(text)
    if match is not None and match.group(1) in _VENUE_CODES:
        return match.group(1)
    for prefix, label in _REASON_PREFIXES:
        if text.startswith(prefix):
            return label
    for part, label in _REASON_CONTAINS:
        if part in text:
            return label
    return "other"


@attrs.define(eq=False)
class ExecutionStats:
    """Counters of the execution task (read by the health line and the metrics).

    ``rejections`` counts intents risk (or the engine) refused; ``rejects_by_reason`` splits
    the same count by ``reject_reason_label``. ``venue_rejects_by_reason`` counts orders the
    venue itself answered ``REJECTED`` (not in ``rejections``).
    """

    submissions: int = 0
    fills: int = 0
    rejections: int = 0
    fees: int = 0
    trades_seen: int = 0
    market_resyncs: int = 0
    fills_reversed: int = 0
    rejects_by_reason: dict[str, int] = attrs.field(factory=dict)
    venue_rejects_by_reason: dict[str, int] = attrs.field(factory=dict)

    def count_rejection(self, reason: str) -> None:
        """An intent refused before reaching the venue, for ``reason``."""
        self.rejections += 1
        label = reject_reason_label(reason)
        self.rejects_by_reason[label] = self.rejects_by_reason.get(label, 0) + 1

    def count_venue_rejection(self, reason: str) -> None:
        """An order the venue answered ``REJECTED``, for ``reason``."""
        label = reject_reason_label(reason)
        self.venue_rejects_by_reason[label] = self.venue_rejects_by_reason.get(label, 0) + 1


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
    venue_events: trio.MemoryReceiveChannel[object] | None = None
    """The live venue's ``outbox`` (``None`` on paper: the paper venue answers at once)."""
    stats: ExecutionStats = attrs.field(factory=ExecutionStats)
    recent_decisions: deque[tuple[float, Decision]] = attrs.field(
        factory=lambda: deque(maxlen=RECENT_DECISIONS), init=False
    )
    """The last ``RECENT_DECISIONS`` decisions journaled (strategies', risk's, the engine's and
    refusals), with ``trio.current_time()``: what the dashboards show as "last decisions"."""
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
            if self.venue_events is not None:
                nursery.start_soon(self._venue, self.venue_events, name="execution: venue")
            task_status.started()

    async def _intents(self, intents: trio.MemoryReceiveChannel[Submission]) -> None:
        async with intents:
            async for submission in intents:
                self.stats.submissions += 1
                for decision in submission.decisions:
                    await self._journal_decision(decision)
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

    async def _venue(self, events: trio.MemoryReceiveChannel[object]) -> None:
        batch: list[ExecEvent] = []
        async for item in events:
            # Take everything already waiting: one engine call and one journal pass per burst.
            items = [item]
            while True:
                try:
                    items.append(events.receive_nowait())
                except trio.WouldBlock:
                    break
            for each in items:
                if isinstance(each, Fill | OrderUpdate):
                    batch.append(each)
                    continue
                if batch:
                    await self._emit(self.engine.absorb(batch, trio.current_time()))
                    batch = []
                if isinstance(each, FillReversed):
                    await self._reversed(each)
                elif isinstance(each, Decision):
                    await self._emit(EngineOutput(decisions=[each]))
            if batch:
                await self._emit(self.engine.absorb(batch, trio.current_time()))
                batch = []

    async def _reversed(self, reversed_: FillReversed) -> None:
        """A provisional fill's trade failed on chain: undo it, journaled (``resume`` replays
        the undo after the fills)."""
        fill = reversed_.fill
        if not self.engine.undo(fill):
            return
        self.stats.fills_reversed += 1
        decision = Decision(
            fill.strategy,
            TRADE_FAILED,
            fill.fill_id,
            {
                "trade_id": reversed_.trade_id,
                "order_id": fill.order_id,
                "token": fill.token_id,
                "side": fill.side.name,
                "price": format_units(fill.price),
                "size": format_units(fill.size),
            },
        )
        await self._emit(EngineOutput(decisions=[decision]))

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
                if event.status is OrderStatus.REJECTED:
                    self.stats.count_venue_rejection(event.reason)
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
            await self._journal_decision(decision)
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

    async def cancel_all(self, reason: str) -> int:
        """Cancel every strategy's open orders (the operator's cancel-all); how many were open.

        Safe beside the task's own loops: the engine is synchronous, and what it produces is
        journaled and routed like any other output (each strategy hears of its cancels).
        """
        count = len(self.engine.all_open_orders())
        await self._emit(self.engine.cancel_all(None, None, trio.current_time(), reason))
        return count

    async def _journal_decision(self, decision: Decision) -> None:
        self.recent_decisions.append((trio.current_time(), decision))
        await self.journal.record(decision)

    async def _rejected(self, rejection: Rejection) -> None:
        self.stats.count_rejection(rejection.reason)
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
        await self._journal_decision(decision)
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

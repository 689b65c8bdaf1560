"""One task per strategy: take deliveries from the bus, run the pure strategy, log its decisions.

The feed never waits for this task (the bus conflates book updates per token and takes
everything pending in one wake). The strategy call itself is pure and synchronous; if it raises,
that is a bug in one strategy: it is logged with its traceback, the strategy is rebuilt after a
backoff, and neither the feed nor the other strategies notice. ``max_restarts`` bounds it: past
that the strategy is disabled (logged), never the whole bot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
import trio
from loguru import logger

from bot.shell.health import Reservoir

if TYPE_CHECKING:
    import random
    from collections.abc import Callable

    from bot.core.backoff import Backoff
    from bot.core.book import BookView
    from bot.core.observers import Observer
    from bot.shell.bus import Subscription
    from bot.shell.logsink import LogChannel


@attrs.define(eq=False)
class RunnerStats:
    """What one strategy task did (read by the health line)."""

    name: str
    deliveries: int = 0
    decisions: int = 0
    skipped_updates: int = 0
    resyncs: int = 0
    crashes: int = 0
    disabled: bool = False
    latency: Reservoir = attrs.field(factory=Reservoir)
    """Tick-to-decision: from the feed receiving a frame to this strategy's decision on it."""


async def run_strategy(
    make: Callable[[], Observer],
    subscription: Subscription[object],
    log: LogChannel,
    stats: RunnerStats,
    *,
    backoff: Backoff,
    rng: random.Random,
    max_restarts: int = 5,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run one strategy until the bus closes or the task is cancelled."""
    strategy = make()
    views: dict[str, BookView] = {}
    bound = logger.bind(strategy=stats.name)
    task_status.started()
    async for delivery in subscription:
        stats.deliveries += 1
        stats.skipped_updates += delivery.skipped
        if delivery.resync is not None:
            stats.resyncs += 1
            views.clear()
        for token, update in delivery.books.items():
            views[token] = update.view
        if stats.disabled:
            continue
        try:
            decisions = strategy.on_books(views, delivery.books.keys(), trio.current_time())
        except Exception:  # a bug in one pure strategy must not take down the others
            stats.crashes += 1
            bound.opt(exception=True).error("strategy {} crashed", stats.name)
            if stats.crashes > max_restarts:
                stats.disabled = True
                bound.error("strategy {} disabled after {} crashes", stats.name, stats.crashes)
                continue
            await trio.sleep(backoff.delay(stats.crashes - 1, rng))
            strategy = make()
            continue
        now = trio.current_time()
        stats.latency.add(now - delivery.latest_received_at)
        for decision in decisions:
            stats.decisions += 1
            log.offer(
                {
                    "kind": "decision",
                    "strategy": decision.strategy,
                    "decision": decision.kind,
                    "key": decision.key,
                    **decision.detail,
                }
            )
            bound.info(
                "{} {} {}",
                decision.kind,
                decision.key[:12],
                " ".join(f"{k}={v}" for k, v in decision.detail.items()),
            )

"""One task per strategy: take deliveries from the bus, run the pure strategy, hand its intents on.

The feed never waits for this task (the bus conflates book updates per token and takes
everything pending in one wake). Per wake the runner:

1. applies the delivery's events in order: ``TokenStale``/``TokenFresh`` keep the strategy's stale
   set and call ``on_stale``; the strategy's own ``OrderUpdate``/``Fill`` (posted to its
   subscription by the execution task), forecasts and market events go to ``on_event``;
2. replaces the views of the tokens that moved and calls ``on_books`` once for all of them;
3. calls ``on_timer`` when the time the strategy asked for (``wakeup_at``) has come: the runner
   waits for the bus *or* that time, whichever is first (how a debounce is built);
4. logs its ``Decision``s and sends the whole batch of actions to the execution task
   (``submit``: a bounded channel, so a flood of intents slows this strategy, nobody else).

The strategy itself is pure and synchronous; if it raises, that is a bug in one strategy: it is
logged with its traceback and rebuilt after a backoff (``restart``), or disabled; past
``max_restarts`` it is disabled. Neither the feed nor the other strategies notice.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import attrs
import trio
from loguru import logger

from bot.core.trading import Context, Decision, Strategy
from bot.shell.feed_events import ShardState, TokenFresh, TokenStale
from bot.shell.health import Reservoir

if TYPE_CHECKING:
    import random
    from collections.abc import Awaitable, Callable, Mapping, Sequence

    from bot.core.backoff import Backoff
    from bot.core.book import BookView
    from bot.core.trading import Action, Intent, Inventory, Order
    from bot.core.universe import Universe
    from bot.shell.bus import Delivery, Subscription
    from bot.shell.logsink import LogChannel


@attrs.define(eq=False)
class RunnerStats:
    """What one strategy task did (read by the health line)."""

    name: str
    deliveries: int = 0
    decisions: int = 0
    intents: int = 0
    skipped_updates: int = 0
    resyncs: int = 0
    crashes: int = 0
    disabled: bool = False
    latency: Reservoir = attrs.field(factory=Reservoir)
    """Tick-to-decision: from the feed receiving a frame to this strategy's decision on it."""


@attrs.frozen
class Submission:
    """One strategy's actions from one wake, on their way to the execution task.

    Attributes:
        strategy: who.
        intents: orders to place and cancel, in order.
        decisions: what it noticed (journaled).
        at: monotonic seconds of the decision.
        received_at: feed receive time of the newest data it decided on.
    """

    strategy: str
    intents: tuple[Intent, ...]
    decisions: tuple[Decision, ...]
    at: float
    received_at: float


@attrs.frozen
class Trading:
    """What a strategy task needs besides the bus: the shared state and the way to execution.

    Attributes:
        universe: the markets.
        inventory: positions of every strategy (the portfolio; read-only here).
        orders: a strategy's open orders by id.
        submit: hands a ``Submission`` to the execution task (waits when it is behind);
            ``None`` observes only: decisions are logged, intents dropped with a count.
    """

    universe: Universe
    inventory: Inventory
    orders: Callable[[str], Mapping[str, Order]]
    submit: Callable[[Submission], Awaitable[None]] | None = None


async def run_strategy(
    make: Callable[[], Strategy],
    subscription: Subscription[Any],
    log: LogChannel,
    stats: RunnerStats,
    trading: Trading,
    *,
    backoff: Backoff,
    rng: random.Random,
    restart: bool = True,
    max_restarts: int = 5,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run one strategy until the bus closes or the task is cancelled."""
    strategy = make()
    views: dict[str, BookView] = {}
    stale: set[str] = set()
    bound = logger.bind(strategy=stats.name)
    task_status.started()
    while True:
        wake = _wakeup(strategy) if not stats.disabled else None
        delivery: Delivery[Any] | None = None
        try:
            if wake is not None and wake <= trio.current_time():
                # Due already: take what is pending without waiting (a checkpoint still).
                await trio.lowlevel.checkpoint()
                with contextlib.suppress(trio.WouldBlock):
                    delivery = subscription.receive_nowait()
            elif wake is None:  # the common case: no cancel scope to build per wake
                delivery = await subscription.receive()
            else:
                with trio.move_on_at(wake):
                    delivery = await subscription.receive()
        except trio.EndOfChannel:
            return
        now = trio.current_time()
        if delivery is not None:
            stats.deliveries += 1
            stats.skipped_updates += delivery.skipped
            if delivery.resync is not None:
                stats.resyncs += 1
        if stats.disabled:
            if delivery is not None:
                _absorb(delivery, views, stale)
            continue
        ctx = Context(
            now=now,
            books=views,
            universe=trading.universe,
            inventory=trading.inventory,
            orders=trading.orders(strategy.name),
            stale=stale,
        )
        try:
            actions = _step(strategy, ctx, delivery, views, stale, now)
        except Exception:  # a bug in one pure strategy must not take down the others
            stats.crashes += 1
            bound.opt(exception=True).error("strategy {} crashed", stats.name)
            if not restart or stats.crashes > max_restarts:
                stats.disabled = True
                bound.error("strategy {} disabled after {} crashes", stats.name, stats.crashes)
                continue
            await trio.sleep(backoff.delay(stats.crashes - 1, rng))
            strategy = make()
            continue
        received_at = now
        if delivery is not None:
            received_at = delivery.latest_received_at
            stats.latency.add(trio.current_time() - received_at)
        if actions:
            await _hand_on(actions, stats, log, bound, trading, now, received_at, strategy.name)


def _wakeup(strategy: Strategy) -> float | None:
    try:
        return strategy.wakeup_at()
    except Exception:  # reported by the next step's crash handling if it persists
        return None


def _absorb(delivery: Delivery[Any], views: dict[str, BookView], stale: set[str]) -> None:
    for stamped in delivery.events:
        event = stamped.item
        if isinstance(event, TokenStale):
            stale.add(event.asset_id)
        elif isinstance(event, TokenFresh):
            stale.discard(event.asset_id)
    if delivery.resync is not None:
        views.clear()
    for token, update in delivery.books.items():
        views[token] = update.view


def _step(
    strategy: Strategy,
    ctx: Context,
    delivery: Delivery[Any] | None,
    views: dict[str, BookView],
    stale: set[str],
    now: float,
) -> list[Action]:
    actions: list[Action] = []
    if delivery is not None:
        for stamped in delivery.events:
            event = stamped.item
            if isinstance(event, TokenStale):
                stale.add(event.asset_id)
                actions.extend(strategy.on_stale(ctx, (event.asset_id,), True))
            elif isinstance(event, TokenFresh):
                stale.discard(event.asset_id)
                actions.extend(strategy.on_stale(ctx, (event.asset_id,), False))
            elif not isinstance(event, ShardState):
                actions.extend(strategy.on_event(ctx, event))
        if delivery.resync is not None:
            views.clear()
        books = delivery.books
        for token, update in books.items():
            views[token] = update.view
        if books:
            actions.extend(strategy.on_books(ctx, books.keys()))
    due = strategy.wakeup_at()
    if due is not None and due <= now:
        actions.extend(strategy.on_timer(ctx))
    return actions


async def _hand_on(
    actions: Sequence[Action],
    stats: RunnerStats,
    log: LogChannel,
    bound: Any,
    trading: Trading,
    now: float,
    received_at: float,
    name: str,
) -> None:
    decisions: list[Decision] = []
    intents: list[Intent] = []
    for action in actions:
        if isinstance(action, Decision):
            decisions.append(action)
        else:
            intents.append(action)
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
    stats.intents += len(intents)
    if trading.submit is not None:
        await trading.submit(Submission(name, tuple(intents), tuple(decisions), now, received_at))

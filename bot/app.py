"""The composition root: the whole task tree, readable in one place.

```
trio.run
└── top nursery                      signals: SIGINT/SIGTERM cancel the app scope (2nd = hard stop)
    ├── [demo] sim venue             in-process Polymarket on 127.0.0.1 (bot.sim)
    └── run_bot
        ├── log writer               started first, stopped last: flushes every accepted record
        └── app nursery (the app scope)
            ├── discovery            Gamma + CLOB REST -> typed Universe (before anything else)
            ├── feed                 one supervised WebSocket session per shard -> books -> bus
            ├── strategy tasks       one per strategy, each on its own bus subscription
            ├── loop-lag monitor
            └── status line          every few seconds: one human line + one health record
```

Start order is dependency order, each with ``nursery.start`` readiness: the log writer, then
discovery (its result sizes the feed), the feed (ready once its shards have subscribed), the
strategies, then health. Shutdown is the reverse, by cancellation: cancelling the app scope stops
the feed and the strategies at their next checkpoint; then the log channel closes and the writer
drains what it accepted, shielded and with a deadline, so a stop never loses a log record it took.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

import attrs
import httpx
import trio
from loguru import logger

from bot.core.backoff import Backoff
from bot.core.observers import ComplementWatch, NegRiskWatch, Observer
from bot.shell.bus import Bus
from bot.shell.discovery import ProgressPrinter, discover
from bot.shell.feed import MarketFeed
from bot.shell.health import Reservoir, run_loop_lag_monitor, run_status_line
from bot.shell.logsink import configure_logging, open_log_channel, run_log_writer
from bot.shell.rest import RestClient
from bot.shell.runner import RunnerStats, run_strategy

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path

    from bot.config import Config, DiscoveryConfig
    from bot.core.universe import Universe
    from bot.shell.logsink import LogChannel


@attrs.frozen
class VenueUrls:
    """Where the venue is: the real Polymarket, or the sim venue's loopback URLs."""

    gamma_url: str
    clob_url: str
    ws_market_url: str


@attrs.define(eq=False)
class BotHandle:
    """What a running bot exposes to its embedder (the CLI's status line, scenario tests)."""

    universe: Universe
    feed: MarketFeed
    bus: Bus[Any]
    log: LogChannel
    strategies: dict[str, RunnerStats]
    loop_lag: Reservoir
    cancel_scope: trio.CancelScope

    def health(self) -> dict[str, Any]:
        """The health figures as plain data (the ``health`` record of the status line)."""
        feed = self.feed.statistics(per_token=False)
        return {
            "markets": len(self.universe.markets),
            "tokens": len(self.universe.token_ids()),
            "feed": attrs.asdict(feed, recurse=True) if attrs.has(type(feed)) else feed,
            "strategies": {
                name: {
                    "deliveries": s.deliveries,
                    "decisions": s.decisions,
                    "skipped_updates": s.skipped_updates,
                    "resyncs": s.resyncs,
                    "crashes": s.crashes,
                    "disabled": s.disabled,
                    "tick_to_decision": s.latency.summary().as_ms(),
                }
                for name, s in self.strategies.items()
            },
            "loop_lag": self.loop_lag.summary().as_ms(),
            "log": attrs.asdict(self.log.statistics()),
        }


def observers_for(universe: Universe) -> dict[str, Callable[[], Observer]]:
    """The strategies the runtime runs (observers until execution arrives)."""
    return {
        "complement_watch": partial(ComplementWatch, universe),
        "neg_risk_watch": partial(NegRiskWatch, universe),
    }


def render_status(figures: Mapping[str, Any]) -> str:
    """One short human status line from the health figures."""
    feed = figures["feed"]
    parts = [f"{figures['tokens']} tokens"]
    if isinstance(feed, dict):
        for key in ("events_per_s", "reconnects", "malformed", "resnapshots"):
            if key in feed:
                value = feed[key]
                parts.append(f"{key}={round(value) if isinstance(value, float) else value}")
    for name, s in figures["strategies"].items():
        t2d = s["tick_to_decision"]
        parts.append(f"{name}: {s['decisions']} decisions p99 {t2d['p99_ms']:.2f} ms")
    parts.append(f"loop lag max {figures['loop_lag']['max_ms']:.1f} ms")
    parts.append(f"log drops {figures['log'].get('dropped', 0)}")
    return " | ".join(parts)


async def run_bot(
    cfg: Config,
    urls: VenueUrls,
    *,
    discovery: DiscoveryConfig | None = None,
    console: bool = True,
    log_path: Path | None = None,
    on_ready: Callable[[BotHandle], None] | None = None,
    status_interval_s: float = 5.0,
    task_status: trio.TaskStatus[BotHandle] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the market-data runtime until cancelled; ``task_status.started(handle)`` once live.

    Args:
        cfg: the validated configuration.
        urls: the venue's URLs.
        discovery: the discovery filters (default ``cfg.discovery``; the demo relaxes them).
        console: also print human log lines to stderr.
        log_path: the JSON-lines log file (default ``cfg.log.dir / "polybot.jsonl"``).
        on_ready: called with the handle once every task has started.
        status_interval_s: how often the status line and the health record are written.
    """
    path = log_path or cfg.log.dir / "polybot.jsonl"
    await trio.Path(path.parent).mkdir(parents=True, exist_ok=True)
    channel, receive = open_log_channel(cfg.log.queue_size)
    # The writer must outlive the app: a cancel from above (SIGINT, a test) would otherwise stop
    # it at the same moment as the tasks still logging their way out. It runs shielded and ends
    # on its own once the channel closes (EndOfChannel); the grace period bounds that shield.
    writer_scope = trio.CancelScope(shield=True)

    async def log_writer(*, task_status: trio.TaskStatus[None]) -> None:
        with writer_scope:
            await run_log_writer(
                receive,
                path,
                batch_max=cfg.log.batch_max,
                final_flush_timeout=cfg.shutdown.grace_s,
                task_status=task_status,
            )

    async with trio.open_nursery() as outer:
        await outer.start(log_writer, name="log writer")
        configure_logging(channel, cfg.log.level, console=console)
        try:
            async with trio.open_nursery() as app:
                handle = await _start_app(
                    cfg, urls, discovery or cfg.discovery, channel, app, status_interval_s
                )
                if on_ready is not None:
                    on_ready(handle)
                task_status.started(handle)
        finally:
            logger.info("polybot stopped; flushing logs")
            logger.remove()
            channel.close()
            writer_scope.deadline = trio.current_time() + cfg.shutdown.grace_s


async def _start_app(
    cfg: Config,
    urls: VenueUrls,
    discovery: DiscoveryConfig,
    channel: LogChannel,
    app: trio.Nursery,
    status_interval_s: float,
) -> BotHandle:
    rng = random.Random()
    client = httpx.AsyncClient(timeout=cfg.venue.http_timeout_s)
    app.start_soon(_close_at_exit, client, name="httpx client")
    rest = RestClient(
        client,
        gamma_url=urls.gamma_url,
        clob_url=urls.clob_url,
        backoff=Backoff(cfg.feed.reconnect_base_s, cfg.feed.reconnect_max_s),
        rng=rng,
    )
    progress = ProgressPrinter()
    logger.info("discovering markets at {}", urls.gamma_url)
    universe = await discover(rest, discovery, now=datetime.now(UTC), progress=progress)
    progress.finish()
    logger.info(
        "universe: {} markets, {} tokens, {} neg-risk events",
        len(universe.markets),
        len(universe.token_ids()),
        len(universe.neg_risk_events()),
    )
    channel.offer({"kind": "universe", "markets": len(universe.markets)})
    bus: Bus[Any] = Bus()
    feed = MarketFeed(
        universe.token_ids(),
        cfg.feed,
        ws_url=urls.ws_market_url,
        rest=rest,
        bus=bus,
        rng=rng,
        log=channel,
    )
    await app.start(feed.run, name="feed")
    strategies: dict[str, RunnerStats] = {}
    for name, make in observers_for(universe).items():
        stats = strategies[name] = RunnerStats(name)
        subscription = bus.subscribe(name, max_pending=10_000)
        await app.start(
            partial(
                run_strategy,
                make,
                subscription,
                channel,
                stats,
                backoff=Backoff(cfg.feed.reconnect_base_s, cfg.feed.reconnect_max_s),
                rng=rng,
            ),
            name=f"strategy {name}",
        )
    loop_lag = Reservoir()
    await app.start(run_loop_lag_monitor, loop_lag, name="loop lag")
    handle = BotHandle(universe, feed, bus, channel, strategies, loop_lag, app.cancel_scope)
    await app.start(
        partial(
            run_status_line,
            handle.health,
            render_status,
            channel,
            interval_s=status_interval_s,
        ),
        name="status line",
    )
    logger.info("polybot running: {} tokens, feed ready", len(universe.token_ids()))
    return handle


async def _close_at_exit(client: httpx.AsyncClient) -> None:
    try:
        await trio.sleep_forever()
    finally:
        with trio.move_on_after(1, shield=True):
            await client.aclose()

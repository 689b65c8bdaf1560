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
            ├── live trading         [run only] heartbeat, order workers, user channel;
            │                        on the way out a shielded cancel-all (bot.shell.live_venue)
            ├── execution            intents -> risk -> venue (paper or live) -> fills; journal
            ├── strategy tasks       one per strategy, each on its own bus subscription
            ├── forecasts            weather forecasts for the forecast taker (when enabled)
            ├── loop-lag monitor
            ├── alert watcher        [alerts.enabled] state changes -> webhook notifier (outer)
            └── status line          every few seconds: one human line + one health record
```

Start order is dependency order, each with ``nursery.start`` readiness: the log writer and the
journal (the positions of the previous run are replayed from it), then discovery (its result
sizes the feed), the feed (ready once its shards have subscribed), execution, the strategies,
then health. Shutdown is the reverse, by cancellation: cancelling the app scope stops
the feed and the strategies at their next checkpoint; then the log channel closes and the writer
drains what it accepted, shielded and with a deadline, so a stop never loses a log record it took.
"""

from __future__ import annotations

import gc
import itertools
import os
import random
import time
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import attrs
import httpx
import trio
from loguru import logger

from bot.config import ForecastProvider
from bot.core.backoff import Backoff
from bot.core.engine import Engine
from bot.core.money import format_units
from bot.core.paper import PaperVenue
from bot.core.portfolio import Portfolio
from bot.core.risk import RiskGate, RiskLimits
from bot.plugins import strategy_factories
from bot.shell.alerts import Notifier, run_alert_watcher
from bot.shell.bus import Bus
from bot.shell.clob_trading import ALL_RATE_LIMITS, TradingClient
from bot.shell.credentials import missing_for_live, obtain_api_creds, signature_type_of
from bot.shell.discovery import ProgressPrinter, discover
from bot.shell.execution import RESOLVED, Execution, ExecutionStats
from bot.shell.feed import MarketFeed
from bot.shell.forecast import (
    OpenMeteoProvider,
    SimForecastProvider,
    is_temperature_event,
    run_forecasts,
)
from bot.shell.health import Reservoir, run_loop_lag_monitor, run_status_line
from bot.shell.journal import open_journal
from bot.shell.live_venue import ORDER_SENT, TRADE_FAILED, LiveTradingRefused, LiveVenue
from bot.shell.logsink import configure_logging, open_log_channel, run_log_writer
from bot.shell.rest import DEFAULT_RATE_LIMITS, RestClient
from bot.shell.runner import RunnerStats, Submission, Trading, run_strategy
from bot.shell.signer import OrderSigner
from bot.shell.user_feed import UserFeed

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from pathlib import Path

    from bot.config import Config, DiscoveryConfig
    from bot.core.trading import Strategy
    from bot.core.universe import Universe
    from bot.shell.journal import Journal
    from bot.shell.logsink import LogChannel
    from bot.shell.rest import RateLimit


@attrs.frozen
class VenueUrls:
    """Where the venue is: the real Polymarket, or the sim venue's loopback URLs."""

    gamma_url: str
    clob_url: str
    ws_market_url: str
    ws_user_url: str = ""
    """The user channel (live trading only)."""


def rest_client(
    cfg: Config,
    urls: VenueUrls,
    http: httpx.AsyncClient,
    rng: random.Random,
    *,
    rate_limits: Iterable[RateLimit] = DEFAULT_RATE_LIMITS,
) -> RestClient:
    """The venue's REST client with the config's retry backoff; ``rate_limits`` as the caller
    needs them (the public endpoints by default, ``ALL_RATE_LIMITS`` where it trades)."""
    return RestClient(
        http,
        gamma_url=urls.gamma_url,
        clob_url=urls.clob_url,
        backoff=Backoff(cfg.feed.reconnect_base_s, cfg.feed.reconnect_max_s),
        rng=rng,
        rate_limits=rate_limits,
    )


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
    engine: Engine
    execution: ExecutionStats
    live: LiveVenue | None = None
    """The live venue when trading for real (``None`` on paper)."""
    user_feed: UserFeed | None = None
    executor: Execution | None = None
    """The execution task itself: its recent decisions and the operator's cancel-all."""

    def sample_books(self, markets: int = 3) -> list[dict[str, Any]]:
        """Top of book of the first few binary markets (YES side), for the status output."""
        rows: list[dict[str, Any]] = []
        for market in self.universe.binary_markets()[:markets]:
            view = self.bus.view(market.yes.token_id)
            if view is None:
                continue
            rows.append(
                {
                    "market": market.question,
                    "bid": format_units(view.best_bid.price) if view.best_bid else None,
                    "ask": format_units(view.best_ask.price) if view.best_ask else None,
                    "stale": view.stale,
                }
            )
        return rows

    def health(self) -> dict[str, Any]:
        """The health figures as plain data (the ``health`` record of the status line)."""
        feed = self.feed.statistics(per_token=False)
        return {
            "markets": len(self.universe.markets),
            "tokens": len(self.universe.token_ids()),
            "books": self.sample_books(),
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
            "execution": {
                **attrs.asdict(self.execution),
                "orders": self.engine.orders_sent,
                "fees": format_units(self.execution.fees),
                "open_orders": len(self.engine.all_open_orders()),
                "pnl": format_units(self.engine.ledger.pnl(self.universe, self.engine.marks())),
                "kill_switch": self.engine.risk.killed,
                "mode": "paper" if self.live is None else "live",
            },
            **self._live_health(),
        }

    def _live_health(self) -> dict[str, Any]:
        if self.live is None:
            return {}
        stats = attrs.asdict(self.live.stats)
        stats["provisional_notional"] = format_units(self.live.stats.provisional_notional)
        user = self.user_feed.statistics() if self.user_feed is not None else None
        return {"live": stats, "user_feed": attrs.asdict(user) if user is not None else None}


def strategies_for(universe: Universe, cfg: Config) -> dict[str, Callable[[], Strategy]]:
    """The enabled strategies, by name, as factories (a crashed strategy is rebuilt fresh):
    the built-ins and the plugins of ``[strategies.<name>]`` blocks alike (``bot.plugins``)."""
    return strategy_factories(universe, cfg)


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
    execution = figures.get("execution")
    if execution:
        parts.append(
            f"orders {execution['orders']} fills {execution['fills']} "
            f"rejected {execution['rejections']} pnl {execution['pnl']}"
        )
    parts.append(f"loop lag max {figures['loop_lag']['max_ms']:.1f} ms")
    parts.append(f"log drops {figures['log'].get('dropped', 0)}")
    for book in figures.get("books", ()):
        flag = " STALE" if book["stale"] else ""
        parts.append(f"{book['market'][:32]} {book['bid'] or '-'}/{book['ask'] or '-'}{flag}")
    return " | ".join(parts)


async def run_bot(
    cfg: Config,
    urls: VenueUrls,
    *,
    discovery: DiscoveryConfig | None = None,
    console: bool = True,
    log_path: Path | None = None,
    journal_path: Path | None = None,
    on_ready: Callable[[BotHandle], None] | None = None,
    status_interval_s: float = 5.0,
    live: bool = False,
    rng: random.Random | None = None,
    task_status: trio.TaskStatus[BotHandle] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the market-data runtime until cancelled; ``task_status.started(handle)`` once live.

    Args:
        cfg: the validated configuration.
        urls: the venue's URLs.
        discovery: the discovery filters (default ``cfg.discovery``; the demo relaxes them).
        console: also print human log lines to stderr.
        log_path: the JSON-lines log file (default ``cfg.log.dir / "polybot.jsonl"``).
        journal_path: the SQLite journal (default ``cfg.execution.journal``).
        rng: the randomness of reconnect jitter (seed it for a reproducible scenario).
        live: send real orders (signed with ``cfg.secrets``) to ``urls`` instead of paper fills;
            the caller has checked the keys and the operator's confirmation.
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

    # Alerts, like the log, must outlive the app so that "stopped" still goes out; a webhook
    # that fails or hangs only ever costs the notifier's own task (bot.shell.alerts).
    notifier = Notifier.from_config(cfg.alerts, os.environ)
    alert_scope = trio.CancelScope(shield=True)

    async def alert_sender(notifier: Notifier, *, task_status: trio.TaskStatus[None]) -> None:
        with alert_scope:
            await notifier.run(task_status=task_status)

    async with trio.open_nursery() as outer:
        await outer.start(log_writer, name="log writer")
        if notifier is not None:
            await outer.start(alert_sender, notifier, name="alerts")
        configure_logging(channel, cfg.log.level, console=console)
        try:
            async with (
                open_journal(journal_path or cfg.execution.journal) as journal,
                trio.open_nursery() as app,
            ):
                handle = await _start_app(
                    cfg,
                    urls,
                    discovery or cfg.discovery,
                    channel,
                    journal,
                    app,
                    status_interval_s,
                    live=live,
                    rng=rng or random.Random(),
                )
                if notifier is not None:
                    await app.start(
                        partial(run_alert_watcher, handle, notifier.notify, cfg.alerts),
                        name="alert watcher",
                    )
                # Everything built at start-up (universe, books, configs) lives for the whole run:
                # moved out of the collector's reach, full collections stop walking it (measured:
                # 60-140 ms pauses at 10k events/s became ~6 ms).
                gc.freeze()
                if on_ready is not None:
                    on_ready(handle)
                task_status.started(handle)
        finally:
            gc.unfreeze()  # an embedder (a test session) gets its collector back as it was
            logger.info("polybot stopped; flushing logs")
            logger.remove()
            channel.close()
            writer_scope.deadline = trio.current_time() + cfg.shutdown.grace_s
            if notifier is not None:  # the watcher's "stopped" is queued by now
                notifier.close()
                alert_scope.deadline = trio.current_time() + cfg.shutdown.grace_s


async def _start_app(
    cfg: Config,
    urls: VenueUrls,
    discovery: DiscoveryConfig,
    channel: LogChannel,
    journal: Journal,
    app: trio.Nursery,
    status_interval_s: float,
    *,
    live: bool,
    rng: random.Random,
) -> BotHandle:
    client = httpx.AsyncClient(timeout=cfg.venue.http_timeout_s)
    app.start_soon(_close_at_exit, client, name="httpx client")
    rest = rest_client(cfg, urls, client, rng)
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
    await journal.record_universe(universe)  # the report values complete sets without network
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

    # Execution: one engine owns orders and positions; the journal gives back the last run's.
    resumed = await resume(journal)
    # Ids unique across runs: the journal keys fills by id, and a restart must not collide.
    run = f"{'live' if live else 'paper'}-{time.time_ns() // 1_000_000:x}"
    venue: PaperVenue | LiveVenue
    live_venue: LiveVenue | None = None
    user_feed: UserFeed | None = None
    if live:
        live_venue, user_feed = await app.start(
            partial(run_live, cfg, urls, universe, resumed, journal, channel, rng),
            name="live trading",
        )
        venue = live_venue
    else:
        fee_rates = {t: m.fee_rate for m in universe.markets for t in m.token_ids}
        fill_ids = itertools.count(1)
        venue = PaperVenue(
            fee_rate=lambda token: fee_rates.get(token, 0),
            next_id=lambda: f"{run}-f{next(fill_ids)}",
        )
    portfolio = resumed.portfolio
    engine = Engine(
        universe,
        portfolio,
        RiskGate(RiskLimits.from_config(cfg.risk)),
        venue,
        bus.view,
        unwind=cfg.execution.unwind_partial_baskets,
        id_prefix=f"{run}-o",
        last_fill_price=resumed.last_prices,
    )
    makers = strategies_for(universe, cfg)
    inboxes = {name: bus.subscribe(name, max_pending=10_000) for name in makers}
    send, receive = trio.open_memory_channel[Submission](1_000)
    execution = Execution(
        engine,
        journal,
        channel,
        bus.subscribe("execution", max_pending=100_000),
        inboxes,
        venue_events=live_venue.outbox if live_venue is not None else None,
    )
    await app.start(execution.run, receive, name="execution")
    trading = Trading(universe, portfolio, engine.open_orders, send.send)
    strategies: dict[str, RunnerStats] = {}
    crash = cfg.strategies.crash
    for name, make in makers.items():
        stats = strategies[name] = RunnerStats(name)
        await app.start(
            partial(
                run_strategy,
                make,
                inboxes[name],
                channel,
                stats,
                trading,
                backoff=Backoff(cfg.feed.reconnect_base_s, cfg.feed.reconnect_max_s),
                rng=rng,
                restart=crash.restart,
                max_restarts=crash.max_restarts,
            ),
            name=f"strategy {name}",
        )
    forecast_inbox = inboxes.get("forecast_taker")
    temperature = [e for e in universe.neg_risk_events() if is_temperature_event(e)]
    if forecast_inbox is not None and temperature:
        ft = cfg.strategies.forecast_taker
        use_sim = ft.provider is ForecastProvider.SIM or (
            ft.provider is ForecastProvider.AUTO and _on_loopback(urls.clob_url)
        )
        provider = (
            SimForecastProvider(client, urls.clob_url)
            if use_sim
            else OpenMeteoProvider(client, ft.open_meteo_url, ft.forecast_sd_c)
        )
        # Not awaited to readiness: a slow forecast service must not hold up the bot.
        app.start_soon(
            partial(
                run_forecasts,
                provider,
                temperature,
                lambda update: forecast_inbox.post(update, trio.current_time()),
                ft.refresh_s,
            ),
            name="forecasts",
        )
    loop_lag = Reservoir()
    await app.start(run_loop_lag_monitor, loop_lag, name="loop lag")
    handle = BotHandle(
        universe,
        feed,
        bus,
        channel,
        strategies,
        loop_lag,
        app.cancel_scope,
        engine,
        execution.stats,
        live=live_venue,
        user_feed=user_feed,
        executor=execution,
    )
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


def _on_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host == "localhost" or host.startswith("127.") or host == "::1"


@attrs.frozen
class Resumed:
    """What the journal gives back at start.

    Attributes:
        portfolio: every fill replayed, then every settlement, minus fills whose trade failed.
        last_prices: each token's last fill price (a mark of last resort).
        venue_orders: the venue's order id -> (our order id, strategy), for live orders of
            earlier runs, so their late fills are still attributed.
    """

    portfolio: Portfolio
    last_prices: dict[str, int]
    venue_orders: dict[str, tuple[str, str]]


async def resume(journal: Journal) -> Resumed:
    """The state the journal holds, from one read of the fills and one of the decisions."""
    portfolio = Portfolio()
    fills = await journal.load_fills()
    resumed = sum(portfolio.apply(fill) for fill in fills)
    by_id = {fill.fill_id: fill for fill in fills}
    venue_orders: dict[str, tuple[str, str]] = {}
    for record in await journal.load_decisions():
        if record.kind == RESOLVED:
            winner = record.detail.get("winner") or None
            portfolio.resolve(record.key, winner, record.detail["tokens"].split(","))
        elif record.kind == TRADE_FAILED and record.key in by_id:
            portfolio.undo(by_id[record.key])
        elif record.kind == ORDER_SENT and "venue_id" in record.detail:
            venue_orders[record.detail["venue_id"]] = (record.key, record.strategy)
    if resumed:
        logger.info(
            "resumed {} fills from the journal: {} open positions",
            resumed,
            len(portfolio.positions()),
        )
    return Resumed(portfolio, {fill.token_id: fill.price for fill in fills}, venue_orders)


async def run_live(
    cfg: Config,
    urls: VenueUrls,
    universe: Universe,
    resumed: Resumed,
    journal: Journal,
    log: LogChannel,
    rng: random.Random,
    *,
    task_status: trio.TaskStatus[tuple[LiveVenue, UserFeed]],
) -> None:
    """Live trading's own task tree: an HTTP client of its own (so the shutdown cancel-all
    still has one while the rest of the app is closing), L2 credentials, the live venue
    (heartbeat first) and the user channel (reconciled before ready). Started before the
    strategies, so no order goes out before the dead-man switch and reconciliation."""
    secrets = cfg.secrets
    missing = missing_for_live(secrets)
    if missing or secrets.private_key is None:
        raise LiveTradingRefused("; ".join(missing))
    async with httpx.AsyncClient(timeout=cfg.venue.http_timeout_s) as http:
        rest = rest_client(cfg, urls, http, rng, rate_limits=ALL_RATE_LIMITS)
        signer = OrderSigner(secrets.private_key)
        creds = await obtain_api_creds(rest, signer, secrets)
        client = TradingClient(
            rest,
            creds=creds,
            signer=signer,
            signature_type=signature_type_of(secrets),
            funder=secrets.funder.reveal() if secrets.funder is not None else None,
        )
        offset = await client.sync_clock()
        logger.info(
            "live trading as {} ({}); venue clock offset {:+.3f}s",
            signer.address,
            signature_type_of(secrets).name,
            offset,
        )
        venue = LiveVenue(
            client,
            universe,
            creds.api_key.reveal(),
            record=journal.record,
            known=resumed.venue_orders,
            grace_s=cfg.shutdown.grace_s,
        )
        feed_url = urls.ws_user_url or cfg.venue.ws_user_url
        feed = UserFeed(
            feed_url,
            creds,
            # Every market of the key (PROTOCOL.md 2): a fill is ours wherever it happens, and a
            # list of thousands of condition ids would make a huge first frame.
            [],
            cfg.feed,
            on_event=venue.on_user_event,
            reconcile=venue.reconcile,
            rng=rng,
            mapper=venue.mapper,
            log=log,
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(venue.run, name="live venue")
            await nursery.start(feed.run, name="user feed")
            if not feed.ready:
                raise LiveTradingRefused(
                    f"the user channel {feed_url} did not come up "
                    f"({feed.statistics().last_error}): our fills would go unseen; not trading "
                    "(`polybot doctor` checks it)"
                )
            held: dict[str, int] = {}
            for (_, token), shares in resumed.portfolio.positions().items():
                held[token] = held.get(token, 0) + shares
            await venue.check_positions({t: n for t, n in held.items() if n})
            task_status.started((venue, feed))


async def _close_at_exit(client: httpx.AsyncClient) -> None:
    try:
        await trio.sleep_forever()
    finally:
        with trio.move_on_after(1, shield=True):
            await client.aclose()

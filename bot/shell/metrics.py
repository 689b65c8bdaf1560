"""Prometheus metrics for a running bot: ``metrics_exposition(handle)`` is the body of ``/metrics``.

Synopsis::

    body, content_type = metrics_exposition(handle)     # in the trio thread, e.g. an ASGI handler

Why a custom collector and not ``Counter``/``Gauge`` objects updated in place: every figure
already exists as a plain counter on the objects the bot runs with (``MarketFeed.statistics``,
``RunnerStats``, ``ExecutionStats``, the log channel, the engine's ledger), kept up by code
that must stay cheap (the feed's reader, the strategies' wakes). Mirroring them into
``prometheus_client`` metric objects would put a second, locked update on every one of those
paths. ``BotCollector`` reads the handle *at scrape time* instead, so the hot path pays
nothing beyond the counters it already keeps (plus one bucket increment for the three
histograms: ``bot.shell.health.Histogram``).

Why a ``CollectorRegistry`` per bot and not the library's global default registry: a process can
hold more than one bot (the test suite runs many, one after another), and the global
registry would mix their series or refuse the second one's names. ``metrics_exposition`` keeps
one registry per handle (weakly: it goes with the handle).

Call it from the trio thread (the web dashboard's ASGI handler runs there): the collector reads
``trio.current_time()`` and state that trio tasks mutate, and does so without a checkpoint, so a
scrape is one consistent snapshot.

Series (all prefixed ``polybot_``; counters end in ``_total``; money in USD, sizes in shares,
times in seconds), by where they come from:

* ``handle.feed.statistics()``, per ``shard``: ``feed_events_total``, ``feed_frames_total``,
  ``feed_malformed_frames_total``, ``feed_reconnects_total``, ``feed_connects_total``,
  ``feed_frozen_detected_total``, ``feed_dead_detected_total``, ``feed_rest_fallback_polls_total``
  (and a few more), ``feed_shard_state{shard, state}`` (1 for the current state, 0 for the
  others), ``feed_tokens_ready``, ``feed_seconds_since_data``; feed-wide:
  ``feed_resnapshots_total``, ``feed_mismatches_total``, ``feed_stale_tokens``,
  ``feed_events_per_second``, ``feed_max_refresh_gap_seconds``;
* ``handle.feed.refresh_gap_histograms()``: ``feed_refresh_gap_seconds{shard}`` (histogram);
* ``RunnerStats``, per ``strategy``: ``tick_to_decision_seconds`` (histogram),
  ``strategy_decisions_total`` and the other counters, ``strategy_disabled``;
* ``handle.loop_lag``: ``loop_lag_seconds`` (histogram), ``loop_lag_max_seconds``;
* ``handle.log.statistics()``: ``log_dropped_total``, ``log_essential_dropped_total``,
  ``log_offered_total``, ``log_written_total``, ``log_buffered``;
* the engine and ``ExecutionStats``: ``orders_total``, ``submissions_total``, ``fills_total``,
  ``fees_usd_total``, ``trades_seen_total``, ``rejects_total{source, reason}`` (source ``risk``:
  refused before the venue; ``venue``: answered ``REJECTED``), ``open_orders{strategy}``,
  ``position_shares{token, market}`` (net of all strategies), ``pnl_usd{strategy}``,
  ``pnl_total_usd``, ``exposure_usd``, ``kill_switch_tripped``;
* ``handle.live`` (live trading only, below): ``heartbeat_enabled``, ``heartbeat_healthy``,
  ``heartbeats_total``, ``heartbeat_failures_total``, ``heartbeat_age_seconds``,
  ``user_channel_ready``, ``live_fills_total{state=provisional|confirmed|failed}``,
  ``provisional_notional_usd``, ``live_reconciled_orders_total``.

Label cardinality stays bounded: shards (tokens / ``assets_per_socket``), strategies (a
handful), shard states (an enum), reject reasons (``execution.REJECT_REASONS``) and tokens held
(at most the universe's).

Heartbeat: live trading keeps the venue's dead-man heartbeat alive (``POST /v1/heartbeats``); a
lapse cancels every resting order. ``heartbeat_enabled`` says whether this bot has one (0 on
paper: ``handle.live`` is ``None``, and the other heartbeat series are absent). With a live venue,
``heartbeat_healthy`` is ``LiveStats.heartbeat_ok`` (the last beat was acknowledged), with
``heartbeats_total`` and ``heartbeat_failures_total``. ``heartbeat_age_seconds`` appears once
``LiveStats`` carries ``heartbeat_last_ok_at`` (``trio.current_time()`` of the last acknowledged
beat; read with ``getattr``, so adding it is the only change needed).
"""

from __future__ import annotations

import weakref
from collections import defaultdict
from typing import TYPE_CHECKING, Final

import trio
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import CollectorRegistry

from bot.core.money import ONE
from bot.shell.feed_events import ShardStatus

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from prometheus_client.metrics_core import Metric

    from bot.app import BotHandle
    from bot.shell.health import HistogramSnapshot

__all__ = [
    "CONTENT_TYPE",
    "PREFIX",
    "BotCollector",
    "metrics_exposition",
    "metrics_registry",
]

PREFIX: Final = "polybot_"
"""Every series' name starts with this."""

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
"""The ``Content-Type`` of ``metrics_exposition``'s body (Prometheus text format)."""


_SHARD_COUNTERS: Final = (
    # (ShardStatistics attribute, series name without prefix and _total, help)
    ("events", "feed_events", "Market-channel events decoded."),
    ("frames", "feed_frames", "Data frames received (anything but PONG), malformed included."),
    ("malformed", "feed_malformed_frames", "Frames that failed to decode (counted, not fatal)."),
    ("unknown_events", "feed_unknown_events", "Events of a type the decoder does not know."),
    ("discarded_changes", "feed_discarded_changes", "Level changes for a token not snapshotted."),
    ("connects", "feed_connects", "WebSocket connections opened."),
    ("reconnects", "feed_reconnects", "Reconnect attempts after a failed or ended session."),
    ("pongs", "feed_pongs", "PONG frames received."),
    ("frozen_detected", "feed_frozen_detected", "Sessions the watchdog ended as frozen."),
    ("dead_detected", "feed_dead_detected", "Sessions the watchdog ended as dead (no PONG)."),
    ("quiet_checks", "feed_quiet_checks", "Silences REST confirmed as a quiet market."),
    ("rest_fallback_polls", "feed_rest_fallback_polls", "REST polls while the socket was down."),
)

_FEED_COUNTERS: Final = (
    ("resnapshots", "feed_resnapshots", "Tokens re-fetched over REST after a mismatch."),
    ("resnapshot_failures", "feed_resnapshot_failures", "Resnapshot requests that failed."),
    ("mismatches", "feed_mismatches", "Changes after which our top of book differed."),
    ("bad_updates", "feed_bad_updates", "Snapshots or changes the books refused."),
    ("rest_fallback_failures", "feed_rest_fallback_failures", "REST fallback polls that failed."),
)

_STRATEGY_COUNTERS: Final = (
    ("deliveries", "strategy_deliveries", "Bus deliveries the strategy task took."),
    ("decisions", "strategy_decisions", "Decisions the strategy made."),
    ("intents", "strategy_intents", "Intents (orders, cancels, baskets) the strategy issued."),
    ("skipped_updates", "strategy_skipped_updates", "Book updates conflated away (not seen)."),
    ("resyncs", "strategy_resyncs", "Explicit resyncs after the bus bound was passed."),
    ("crashes", "strategy_crashes", "Times the strategy's code raised."),
)

_LOG_COUNTERS: Final = (
    ("offered", "log_offered", "Records offered to the log channel."),
    ("dropped", "log_dropped", "Droppable records lost (buffer full or channel closed)."),
    ("essential_dropped", "log_essential_dropped", "Essential records lost."),
    ("written", "log_written", "Records written to the log file."),
)


def _usd(units: int) -> float:
    """Micro-units to dollars (display only: a metric value is a float anyway)."""
    return units / ONE


def _counter(name: str, doc: str, labels: Iterable[str] = ()) -> CounterMetricFamily:
    return CounterMetricFamily(PREFIX + name, doc, labels=list(labels))


def _gauge(name: str, doc: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, doc, labels=list(labels))


def _histogram(
    name: str, doc: str, labels: Iterable[str], rows: Iterable[tuple[list[str], HistogramSnapshot]]
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(PREFIX + name, doc, labels=list(labels))
    for values, snapshot in rows:
        buckets = [
            (repr(float(bound)), float(count))
            for bound, count in zip(snapshot.bounds, snapshot.cumulative, strict=False)
        ]
        buckets.append(("+Inf", float(snapshot.count)))
        family.add_metric(values, buckets, snapshot.sum)
    return family


class BotCollector:
    """A ``prometheus_client`` collector reading one bot's handle at every scrape."""

    def __init__(self, handle: BotHandle) -> None:
        # Weak: a registry kept by a dashboard must not keep a stopped bot alive.
        self._handle = weakref.ref(handle)

    def collect(self) -> Iterator[Metric]:
        handle = self._handle()
        if handle is None:
            return
        now = trio.current_time()
        yield from self._feed(handle, now)
        yield from self._strategies(handle)
        yield from self._runtime(handle)
        yield from self._execution(handle)
        yield from self._heartbeat(handle, now)

    def _feed(self, handle: BotHandle, now: float) -> Iterator[Metric]:
        stats = handle.feed.statistics(per_token=False)
        for attribute, name, doc in _SHARD_COUNTERS:
            family = _counter(name, doc, ["shard"])
            for shard in stats.shards:
                family.add_metric([str(shard.shard)], getattr(shard, attribute))
            yield family
        for attribute, name, doc in _FEED_COUNTERS:
            family = _counter(name, doc)
            family.add_metric([], getattr(stats, attribute))
            yield family
        state = _gauge("feed_shard_state", "1 for the shard's current state.", ["shard", "state"])
        ready = _gauge("feed_tokens_ready", "Tokens with a snapshot on the connection.", ["shard"])
        since = _gauge(
            "feed_seconds_since_data", "Seconds since the shard's last data frame.", ["shard"]
        )
        for shard in stats.shards:
            index = str(shard.shard)
            for status in ShardStatus:
                state.add_metric([index, status.value], float(shard.state is status))
            ready.add_metric([index], shard.tokens_ready)
            if shard.last_data_at is not None:
                since.add_metric([index], max(0.0, now - shard.last_data_at))
        yield from (state, ready, since)
        for name, doc, value in (
            ("feed_tokens", "Tokens the feed keeps books for.", stats.tokens),
            ("feed_stale_tokens", "Tokens whose book is stale now.", stats.stale_tokens),
            (
                "feed_events_per_second",
                "Events per second over the last few seconds.",
                stats.events_per_s,
            ),
            (
                "feed_max_refresh_gap_seconds",
                "The longest refresh gap of any token since start.",
                stats.max_refresh_gap,
            ),
        ):
            gauge = _gauge(name, doc)
            gauge.add_metric([], value)
            yield gauge
        yield _histogram(
            "feed_refresh_gap_seconds",
            "Intervals between two updates of a token's book, per shard.",
            ["shard"],
            (([str(i)], h) for i, h in enumerate(handle.feed.refresh_gap_histograms())),
        )

    def _strategies(self, handle: BotHandle) -> Iterator[Metric]:
        strategies = handle.strategies
        yield _histogram(
            "tick_to_decision_seconds",
            "From the feed receiving a frame to a strategy's decision on it.",
            ["strategy"],
            (([name], s.latency.histogram.snapshot()) for name, s in strategies.items()),
        )
        for attribute, name, doc in _STRATEGY_COUNTERS:
            family = _counter(name, doc, ["strategy"])
            for strategy, stats in strategies.items():
                family.add_metric([strategy], getattr(stats, attribute))
            yield family
        disabled = _gauge("strategy_disabled", "1 when the strategy was disabled.", ["strategy"])
        for strategy, stats in strategies.items():
            disabled.add_metric([strategy], float(stats.disabled))
        yield disabled

    def _runtime(self, handle: BotHandle) -> Iterator[Metric]:
        lag = handle.loop_lag
        yield _histogram(
            "loop_lag_seconds",
            "How late the event loop woke a sleeper.",
            [],
            [([], lag.histogram.snapshot())],
        )
        peak = _gauge("loop_lag_max_seconds", "The worst event-loop lag since start.")
        peak.add_metric([], lag.peak)
        yield peak
        log = handle.log.statistics()
        for attribute, name, doc in _LOG_COUNTERS:
            family = _counter(name, doc)
            family.add_metric([], getattr(log, attribute))
            yield family
        buffered = _gauge("log_buffered", "Log records waiting to be written.")
        buffered.add_metric([], log.buffered)
        yield buffered

    def _execution(self, handle: BotHandle) -> Iterator[Metric]:
        engine, stats = handle.engine, handle.execution
        totals: tuple[tuple[str, str, float], ...] = (
            (
                "orders",
                "Orders sent to the venue (risk-refused intents are not orders).",
                engine.orders_sent,
            ),
            ("submissions", "Batches of intents handed to execution.", stats.submissions),
            ("fills", "Fills.", stats.fills),
            ("fees_usd", "Fees paid, USD.", _usd(stats.fees)),
            ("trades_seen", "Market trades the paper venue matched against.", stats.trades_seen),
        )
        for name, doc, value in totals:
            family = _counter(name, doc)
            family.add_metric([], value)
            yield family
        rejects = _counter(
            "rejects",
            "Orders refused: by risk before the venue (source=risk), or by the venue.",
            ["source", "reason"],
        )
        for source, by_reason in (
            ("risk", stats.rejects_by_reason),
            ("venue", stats.venue_rejects_by_reason),
        ):
            for reason, count in sorted(by_reason.items()):
                rejects.add_metric([source, reason], count)
        yield rejects

        open_orders: dict[str, int] = dict.fromkeys(handle.strategies, 0)
        for order in engine.all_open_orders():
            open_orders[order.strategy] = open_orders.get(order.strategy, 0) + 1
        gauge = _gauge("open_orders", "Orders resting at the venue.", ["strategy"])
        for strategy, count in sorted(open_orders.items()):
            gauge.add_metric([strategy], count)
        yield gauge

        ledger, universe = engine.ledger, handle.universe
        positions = ledger.positions()
        marks = engine.marks()
        net: dict[str, int] = defaultdict(int)
        for (_strategy, token), shares in positions.items():
            net[token] += shares
        position = _gauge(
            "position_shares", "Net shares held, all strategies together.", ["token", "market"]
        )
        for token, shares in sorted(net.items()):
            if shares:
                try:
                    market = universe.market_for_token(token).condition_id
                except KeyError:  # resumed from the journal, no longer in the universe
                    market = ""
                position.add_metric([token, market], _usd(shares))
        yield position

        names = set(handle.strategies) | {strategy for strategy, _ in positions}
        listed = getattr(ledger, "strategies", None)  # the Portfolio knows closed accounts too
        if callable(listed):
            names.update(listed())
        pnl = _gauge(
            "pnl_usd",
            "PnL if everything were closed at the mid (complete sets valued at 1), per strategy.",
            ["strategy"],
        )
        for strategy in sorted(names):
            pnl.add_metric([strategy], _usd(ledger.pnl(universe, marks, strategy)))
        yield pnl
        total = _gauge(
            "pnl_total_usd",
            "PnL of all strategies together (sets across strategies count: may exceed the sum).",
        )
        total.add_metric([], _usd(ledger.pnl(universe, marks)))
        yield total
        exposure = _gauge("exposure_usd", "What the open positions could lose, USD.")
        exposure.add_metric([], _usd(ledger.exposure()))
        yield exposure
        killed = _gauge("kill_switch_tripped", "1 once the daily-loss kill switch tripped.")
        killed.add_metric([], float(engine.risk.killed is not None))
        yield killed

    def _heartbeat(self, handle: BotHandle, now: float) -> Iterator[Metric]:
        live = handle.live
        enabled = _gauge(
            "heartbeat_enabled", "1 when the venue's dead-man heartbeat runs (live trading)."
        )
        enabled.add_metric([], float(live is not None))
        yield enabled
        if live is None:
            return
        stats = live.stats
        healthy = _gauge("heartbeat_healthy", "1 while the last heartbeat was acknowledged.")
        healthy.add_metric([], float(stats.heartbeat_ok))
        yield healthy
        beats = _counter("heartbeats", "Heartbeats the venue acknowledged.")
        beats.add_metric([], stats.heartbeats)
        yield beats
        failures = _counter("heartbeat_failures", "Heartbeats that failed or were refused.")
        failures.add_metric([], stats.heartbeat_failures)
        yield failures
        last_ok_at = stats.heartbeat_last_ok_at
        if last_ok_at is not None:
            age = _gauge("heartbeat_age_seconds", "Seconds since the last acknowledged heartbeat.")
            age.add_metric([], max(0.0, now - last_ok_at))
            yield age
        user = handle.user_feed
        ready = _gauge("user_channel_ready", "1 while the user channel is up and reconciled.")
        ready.add_metric([], float(user is not None and user.ready))
        yield ready
        fills = _counter(
            "live_fills", "Live fills by the state of their trade on chain.", ["state"]
        )
        fills.add_metric(["provisional"], stats.provisional_fills)
        fills.add_metric(["confirmed"], stats.confirmed_fills)
        fills.add_metric(["failed"], stats.failed_fills)
        yield fills
        pending = _gauge(
            "provisional_notional_usd", "pUSD of fills whose trades are not CONFIRMED yet."
        )
        pending.add_metric([], _usd(stats.provisional_notional))
        yield pending
        reconciled = _counter("live_reconciled_orders", "Orders whose fate was looked up.")
        reconciled.add_metric([], stats.reconciled_orders)
        yield reconciled


_REGISTRIES: weakref.WeakKeyDictionary[BotHandle, CollectorRegistry] = weakref.WeakKeyDictionary()


def metrics_registry(handle: BotHandle) -> CollectorRegistry:
    """The handle's own registry (made on first use): one ``BotCollector`` and nothing else."""
    registry = _REGISTRIES.get(handle)
    if registry is None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(BotCollector(handle))
        _REGISTRIES[handle] = registry
    return registry


def metrics_exposition(handle: BotHandle) -> tuple[bytes, str]:
    """The bot's metrics in the Prometheus text format: ``(body, content_type)``.

    Synchronous and without a checkpoint: call it in the trio thread (see the module
    docstring). It costs a few hundred microseconds for a demo-sized bot.
    """
    return generate_latest(metrics_registry(handle)), CONTENT_TYPE

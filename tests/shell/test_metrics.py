"""Prometheus metrics: the histograms and reject labels they rest on, then a scrape of a whole bot.

The scrape runs the bot on paper against the sim venue over real loopback sockets (real clock,
short timeouts, as the trading scenarios), parses the exposition with ``prometheus_client``'s
own parser, and compares every series with the handle's figures read in the same synchronous
step (no checkpoint in between, so nothing moves).
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

import attrs
import prometheus_client
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from bot.config import Config
from bot.core.money import ONE
from bot.shell.execution import REJECT_REASONS, ExecutionStats, reject_reason_label
from bot.shell.health import Histogram, Reservoir
from bot.shell.live_venue import LiveStats
from bot.shell.metrics import CONTENT_TYPE, metrics_exposition, metrics_registry
from bot.sim.exchange import NoSuitableMarket, OpportunityKind
from bot.sim.venue import open_sim_venue
from tests.bot_helpers import (
    START_MS,
    enable_only,
    fast_feed,
    log_and_journal_in,
    running_bot,
    wait_until,
)

if TYPE_CHECKING:
    from pathlib import Path

    from prometheus_client.metrics_core import Metric

    from bot.app import BotHandle
    from bot.sim.venue import SimVenue

# --- the pieces --------------------------------------------------------------------------------


def test_histogram_is_cumulative_and_a_value_on_a_bound_counts_in_its_bucket() -> None:
    histogram = Histogram((0.1, 1.0, 10.0))
    for value in (0.05, 0.1, 0.5, 1.0, 3.0, 99.0):
        histogram.observe(value)
    snapshot = histogram.snapshot()
    assert snapshot.bounds == (0.1, 1.0, 10.0)
    assert snapshot.cumulative == (2, 4, 5, 6)  # le 0.1, le 1, le 10, +Inf
    assert snapshot.count == 6
    assert snapshot.sum == pytest.approx(103.65)


def test_histogram_bounds_must_ascend() -> None:
    with pytest.raises(ValueError, match="ascending"):
        Histogram((1.0, 0.5))


def test_reservoir_histogram_counts_every_sample_not_only_the_recent_ones() -> None:
    reservoir = Reservoir(size=4, buckets=(0.001, 0.01))
    for _ in range(10):
        reservoir.add(0.005)
    reservoir.add(1.0)
    snapshot = reservoir.histogram.snapshot()
    assert snapshot.cumulative == (0, 10, 11)
    assert reservoir.summary().count == snapshot.count == 11


@pytest.mark.parametrize(
    ("reason", "label"),
    [
        ("kill switch: the day's PnL -200 reached the daily loss limit -200", "kill_switch"),
        ("stale book for 1234", "stale_book"),
        ("no book yet for 1234", "no_book"),
        ("price 0.505 is not on the 0.01 tick inside (0, 1) for 1234", "off_tick"),
        ("size 1.00 is below the minimum order size 5.00 of 0xabc", "min_size"),
        ("notional 600.00 exceeds max_order_notional 500.00", "max_order_notional"),
        ("cannot sell 5.00: 0.00 held on 1234 (no short selling ...)", "no_short"),
        ("position 0.00 + 20.00 would exceed max_position_shares 10.00 on 1234", "max_position"),
        ("exposure 10.00 + 5.00 would exceed max_total_exposure 12.00", "max_exposure"),
        ("order rate: 50 orders in the last second, max_orders_per_s 50", "order_rate"),
        ("leg 98765: stale book for 98765", "stale_book"),
        ("order o-1 belongs to market_making", "not_owner"),
        ("post_only_crosses", "post_only_crosses"),
        ("price_off_tick: price 0.505 is not a multiple of the 0.01 tick", "price_off_tick"),
        ("paused: by the operator", "paused"),
        # The live venue's own, and the CLOB's error texts (PROTOCOL.md 4.4).
        ("venue unavailable: 503 on every attempt", "venue_unavailable"),
        ("not placed (reconciled after a timeout)", "not_placed"),
        ("not enough balance / allowance", "balance"),
        ("order 0xab is invalid. Size (1) lower than the minimum: 5", "min_size"),
        (
            "order 0xab is invalid. Price (0.505) breaks minimum tick size rule: 0.01",
            "price_off_tick",
        ),
        ("invalid post-only order: order crosses book", "post_only_crosses"),
        ("post-only mode: only post-only orders and cancels are allowed", "post_only_mode"),
        ("order couldn't be fully filled. FOK orders are fully filled or killed.", "fok_unfilled"),
        ("Trading is currently cancel-only", "trading_disabled"),
        ("the venue had a bad day", "other"),
    ],
)
def test_reject_reasons_map_to_a_small_label_set(reason: str, label: str) -> None:
    assert reject_reason_label(reason) == label
    assert label in REJECT_REASONS


def test_execution_stats_count_rejections_by_label() -> None:
    stats = ExecutionStats()
    stats.count_rejection("stale book for 1")
    stats.count_rejection("stale book for 2")
    stats.count_rejection("order rate: 9 orders in the last second, max_orders_per_s 9")
    stats.count_venue_rejection("post_only_crosses")
    assert stats.rejections == 3  # the venue's own rejects are counted apart
    assert stats.rejects_by_reason == {"stale_book": 2, "order_rate": 1}
    assert stats.venue_rejects_by_reason == {"post_only_crosses": 1}


# --- a scrape of a running bot -----------------------------------------------------------------


def scrape_config(tmp_path: Path) -> Config:
    """Arbitrage that trades (positions, fills, PnL) and a market maker that risk refuses
    (quotes of 20 shares past a 10-share position limit, sells with nothing to sell)."""
    cfg = fast_feed(log_and_journal_in(Config(), tmp_path))
    cfg = enable_only(cfg, {"complement_arb", "market_making"})
    st = cfg.strategies
    strategies = attrs.evolve(
        st,
        complement_arb=attrs.evolve(st.complement_arb, max_shares=Decimal(10)),
        market_making=attrs.evolve(st.market_making, max_markets=1),
    )
    return attrs.evolve(
        cfg,
        strategies=strategies,
        risk=attrs.evolve(cfg.risk, max_position_shares=Decimal(10)),
        sim=attrs.evolve(
            cfg.sim,
            binary_markets=4,
            temperature_events=0,
            election_events=0,
            events_per_second=100,
            opportunity_rate=0.0,
            opportunity_lifetime_ms=400,
        ),
    )


def families(body: bytes) -> dict[str, Metric]:
    return {f.name: f for f in text_string_to_metric_families(body.decode())}


def value(metric: Metric, suffix: str = "", **labels: str) -> float:
    """The one sample of ``metric`` named ``metric.name + suffix`` with exactly ``labels``."""
    found = [
        s.value for s in metric.samples if s.name == metric.name + suffix and s.labels == labels
    ]
    assert len(found) == 1, (metric.name, suffix, labels, metric.samples)
    return found[0]


def by_label(metric: Metric, label: str, suffix: str = "") -> dict[str, float]:
    return {s.labels[label]: s.value for s in metric.samples if s.name == metric.name + suffix}


def assert_histogram(metric: Metric, count: int, **labels: str) -> None:
    """Cumulative buckets that never decrease, ending at ``+Inf`` == ``_count`` == ``count``."""
    buckets = [
        (float(s.labels["le"]), s.value)
        for s in metric.samples
        if s.name == metric.name + "_bucket"
        and {k: v for k, v in s.labels.items() if k != "le"} == labels
    ]
    bounds = [bound for bound, _ in buckets]
    assert bounds == sorted(bounds)
    assert bounds[-1] == math.inf
    counts = [c for _, c in buckets]
    assert counts == sorted(counts)
    assert counts[-1] == value(metric, "_count", **labels) == count


@attrs.frozen
class FakeLive:
    """What the metrics read of a live venue: its statistics."""

    stats: LiveStats


async def capture_an_arbitrage(venue: SimVenue, handle: BotHandle) -> None:
    for _ in range(10):
        try:
            await venue.inject(OpportunityKind.COMPLEMENT)
        except NoSuitableMarket:
            await trio.sleep(0.2)
            continue
        with trio.move_on_after(1.0):
            await wait_until(lambda: handle.execution.fills >= 2)
        if handle.execution.fills >= 2:
            return
        await trio.sleep(0.5)  # the competitor takes it; the market unlocks
    raise AssertionError("no injected opportunity was captured")


async def test_scrape_of_a_running_bot_matches_its_handle(tmp_path: Path) -> None:
    cfg = scrape_config(tmp_path)
    async with (
        open_sim_venue(cfg.sim, start_epoch_ms=START_MS) as venue,
        running_bot(cfg, venue) as handle,
    ):
        await trio.sleep(0.5)  # every book fresh, a few refresh gaps and decisions
        await capture_an_arbitrage(venue, handle)
        await wait_until(lambda: handle.execution.rejections > 0)
        body, content_type = metrics_exposition(handle)
        # Compared in the same step: no checkpoint since the scrape, so nothing has moved.
        check_scrape(handle, body, content_type)


def check_scrape(handle: BotHandle, body: bytes, content_type: str) -> None:
    assert content_type == CONTENT_TYPE
    assert content_type.startswith("text/plain")
    got = families(body)
    feed = handle.feed.statistics()
    engine, execution = handle.engine, handle.execution

    # Feed: per-shard counters add up to the feed's totals.
    shards = [str(s.shard) for s in feed.shards]
    events = by_label(got["polybot_feed_events"], "shard", "_total")
    assert sorted(events) == sorted(shards)
    assert sum(events.values()) == feed.events > 0
    reconnects = by_label(got["polybot_feed_reconnects"], "shard", "_total")
    assert sum(reconnects.values()) == feed.reconnects
    malformed = by_label(got["polybot_feed_malformed_frames"], "shard", "_total")
    assert sum(malformed.values()) == feed.malformed
    assert value(got["polybot_feed_resnapshots"], "_total") == feed.resnapshots
    assert value(got["polybot_feed_stale_tokens"]) == feed.stale_tokens
    state = got["polybot_feed_shard_state"]
    for shard in shards:
        current = [
            s.labels["state"] for s in state.samples if s.labels["shard"] == shard and s.value
        ]
        assert current == ["connected"]
    # Refresh gaps: the histograms counted every gap the per-token figures did.
    gaps = sum(g.count for g in feed.refresh_gaps.values())
    assert gaps > 0
    gap_metric = got["polybot_feed_refresh_gap_seconds"]
    assert sum(by_label(gap_metric, "shard", "_count").values()) == gaps
    for shard in shards:
        assert_histogram(gap_metric, int(value(gap_metric, "_count", shard=shard)), shard=shard)
    assert value(got["polybot_feed_max_refresh_gap_seconds"]) == feed.max_refresh_gap

    # Strategies, the loop, the log.
    t2d = got["polybot_tick_to_decision_seconds"]
    assert set(by_label(t2d, "strategy", "_count")) == {"complement_arb", "market_making"}
    for name, stats in handle.strategies.items():
        assert stats.latency.total > 0
        assert_histogram(t2d, stats.latency.total, strategy=name)
    decisions = by_label(got["polybot_strategy_decisions"], "strategy", "_total")
    assert decisions == {name: s.decisions for name, s in handle.strategies.items()}
    assert handle.loop_lag.total > 0
    assert_histogram(got["polybot_loop_lag_seconds"], handle.loop_lag.total)
    log = handle.log.statistics()
    assert value(got["polybot_log_dropped"], "_total") == log.dropped
    assert value(got["polybot_log_written"], "_total") == log.written

    # Execution: orders, fills, rejects by reason, positions, PnL.
    assert value(got["polybot_orders"], "_total") == engine.orders_sent > 0
    assert value(got["polybot_fills"], "_total") == execution.fills >= 2
    assert value(got["polybot_fees_usd"], "_total") == pytest.approx(execution.fees / ONE)
    rejects = {
        (s.labels["source"], s.labels["reason"]): s.value
        for s in got["polybot_rejects"].samples
        if s.name == "polybot_rejects_total"
    }
    risk = {reason: n for (source, reason), n in rejects.items() if source == "risk"}
    assert risk == execution.rejects_by_reason
    assert sum(risk.values()) == execution.rejections > 0
    assert set(risk) <= {"max_position", "no_short"}  # the market maker's refused quotes
    held: dict[str, int] = {}
    for (_strategy, token), shares in engine.ledger.positions().items():
        held[token] = held.get(token, 0) + shares
    held = {token: shares for token, shares in held.items() if shares}
    assert held
    positions = got["polybot_position_shares"].samples
    assert {s.labels["token"]: s.value for s in positions} == {t: n / ONE for t, n in held.items()}
    for sample in positions:
        market = handle.universe.market_for_token(sample.labels["token"])
        assert sample.labels["market"] == market.condition_id
    marks = engine.marks()
    pnl = by_label(got["polybot_pnl_usd"], "strategy")
    assert "complement_arb" in pnl
    for name, dollars in pnl.items():
        assert dollars == pytest.approx(engine.ledger.pnl(handle.universe, marks, name) / ONE)
    assert value(got["polybot_pnl_total_usd"]) == pytest.approx(
        engine.ledger.pnl(handle.universe, marks) / ONE
    )
    open_orders = by_label(got["polybot_open_orders"], "strategy")
    assert set(open_orders) == {"complement_arb", "market_making"}
    assert sum(open_orders.values()) == len(engine.all_open_orders())
    assert value(got["polybot_kill_switch_tripped"]) == 0
    assert value(got["polybot_heartbeat_enabled"]) == 0
    assert "polybot_heartbeat_healthy" not in got


async def test_a_registry_per_bot_and_the_optional_heartbeat(tmp_path: Path) -> None:
    cfg = scrape_config(tmp_path)
    async with (
        open_sim_venue(cfg.sim, start_epoch_ms=START_MS) as venue,
        running_bot(cfg, venue) as handle,
    ):
        stats = LiveStats(
            heartbeats=41,
            heartbeat_failures=3,
            heartbeat_ok=True,
            provisional_fills=2,
            provisional_notional=12_500_000,
            confirmed_fills=7,
            failed_fills=1,
        )
        live = attrs.evolve(handle, live=cast("Any", FakeLive(stats)))
        timed = LiveStats(heartbeats=1, heartbeat_ok=False)
        timed.heartbeat_last_ok_at = trio.current_time() - 2.0
        timed_body, _ = metrics_exposition(attrs.evolve(handle, live=cast("Any", FakeLive(timed))))
        live_body, _ = metrics_exposition(live)
        paper_body, _ = metrics_exposition(handle)

    assert metrics_registry(live) is not metrics_registry(handle)
    assert metrics_registry(handle) is metrics_registry(handle)
    live_got, paper_got = families(live_body), families(paper_body)
    assert value(live_got["polybot_heartbeat_enabled"]) == 1
    assert value(live_got["polybot_heartbeat_healthy"]) == 1
    assert value(live_got["polybot_heartbeats"], "_total") == 41
    assert value(live_got["polybot_heartbeat_failures"], "_total") == 3
    assert "polybot_heartbeat_age_seconds" not in live_got  # no beat acknowledged yet
    assert value(live_got["polybot_user_channel_ready"]) == 0  # this fake has no user feed
    assert value(live_got["polybot_provisional_notional_usd"]) == 12.5
    states = {
        sample.labels["state"]: sample.value
        for sample in live_got["polybot_live_fills"].samples
        if sample.name.endswith("_total")
    }
    assert states == {"provisional": 2, "confirmed": 7, "failed": 1}
    timed_got = families(timed_body)
    assert value(timed_got["polybot_heartbeat_healthy"]) == 0
    assert 2.0 <= value(timed_got["polybot_heartbeat_age_seconds"]) < 3.0
    assert value(paper_got["polybot_heartbeat_enabled"]) == 0
    # Nothing of ours lands in the library's process-wide default registry.
    assert b"polybot_" not in prometheus_client.generate_latest(prometheus_client.REGISTRY)

"""One JSON-ready picture of a running bot, for the dashboards (terminal and web).

``take_snapshot(handle, now)`` reads what a ``BotHandle`` exposes -- the feed's statistics, the
strategies' runner counters, the engine's open orders, the portfolio, the risk gate and the
execution task's recent decisions -- and returns plain data (str, int, float, bool, None, lists
and dicts only), so the terminal renders it and the web server sends it as JSON without
knowing any of the bot's classes.

Why a separate snapshot and not ``BotHandle.health()``: the health record is written to the log
every few seconds and must stay small; a dashboard wants more (every shard's state, the worst
refresh gaps by token, the last decisions, the open orders and positions) and wants it shaped
for display (ages instead of timestamps, market names next to token ids, alerts spelled out).

Cost and the feed: it is synchronous and runs on the trio thread, so while it runs nothing else
does. It never waits, takes no lock the feed takes, and its cost is bounded: O(tokens) for the
feed's totals and the worst-gap heap (a few ms at 10k tokens), O(open orders + positions) for
the rest, with the lists it returns capped (``MAX_ROWS``). The dashboards call it on their own
timer (once a second by default), never per frame, so the feed only ever loses that much
time, once a second.

Money stays exact: amounts are ``format_units`` strings ("12.345678"), never floats; ratios and
durations (events per second, latencies, gaps, ages) are floats.

Shape (keys of the returned dict)::

    now            trio.current_time() of the snapshot (seconds, monotonic)
    status         "ok" | "warn" | "alert": the worst of ``alerts``
    alerts         [{"level": "warn"|"alert", "text": ...}], what needs a look, worst first
    summary        markets, tokens, stale_tokens, events, events_per_s, reconnects, malformed,
                   resnapshots, mismatches, max_refresh_gap_s, loop_lag {p50_ms..}, log_drops
    shards         [{shard, tokens, tokens_ready, state, detail, connected, frozen,
                     reconnecting, rest_fallback, down, connects, reconnects, events, malformed,
                     data_age_s, pong_age_s}]
    refresh_gaps   [{token, market, gap_s, silence_s}], worst first
    strategies     [{name, state, deliveries, decisions, intents, skipped_updates, resyncs,
                     crashes, tick_to_decision {count, p50_ms, p99_ms, max_ms}, pnl,
                     open_orders, last_decisions [...]}]
    decisions      [{age_s, strategy, kind, key, detail}], newest first (every source)
    orders         {count, rows [{id, strategy, token, market, side, price, size, filled,
                     type, age_s}]}, newest first
    positions      {count, rows [{strategy, token, market, shares, mark, value}]}
    pnl            {total, fees, by_strategy {name: amount}}
    risk           {kill_switch, killed_reason, paused, paused_reason, rejections, exposure,
                    limits {...}}
    execution      {submissions, fills, rejections, orders_sent, fees, trades_seen}
    live           None on paper; else {heartbeat_ok, heartbeat_age_s, user_channel_ready,
                    user_reconnects, provisional_fills, provisional_notional, confirmed_fills,
                    failed_fills, outcome_unknown, reconciled_orders, orphans_cancelled}
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from bot.core.money import SCALE, format_units
from bot.shell.feed_events import ShardStatus

if TYPE_CHECKING:
    from bot.app import BotHandle
    from bot.core.trading import Decision
    from bot.core.universe import Universe

__all__ = [
    "DECISIONS_PER_STRATEGY",
    "GAP_ROWS",
    "MAX_ROWS",
    "RECENT_DECISIONS",
    "SILENCE_WARN_S",
    "market_label",
    "take_snapshot",
]

MAX_ROWS: Final = 50
"""Open orders and positions listed at most (the counts are always exact)."""

GAP_ROWS: Final = 10
"""Tokens listed under the worst refresh gaps."""

DECISIONS_PER_STRATEGY: Final = 5
"""Last decisions listed per strategy."""

RECENT_DECISIONS: Final = 20
"""Last decisions listed across every source."""

SILENCE_WARN_S: Final = 30.0
"""A token whose book has not moved for this long is called out (Seed 000's silence was 36 s;
a quiet market can also be silent that long, so it is a warning, not an alert)."""

_LABEL_WIDTH: Final = 60


def market_label(universe: Universe, token_id: str) -> str:
    """``"<market> [<outcome>]"`` for a token, or the token id itself if the universe lacks it."""
    try:
        market = universe.market_for_token(token_id)
    except KeyError:
        return token_id
    name = market.label
    if len(name) > _LABEL_WIDTH:
        name = name[: _LABEL_WIDTH - 1] + "~"
    outcome = next((o.name for o in market.outcomes if o.token_id == token_id), "?")
    return f"{name} [{outcome}]"


def _age(now: float, at: float | None) -> float | None:
    return None if at is None else round(max(0.0, now - at), 3)


def _decision_row(now: float, at: float, decision: Decision) -> dict[str, Any]:
    return {
        "age_s": round(max(0.0, now - at), 3),
        "strategy": decision.strategy,
        "kind": decision.kind,
        "key": decision.key,
        "detail": {str(k): str(v) for k, v in decision.detail.items()},
    }


def take_snapshot(handle: BotHandle, now: float) -> dict[str, Any]:
    """Everything the dashboards show, as plain data (see the module docstring for the keys).

    Args:
        handle: the running bot.
        now: ``trio.current_time()``; every age in the snapshot is measured from it.
    """
    universe = handle.universe
    engine = handle.engine
    risk = engine.risk
    feed = handle.feed.statistics(per_token=False)
    marks = engine.marks()
    alerts: list[dict[str, str]] = []

    shards = []
    for shard in feed.shards:
        state = shard.state
        row = {
            "shard": shard.shard,
            "tokens": shard.tokens,
            "tokens_ready": shard.tokens_ready,
            "state": str(state),
            "detail": shard.detail,
            "connected": state is ShardStatus.CONNECTED,
            "frozen": state is ShardStatus.FROZEN,
            "reconnecting": state in (ShardStatus.RECONNECTING, ShardStatus.CONNECTING),
            "rest_fallback": state is ShardStatus.REST_FALLBACK,
            "down": state is ShardStatus.DOWN,
            "connects": shard.connects,
            "reconnects": shard.reconnects,
            "events": shard.events,
            "malformed": shard.malformed,
            "data_age_s": _age(now, shard.last_data_at),
            "pong_age_s": _age(now, shard.last_pong_at),
        }
        shards.append(row)
        if state is not ShardStatus.CONNECTED:
            level = "alert" if state in (ShardStatus.FROZEN, ShardStatus.DOWN) else "warn"
            detail = f": {shard.detail}" if shard.detail else ""
            alerts.append({"level": level, "text": f"shard {shard.shard} {state}{detail}"})

    gaps = []
    for token, gap, silence in handle.feed.worst_refresh_gaps(GAP_ROWS):
        label = market_label(universe, token)
        gaps.append(
            {
                "token": token,
                "market": label,
                "gap_s": round(gap, 3),
                "silence_s": round(silence, 3),
            }
        )
        if silence >= SILENCE_WARN_S:
            alerts.append({"level": "warn", "text": f"no update for {silence:.0f} s: {label}"})
    if feed.stale_tokens:
        alerts.append({"level": "warn", "text": f"{feed.stale_tokens} stale books"})

    if risk.killed is not None:
        alerts.insert(0, {"level": "alert", "text": f"KILL SWITCH: {risk.killed}"})
    if risk.paused is not None:
        alerts.insert(0, {"level": "warn", "text": f"trading paused: {risk.paused}"})

    recent: list[tuple[float, Decision]] = (
        list(handle.executor.recent_decisions) if handle.executor is not None else []
    )
    by_strategy: dict[str, list[dict[str, Any]]] = {}
    for at, decision in reversed(recent):
        rows = by_strategy.setdefault(decision.strategy, [])
        if len(rows) < DECISIONS_PER_STRATEGY:
            rows.append(_decision_row(now, at, decision))

    ledger = engine.ledger
    pnl_by_strategy = {
        name: format_units(ledger.pnl(universe, marks, name)) for name in handle.strategies
    }
    strategies = []
    for name, stats in handle.strategies.items():
        if stats.disabled:
            mode = "disabled"
            alerts.append({"level": "alert", "text": f"strategy {name} disabled"})
        elif risk.killed is not None:
            mode = "killed"
        elif risk.paused is not None:
            mode = "paused"
        elif stats.deliveries == 0:
            mode = "starting"
        else:
            mode = "running"
        strategies.append(
            {
                "name": name,
                "state": mode,
                "deliveries": stats.deliveries,
                "decisions": stats.decisions,
                "intents": stats.intents,
                "skipped_updates": stats.skipped_updates,
                "resyncs": stats.resyncs,
                "crashes": stats.crashes,
                "tick_to_decision": stats.latency.summary().as_ms(),
                "pnl": pnl_by_strategy[name],
                "open_orders": len(engine.open_orders(name)),
                "last_decisions": by_strategy.get(name, []),
            }
        )

    open_orders = sorted(engine.all_open_orders(), key=lambda o: o.created_at, reverse=True)
    orders = {
        "count": len(open_orders),
        "rows": [
            {
                "id": order.id,
                "strategy": order.strategy,
                "token": order.token_id,
                "market": market_label(universe, order.token_id),
                "side": order.side.name,
                "price": format_units(order.price),
                "size": format_units(order.size),
                "filled": format_units(order.filled),
                "type": str(order.order_type),
                "age_s": _age(now, order.created_at),
            }
            for order in open_orders[:MAX_ROWS]
        ],
    }

    held = sorted(
        (
            (strategy, token, market_label(universe, token), shares)
            for (strategy, token), shares in ledger.positions().items()
        ),
        key=lambda row: (row[0], row[2]),
    )
    positions = {
        "count": len(held),
        "rows": [
            {
                "strategy": strategy,
                "token": token,
                "market": label,
                "shares": format_units(shares),
                "mark": format_units(marks[token]) if token in marks else None,
                "value": format_units(shares * marks[token] // SCALE) if token in marks else None,
            }
            for strategy, token, label, shares in held[:MAX_ROWS]
        ],
    }

    live = _live(handle, now, alerts)
    execution = handle.execution
    lag = handle.loop_lag.summary().as_ms()
    log_drops = handle.log.statistics().dropped
    if log_drops:
        alerts.append({"level": "warn", "text": f"{log_drops} log records dropped"})
    alerts.sort(key=lambda a: a["level"] != "alert")  # stable: alerts first, order kept
    status = "alert" if any(a["level"] == "alert" for a in alerts) else "warn" if alerts else "ok"
    limits = risk.limits
    return {
        "now": now,
        "status": status,
        "alerts": alerts,
        "summary": {
            "markets": len(universe.markets),
            "tokens": feed.tokens,
            "stale_tokens": feed.stale_tokens,
            "events": feed.events,
            "events_per_s": round(feed.events_per_s, 1),
            "reconnects": feed.reconnects,
            "malformed": feed.malformed,
            "resnapshots": feed.resnapshots,
            "mismatches": feed.mismatches,
            "rest_fallback_polls": feed.rest_fallback_polls,
            "max_refresh_gap_s": round(feed.max_refresh_gap, 3),
            "loop_lag": lag,
            "log_drops": log_drops,
        },
        "shards": shards,
        "refresh_gaps": gaps,
        "strategies": strategies,
        "decisions": [_decision_row(now, at, d) for at, d in reversed(recent[-RECENT_DECISIONS:])],
        "orders": orders,
        "positions": positions,
        "pnl": {
            "total": format_units(ledger.pnl(universe, marks)),
            "fees": format_units(execution.fees),
            "by_strategy": pnl_by_strategy,
        },
        "risk": {
            "kill_switch": risk.killed is not None,
            "killed_reason": risk.killed,
            "paused": risk.paused is not None,
            "paused_reason": risk.paused,
            "rejections": risk.rejections,
            "exposure": format_units(ledger.exposure() + engine.resting_buy_notional()),
            "limits": {
                "max_position": format_units(limits.max_position),
                "max_total_exposure": format_units(limits.max_total_exposure),
                "max_order_notional": format_units(limits.max_order_notional),
                "max_orders_per_s": limits.max_orders_per_s,
                "daily_loss_limit": format_units(limits.daily_loss_limit),
            },
        },
        "live": live,
        "execution": {
            "submissions": execution.submissions,
            "fills": execution.fills,
            "rejections": execution.rejections,
            "orders_sent": engine.orders_sent,
            "fees": format_units(execution.fees),
            "trades_seen": execution.trades_seen,
        },
    }


def _live(handle: BotHandle, now: float, alerts: list[dict[str, str]]) -> dict[str, Any] | None:
    """Live trading's state (``None`` on paper): what a trader must see at once when real
    orders are out -- is the dead-man heartbeat beating, is the user channel (the fills) up,
    how much is still provisional."""
    if handle.live is None:
        return None
    stats = handle.live.stats
    user = handle.user_feed.statistics() if handle.user_feed is not None else None
    ready = user is not None and user.ready
    if not stats.heartbeat_ok:
        alerts.append({"level": "alert", "text": "heartbeat failing: the venue cancels orders"})
    if not ready:
        alerts.append({"level": "alert", "text": "user channel down: fills arrive late"})
    return {
        "heartbeat_ok": stats.heartbeat_ok,
        "heartbeat_age_s": _age(now, stats.heartbeat_last_ok_at),
        "user_channel_ready": ready,
        "user_reconnects": user.reconnects if user is not None else 0,
        "provisional_fills": stats.provisional_fills,
        "provisional_notional": format_units(stats.provisional_notional),
        "confirmed_fills": stats.confirmed_fills,
        "failed_fills": stats.failed_fills,
        "outcome_unknown": stats.outcome_unknown,
        "reconciled_orders": stats.reconciled_orders,
        "orphans_cancelled": stats.orphans_cancelled,
    }

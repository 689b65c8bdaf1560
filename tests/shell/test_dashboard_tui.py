"""The terminal dashboard: a snapshot rendered to text, and the task drawing a running bot."""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING, Any

import trio

from bot.shell.dashboard_tui import render_dashboard, render_frame, run_tui
from bot.shell.watch import CLEAR_BELOW, CLEAR_SCREEN, HOME
from tests.shell.dashboard_helpers import dashboard_config, running_demo, wait_until

if TYPE_CHECKING:
    from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def sample_snapshot(**risk: Any) -> dict[str, Any]:
    """A hand-made snapshot with one row of everything (the shape ``take_snapshot`` returns)."""
    killed = risk.get("killed_reason")
    paused = risk.get("paused_reason")
    return {
        "now": 100.0,
        "status": "alert" if killed else "warn",
        "alerts": [{"level": "warn", "text": "shard 1 reconnecting: ConnectionLost"}],
        "summary": {
            "markets": 3,
            "tokens": 6,
            "stale_tokens": 2,
            "events": 12345,
            "events_per_s": 321.4,
            "reconnects": 1,
            "malformed": 0,
            "resnapshots": 4,
            "mismatches": 0,
            "rest_fallback_polls": 0,
            "max_refresh_gap_s": 36.2,
            "loop_lag": {"count": 10, "p50_ms": 0.5, "p99_ms": 2.25, "max_ms": 3.0},
            "log_drops": 0,
        },
        "shards": [
            {
                "shard": 0,
                "tokens": 4,
                "tokens_ready": 4,
                "state": "connected",
                "detail": "4 tokens subscribed",
                "connected": True,
                "frozen": False,
                "reconnecting": False,
                "rest_fallback": False,
                "down": False,
                "connects": 1,
                "reconnects": 0,
                "events": 12000,
                "malformed": 0,
                "data_age_s": 0.01,
                "pong_age_s": 3.0,
            },
            {
                "shard": 1,
                "tokens": 2,
                "tokens_ready": 0,
                "state": "reconnecting",
                "detail": "ConnectionLost",
                "connected": False,
                "frozen": False,
                "reconnecting": True,
                "rest_fallback": False,
                "down": False,
                "connects": 2,
                "reconnects": 1,
                "events": 345,
                "malformed": 0,
                "data_age_s": 4.5,
                "pong_age_s": None,
            },
        ],
        "refresh_gaps": [
            {"token": "t1", "market": "Will it rain? [Yes]", "gap_s": 36.2, "silence_s": 36.2}
        ],
        "strategies": [
            {
                "name": "complement_arb",
                "state": "paused" if paused else "running",
                "deliveries": 10,
                "decisions": 3,
                "intents": 2,
                "skipped_updates": 0,
                "resyncs": 0,
                "crashes": 0,
                "tick_to_decision": {"count": 10, "p50_ms": 0.31, "p99_ms": 0.97, "max_ms": 1.2},
                "pnl": "1.250000",
                "open_orders": 1,
                "last_decisions": [
                    {
                        "age_s": 1.5,
                        "strategy": "complement_arb",
                        "kind": "opportunity.open",
                        "key": "0xabcdef0123456789",
                        "detail": {"edge": "0.03"},
                    }
                ],
            }
        ],
        "decisions": [
            {
                "age_s": 1.5,
                "strategy": "complement_arb",
                "kind": "opportunity.open",
                "key": "0xabcdef0123456789",
                "detail": {"edge": "0.03"},
            }
        ],
        "orders": {
            "count": 1,
            "rows": [
                {
                    "id": "paper-o1",
                    "strategy": "market_making",
                    "token": "t1",
                    "market": "Will it rain? [Yes]",
                    "side": "BUY",
                    "price": "0.47",
                    "size": "20",
                    "filled": "0",
                    "type": "GTC",
                    "age_s": 2.0,
                }
            ],
        },
        "positions": {
            "count": 1,
            "rows": [
                {
                    "strategy": "complement_arb",
                    "token": "t2",
                    "market": "Will it snow? [No]",
                    "shares": "118.45",
                    "mark": "0.85",
                    "value": "100.6825",
                }
            ],
        },
        "pnl": {"total": "-3.141592", "fees": "0.5", "by_strategy": {"complement_arb": "1.25"}},
        "risk": {
            "kill_switch": killed is not None,
            "killed_reason": killed,
            "paused": paused is not None,
            "paused_reason": paused,
            "rejections": 7,
            "exposure": "120.5",
            "limits": {
                "max_position": "1000",
                "max_total_exposure": "5000",
                "max_order_notional": "500",
                "max_orders_per_s": 50.0,
                "daily_loss_limit": "200",
            },
        },
        "execution": {
            "submissions": 5,
            "fills": 4,
            "rejections": 7,
            "orders_sent": 9,
            "fees": "0.5",
            "trades_seen": 100,
        },
    }


def text_of(snapshot: dict[str, Any], **kw: Any) -> str:
    return "\n".join(render_frame(render_dashboard(snapshot, **kw), width=200))


def test_a_snapshot_renders_every_section() -> None:
    text = text_of(sample_snapshot(), uptime_s=3725)
    assert text.startswith("polybot  [WARN]  paper  up 01:02:05  pnl -3.141592  fees 0.5")
    assert "321 events/s (12345 total)" in text
    assert "6 tokens, 2 stale" in text
    assert "kill switch armed | trading" in text
    assert "! shard 1 reconnecting: ConnectionLost" in text
    for title in ("FEED", "WORST REFRESH GAPS", "STRATEGIES", "OPEN ORDERS (1)", "POSITIONS (1)"):
        assert title in text.splitlines(), title
    lines = text.splitlines()
    shard_rows = [line for line in lines if re.match(r"^[01]\s{2,}", line)]
    assert "connected" in shard_rows[0]
    assert "4/4" in shard_rows[0]
    assert "RECONNECTING" in shard_rows[1]
    assert "0/2" in shard_rows[1]
    assert re.search(r"36\.2 s\s+36\.2 s\s+Will it rain\? \[Yes\]", text)
    strategy = next(line for line in lines if line.startswith("complement_arb"))
    assert re.search(r"running\s+3\s+1\s+0\.31\s+0\.97\s+1\.250000\s+opportunity\.open", strategy)
    order = next(line for line in lines if line.startswith("market_making"))
    assert re.search(r"BUY\s+0\.47\s+20\s+0\s+GTC\s+2\.0 s\s+Will it rain", order)
    assert re.search(r"complement_arb\s+118\.45\s+0\.85\s+100\.6825\s+Will it snow\? \[No\]", text)
    assert "edge=0.03" in text


def test_kill_switch_and_pause_are_spelled_out() -> None:
    killed = text_of(sample_snapshot(killed_reason="the day's PnL -200 reached the limit"))
    assert killed.startswith("polybot  [ALERT]")
    assert "kill switch TRIPPED" in killed
    paused = text_of(sample_snapshot(paused_reason="by the operator (dashboard)"))
    assert "| PAUSED |" in paused
    assert re.search(r"complement_arb\s+PAUSED", paused)


def test_live_trading_says_so_with_its_heartbeat_and_user_channel() -> None:
    snap = sample_snapshot()
    assert snap.get("live") is None
    snap["live"] = {
        "heartbeat_ok": False,
        "heartbeat_age_s": 16.0,
        "user_channel_ready": True,
        "user_reconnects": 2,
        "provisional_fills": 3,
        "provisional_notional": "12.5",
        "confirmed_fills": 40,
        "failed_fills": 1,
        "outcome_unknown": 0,
        "reconciled_orders": 1,
        "orphans_cancelled": 4,
    }
    text = text_of(snap)
    assert text.startswith("polybot  [WARN]  LIVE (real orders)")
    assert re.search(r"FAILING\s+ready \(2 reconnects\)\s+3 fills \$12\.5\s+40\s+1", text)
    assert "1 orders, 4 orphans" in text


def test_frames_fit_the_terminal_and_colour_only_on_request() -> None:
    lines = render_dashboard(sample_snapshot())
    plain = render_frame(lines, width=40, height=12)
    assert len(plain) == 12
    assert all(len(line) <= 40 for line in plain)
    assert plain[-1].startswith("... ")
    assert "more lines" in plain[-1]
    assert not any(ANSI.search(line) for line in plain)
    coloured = render_frame(lines, width=40, height=12, color=True)
    assert coloured[0].startswith("\x1b[33m")  # the status line, in the status's colour (warn)
    assert [ANSI.sub("", line) for line in coloured] == plain


async def test_the_task_draws_a_running_demo_bot_as_frames(tmp_path: Path) -> None:
    cfg = dashboard_config(tmp_path)
    piped, terminal = io.StringIO(), io.StringIO()
    async with running_demo(cfg) as handle, trio.open_nursery() as nursery:
        await wait_until(lambda: handle.feed.statistics(per_token=False).events > 0)
        await nursery.start(
            lambda task_status: run_tui(
                handle, piped, tty=False, refresh_s=0.2, task_status=task_status
            )
        )
        await nursery.start(
            lambda task_status: run_tui(
                handle,
                terminal,
                tty=True,
                refresh_s=0.2,
                terminal_size=lambda: (80, 24),
                task_status=task_status,
            )
        )
        await wait_until(lambda: piped.getvalue().count("--- t=") >= 4)
        nursery.cancel_scope.cancel()
    frames = piped.getvalue().split("--- t=")[1:]
    totals = [int(m.group(1)) for f in frames if (m := re.search(r"\((\d+) total\)", f))]
    assert len(totals) == len(frames)
    assert totals[-1] > totals[0]  # live: the feed's event count moves between frames
    last = frames[-1]
    for name in handle.strategies:
        assert re.search(rf"^{name}\s+(running|starting)", last, re.MULTILINE), name
    assert re.search(r"^0\s+connected", last, re.MULTILINE)
    drawn = terminal.getvalue()
    assert drawn.startswith(HOME + CLEAR_SCREEN)
    redraws = drawn.split(HOME)[2:]
    assert redraws
    assert all(r.endswith(CLEAR_BELOW) for r in redraws)
    rows = ANSI.sub("", redraws[-1]).splitlines()
    assert len(rows) <= 23
    assert all(len(row) <= 80 for row in rows)

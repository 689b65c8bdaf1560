"""The terminal dashboard (``--dashboard tui``): the bot at a glance, redrawn in place.

Every ``refresh_s`` the task takes one snapshot of the bot (``bot.shell.snapshot``) and draws it:
the overall status and its alerts, feed health per shard, the worst refresh gaps, each
strategy's state, latency, PnL and last decision, risk and the kill switch, open orders,
positions and the most recent decisions. It reads the bot on its own timer and never waits on
the feed, so a slow terminal costs the bot nothing but this task's own time; the write itself
runs in a worker thread (a terminal can block: a paused pager, a full pipe).

On a terminal it redraws in place with the same plain ANSI escapes as ``polybot watch``
(cursor home, clear to end of line, clear below; colour for the status words): no curses,
nothing to restore if the process dies. Lines are cut to the terminal's width and the frame to
its height, least important sections last. When the output is not a terminal (a pipe, a file, a
test) each frame is printed whole, after a ``--- t=...`` line, so a log keeps every frame.

``render_dashboard`` is pure (plain text lines from a snapshot); ``run_tui`` is the task.
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING, Any, Final, TextIO

import trio

from bot.shell.snapshot import take_snapshot
from bot.shell.watch import CLEAR_BELOW, CLEAR_LINE, CLEAR_SCREEN, HOME

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from bot.app import BotHandle

__all__ = ["render_dashboard", "render_frame", "run_tui"]

_RESET: Final = "\x1b[0m"
_STYLES: Final = {
    "title": "\x1b[1m",
    "ok": "\x1b[32m",
    "warn": "\x1b[33m",
    "alert": "\x1b[1;31m",
    "head": "\x1b[1;36m",
    "dim": "\x1b[2m",
}

_PIPE_WIDTH: Final = 200
"""Columns of a frame written to a pipe or file (no terminal to fit)."""

Line = tuple[str, str]
"""A line of text and its style (a key of ``_STYLES``, or ``""`` for none)."""


def _num(value: float | None, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}{unit}"


def _table(
    header: Sequence[str], rows: Sequence[Sequence[str]], right: frozenset[int] = frozenset()
) -> list[str]:
    """Fixed-width columns, two spaces apart; columns in ``right`` are right-aligned."""
    table = [list(header), *(list(row) for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    return [
        "  ".join(
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(line)
        ).rstrip()
        for line in table
    ]


def _section(
    title: str, header: Sequence[str], rows: Sequence[Sequence[str]], **kw: Any
) -> list[Line]:
    lines = _table(header, rows, **kw)
    out: list[Line] = [("", ""), (title, "head"), (lines[0], "dim")]
    out.extend((line, "") for line in lines[1:])
    return out


def _detail(detail: Mapping[str, str], limit: int = 4) -> str:
    return " ".join(f"{k}={v}" for k, v in list(detail.items())[:limit])


def _header(snap: Mapping[str, Any], uptime_s: float | None) -> list[Line]:
    s = snap["summary"]
    status = str(snap["status"]).upper()
    up = ""
    if uptime_s is not None:
        minutes, seconds = divmod(int(uptime_s), 60)
        hours, minutes = divmod(minutes, 60)
        up = f"  up {hours:02d}:{minutes:02d}:{seconds:02d}"
    risk = snap["risk"]
    pnl = snap["pnl"]
    mode = "LIVE (real orders)" if snap.get("live") is not None else "paper"
    lines: list[Line] = [
        (
            f"polybot  [{status}]  {mode}{up}  pnl {pnl['total']}  fees {pnl['fees']}",
            snap["status"],
        ),
        (
            f"{s['events_per_s']:.0f} events/s ({s['events']} total) | {s['tokens']} tokens, "
            f"{s['stale_tokens']} stale | reconnects {s['reconnects']} | malformed "
            f"{s['malformed']} | resnapshots {s['resnapshots']} | max gap "
            f"{s['max_refresh_gap_s']:.1f} s",
            "",
        ),
        (
            f"loop lag p99 {s['loop_lag']['p99_ms']:.1f} ms max {s['loop_lag']['max_ms']:.1f} ms"
            f" | log drops {s['log_drops']} | kill switch "
            f"{'TRIPPED' if risk['kill_switch'] else 'armed'} | "
            f"{'PAUSED' if risk['paused'] else 'trading'} | exposure {risk['exposure']} / "
            f"{risk['limits']['max_total_exposure']} | rejections {risk['rejections']}",
            "alert" if risk["kill_switch"] else "warn" if risk["paused"] else "",
        ),
    ]
    for alert in snap["alerts"]:
        lines.append((f"! {alert['text']}", alert["level"]))
    return lines


def render_dashboard(snap: Mapping[str, Any], *, uptime_s: float | None = None) -> list[Line]:
    """The whole frame as styled lines, most important first. Pure.

    Args:
        snap: a snapshot from ``take_snapshot``.
        uptime_s: shown in the title line when given.
    """
    lines = _header(snap, uptime_s)
    shards = [
        [
            str(sh["shard"]),
            sh["state"].upper() if not sh["connected"] else sh["state"],
            f"{sh['tokens_ready']}/{sh['tokens']}",
            str(sh["events"]),
            str(sh["reconnects"]),
            str(sh["malformed"]),
            _num(sh["data_age_s"], " s"),
            _num(sh["pong_age_s"], " s"),
            sh["detail"][:50],
        ]
        for sh in snap["shards"]
    ]
    lines += _section(
        "FEED",
        (
            "shard",
            "state",
            "ready",
            "events",
            "reconn",
            "malformed",
            "data age",
            "pong age",
            "detail",
        ),
        shards,
        right=frozenset({2, 3, 4, 5, 6, 7}),
    )
    live = snap.get("live")
    if live is not None:
        lines += _section(
            "LIVE TRADING",
            ("heartbeat", "user channel", "provisional", "confirmed", "failed", "reconciled"),
            [
                [
                    f"ok {_num(live['heartbeat_age_s'], ' s')} ago"
                    if live["heartbeat_ok"]
                    else "FAILING",
                    f"ready ({live['user_reconnects']} reconnects)"
                    if live["user_channel_ready"]
                    else "DOWN",
                    f"{live['provisional_fills']} fills ${live['provisional_notional']}",
                    str(live["confirmed_fills"]),
                    str(live["failed_fills"]),
                    f"{live['reconciled_orders']} orders, {live['orphans_cancelled']} orphans",
                ]
            ],
        )
    gaps = [
        [_num(g["gap_s"], " s"), _num(g["silence_s"], " s"), g["market"]]
        for g in snap["refresh_gaps"]
    ]
    lines += _section(
        "WORST REFRESH GAPS", ("gap", "silent", "market"), gaps, right=frozenset({0, 1})
    )
    strategies = []
    for st in snap["strategies"]:
        t2d = st["tick_to_decision"]
        last = st["last_decisions"][0] if st["last_decisions"] else None
        strategies.append(
            [
                st["name"],
                st["state"].upper() if st["state"] not in ("running", "starting") else st["state"],
                str(st["decisions"]),
                str(st["open_orders"]),
                _num(t2d["p50_ms"], "", 2),
                _num(t2d["p99_ms"], "", 2),
                st["pnl"],
                f"{last['kind']} {last['key'][:12]} {_detail(last['detail'], 2)}" if last else "-",
            ]
        )
    lines += _section(
        "STRATEGIES",
        ("strategy", "state", "decisions", "orders", "p50 ms", "p99 ms", "pnl", "last decision"),
        strategies,
        right=frozenset({2, 3, 4, 5, 6}),
    )
    orders = snap["orders"]
    lines += _section(
        f"OPEN ORDERS ({orders['count']})",
        ("strategy", "side", "price", "size", "filled", "type", "age", "market"),
        [
            [
                o["strategy"],
                o["side"],
                o["price"],
                o["size"],
                o["filled"],
                o["type"],
                _num(o["age_s"], " s"),
                o["market"],
            ]
            for o in orders["rows"]
        ],
        right=frozenset({2, 3, 4, 6}),
    )
    positions = snap["positions"]
    lines += _section(
        f"POSITIONS ({positions['count']})",
        ("strategy", "shares", "mark", "value", "market"),
        [
            [p["strategy"], p["shares"], p["mark"] or "-", p["value"] or "-", p["market"]]
            for p in positions["rows"]
        ],
        right=frozenset({1, 2, 3}),
    )
    lines += _section(
        "RECENT DECISIONS",
        ("age", "strategy", "decision", "key", "detail"),
        [
            [_num(d["age_s"], " s"), d["strategy"], d["kind"], d["key"][:16], _detail(d["detail"])]
            for d in snap["decisions"]
        ],
        right=frozenset({0}),
    )
    return lines


def render_frame(
    lines: Sequence[Line], *, width: int, height: int | None = None, color: bool = False
) -> list[str]:
    """Lines cut to ``width`` columns and ``height`` rows, with ANSI colour when ``color``.

    A frame taller than ``height`` loses its last lines (the least important sections) and
    says how many on its last row.
    """
    shown = list(lines)
    if height is not None and len(shown) > height:
        cut = len(shown) - (height - 1)
        shown = [
            *shown[: height - 1],
            (f"... {cut} more lines (a taller terminal shows them)", "dim"),
        ]
    out = []
    for text, style in shown:
        text = text[:width]
        code = _STYLES.get(style, "") if color else ""
        out.append(f"{code}{text}{_RESET}" if code else text)
    return out


def _terminal_size() -> tuple[int, int]:
    size = shutil.get_terminal_size()
    return size.columns, size.lines


async def _write(out: TextIO, text: str) -> None:
    def write() -> None:
        out.write(text)
        out.flush()

    # A terminal or pipe can block: never on the event loop.
    await trio.to_thread.run_sync(write)


async def run_tui(
    handle: BotHandle,
    out: TextIO,
    *,
    tty: bool,
    refresh_s: float = 1.0,
    terminal_size: Callable[[], tuple[int, int]] | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Draw the dashboard on ``out`` every ``refresh_s`` seconds until cancelled.

    Args:
        handle: the running bot.
        out: where to draw (stdout).
        tty: redraw in place with ANSI escapes and colour, fitted to the terminal; otherwise
            print every frame whole (lines cut at 200 columns).
        refresh_s: seconds between frames.
        terminal_size: ``(columns, rows)`` (default ``shutil.get_terminal_size``).
    """
    size = terminal_size or _terminal_size
    start = trio.current_time()
    task_status.started()
    if tty:
        await _write(out, HOME + CLEAR_SCREEN)
    while True:
        now = trio.current_time()
        lines = render_dashboard(take_snapshot(handle, now), uptime_s=now - start)
        if tty:
            columns, rows = size()
            frame = render_frame(lines, width=max(20, columns), height=max(5, rows - 1), color=True)
            await _write(
                out, HOME + "".join(f"{line}{CLEAR_LINE}\n" for line in frame) + CLEAR_BELOW
            )
        else:
            frame = render_frame(lines, width=_PIPE_WIDTH)
            await _write(
                out, f"--- t={now - start:.1f}s\n" + "".join(f"{line}\n" for line in frame)
            )
        await trio.sleep_until(now + refresh_s)

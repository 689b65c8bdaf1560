"""``polybot watch``: the top of book of a few markets, live in the terminal.

A bus subscriber like a strategy: it takes the newest ``BookView`` of each watched token from its
``Subscription`` (conflated by the bus, so a slow terminal only ever skips intermediate books),
and redraws a small table at most ``max_redraws_per_s`` times a second, and at least once a
second so the ages keep counting while a market is quiet. On a terminal it redraws in place with
plain ANSI escapes (cursor home, clear to end of line, clear below): no curses, nothing to
restore if the process dies. When stdout is not a terminal (a pipe, a file, a test) it prints
plain snapshot blocks instead, one line per market, every ``snapshot_interval_s`` -- text that
``grep`` and a log file can use.

One row per market, from the book of its first outcome ("Yes"): best bid and its size, best ask
and its size, the spread, the age of the book's last update (feed receive time, so it counts
the quiet of the market and of the socket alike) and ``STALE`` when the book is not known to
match the venue (no snapshot yet, a mismatch, a dropped socket). Prices are exact micro-units
formatted with ``format_units``; nothing is rounded through ``float``.

``render_rows`` is pure (the caller passes ``now``); ``run_watch`` is the task.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, TextIO

import attrs
import trio

from bot.core.money import format_units

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from bot.core.book import BookView
    from bot.core.universe import Market
    from bot.shell.bus import BookUpdate, Subscription

__all__ = [
    "CLEAR_BELOW",
    "CLEAR_LINE",
    "CLEAR_SCREEN",
    "HOME",
    "WatchRow",
    "render_rows",
    "run_watch",
]

HOME: Final = "\x1b[H"
CLEAR_SCREEN: Final = "\x1b[2J"
CLEAR_LINE: Final = "\x1b[K"
CLEAR_BELOW: Final = "\x1b[J"

_HEADER: Final = ("market", "bid", "bid size", "ask", "ask size", "spread", "age", "")
_QUESTION_WIDTH: Final = 48


@attrs.frozen
class WatchRow:
    """What one market shows (the latest book of its first outcome's token)."""

    market: Market
    view: BookView | None
    updated_at: float | None


def _age(updated_at: float | None, now: float) -> str:
    if updated_at is None:
        return "-"
    age = max(0.0, now - updated_at)
    return f"{age:.1f}s" if age < 100 else f"{age:.0f}s"


def _label(market: Market) -> str:
    text = market.question or market.slug or market.condition_id
    outcome = market.outcomes[0].name
    if len(text) > _QUESTION_WIDTH:
        text = text[: _QUESTION_WIDTH - 1] + "~"
    return f"{text} [{outcome}]"


def _cells(row: WatchRow, now: float) -> tuple[str, ...]:
    view = row.view
    if view is None:
        return (_label(row.market), "-", "-", "-", "-", "-", "-", "NO DATA")
    bid, ask = view.best_bid, view.best_ask
    spread = format_units(ask.price - bid.price) if bid is not None and ask is not None else "-"
    return (
        _label(row.market),
        format_units(bid.price) if bid is not None else "-",
        format_units(bid.size) if bid is not None else "-",
        format_units(ask.price) if ask is not None else "-",
        format_units(ask.size) if ask is not None else "-",
        spread,
        _age(row.updated_at, now),
        "STALE" if view.stale else "",
    )


def render_rows(rows: Sequence[WatchRow], now: float) -> list[str]:
    """The table: a header line, then one fixed-width line per market. Pure.

    Args:
        rows: The markets in display order, each with its latest view (or ``None``).
        now: The current ``trio.current_time()``, for the ages.
    """
    table = [_HEADER, *(_cells(row, now) for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(_HEADER))]
    lines = []
    for line in table:
        cells = [
            cell.ljust(widths[i]) if i in (0, 7) else cell.rjust(widths[i])
            for i, cell in enumerate(line)
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


async def _write(out: TextIO, text: str) -> None:
    def write() -> None:
        out.write(text)
        out.flush()

    # A terminal or pipe can block (a paused pager, a full pipe): never on the event loop.
    await trio.to_thread.run_sync(write)


async def run_watch(
    markets: Sequence[Market],
    subscription: Subscription[Any],
    out: TextIO,
    *,
    tty: bool,
    max_redraws_per_s: float = 4.0,
    snapshot_interval_s: float = 1.0,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Show ``markets`` from ``subscription`` on ``out`` until cancelled.

    Args:
        markets: What to show, in order (their first outcome's token).
        subscription: A bus subscription (views of other tokens are ignored).
        out: Where to draw (stdout).
        tty: Redraw in place with ANSI escapes; otherwise print snapshot blocks.
        max_redraws_per_s: Upper bound on terminal redraws.
        snapshot_interval_s: Seconds between snapshot blocks when not a terminal.
    """
    tokens = {market.outcomes[0].token_id: market for market in markets}
    views: dict[str, tuple[BookView, float]] = {}
    min_gap = 1.0 / max_redraws_per_s if tty else snapshot_interval_s
    idle_redraw = 1.0 if tty else snapshot_interval_s
    start = trio.current_time()
    task_status.started()
    if tty:
        await _write(out, HOME + CLEAR_SCREEN)
    while True:
        # Take whatever arrived, waiting at most until the next periodic redraw.
        with trio.move_on_after(idle_redraw):
            delivery = await subscription.receive()
            _merge(delivery.books, tokens, views)
        now = trio.current_time()
        rows = [
            WatchRow(market, *views.get(token, (None, None))) for token, market in tokens.items()
        ]
        lines = render_rows(rows, now)
        if tty:
            body = "".join(f"{line}{CLEAR_LINE}\n" for line in lines)
            await _write(out, HOME + body + CLEAR_BELOW)
        else:
            stamp = f"t={now - start:.1f}s"
            await _write(out, "".join(f"{stamp}  {line}\n" for line in lines))
        # Rate limit: the bus keeps conflating while we sleep, so nothing is lost but
        # intermediate books.
        await trio.sleep_until(now + min_gap)


def _merge(
    books: Mapping[str, BookUpdate],
    tokens: Mapping[str, Market],
    views: dict[str, tuple[BookView, float]],
) -> None:
    for token, update in books.items():
        if token in tokens:
            views[token] = (update.view, update.received_at)

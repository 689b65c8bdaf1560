"""``polybot report``: what the bot made, from its journal alone.

Reads the SQLite journal (``bot.shell.journal``) and replays its fills through a ``Portfolio``,
so the figures are the ones the bot itself used; nothing here talks to the venue.

* **PnL** by strategy and by market, fees, fills, volume: ``cash + value`` where open shares are
  valued with complete sets at what they pay and the rest at the **marks**: the price given on
  the command line or to ``build_report``, else the newer of the journal's ``marks`` table (the
  mid the engine recorded) and the token's last fill price. "By market" groups a complete
  neg-risk event as one row (its sets span its markets), so the rows add up to the total.
* **Hit rate**: the fraction of closed round trips with a positive PnL. A round trip is one
  strategy's position in one market (or complete neg-risk event) going from *nothing at risk* to
  something at risk and back, where nothing at risk means its shares there are only complete sets
  (or none): a market maker's buy and later sell, or an arbitrage basket whose legs all filled,
  both close a round trip. Its PnL is the change in the strategy's cash there plus what its sets
  pay. Positions still open are not counted; ``n/a`` when none closed.
* **Equity curve**: after each fill, ``cash + value`` of the whole portfolio with each token
  marked at its last fill price so far (complete sets at what they pay); it starts at 0 before
  the first fill and ends with the report's own marks, so its last point is the PnL shown.
* **Maximum drawdown**: the largest fall of the equity curve from a previous peak (pUSD).

Money is printed exactly from micro-units with at least two decimals (``0.00001`` stays
``0.00001``). The PNG is drawn and encoded with the standard library only (a line rasteriser,
``zlib`` and ``struct``), so the report needs nothing beyond polybot's own dependencies.
"""

from __future__ import annotations

import argparse
import sqlite3
import struct
import sys
import zlib
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Final, NamedTuple

import attrs

from bot.core.money import SCALE, format_units
from bot.core.portfolio import Portfolio, split_sets, value_holdings
from bot.core.universe import Universe
from bot.shell.journal import (
    JournalError,
    connect_readonly,
    read_fills,
    read_marks,
    read_runs,
    read_universe,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from bot.config import Config

__all__ = [
    "DEFAULT_JOURNAL",
    "DEFAULT_PNG",
    "EquityPoint",
    "MarketRow",
    "Report",
    "ReportError",
    "StrategyRow",
    "add_report_arguments",
    "build_report",
    "format_money",
    "main",
    "max_drawdown",
    "render_table",
    "run_report",
    "write_equity_png",
]

DEFAULT_JOURNAL: Final = Path("logs/journal.sqlite")
DEFAULT_PNG: Final = Path("logs/equity.png")
EXIT_OK: Final = 0
EXIT_USAGE: Final = 2

_LABEL_CHARS: Final = 48


class ReportError(Exception):
    """The report cannot be built (a missing or foreign journal, an unwritable PNG path)."""


class EquityPoint(NamedTuple):
    """The portfolio's PnL (micro-units of pUSD) at a wall-clock time (epoch milliseconds)."""

    ts_ms: int
    equity: int


@attrs.frozen
class StrategyRow:
    """One strategy's figures (money in micro-units of pUSD)."""

    name: str
    pnl: int
    realized: int
    fees: int
    fills: int
    volume: int
    round_trips: int
    wins: int

    @property
    def hit_rate(self) -> float | None:
        return self.wins / self.round_trips if self.round_trips else None


@attrs.frozen
class MarketRow:
    """One market's (or complete neg-risk event's) figures, all strategies together.

    Attributes:
        key: condition id, event id, or the token id of a market the journal does not describe.
        label: the question or event title.
        open: shares are still held there.
    """

    key: str
    label: str
    pnl: int
    fees: int
    fills: int
    volume: int
    open: bool


@attrs.frozen
class Report:
    """Everything ``render_table`` prints and ``write_equity_png`` draws."""

    journal: Path
    runs: int
    unclean_runs: int
    strategies: tuple[StrategyRow, ...]
    markets: tuple[MarketRow, ...]
    pnl: int
    realized: int
    fees: int
    fills: int
    volume: int
    exposure: int
    round_trips: int
    wins: int
    max_drawdown: int
    equity: tuple[EquityPoint, ...]

    @property
    def hit_rate(self) -> float | None:
        return self.wins / self.round_trips if self.round_trips else None


# --- building ------------------------------------------------------------------------------------


def build_report(journal_path: Path | str, marks: Mapping[str, int] | None = None) -> Report:
    """Read the journal and compute the report (see the module docstring).

    Args:
        journal_path: the SQLite journal.
        marks: prices (micro-units) that override every other mark, by token.

    Raises:
        ReportError: the journal is missing, unreadable, or not a polybot journal.
    """
    path = Path(journal_path)
    try:
        conn = connect_readonly(path)
    except JournalError as exc:
        raise ReportError(str(exc)) from exc
    try:
        fills = read_fills(conn)
        universe = read_universe(conn) or Universe()
        stored = read_marks(conn)
        runs = read_runs(conn)
    except (sqlite3.Error, JournalError, ValueError) as exc:
        raise ReportError(f"cannot read journal {path}: {exc}") from exc
    finally:
        conn.close()

    portfolio = Portfolio()
    units = portfolio.units(universe)
    last_price: dict[str, int] = {}
    last_ts: dict[str, int] = {}
    unit_value: dict[str, int] = {}
    value = cash = 0
    open_trips: dict[tuple[str, str], bool] = {}
    base: dict[tuple[str, str], int] = {}
    trips: dict[str, list[int]] = {}
    equity: list[EquityPoint] = [EquityPoint(fills[0].ts_ms, 0)] if fills else []
    for fill in fills:
        token, strategy = fill.token_id, fill.strategy
        key = units.key(token)
        tokens = units.tokens(key)
        before = portfolio.cash(tokens=(token,))
        if not portfolio.apply(fill):
            continue
        cash += portfolio.cash(tokens=(token,)) - before
        last_price[token], last_ts[token] = fill.price, fill.ts_ms
        now = value_holdings(units, portfolio.shares(None, tokens), last_price)
        value += now - unit_value.get(key, 0)
        unit_value[key] = now
        equity.append(EquityPoint(fill.ts_ms, cash + value))

        locked, at_risk = split_sets(units, portfolio.shares(strategy, tokens))
        trip = (strategy, key)
        if at_risk:
            open_trips[trip] = True
            continue
        closed_pnl = portfolio.cash(strategy, tokens) + locked
        if open_trips.get(trip):
            trips.setdefault(strategy, []).append(closed_pnl - base.get(trip, 0))
        open_trips[trip] = False
        base[trip] = closed_pnl

    final = dict(last_price)
    for token, mark in stored.items():
        if mark.ts_ms >= last_ts.get(token, mark.ts_ms):
            final[token] = mark.price
    final.update(marks or {})
    pnl = portfolio.pnl(universe, final)
    if equity and equity[-1].equity != pnl:
        newest = max([equity[-1].ts_ms, *(m.ts_ms for m in stored.values())])
        equity.append(EquityPoint(newest, pnl))

    by_strategy = portfolio.pnl_by_strategy(universe, final)
    strategies = tuple(
        StrategyRow(
            name=name,
            pnl=by_strategy[name],
            realized=portfolio.realized(name),
            fees=portfolio.fees(name),
            fills=portfolio.fill_count(name),
            volume=portfolio.volume(name),
            round_trips=len(trips.get(name, [])),
            wins=sum(1 for result in trips.get(name, []) if result > 0),
        )
        for name in portfolio.strategies()
    )
    markets = tuple(
        MarketRow(
            key=key,
            label=units.label(key),
            pnl=market_pnl,
            fees=portfolio.fees(tokens=units.tokens(key)),
            fills=portfolio.fill_count(tokens=units.tokens(key)),
            volume=portfolio.volume(tokens=units.tokens(key)),
            open=bool(portfolio.shares(None, units.tokens(key))),
        )
        for key, market_pnl in sorted(
            portfolio.pnl_by_market(universe, final).items(), key=lambda item: (item[1], item[0])
        )
    )
    return Report(
        journal=path,
        runs=len(runs),
        unclean_runs=sum(1 for run in runs if run.stopped_ms is None),
        strategies=strategies,
        markets=markets,
        pnl=pnl,
        realized=portfolio.realized(),
        fees=portfolio.fees(),
        fills=portfolio.fill_count(),
        volume=portfolio.volume(),
        exposure=portfolio.exposure(),
        round_trips=sum(s.round_trips for s in strategies),
        wins=sum(s.wins for s in strategies),
        max_drawdown=max_drawdown(point.equity for point in equity),
        equity=tuple(equity),
    )


def max_drawdown(values: Iterable[int]) -> int:
    """The largest fall from a running peak to a later value (0 for a curve that never falls)."""
    peak: int | None = None
    worst = 0
    for value in values:
        if peak is None or value > peak:
            peak = value
        worst = max(worst, peak - value)
    return worst


# --- text ----------------------------------------------------------------------------------------


def format_money(units: int) -> str:
    """Micro-units as pUSD with at least two decimals, exactly: ``1.5`` -> ``"1.50"``,
    ``0.00001`` stays ``"0.00001"``."""
    whole, _, frac = format_units(units).partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


def _rate(wins: int, trips: int) -> str:
    return f"{wins / trips:.1%} ({wins}/{trips})" if trips else "n/a"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> list[str]:
    """Columns padded to their widest cell: the first ``left`` left-aligned, numbers right."""
    widths = [max(len(row[i]) for row in (headers, *rows)) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(width) if i < left else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [line(headers), "  ".join("-" * width for width in widths), *map(line, rows)]


def _label(text: str) -> str:
    return text if len(text) <= _LABEL_CHARS else text[: _LABEL_CHARS - 3] + "..."


def render_table(report: Report) -> str:
    """The report as aligned text tables (money in pUSD)."""
    runs = f"{report.runs} run{'s' if report.runs != 1 else ''}"
    if report.unclean_runs:
        runs += f" ({report.unclean_runs} not closed cleanly)"
    lines = [
        f"polybot report: {report.journal}",
        f"{runs}, {report.fills} fills, volume {format_money(report.volume)}, "
        f"fees {format_money(report.fees)}, open exposure {format_money(report.exposure)}",
        f"PnL {format_money(report.pnl)} (realised {format_money(report.realized)}), "
        f"hit rate {_rate(report.wins, report.round_trips)}, "
        f"max drawdown {format_money(report.max_drawdown)}",
        "",
    ]
    money = format_money
    strategy_rows = [
        [
            s.name,
            money(s.pnl),
            money(s.realized),
            money(s.fees),
            str(s.fills),
            money(s.volume),
            _rate(s.wins, s.round_trips),
        ]
        for s in report.strategies
    ]
    strategy_rows.append(
        [
            "total",
            money(report.pnl),
            money(report.realized),
            money(report.fees),
            str(report.fills),
            money(report.volume),
            _rate(report.wins, report.round_trips),
        ]
    )
    lines += _table(
        ["strategy", "pnl", "realised", "fees", "fills", "volume", "hit rate"], strategy_rows
    )
    lines.append("")
    market_rows = [
        [
            _label(m.label),
            m.key if len(m.key) <= 20 else m.key[:17] + "...",
            money(m.pnl),
            money(m.fees),
            str(m.fills),
            money(m.volume),
            "open" if m.open else "",
        ]
        for m in report.markets
    ]
    lines += _table(
        ["market", "id", "pnl", "fees", "fills", "volume", "position"], market_rows, left=2
    )
    return "\n".join(lines) + "\n"


# --- PNG -----------------------------------------------------------------------------------------

_WHITE: Final = (255, 255, 255)
_BLACK: Final = (0, 0, 0)
_GREY: Final = (170, 170, 170)
_CURVE: Final = (31, 119, 180)
_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"


class _Canvas:
    """An RGB raster with just enough drawing for a line chart."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(bytes(_WHITE) * (width * height))

    def dot(self, x: int, y: int, colour: tuple[int, int, int]) -> None:
        if 0 <= x < self.width and 0 <= y < self.height:
            at = (y * self.width + x) * 3
            self.pixels[at : at + 3] = bytes(colour)

    def line(
        self, x0: int, y0: int, x1: int, y1: int, colour: tuple[int, int, int], dash: int = 0
    ) -> None:
        """Bresenham's line, every pixel from (x0, y0) to (x1, y1); ``dash`` > 0 skips
        alternate runs of that many pixels."""
        dx, dy = abs(x1 - x0), -abs(y1 - y0)
        sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
        error = dx + dy
        step = 0
        while True:
            if not dash or (step // dash) % 2 == 0:
                self.dot(x0, y0, colour)
            if x0 == x1 and y0 == y1:
                return
            step += 1
            double = 2 * error
            if double >= dy:
                error += dy
                x0 += sx
            if double <= dx:
                error += dx
                y0 += sy

    def png(self) -> bytes:
        row = self.width * 3
        raw = b"".join(
            b"\x00" + bytes(self.pixels[y * row : (y + 1) * row]) for y in range(self.height)
        )
        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return b"".join(
            (
                _PNG_SIGNATURE,
                _chunk(b"IHDR", header),
                _chunk(b"IDAT", zlib.compress(raw, 9)),
                _chunk(b"IEND", b""),
            )
        )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


_GLYPHS: Final[Mapping[str, tuple[str, ...]]] = {
    "0": ("111", "101", "101", "101", "111"),
    "1": ("010", "110", "010", "010", "111"),
    "2": ("111", "001", "111", "100", "111"),
    "3": ("111", "001", "111", "001", "111"),
    "4": ("101", "101", "111", "001", "001"),
    "5": ("111", "100", "111", "001", "111"),
    "6": ("111", "100", "111", "101", "111"),
    "7": ("111", "001", "001", "001", "001"),
    "8": ("111", "101", "111", "101", "111"),
    "9": ("111", "101", "111", "001", "111"),
    ".": ("000", "000", "000", "000", "010"),
    "-": ("000", "000", "111", "000", "000"),
}
"""A 3x5 pixel font for the axis labels (digits, point, minus)."""


def _draw_label(
    canvas: _Canvas, right: int, middle: int, text: str, color: tuple[int, int, int]
) -> None:
    """Draw ``text`` right-aligned at ``right``, vertically centred on ``middle``, 2x scale."""
    scale, advance = 2, 8  # 3 columns x 2 + 2 pixels of spacing
    x = right - advance * len(text)
    y = middle - 5
    for char in text:
        for row, bits in enumerate(_GLYPHS.get(char, ())):
            for column, bit in enumerate(bits):
                if bit == "1":
                    for dx in range(scale):
                        for dy in range(scale):
                            canvas.dot(x + column * scale + dx, y + row * scale + dy, color)
        x += advance


def write_equity_png(
    points: Sequence[tuple[int, int]], path: Path | str, *, width: int = 800, height: int = 400
) -> None:
    """Draw the equity curve (``(ts_ms, equity)`` points) as a PNG line chart at ``path``.

    The plot box has axes on the left and bottom with four ticks each, a dashed grey line at
    zero PnL, and the curve (two pixels thick) scaled to fill the box; the zero line is always
    in range. Times scale the x axis (point order, when they are all equal). The y ticks are
    labelled in USD (two decimals) with a built-in 3x5 pixel digit font: no font library needed.

    Raises:
        ValueError: the image would be smaller than 50 x 50.
        ReportError: the file cannot be written.
    """
    if width < 50 or height < 50:
        raise ValueError(f"the equity chart needs at least 50 x 50 pixels, got {width} x {height}")
    canvas = _Canvas(width, height)
    labelled = width >= 300  # room for the y labels (a thumbnail gets none)
    left, right, top, bottom = 80 if labelled else 30, width - 15, 15, height - 25
    canvas.line(left, top, left, bottom, _BLACK)
    canvas.line(left, bottom, right, bottom, _BLACK)
    for i in range(1, 5):
        x = left + (right - left) * i // 4
        y = bottom - (bottom - top) * i // 4
        canvas.line(x, bottom, x, bottom + 4, _BLACK)
        canvas.line(left - 4, y, left, y, _BLACK)
    if points:
        values = [equity for _, equity in points]
        lo, hi = min(0, *values), max(0, *values)
        span = hi - lo or 1
        times = [ts for ts, _ in points]
        t0, t1 = min(times), max(times)

        def x_of(index: int, ts: int) -> int:
            if t1 == t0:
                return left + (right - left) * index // max(1, len(points) - 1)
            return left + round((ts - t0) * (right - left) / (t1 - t0))

        def y_of(equity: int) -> int:
            return bottom - round((equity - lo) * (bottom - top) / span)

        for i in range(5 if labelled else 0):
            value = lo + span * i // 4
            _draw_label(canvas, left - 8, y_of(value), f"{Decimal(value) / SCALE:.2f}", _BLACK)
        zero = y_of(0)
        if zero != bottom:
            canvas.line(left + 1, zero, right, zero, _GREY, dash=4)
        xy = [(x_of(i, ts), y_of(equity)) for i, (ts, equity) in enumerate(points)]
        for (x0, y0), (x1, y1) in pairwise(xy):
            canvas.line(x0, y0, x1, y1, _CURVE)
            canvas.line(x0, y0 - 1, x1, y1 - 1, _CURVE)
        x, y = xy[-1]
        for ddx in (-1, 0, 1):
            for ddy in (-1, 0, 1):
                canvas.dot(x + ddx, y + ddy, _CURVE)
    target = Path(path)
    temporary = target.with_name(target.name + ".tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_bytes(canvas.png())
        temporary.replace(target)
    except OSError as exc:
        raise ReportError(f"cannot write the equity chart to {target}: {exc}") from exc


# --- command line --------------------------------------------------------------------------------


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``polybot report`` (for ``bot.cli``'s registry and for ``main``)."""
    parser.description = (
        "PnL by strategy and by market, fees, hit rate, maximum drawdown and the equity curve, "
        "read from the journal."
    )
    parser.add_argument(
        "--journal",
        type=Path,
        default=None,
        metavar="PATH",
        help=f"the SQLite journal (default: execution.journal, {DEFAULT_JOURNAL})",
    )
    parser.add_argument(
        "--png",
        type=Path,
        default=None,
        metavar="PATH",
        help=f"where to draw the equity curve (default {DEFAULT_PNG})",
    )


def run_report(args: argparse.Namespace, config: Config | None = None) -> int:
    """Print the tables and draw the curve; the journal defaults to ``execution.journal``.

    Exit codes: 0 done; 2 a missing or foreign journal, or an unwritable PNG path.
    """
    journal: Path = args.journal or (
        config.execution.journal if config is not None else DEFAULT_JOURNAL
    )
    png: Path = args.png or DEFAULT_PNG
    try:
        report = build_report(journal)
        print(render_table(report), end="")
        write_equity_png(report.equity, png)
    except ReportError as exc:
        print(f"polybot report: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"equity curve: {png} ({len(report.equity)} points)")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """``polybot report [--journal PATH] [--png PATH]`` on its own (``python -m bot.report``).

    Exit codes: 0 done; 2 bad arguments, a missing or foreign journal, or an unwritable PNG.
    """
    parser = argparse.ArgumentParser(prog="polybot report")
    add_report_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help (0) and on bad arguments (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    return run_report(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

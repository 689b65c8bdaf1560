"""The report: PnL to the cent on a hand-built journal, drawdown, hit rate, the PNG, exit codes."""

from __future__ import annotations

import argparse
import struct
import zlib
from typing import TYPE_CHECKING

import pytest
import trio

from bot.config import Config, ExecutionConfig
from bot.core.money import ONE, Side
from bot.core.trading import Fill, Liquidity
from bot.core.universe import Universe
from bot.report import (
    EquityPoint,
    ReportError,
    build_report,
    format_money,
    main,
    max_drawdown,
    render_table,
    run_report,
    write_equity_png,
)
from bot.shell.journal import open_journal
from tests.builders import binary_market

if TYPE_CHECKING:
    from pathlib import Path

RAIN = binary_market("0xrain", "by", "bn", question="Will it rain tomorrow?", slug="rain")

# (strategy, token, side, price, shares, fee, ts_ms)
TRADES = [
    ("arb", "by", Side.BUY, 400_000, 100, 12_000, 1_000),  # the complement arbitrage
    ("arb", "bn", Side.BUY, 550_000, 100, 9_870, 2_000),
    ("mm", "x", Side.BUY, 300_000, 10, 0, 3_000),  # round trip won: +0.50
    ("mm", "x", Side.SELL, 350_000, 10, 0, 4_000),
    ("mm", "x", Side.BUY, 500_000, 20, 0, 5_000),  # round trip lost: -1.00
    ("mm", "x", Side.SELL, 450_000, 20, 0, 6_000),
    ("mm", "x", Side.BUY, 200_000, 10, 0, 7_000),  # still open, marked at 0.25 below
]


async def write_journal(path: Path) -> None:
    async with open_journal(path, wall_ms=lambda: 8_000) as j:
        await j.record_universe(Universe(markets=(RAIN,)))
        for n, (strategy, token, side, price, shares, fee, ts_ms) in enumerate(TRADES):
            await j.record(
                Fill(
                    f"f{n}",
                    f"o{n}",
                    strategy,
                    token,
                    side,
                    price,
                    shares * ONE,
                    fee,
                    Liquidity.TAKER,
                    float(n),
                    ts_ms,
                )
            )
        await j.record_marks({"x": 250_000})


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    """A journal written by the real journal (the report's tests themselves are synchronous)."""
    path = tmp_path / "journal.sqlite"
    trio.run(write_journal, path)
    return path


def test_pnl_figures_to_the_cent(journal: Path) -> None:
    report = build_report(journal)
    arb, mm = report.strategies
    assert (arb.name, arb.pnl, arb.fees, arb.fills) == ("arb", 4_978_130, 21_870, 2)
    assert arb.volume == 95 * ONE
    assert arb.realized == -21_870  # the pair is held, not merged: only the fees are realised
    # mm: +0.50 - 1.00 + 10 x (0.25 - 0.20) open
    assert (mm.name, mm.pnl, mm.realized, mm.fees, mm.fills) == ("mm", 0, -500_000, 0, 5)
    assert report.pnl == 4_978_130
    assert report.fees == 21_870
    assert report.fills == 7
    assert report.volume == 122_500_000
    assert report.realized == -521_870
    assert report.exposure == 97 * ONE  # cost of the held pair (95) and of the open 10 x (2)
    assert [(m.key, m.label, m.pnl, m.open) for m in report.markets] == [
        ("x", "x", 0, True),
        ("0xrain", "Will it rain tomorrow?", 4_978_130, True),  # held (not merged)
    ]
    assert (arb.round_trips, arb.wins, mm.round_trips, mm.wins) == (1, 1, 2, 1)
    assert report.hit_rate == pytest.approx(2 / 3)
    assert (report.runs, report.unclean_runs) == (1, 0)


def test_marks_given_override_the_journal(journal: Path) -> None:
    report = build_report(journal, marks={"x": 300_000})
    assert [s.pnl for s in report.strategies] == [4_978_130, 500_000]


def test_the_equity_curve_and_its_drawdown(journal: Path) -> None:
    report = build_report(journal)
    assert report.equity == (
        EquityPoint(1_000, 0),
        EquityPoint(1_000, -12_000),  # 100 YES marked at their price, fee paid
        EquityPoint(2_000, 4_978_130),  # the pair merges: locked profit
        EquityPoint(3_000, 4_978_130),
        EquityPoint(4_000, 5_478_130),
        EquityPoint(5_000, 5_478_130),
        EquityPoint(6_000, 4_478_130),
        EquityPoint(7_000, 4_478_130),
        EquityPoint(8_000, 4_978_130),  # the journal's mark for the open position
    )
    assert report.max_drawdown == ONE


def test_max_drawdown_on_a_known_curve() -> None:
    assert max_drawdown([0, 5, 3, 8, 2, 6, 9, 7]) == 6
    assert max_drawdown([0, 1, 2, 3]) == 0
    assert max_drawdown([-1, -4]) == 3
    assert max_drawdown([]) == 0


def test_the_table_prints_exact_money(journal: Path) -> None:
    text = render_table(build_report(journal))
    lines = text.splitlines()
    assert "PnL 4.97813 (realised -0.52187), hit rate 66.7% (2/3), max drawdown 1.00" in text
    assert "1 run, 7 fills, volume 122.50, fees 0.02187, open exposure 97.00" in text
    header = next(line for line in lines if line.startswith("strategy"))
    total = next(line for line in lines if line.startswith("total"))
    assert total.split() == [
        "total", "4.97813", "-0.52187", "0.02187", "7", "122.50", "66.7%", "(2/3)"
    ]  # fmt: skip
    # Numbers are right-aligned: they end where their header ends.
    assert total.index("4.97813") + len("4.97813") == header.index("pnl") + len("pnl")
    assert total.index("122.50") + len("122.50") == header.index("volume") + len("volume")
    mm = next(line for line in lines if line.startswith("mm"))
    assert mm.split()[:3] == ["mm", "0.00", "-0.50"]
    market = next(line for line in lines if line.startswith("Will it rain"))
    assert market.split()[-6:] == ["0xrain", "4.97813", "0.02187", "2", "95.00", "open"]


@pytest.mark.parametrize(
    ("units", "text"),
    [(0, "0.00"), (1_500_000, "1.50"), (-10, "-0.00001"), (123_456_789, "123.456789")],
)
def test_format_money(units: int, text: str) -> None:
    assert format_money(units) == text


def _decode_png(data: bytes) -> tuple[int, int, bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    at, idat, size = 8, b"", (0, 0)
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert crc == zlib.crc32(kind + body)
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert (depth, colour) == (8, 2)
            size = (width, height)
        elif kind == b"IDAT":
            idat += body
        at += 12 + length
    width, height = size
    raw = zlib.decompress(idat)
    assert len(raw) == height * (1 + 3 * width)
    assert all(raw[y * (1 + 3 * width)] == 0 for y in range(height))
    pixels = b"".join(
        raw[y * (1 + 3 * width) + 1 : (y + 1) * (1 + 3 * width)] for y in range(height)
    )
    return width, height, pixels


def test_the_png_has_the_right_size_and_draws_the_curve(tmp_path: Path) -> None:
    path = tmp_path / "out" / "equity.png"
    write_equity_png([(0, 0), (10, 100)], path, width=100, height=60)
    width, height, pixels = _decode_png(path.read_bytes())
    assert (width, height) == (100, 60)

    def at(x: int, y: int) -> tuple[int, ...]:
        return tuple(pixels[(y * width + x) * 3 : (y * width + x) * 3 + 3])

    curve = (31, 119, 180)
    # Plot box: x 30..85, y 15..45 (bottom = height - 25 = 35).
    assert at(30, 35) == curve  # the first point, at the origin
    assert at(85, 15) == curve  # the last point, top right
    assert at(30, 20) == (0, 0, 0)  # the y axis
    assert at(60, 10) == (255, 255, 255)  # above the plot box


def test_the_report_png_decodes(journal: Path, tmp_path: Path) -> None:
    path = tmp_path / "equity.png"
    write_equity_png(build_report(journal).equity, path)
    width, height, pixels = _decode_png(path.read_bytes())
    assert (width, height) == (800, 400)
    assert bytes((31, 119, 180)) in pixels


def test_main_prints_the_report_and_draws_the_curve(
    journal: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    png = tmp_path / "charts" / "equity.png"
    assert main(["--journal", str(journal), "--png", str(png)]) == 0
    out = capsys.readouterr().out
    assert "PnL 4.97813" in out
    assert f"equity curve: {png} (9 points)" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_main_exit_codes(journal: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.sqlite"
    assert main(["--journal", str(missing), "--png", str(tmp_path / "a.png")]) == 2
    assert f"polybot report: no journal at {missing}" in capsys.readouterr().err
    junk = tmp_path / "junk.sqlite"
    junk.write_text("not sqlite " * 200)
    assert main(["--journal", str(junk), "--png", str(tmp_path / "a.png")]) == 2
    assert "is not a polybot journal" in capsys.readouterr().err
    assert main(["--journal", str(journal), "--png", str(tmp_path)]) == 2  # a directory
    assert "cannot write the equity chart" in capsys.readouterr().err
    assert main(["--bogus"]) == 2
    assert main(["--help"]) == 0
    assert not (tmp_path / "a.png").exists()


def test_build_report_names_the_missing_journal(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no journal at"):
        build_report(tmp_path / "missing.sqlite")


def test_polybot_report_defaults_to_the_configured_journal(
    journal: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = Config(execution=ExecutionConfig(journal=journal))
    args = argparse.Namespace(journal=None, png=tmp_path / "equity.png")
    assert run_report(args, config) == 0
    assert f"polybot report: {journal}" in capsys.readouterr().out


def test_a_full_size_chart_labels_its_y_axis_in_dollars(tmp_path: Path) -> None:
    path = tmp_path / "equity.png"
    write_equity_png([(0, 0), (1_000, 12_340_000)], path)
    width, _, pixels = _decode_png(path.read_bytes())

    def ink(x0: int, x1: int, y0: int, y1: int) -> int:
        return sum(
            pixels[(y * width + x) * 3 : (y * width + x) * 3 + 3] == bytes((0, 0, 0))
            for x in range(x0, x1)
            for y in range(y0, y1)
        )

    assert ink(0, 72, 8, 24) > 20  # "12.34" next to the top tick
    assert ink(0, 72, 30, 90) == 0  # nothing between two ticks

"""``polybot watch``'s table (pure) and its redraw task on a real bus."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import trio

from bot.core.book import BookView
from bot.core.wire.market_events import Level
from bot.shell.bus import Bus
from bot.shell.watch import (
    CLEAR_BELOW,
    CLEAR_LINE,
    CLEAR_SCREEN,
    HOME,
    WatchRow,
    render_rows,
    run_watch,
)
from tests.builders import binary_market

if TYPE_CHECKING:
    from bot.core.universe import Market


def market(n: int, question: str) -> Market:
    return binary_market(f"0x{n:064x}", f"{n}1", f"{n}2", question=question, slug=f"market-{n}")


def view(
    asset: str, bid: tuple[int, int] | None, ask: tuple[int, int] | None, *, stale: bool = False
) -> BookView:
    best_bid = Level(*bid) if bid else None
    best_ask = Level(*ask) if ask else None
    return BookView(
        asset_id=asset,
        best_bid=best_bid,
        best_ask=best_ask,
        bids=(best_bid,) if best_bid else (),
        asks=(best_ask,) if best_ask else (),
        tick_size=10_000,
        last_update_ms=None,
        stale=stale,
    )


def test_rows_show_exact_prices_sizes_spread_age_and_flags() -> None:
    btc = market(1, "Will BTC close above 100k?")
    eth = market(2, "Will ETH flip BTC in a question that is far too long to show whole?")
    quiet = market(3, "Quiet market?")
    rows = [
        WatchRow(btc, view("11", (480_000, 12_500_000), (520_000, 3_000_001)), 99.5),
        WatchRow(eth, view("21", None, (10_000, 1_000_000), stale=True), 10.0),
        WatchRow(quiet, None, None),
    ]
    lines = render_rows(rows, now=100.0)
    assert len(lines) == 4
    assert lines[0].split() == [
        "market",
        "bid",
        "bid",
        "size",
        "ask",
        "ask",
        "size",
        "spread",
        "age",
    ]
    assert lines[1].split()[-6:] == ["0.48", "12.5", "0.52", "3.000001", "0.04", "0.5s"]
    assert lines[1].startswith("Will BTC close above 100k? [Yes]")
    assert lines[2].split()[-7:] == ["-", "-", "0.01", "1", "-", "90.0s", "STALE"]
    assert "~ [Yes]" in lines[2]  # the long question is cut, the outcome stays
    assert lines[3].startswith("Quiet market? [Yes]")
    assert lines[3].split()[-8:] == ["-", "-", "-", "-", "-", "-", "NO", "DATA"]
    # Fixed width: numbers are right-aligned in their columns.
    assert lines[1].index("0.52") + 4 == lines[2].index("0.01") + 4
    assert lines[1].index("0.5s") + 4 == lines[2].index("90.0s") + 5


async def test_terminal_mode_redraws_in_place_from_the_bus() -> None:
    btc = market(1, "Will BTC close above 100k?")
    bus: Bus[object] = Bus()
    out = io.StringIO()
    subscription = bus.subscribe("watch", max_pending=100)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            lambda: run_watch([btc], subscription, out, tty=True, max_redraws_per_s=20)
        )
        bus.publish_batch(
            trio.current_time(),
            books=[
                view("11", (480_000, 1_000_000), (500_000, 2_000_000)),
                view("21", (770_000, 1_000_000), None),  # a token nobody watches
            ],
        )
        with trio.fail_after(3):
            while "0.48" not in out.getvalue():  # noqa: ASYNC110
                await trio.sleep(0.01)  # polling what a worker thread writes
        bus.publish_batch(
            trio.current_time(), books=[view("11", (490_000, 1_000_000), (500_000, 1_000_000))]
        )
        with trio.fail_after(3):
            while "0.49" not in out.getvalue():  # noqa: ASYNC110
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    text = out.getvalue()
    assert text.startswith(HOME + CLEAR_SCREEN)
    frames = text.split(HOME)[2:]  # each redraw starts at the top left
    assert len(frames) >= 2
    for frame in frames:
        assert frame.endswith(CLEAR_BELOW)
        lines = frame.removesuffix(CLEAR_BELOW).splitlines()
        assert len(lines) == 2  # the header and the one watched market
        assert all(line.endswith(CLEAR_LINE) for line in lines)
    assert "0.77" not in text
    assert "0.48" in frames[0]
    assert "0.49" in frames[-1]


async def test_pipe_mode_prints_plain_snapshot_blocks() -> None:
    btc = market(1, "Will BTC close above 100k?")
    eth = market(2, "Will ETH close above 5k?")
    bus: Bus[object] = Bus()
    out = io.StringIO()
    bus.publish_batch(0.0, books=[view("11", (480_000, 1_000_000), (500_000, 2_000_000))])
    subscription = bus.subscribe("watch", max_pending=100)
    with trio.move_on_after(0.35):
        await run_watch([btc, eth], subscription, out, tty=False, snapshot_interval_s=0.1)
    text = out.getvalue()
    assert "\x1b" not in text
    lines = text.splitlines()
    assert len(lines) >= 6
    assert len(lines) % 3 == 0  # blocks of a header and two rows
    assert all(line.startswith("t=") for line in lines)
    assert "Will BTC close above 100k? [Yes]" in lines[1]
    assert "0.48" in lines[1]
    assert lines[2].endswith("NO DATA")

"""The SQLite journal: WAL, exact round trips, no drops under backpressure, no acknowledged loss.

No ``autojump_clock`` here: the journal writes in a worker thread, and virtual time would jump
while the thread works (TRIO_IDIOMS.md section 7).
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

import attrs
import pytest
import trio
import trio.testing

from bot.core.money import ONE, Side
from bot.core.portfolio import Portfolio
from bot.core.trading import Decision, Fill, Liquidity, OrderStatus, OrderUpdate
from bot.core.universe import Event, Market, Universe
from bot.shell.journal import (
    DecisionRecord,
    JournalError,
    Mark,
    connect_readonly,
    open_journal,
    read_fills,
)
from tests.builders import binary_market

if TYPE_CHECKING:
    from pathlib import Path


def fill(n: int, token: str = "y", side: Side = Side.BUY, price: int = 400_000) -> Fill:
    return Fill(
        fill_id=f"f{n}",
        order_id=f"o{n}",
        strategy="arb" if n % 2 else "mm",
        token_id=token,
        side=side,
        price=price,
        size=(10 + n) * ONE + 1,
        fee=n * 10,
        liquidity=Liquidity.TAKER if n % 2 else Liquidity.MAKER,
        at=100.5 + n,
        ts_ms=1_700_000_000_000 + n,
    )


def update(order_id: str, status: OrderStatus, filled: int = 0) -> OrderUpdate:
    return OrderUpdate(
        order_id, "mm", "y", Side.SELL, 550_000, 20 * ONE, filled, status, "why", at=7.25
    )


def market(cid: str, yes: str, no: str, event_id: str | None) -> Market:
    return binary_market(
        cid,
        yes,
        no,
        question=f"Will {cid}?",
        tick_size=1_000,
        neg_risk_market_id="0xnr" if event_id else "",
        event_id=event_id,
        end_date=datetime(2027, 1, 2, 3, 4, tzinfo=UTC),
        liquidity=Decimal("1234.5"),
        volume=Decimal("99.000001"),
        fee_rate=50_000,
        group_item_title=f"title {cid}",
        gamma_id="17",
    )


class Gate:
    """A slow disk: once armed, the writer thread blocks before its next transaction."""

    def __init__(self) -> None:
        self.armed = False
        self.entered = threading.Event()
        self.release = threading.Event()
        self.batches: list[int] = []

    def __call__(self, size: int) -> None:
        self.batches.append(size)
        if self.armed:
            self.entered.set()
            assert self.release.wait(10), "test never released the writer"

    async def wait_entered(self) -> None:
        assert await trio.to_thread.run_sync(self.entered.wait, 10)


async def test_the_journal_is_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "journal.sqlite"
    async with open_journal(path) as journal:
        await journal.record(fill(1))
        assert path.with_name("journal.sqlite-wal").exists()
        with sqlite3.connect(path) as other:
            assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            # Committed means visible to another connection at once.
            assert other.execute("SELECT fill_id FROM fills").fetchall() == [("f1",)]


async def test_every_record_type_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    a, b, c = (market(f"0x{k}", f"{k}y", f"{k}n", "e1") for k in "abc")
    binary = market("0xbin", "y", "n", None)
    event = Event(
        id="e1",
        slug="e1",
        title="Who?",
        neg_risk=True,
        markets=(a, b, c),
        complete=False,
        incomplete_reason="augmented",
        neg_risk_market_id="0xnr",
        liquidity=Decimal("5.5"),
        volume=Decimal(7),
        end_date=None,
    )
    universe = Universe(markets=(binary, a, b, c), events=(event,))
    fills = [fill(n) for n in range(1, 4)]
    stamped = DecisionRecord("arb", "opportunity.open", "0xbin", {"edge": "0.03"}, 3.5, 17)
    async with open_journal(
        path, clock=lambda: 42.5, wall_ms=lambda: 1_700_000_000_999, run_info={"mode": "paper"}
    ) as journal:
        await journal.record_universe(universe)
        for f in fills:
            await journal.record(f)
        await journal.record_many(
            [
                update("o1", OrderStatus.LIVE),
                update("o2", OrderStatus.LIVE),
                update("o1", OrderStatus.MATCHED, filled=20 * ONE),
                update("o3", OrderStatus.REJECTED),
                Decision("mm", "quote.pulled", "y", {"bid": "0.41", "why": "stale"}),
                stamped,
            ]
        )
        await journal.record_marks({"y": 455_000, "n": 545_000}, ts_ms=5)
        await journal.record_marks({"y": 460_000})
        await journal.flush()
        assert await journal.load_fills() == fills
        assert await journal.load_open_orders() == [
            OrderUpdate(
                "o2", "mm", "y", Side.SELL, 550_000, 20 * ONE, 0, OrderStatus.LIVE, "why", 7.25
            )
        ]
        assert await journal.load_decisions() == [
            stamped,
            DecisionRecord(
                "mm", "quote.pulled", "y", {"bid": "0.41", "why": "stale"}, 42.5, 1_700_000_000_999
            ),
        ]
        assert await journal.load_marks() == {
            "y": Mark(460_000, 1_700_000_000_999),
            "n": Mark(545_000, 5),
        }
        assert await journal.load_universe() == universe
        assert journal.statistics().committed == 3 + 6 + 3
    async with open_journal(path, wall_ms=lambda: 1_800_000_000_000) as journal:
        runs = await journal.load_runs()
    assert [r.run_id for r in runs] == [1, 2]
    assert runs[0].info == {"mode": "paper"}
    assert runs[0].started_ms == runs[0].stopped_ms == 1_700_000_000_999
    assert runs[1].stopped_ms is None  # read while it was still running
    # Money is stored as integers, never floats.
    with sqlite3.connect(path) as conn:
        types = conn.execute("SELECT DISTINCT typeof(price), typeof(size), typeof(fee) FROM fills")
        assert types.fetchall() == [("integer", "integer", "integer")]


async def test_a_duplicate_fill_is_stored_once(tmp_path: Path) -> None:
    async with open_journal(tmp_path / "j.sqlite") as journal:
        await journal.record(fill(1))
        await journal.record_many([fill(1), fill(2), fill(1)])
        assert [f.fill_id for f in await journal.load_fills()] == ["f1", "f2"]
        assert journal.statistics().duplicate_fills == 2


async def test_a_slow_writer_blocks_record_instead_of_dropping(tmp_path: Path) -> None:
    gate = Gate()
    gate.armed = True
    done: list[int] = []
    async with open_journal(tmp_path / "j.sqlite", buffer=1, batch_max=1, before_write=gate) as j:

        async def recorder(n: int) -> None:
            await j.record(fill(n))
            done.append(n)

        async with trio.open_nursery() as nursery:
            for n in range(1, 6):
                nursery.start_soon(recorder, n)
            await gate.wait_entered()
            await trio.testing.wait_all_tasks_blocked()
            stats = j.statistics()
            # One record in the writer's hands, one buffered, three callers waiting to send:
            # nothing is acknowledged, nothing is dropped.
            assert (stats.committed, stats.buffered, stats.waiting_senders) == (0, 1, 3)
            assert done == []
            gate.release.set()
        assert sorted(done) == [1, 2, 3, 4, 5]
        assert len(await j.load_fills()) == 5
        assert j.statistics().batches == 5


async def test_concurrent_records_are_committed_in_batches(tmp_path: Path) -> None:
    gate = Gate()
    async with open_journal(tmp_path / "j.sqlite", before_write=gate) as journal:
        gate.armed = True
        async with trio.open_nursery() as nursery:
            nursery.start_soon(journal.record, fill(0))
            await gate.wait_entered()
            for n in range(1, 51):
                nursery.start_soon(journal.record, fill(n))
            await trio.testing.wait_all_tasks_blocked()
            gate.armed = False
            gate.release.set()
        assert journal.statistics().committed == 51
    assert gate.batches == [1, 50]


async def test_a_restart_resumes_the_same_portfolio(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    fills = [
        fill(1, "y", Side.BUY, 400_000),
        fill(2, "n", Side.BUY, 550_000),
        fill(3, "y", Side.SELL, 610_000),
        fill(4, "y", Side.BUY, 333_333),
    ]
    before = Portfolio()
    async with open_journal(path) as journal:
        for f in fills:
            before.apply(f)
            await journal.record(f)
    after = Portfolio()
    async with open_journal(path) as journal:
        loaded = await journal.load_fills()
        assert sum(after.apply(f) for f in loaded) == 4
        # The venue re-sending a fill after the restart does not count it twice.
        assert after.apply(fills[0]) is False
    assert after.holdings() == before.holdings()
    assert after.positions() == before.positions()


async def test_an_acknowledged_record_survives_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    crash = tmp_path / "crash"
    crash.mkdir()
    gate = Gate()
    async with open_journal(path, before_write=gate) as journal:
        await journal.record(fill(1))  # acknowledged: committed
        gate.armed = True
        async with trio.open_nursery() as nursery:
            nursery.start_soon(journal.record, fill(2))  # never acknowledged before the crash
            await gate.wait_entered()
            # The crash: the process dies here, leaving the files as they are on disk now.
            for suffix in ("", "-wal"):
                source = path.with_name(path.name + suffix)
                if source.exists():
                    shutil.copy(source, crash / (path.name + suffix))
            gate.armed = False
            gate.release.set()
    async with open_journal(crash / path.name) as recovered:
        assert [f.fill_id for f in await recovered.load_fills()] == ["f1"]
        runs = await recovered.load_runs()
        assert runs[0].stopped_ms is None  # the crashed run never closed


async def test_records_queued_at_close_are_committed(tmp_path: Path) -> None:
    gate = Gate()
    path = tmp_path / "j.sqlite"
    async with open_journal(path, before_write=gate) as journal, trio.open_nursery() as nursery:
        gate.armed = True
        nursery.start_soon(journal.record, fill(1))
        await gate.wait_entered()
        nursery.start_soon(journal.record, fill(2))
        await trio.testing.wait_all_tasks_blocked()
        gate.armed = False
        gate.release.set()
        nursery.cancel_scope.cancel()  # the recorders stop waiting; the writer still commits
    with sqlite3.connect(path) as conn:
        assert [f.fill_id for f in read_fills(conn)] == ["f1", "f2"]


async def test_a_failing_writer_fails_every_waiting_record(tmp_path: Path) -> None:
    def broken_disk(size: int) -> None:
        raise OSError("disk full")

    errors: list[str] = []

    async def use() -> None:
        async with open_journal(tmp_path / "j.sqlite", before_write=broken_disk) as journal:
            try:
                await journal.record(fill(1))
            except JournalError as exc:
                errors.append(str(exc))
            await trio.sleep_forever()  # the writer's failure cancels the journal's user

    with pytest.raises(JournalError, match="write failed: disk full"):
        await use()
    assert len(errors) == 1
    assert "was not committed" in errors[0]


async def test_misuse_is_refused_clearly(tmp_path: Path) -> None:
    async with open_journal(tmp_path / "j.sqlite") as journal:
        with pytest.raises(TypeError, match="cannot record str: expected OrderUpdate, Fill"):
            await journal.record("fill")  # type: ignore[arg-type]
        float_price = attrs.evolve(fill(1), price=0.4)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"Fill.price must be integer micro-units, got 0.4"):
            await journal.record(float_price)
        with pytest.raises(TypeError, match="mark of y must be integer micro-units"):
            await journal.record_marks({"y": 0.5})  # type: ignore[dict-item]
    with pytest.raises(JournalError, match="is closed"):
        await journal.record(fill(1))


async def test_the_callers_own_exception_is_not_wrapped(tmp_path: Path) -> None:
    async def use() -> None:
        async with open_journal(tmp_path / "j.sqlite") as journal:
            await journal.record(fill(1))
            raise KeyError("mine")

    with pytest.raises(KeyError, match="mine"):
        await use()
    with sqlite3.connect(tmp_path / "j.sqlite") as conn:
        assert len(read_fills(conn)) == 1


async def test_files_that_are_not_journals_are_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(JournalError, match=r"junk.sqlite"):
        async with open_journal(junk):
            pass
    with pytest.raises(JournalError, match="not a polybot journal"):
        connect_readonly(junk)
    with pytest.raises(JournalError, match="no journal at"):
        connect_readonly(tmp_path / "missing.sqlite")
    future = tmp_path / "future.sqlite"
    with sqlite3.connect(future) as conn:
        conn.execute("PRAGMA user_version=99")
    with pytest.raises(JournalError, match="schema version 99, expected 1"):
        async with open_journal(future):
            pass


async def test_a_closed_journal_opens_read_only(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    async with open_journal(path) as journal:
        await journal.record(fill(1))
    conn = connect_readonly(path)
    try:
        assert [f.fill_id for f in read_fills(conn)] == ["f1"]
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            conn.execute("DELETE FROM fills")
    finally:
        conn.close()

"""The SQLite journal: every order update, fill and decision, committed off the event loop.

The journal is the bot's audit trail and its memory across restarts: on start the fills of
earlier runs are replayed into a fresh ``Portfolio`` (``load_fills``), so positions survive a
crash or a stop; ``polybot report`` reads the same file.

**Never dropped, acknowledged once committed.** ``await journal.record(item)`` returns only after
the transaction holding ``item`` has committed, so a crash loses nothing that was acknowledged.
Records go through a bounded trio memory channel to one writer task, which takes what is waiting
(up to ``batch_max``), writes it in one transaction in a worker thread
(``trio.to_thread.run_sync`` with a ``CapacityLimiter(1)``: one thread at a time touches the
connection) and then wakes every recorder of the batch. A writer that falls behind fills the
channel and ``record`` *waits* (backpressure; TRIO_IDIOMS.md section 4, "intents ... must not
drop"): unlike log lines, a lost fill would be a wrong position.

**Durability.** WAL mode (readers such as the report never block the writer), with
``synchronous=NORMAL`` by default: a commit survives the process crashing or being killed; only
an OS crash or power loss can take back the last commits. ``synchronous="FULL"`` fsyncs every
commit when that matters more than latency.

**What is stored** (integers for money: micro-units, never floats; ``side`` as ``BUY``/``SELL``):

* ``runs``: one row per ``open_journal``: start and (on a clean close) stop times, ``info``;
* ``orders``: every ``OrderUpdate`` (the history; the last row of an order is its state);
* ``fills``: ``fill_id`` is the primary key, so a fill recorded twice is kept once;
* ``decisions``: ``Decision``s with ``detail`` as JSON;
* ``marks``: the latest mark (mid) per token, for the report's open positions;
* ``markets``, ``events``: the universe traded (latest per market/event), so the report can value
  complete sets and name markets without the network.

Times: ``at`` is the runtime's monotonic clock (``trio.current_time()``, meaningful within one
run), ``ts_ms`` the wall clock in epoch milliseconds (the one to order runs by). ``Fill`` carries
both; order updates and decisions are stamped when recorded.

Reading: the ``read_*`` functions take a plain ``sqlite3.Connection`` (the report opens one with
``connect_readonly``); the journal's ``load_*`` methods run them on its own connection in the
worker thread.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import asynccontextmanager
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, NamedTuple, TypeAlias, TypeVar

import attrs
import trio

from bot.core.money import Side
from bot.core.trading import Decision, Fill, Liquidity, OrderStatus, OrderUpdate
from bot.core.universe import Event, Market, Outcome, Universe

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence

__all__ = [
    "SCHEMA_VERSION",
    "DecisionRecord",
    "Journal",
    "JournalError",
    "JournalItem",
    "JournalStatistics",
    "Mark",
    "RunRecord",
    "connect_readonly",
    "open_journal",
    "read_decisions",
    "read_fills",
    "read_marks",
    "read_open_orders",
    "read_runs",
    "read_universe",
]

SCHEMA_VERSION: Final = 1
"""Stored in ``PRAGMA user_version``; a journal with another version is refused."""

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS runs (
    run_id INTEGER PRIMARY KEY,
    started_ms INTEGER NOT NULL,
    started_at REAL NOT NULL,
    stopped_ms INTEGER,
    stopped_at REAL,
    info TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS orders (
    seq INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL,
    order_id TEXT NOT NULL,
    strategy TEXT NOT NULL,
    token_id TEXT NOT NULL,
    side TEXT NOT NULL CHECK (side IN ('BUY', 'SELL')),
    price INTEGER NOT NULL,
    size INTEGER NOT NULL,
    filled INTEGER NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    at REAL NOT NULL,
    ts_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS orders_by_order ON orders (order_id, seq);
CREATE TABLE IF NOT EXISTS fills (
    fill_id TEXT PRIMARY KEY,
    run_id INTEGER NOT NULL,
    order_id TEXT NOT NULL,
    strategy TEXT NOT NULL,
    token_id TEXT NOT NULL,
    side TEXT NOT NULL CHECK (side IN ('BUY', 'SELL')),
    price INTEGER NOT NULL,
    size INTEGER NOT NULL,
    fee INTEGER NOT NULL,
    liquidity TEXT NOT NULL,
    at REAL NOT NULL,
    ts_ms INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS decisions (
    seq INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL,
    strategy TEXT NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    detail TEXT NOT NULL,
    at REAL NOT NULL,
    ts_ms INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS marks (
    token_id TEXT PRIMARY KEY,
    price INTEGER NOT NULL,
    ts_ms INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS markets (
    condition_id TEXT PRIMARY KEY,
    question TEXT NOT NULL,
    slug TEXT NOT NULL,
    yes_name TEXT NOT NULL,
    yes_token TEXT NOT NULL,
    no_name TEXT NOT NULL,
    no_token TEXT NOT NULL,
    tick_size INTEGER NOT NULL,
    min_order_size INTEGER NOT NULL,
    neg_risk INTEGER NOT NULL,
    neg_risk_market_id TEXT NOT NULL,
    event_id TEXT,
    end_date TEXT,
    liquidity TEXT NOT NULL,
    volume TEXT NOT NULL,
    fee_rate INTEGER NOT NULL,
    accepting_orders INTEGER NOT NULL,
    group_item_title TEXT NOT NULL,
    gamma_id TEXT NOT NULL,
    ts_ms INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,
    slug TEXT NOT NULL,
    title TEXT NOT NULL,
    neg_risk INTEGER NOT NULL,
    complete INTEGER NOT NULL,
    incomplete_reason TEXT,
    neg_risk_market_id TEXT NOT NULL,
    liquidity TEXT NOT NULL,
    volume TEXT NOT NULL,
    end_date TEXT,
    market_ids TEXT NOT NULL,
    ts_ms INTEGER NOT NULL
) STRICT;
"""

_INSERT_ORDER: Final = (
    "INSERT INTO orders (run_id, order_id, strategy, token_id, side, price, size, filled, "
    "status, reason, at, ts_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_FILL: Final = (
    "INSERT OR IGNORE INTO fills (fill_id, run_id, order_id, strategy, token_id, side, price, "
    "size, fee, liquidity, at, ts_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_DECISION: Final = (
    "INSERT INTO decisions (run_id, strategy, kind, key, detail, at, ts_ms) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_UPSERT_MARK: Final = (
    "INSERT INTO marks (token_id, price, ts_ms) VALUES (?, ?, ?) "
    "ON CONFLICT (token_id) DO UPDATE SET price = excluded.price, ts_ms = excluded.ts_ms"
)
_UPSERT_MARKET: Final = (
    "INSERT OR REPLACE INTO markets (condition_id, question, slug, yes_name, yes_token, no_name, "
    "no_token, tick_size, min_order_size, neg_risk, neg_risk_market_id, event_id, end_date, "
    "liquidity, volume, fee_rate, accepting_orders, group_item_title, gamma_id, ts_ms) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPSERT_EVENT: Final = (
    "INSERT OR REPLACE INTO events (id, slug, title, neg_risk, complete, incomplete_reason, "
    "neg_risk_market_id, liquidity, volume, end_date, market_ids, ts_ms) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

Synchronous: TypeAlias = Literal["NORMAL", "FULL"]
_T = TypeVar("_T")


class JournalError(Exception):
    """The journal cannot be opened, read or written (the message names the file and why)."""


@attrs.frozen
class DecisionRecord:
    """A ``Decision`` as journaled: with when it was recorded.

    Attributes:
        strategy, kind, key, detail: as in ``Decision``.
        at: monotonic seconds.
        ts_ms: wall clock, epoch milliseconds.
    """

    strategy: str
    kind: str
    key: str
    detail: Mapping[str, str]
    at: float
    ts_ms: int


class Mark(NamedTuple):
    """A stored mark: the token's price (micro-units) and when it was recorded."""

    price: int
    ts_ms: int


@attrs.frozen
class RunRecord:
    """One run of the bot against this journal (``stopped_ms`` is ``None`` if it did not close
    cleanly: a crash, a kill)."""

    run_id: int
    started_ms: int
    started_at: float
    stopped_ms: int | None
    stopped_at: float | None
    info: Mapping[str, Any]


@attrs.frozen
class JournalStatistics:
    """Counters of a journal (health line, tests).

    Attributes:
        buffered: records waiting in the channel for the writer.
        waiting_senders: recorders blocked because the channel is full (backpressure).
        committed: records committed since open (a ``record_many`` counts each item).
        batches: transactions committed.
        duplicate_fills: fills ignored because their ``fill_id`` was already stored.
        failed: the writer failed; every record since raises ``JournalError``.
    """

    buffered: int
    waiting_senders: int
    committed: int
    batches: int
    duplicate_fills: int
    failed: bool


JournalItem: TypeAlias = OrderUpdate | Fill | Decision | DecisionRecord
"""What ``Journal.record`` accepts."""


class _Ack:
    """Set by the writer once the record's transaction committed (or failed)."""

    __slots__ = ("error", "event")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.error: BaseException | None = None

    def done(self, error: BaseException | None = None) -> None:
        self.error = error
        self.event.set()


@attrs.define(slots=True)
class _Entry:
    """One thing to write: SQL statements with their rows, and who waits for it."""

    statements: tuple[tuple[str, Sequence[tuple[Any, ...]]], ...]
    records: int = 1
    fill: bool = False
    ack: _Ack | None = None


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class Journal:
    """The open journal (made by ``open_journal``; see the module docstring)."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        run_id: int,
        *,
        buffer: int,
        batch_max: int,
        clock: Callable[[], float],
        wall_ms: Callable[[], int],
        before_write: Callable[[int], None] | None,
    ) -> None:
        self.path = path
        self.run_id = run_id
        self._conn = conn
        self._send, self._receive = trio.open_memory_channel[_Entry](buffer)
        self._batch_max = batch_max
        self._clock = clock
        self._wall_ms = wall_ms
        self._before_write = before_write
        self._limiter = trio.CapacityLimiter(1)
        self._error: BaseException | None = None
        self._committed = 0
        self._batches = 0
        self._duplicates = 0

    # --- writing ---------------------------------------------------------------------------------

    async def record(self, item: JournalItem) -> None:
        """Journal one item; returns once it is committed (waits while the writer is behind).

        Raises:
            TypeError: ``item`` is not something the journal stores.
            JournalError: the journal is closed or its writer failed.
        """
        entry = self._entry(item)
        await self._put(entry, ack=True)

    async def record_many(self, items: Iterable[JournalItem]) -> None:
        """Journal items in order; returns once the last one is committed (hence all of them)."""
        entries = [self._entry(item) for item in items]
        for index, entry in enumerate(entries):
            await self._put(entry, ack=index == len(entries) - 1)

    async def record_marks(self, marks: Mapping[str, int], *, ts_ms: int | None = None) -> None:
        """Store the latest mark (price, micro-units) of each token; returns once committed."""
        stamp = self._wall_ms() if ts_ms is None else ts_ms
        for token, price in marks.items():
            if isinstance(price, bool) or not isinstance(price, int):
                raise TypeError(f"mark of {token} must be integer micro-units, got {price!r}")
        rows = [(token, price, stamp) for token, price in marks.items()]
        await self._put(_Entry(((_UPSERT_MARK, rows),), records=len(rows)), ack=True)

    async def record_universe(self, universe: Universe) -> None:
        """Store the markets and events traded (upserted: markets of earlier runs stay known)."""
        stamp = self._wall_ms()
        markets = [_market_row(m, stamp) for m in universe.markets]
        events = [_event_row(e, stamp) for e in universe.events]
        entry = _Entry(((_UPSERT_MARKET, markets), (_UPSERT_EVENT, events)), records=0)
        await self._put(entry, ack=True)

    async def flush(self) -> None:
        """Return once everything recorded before this call is committed."""
        await self._put(_Entry((), records=0), ack=True)

    def statistics(self) -> JournalStatistics:
        stats = self._send.statistics()
        return JournalStatistics(
            buffered=stats.current_buffer_used,
            waiting_senders=stats.tasks_waiting_send,
            committed=self._committed,
            batches=self._batches,
            duplicate_fills=self._duplicates,
            failed=self._error is not None,
        )

    # --- reading (each runs in the journal's worker thread) ---------------------------------------

    async def load_fills(self) -> list[Fill]:
        """Every fill, oldest first (wall clock, then insertion order)."""
        return await self._read(read_fills)

    async def load_open_orders(self) -> list[OrderUpdate]:
        """The last update of every order whose last known status is ``live``."""
        return await self._read(read_open_orders)

    async def load_decisions(self) -> list[DecisionRecord]:
        return await self._read(read_decisions)

    async def load_marks(self) -> dict[str, Mark]:
        return await self._read(read_marks)

    async def load_universe(self) -> Universe | None:
        """The markets and events recorded so far, ``None`` if none were."""
        return await self._read(read_universe)

    async def load_runs(self) -> list[RunRecord]:
        return await self._read(read_runs)

    async def _read(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        try:
            return await trio.to_thread.run_sync(fn, self._conn, limiter=self._limiter)
        except sqlite3.Error as exc:
            raise JournalError(f"journal {self.path}: read failed: {exc}") from exc

    # --- internals -------------------------------------------------------------------------------

    def _entry(self, item: object) -> _Entry:
        run = self.run_id
        row: tuple[Any, ...]
        if isinstance(item, Fill):
            row = (
                item.fill_id,
                run,
                item.order_id,
                item.strategy,
                item.token_id,
                item.side.name,
                _int(item.price, "price", item),
                _int(item.size, "size", item),
                _int(item.fee, "fee", item),
                item.liquidity.value,
                float(item.at),
                item.ts_ms,
            )
            return _Entry(((_INSERT_FILL, [row]),), fill=True)
        if isinstance(item, OrderUpdate):
            row = (
                run,
                item.order_id,
                item.strategy,
                item.token_id,
                item.side.name,
                _int(item.price, "price", item),
                _int(item.size, "size", item),
                _int(item.filled, "filled", item),
                item.status.value,
                item.reason,
                float(item.at),
                self._wall_ms(),
            )
            return _Entry(((_INSERT_ORDER, [row]),))
        if isinstance(item, Decision):
            item = DecisionRecord(
                item.strategy, item.kind, item.key, item.detail, self._clock(), self._wall_ms()
            )
        if isinstance(item, DecisionRecord):
            detail = json.dumps(dict(item.detail), sort_keys=True, ensure_ascii=False)
            row = (run, item.strategy, item.kind, item.key, detail, float(item.at), item.ts_ms)
            return _Entry(((_INSERT_DECISION, [row]),))
        raise TypeError(
            f"the journal cannot record {type(item).__name__}: expected OrderUpdate, Fill, "
            "Decision or DecisionRecord"
        )

    async def _put(self, entry: _Entry, *, ack: bool) -> None:
        if ack:
            entry.ack = _Ack()
        if self._error is not None:
            raise JournalError(f"journal {self.path} failed earlier") from self._error
        try:
            await self._send.send(entry)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise JournalError(f"journal {self.path} is closed") from self._error
        if entry.ack is not None:
            await entry.ack.event.wait()
            if entry.ack.error is not None:
                raise JournalError(
                    f"journal {self.path}: the record was not committed ({entry.ack.error!r})"
                ) from entry.ack.error

    async def _run_writer(
        self, scope: trio.CancelScope, *, task_status: trio.TaskStatus[None]
    ) -> None:
        with scope, self._receive:
            task_status.started()
            async for first in self._receive:
                batch = [first]
                while len(batch) < self._batch_max:
                    try:
                        batch.append(self._receive.receive_nowait())
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                try:
                    duplicates = await trio.to_thread.run_sync(
                        self._write, batch, limiter=self._limiter
                    )
                except BaseException as exc:
                    self._fail(batch, exc)
                    if isinstance(exc, sqlite3.Error | OSError):
                        raise JournalError(f"journal {self.path}: write failed: {exc}") from exc
                    raise
                self._batches += 1
                self._duplicates += duplicates
                for entry in batch:
                    self._committed += entry.records
                    if entry.ack is not None:
                        entry.ack.done()

    def _fail(self, batch: list[_Entry], exc: BaseException) -> None:
        """The writer stops: nobody may wait forever for a commit that will not come."""
        self._error = exc
        while True:
            try:
                batch.append(self._receive.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                break
        for entry in batch:
            if entry.ack is not None:
                entry.ack.done(exc)
        # Senders still blocked on a full channel get BrokenResourceError -> JournalError.
        self._receive.close()

    def _write(self, batch: list[_Entry]) -> int:
        """One transaction for the whole batch (worker thread). Returns the duplicate fills."""
        if self._before_write is not None:
            self._before_write(len(batch))
        conn = self._conn
        duplicates = 0
        conn.execute("BEGIN IMMEDIATE")
        try:
            for entry in batch:
                for sql, rows in entry.statements:
                    if not rows:
                        continue
                    cursor = conn.executemany(sql, rows)
                    if entry.fill:
                        duplicates += len(rows) - cursor.rowcount
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return duplicates


def _int(value: object, name: str, item: object) -> int:
    """Money and sizes are integers: refuse anything else before it reaches the database."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{type(item).__name__}.{name} must be integer micro-units, got {value!r}")
    return value


@asynccontextmanager
async def open_journal(
    path: Path | str,
    *,
    buffer: int = 256,
    batch_max: int = 512,
    synchronous: Synchronous = "NORMAL",
    close_timeout_s: float = 5.0,
    run_info: Mapping[str, Any] | None = None,
    clock: Callable[[], float] = trio.current_time,
    wall_ms: Callable[[], int] = _wall_ms,
    before_write: Callable[[int], None] | None = None,
) -> AsyncIterator[Journal]:
    """Open (creating if needed) the journal at ``path`` and run its writer for the block.

    On exit the writer commits everything it accepted (shielded, within ``close_timeout_s``),
    the run is marked stopped and the file is closed.

    Args:
        path: the SQLite file (its directory is created).
        buffer: records that may wait for the writer before ``record`` blocks.
        batch_max: records per transaction at most.
        synchronous: ``NORMAL`` (survives a process crash) or ``FULL`` (also an OS crash).
        close_timeout_s: how long closing may take to commit what is still queued.
        run_info: stored with the run (mode, version, ...), as JSON.
        clock: monotonic seconds (``at`` of decisions and runs).
        wall_ms: wall-clock epoch milliseconds (``ts_ms``).
        before_write: a test seam: called in the writer thread with the batch size before each
            transaction (block in it to simulate a slow disk).

    Raises:
        JournalError: the file is not a journal, has another schema version, or WAL mode is
            unavailable.
    """
    if buffer < 0 or batch_max < 1:
        raise ValueError(f"expected buffer >= 0 and batch_max >= 1, got {buffer}, {batch_max}")
    if synchronous not in ("NORMAL", "FULL"):
        raise ValueError(f"synchronous must be NORMAL or FULL, got {synchronous!r}")
    where = Path(path)
    info = json.dumps(dict(run_info or {}), sort_keys=True, default=str)
    conn, run_id = await trio.to_thread.run_sync(
        _open_db, where, synchronous, clock(), wall_ms(), info
    )
    journal = Journal(
        conn,
        where,
        run_id,
        buffer=buffer,
        batch_max=batch_max,
        clock=clock,
        wall_ms=wall_ms,
        before_write=before_write,
    )
    # The writer is shielded: a cancel from above must not strand records it already accepted
    # (the "batch in hand" of TRIO_IDIOMS.md section 5). It ends when the channel closes; the
    # deadline set at close bounds how long that may take.
    writer_scope = trio.CancelScope(shield=True)
    body_error: BaseException | None = None
    try:
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(journal._run_writer, writer_scope)
                try:
                    yield journal
                except BaseException as exc:
                    # Kept out of the nursery so the caller sees its own exception, not a group.
                    body_error = exc
                finally:
                    journal._send.close()
                    writer_scope.deadline = trio.current_time() + close_timeout_s
        except BaseExceptionGroup as group:
            errors, _others = group.split(Exception)
            if errors is None:
                raise  # KeyboardInterrupt and friends: not ours to translate
            first = errors.exceptions[0]
            error = (
                first
                if isinstance(first, JournalError)
                else JournalError(f"journal {where}: the writer failed: {first!r}")
            )
            if body_error is not None:
                error.add_note(f"while the caller was handling {body_error!r}")
            if error is first:
                raise error from error.__cause__  # keep the sqlite error as the cause
            raise error from first
        if body_error is not None:
            raise body_error
    finally:
        with trio.move_on_after(close_timeout_s, shield=True):
            await trio.to_thread.run_sync(
                _close_db, conn, run_id, clock(), wall_ms(), limiter=journal._limiter
            )


def _open_db(
    path: Path, synchronous: Synchronous, at: float, ts_ms: int, info: str
) -> tuple[sqlite3.Connection, int]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except (OSError, sqlite3.Error) as exc:
        raise JournalError(f"cannot open journal {path}: {exc}") from exc
    try:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise JournalError(f"journal {path}: WAL mode is not available (got {mode})")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute("PRAGMA busy_timeout=5000")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            raise JournalError(
                f"journal {path} has schema version {version}, expected {SCHEMA_VERSION}"
            )
        conn.executescript(_SCHEMA)
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        cursor = conn.execute(
            "INSERT INTO runs (started_ms, started_at, info) VALUES (?, ?, ?)", (ts_ms, at, info)
        )
        run_id = cursor.lastrowid
        assert run_id is not None
    except sqlite3.Error as exc:
        conn.close()
        raise JournalError(f"journal {path} cannot be used: {exc}") from exc
    except BaseException:
        conn.close()
        raise
    return conn, run_id


def _close_db(conn: sqlite3.Connection, run_id: int, at: float, ts_ms: int) -> None:
    try:
        conn.execute(
            "UPDATE runs SET stopped_ms = ?, stopped_at = ? WHERE run_id = ?", (ts_ms, at, run_id)
        )
    except sqlite3.Error:
        pass  # the run then reads as not closed cleanly; never mask the error that got us here
    finally:
        conn.close()


def connect_readonly(path: Path | str) -> sqlite3.Connection:
    """Open a journal for reading only (the report), checking that it is one.

    Raises:
        JournalError: the file does not exist, is not SQLite, or is not a polybot journal.
    """
    where = Path(path)
    if not where.is_file():
        raise JournalError(f"no journal at {where}")
    try:
        conn = sqlite3.connect(f"{where.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise JournalError(f"cannot open journal {where}: {exc}") from exc
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    except sqlite3.Error as exc:
        conn.close()
        raise JournalError(f"{where} is not a polybot journal: {exc}") from exc
    if version != SCHEMA_VERSION or not {"fills", "orders", "runs"} <= tables:
        conn.close()
        raise JournalError(
            f"{where} is not a polybot journal (schema version {version}, "
            f"expected {SCHEMA_VERSION})"
        )
    return conn


# --- reading -------------------------------------------------------------------------------------


def read_fills(conn: sqlite3.Connection) -> list[Fill]:
    """Every fill, oldest first (wall clock, then insertion order)."""
    rows = conn.execute(
        "SELECT fill_id, order_id, strategy, token_id, side, price, size, fee, liquidity, at, "
        "ts_ms FROM fills ORDER BY ts_ms, rowid"
    )
    return [
        Fill(
            fill_id,
            order_id,
            strategy,
            token_id,
            Side[side],
            price,
            size,
            fee,
            Liquidity(liquidity),
            at,
            ts_ms,
        )
        for (
            fill_id,
            order_id,
            strategy,
            token_id,
            side,
            price,
            size,
            fee,
            liquidity,
            at,
            ts_ms,
        ) in rows
    ]


def read_open_orders(conn: sqlite3.Connection) -> list[OrderUpdate]:
    """The last update of every order whose last status is ``live``, in the order they came."""
    rows = conn.execute(
        "SELECT o.order_id, o.strategy, o.token_id, o.side, o.price, o.size, o.filled, o.status, "
        "o.reason, o.at FROM orders o JOIN (SELECT order_id, MAX(seq) AS seq FROM orders "
        "GROUP BY order_id) last ON o.seq = last.seq WHERE o.status = ? ORDER BY o.seq",
        (OrderStatus.LIVE.value,),
    )
    return [
        OrderUpdate(
            oid, strategy, token, Side[side], price, size, filled, OrderStatus(status), reason, at
        )
        for oid, strategy, token, side, price, size, filled, status, reason, at in rows
    ]


def read_decisions(conn: sqlite3.Connection) -> list[DecisionRecord]:
    rows = conn.execute(
        "SELECT strategy, kind, key, detail, at, ts_ms FROM decisions ORDER BY ts_ms, seq"
    )
    return [
        DecisionRecord(strategy, kind, key, json.loads(detail), at, ts_ms)
        for strategy, kind, key, detail, at, ts_ms in rows
    ]


def read_marks(conn: sqlite3.Connection) -> dict[str, Mark]:
    """The latest mark of each token."""
    return {
        token: Mark(price, ts_ms)
        for token, price, ts_ms in conn.execute("SELECT token_id, price, ts_ms FROM marks")
    }


def read_runs(conn: sqlite3.Connection) -> list[RunRecord]:
    rows = conn.execute(
        "SELECT run_id, started_ms, started_at, stopped_ms, stopped_at, info FROM runs "
        "ORDER BY run_id"
    )
    return [
        RunRecord(run_id, started_ms, started_at, stopped_ms, stopped_at, json.loads(info))
        for run_id, started_ms, started_at, stopped_ms, stopped_at, info in rows
    ]


def read_universe(conn: sqlite3.Connection) -> Universe | None:
    """The recorded markets and events as a ``Universe`` (``None`` when none were recorded)."""
    markets: dict[str, Market] = {}
    for row in conn.execute(
        "SELECT condition_id, question, slug, yes_name, yes_token, no_name, no_token, tick_size, "
        "min_order_size, neg_risk, neg_risk_market_id, event_id, end_date, liquidity, volume, "
        "fee_rate, accepting_orders, group_item_title, gamma_id FROM markets ORDER BY rowid"
    ):
        (cid, question, slug, yes_name, yes, no_name, no, tick, min_size, neg_risk, nr_id) = row[
            :11
        ]
        (event_id, end_date, liquidity, volume, fee_rate, accepting, title, gamma_id) = row[11:]
        markets[cid] = Market(
            condition_id=cid,
            question=question,
            slug=slug,
            outcomes=(Outcome(yes_name, yes), Outcome(no_name, no)),
            tick_size=tick,
            min_order_size=min_size,
            neg_risk=bool(neg_risk),
            neg_risk_market_id=nr_id,
            event_id=event_id,
            end_date=_date(end_date),
            liquidity=Decimal(liquidity),
            volume=Decimal(volume),
            fee_rate=fee_rate,
            accepting_orders=bool(accepting),
            group_item_title=title,
            gamma_id=gamma_id,
        )
    if not markets:
        return None
    events: list[Event] = []
    for row in conn.execute(
        "SELECT id, slug, title, neg_risk, complete, incomplete_reason, neg_risk_market_id, "
        "liquidity, volume, end_date, market_ids FROM events ORDER BY rowid"
    ):
        (eid, slug, title, neg_risk, complete, reason, nr_id, liquidity, volume, end, ids) = row
        members = tuple(markets[cid] for cid in json.loads(ids) if cid in markets)
        events.append(
            Event(
                id=eid,
                slug=slug,
                title=title,
                neg_risk=bool(neg_risk),
                markets=members,
                complete=bool(complete),
                incomplete_reason=reason,
                neg_risk_market_id=nr_id,
                liquidity=Decimal(liquidity),
                volume=Decimal(volume),
                end_date=_date(end),
            )
        )
    try:
        return Universe(markets=tuple(markets.values()), events=tuple(events))
    except ValueError as exc:
        raise JournalError(f"the recorded universe is inconsistent: {exc}") from exc


def _date(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _market_row(m: Market, ts_ms: int) -> tuple[Any, ...]:
    return (
        m.condition_id,
        m.question,
        m.slug,
        m.yes.name,
        m.yes.token_id,
        m.no.name,
        m.no.token_id,
        m.tick_size,
        m.min_order_size,
        int(m.neg_risk),
        m.neg_risk_market_id,
        m.event_id,
        None if m.end_date is None else m.end_date.isoformat(),
        str(m.liquidity),
        str(m.volume),
        m.fee_rate,
        int(m.accepting_orders),
        m.group_item_title,
        m.gamma_id,
        ts_ms,
    )


def _event_row(e: Event, ts_ms: int) -> tuple[Any, ...]:
    return (
        e.id,
        e.slug,
        e.title,
        int(e.neg_risk),
        int(e.complete),
        e.incomplete_reason,
        e.neg_risk_market_id,
        str(e.liquidity),
        str(e.volume),
        None if e.end_date is None else e.end_date.isoformat(),
        json.dumps([m.condition_id for m in e.markets]),
        ts_ms,
    )

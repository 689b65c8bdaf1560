"""The bounded log pipeline: records in without blocking, one writer task, disk I/O off the loop.

Everything the bot writes to its JSON-lines log goes through one ``LogChannel``: runtime
telemetry (market events, opportunities, decisions, health), offered as dicts with ``offer``,
and human log lines from loguru, through ``ChannelSink``. One task, ``run_log_writer``, takes
records in batches, serializes them with orjson (one line each) and writes them in a worker
thread (``trio.to_thread.run_sync``), so neither the feed nor any strategy ever waits for the
disk (TRIO_IDIOMS.md section 5).

Record shape
------------
A record is a ``Mapping[str, object]`` with at least ``kind`` (``"log"`` for human lines,
``"log.dropped"``/``"log.unserializable"`` for the writer's own, anything else for telemetry)
and ``ts``. Human lines and the writer's records use wall-clock epoch seconds for ``ts``:
log files are read next to other systems' logs, and no logic depends on these stamps (which is
why reading the wall clock here does not break the "only ``trio.current_time()``" rule).
Runtime telemetry may carry trio times too (``received_at``, ``decided_at``). The channel does
not copy records: hand them over and do not mutate them afterwards. Values orjson cannot encode
natively are written with ``str()`` (``Decimal``, ``Secret`` -> ``"<redacted>"``); a record that
still cannot be encoded is replaced by a ``log.unserializable`` line and counted.

Drop policy
-----------
The buffer holds at most ``max_buffer`` ordinary records, plus ``reserve`` extra slots that only
*essential* records may use:

* **Droppable** (``offer(record)``, the default): runtime telemetry and human log lines of every
  level. When ``max_buffer`` records are waiting, the record is dropped and counted
  (``dropped``; human ``ERROR``/``CRITICAL`` lines are also counted in ``errors_dropped`` so a
  health check can alarm on them). Losing telemetry under a disk stall is the price of a feed
  that never waits.
* **Essential** (``offer(record, essential=True)``): records the audit trail must keep (orders,
  fills, risk verdicts, shutdown summaries). They also get the ``reserve``. If even that is full
  (the disk has been stalled for a long time) the record is lost and counted in
  ``essential_dropped``: a sync, non-blocking offer cannot promise more, and an unbounded queue
  would turn a stalled disk into an out-of-memory crash.

No drop is silent: after every batch in which the counters moved, the writer appends a
``{"kind": "log.dropped", ...}`` line with how many records of each class were lost since the
previous one, and ``statistics()`` keeps the totals.

Shutdown
--------
Start the writer outside the application's cancel scope and close the ``LogChannel`` when the
application is done: the writer drains what is buffered, sees ``EndOfChannel`` and returns. If
it is cancelled instead, its ``finally`` still writes every record it accepted (including a batch
already taken from the buffer: the "batch in hand" bug), shielded, within
``final_flush_timeout``.
"""

from __future__ import annotations

import collections
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Final, TypeAlias, final

import attrs
import orjson
import trio
from loguru import logger

if TYPE_CHECKING:
    from types import TracebackType
    from typing import Self

    from loguru import Message

    from bot.config import LogLevel

__all__ = [
    "CONSOLE_FORMAT",
    "ChannelSink",
    "ChannelSinkStatistics",
    "LogChannel",
    "LogReceiver",
    "LogStatistics",
    "Record",
    "WriteBatch",
    "configure_logging",
    "encode_records",
    "open_log_channel",
    "run_log_writer",
    "write_and_flush",
]

Record: TypeAlias = Mapping[str, object]
"""One log record: a mapping with at least ``kind`` and ``ts`` (see the module docstring)."""

WriteBatch: TypeAlias = Callable[[BinaryIO, bytes], None]
"""Writes one batch of encoded lines to the open file; runs in a worker thread."""

CONSOLE_FORMAT: Final = (
    "<green>{time:HH:mm:ss.SSS}</green> | <level>{level: <8}</level> | "
    "<cyan>{name}</cyan>:<cyan>{function}</cyan>:<cyan>{line}</cyan> - <level>{message}</level>"
)
"""The human-readable stderr format of ``configure_logging(..., console=True)``."""

_ERROR_LEVELS: Final = frozenset({"ERROR", "CRITICAL"})
_JSON_OPTIONS: Final = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS
_FINAL_DRAIN_MAX: Final = 1 << 30


# --- statistics --------------------------------------------------------------------------------


@attrs.frozen
class LogStatistics:
    """Counters of a log channel and its writer (see ``LogChannel.statistics``).

    Attributes:
        max_buffer: records the buffer holds for droppable records.
        reserve: extra slots only essential records may use.
        offered: ``offer`` calls.
        accepted: records put in the buffer.
        dropped: droppable records lost (buffer full, or the channel closed).
        errors_dropped: of ``dropped``, human lines at ``ERROR`` or ``CRITICAL``.
        essential_dropped: essential records lost (buffer and reserve full, or closed).
        buffered: records waiting in the buffer now.
        peak_buffered: the most records ever waiting at once.
        written: records written to the file (``log.dropped``/``log.unserializable`` lines
            included).
        unserializable: records orjson could not encode (each written as a placeholder).
        batches_written: batches handed to the worker thread.
        bytes_written: bytes handed to ``write_batch``.
        closed: whether the send side is closed.
    """

    max_buffer: int
    reserve: int
    offered: int
    accepted: int
    dropped: int
    errors_dropped: int
    essential_dropped: int
    buffered: int
    peak_buffered: int
    written: int
    unserializable: int
    batches_written: int
    bytes_written: int
    closed: bool


@attrs.frozen
class ChannelSinkStatistics:
    """Counters of a ``ChannelSink``.

    Attributes:
        records: log records the sink received, from every thread.
        from_threads: of ``records``, those logged outside the trio thread (hopped in with
            ``TrioToken.run_sync_soon``).
        lost_after_run: records logged from another thread after ``trio.run`` had finished
            (nothing can take them; the channel's own drops are in ``LogStatistics``).
    """

    records: int
    from_threads: int
    lost_after_run: int


# --- the channel -------------------------------------------------------------------------------


@final
class _LogState:
    """What the two ends of a log channel share. Touched from the trio thread only."""

    __slots__ = (
        "accepted",
        "batches_written",
        "buffer",
        "bytes_written",
        "dropped",
        "errors_dropped",
        "essential_dropped",
        "limit",
        "max_buffer",
        "offered",
        "peak",
        "receive_closed",
        "reserve",
        "send_closed",
        "unserializable",
        "waiter",
        "written",
    )

    def __init__(self, max_buffer: int, reserve: int) -> None:
        self.max_buffer = max_buffer
        self.reserve = reserve
        self.limit = max_buffer + reserve
        self.buffer: collections.deque[Record] = collections.deque()
        self.waiter: trio.lowlevel.Task | None = None
        self.send_closed = False
        self.receive_closed = False
        self.offered = 0
        self.accepted = 0
        self.dropped = 0
        self.errors_dropped = 0
        self.essential_dropped = 0
        self.peak = 0
        self.written = 0
        self.unserializable = 0
        self.batches_written = 0
        self.bytes_written = 0

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            trio.lowlevel.reschedule(waiter)


def open_log_channel(
    max_buffer: int, *, reserve: int | None = None
) -> tuple[LogChannel, LogReceiver]:
    """Open a bounded log channel: the send side for producers, the receive side for the writer.

    Args:
        max_buffer: records buffered before droppable ones are dropped (>= 1); from
            ``LogConfig.queue_size``.
        reserve: extra slots for essential records (>= 0); ``max_buffer // 10`` (at least 1)
            when omitted.

    Returns:
        ``(channel, receive)``: pass ``receive`` to ``run_log_writer``.

    Raises:
        ValueError: a size is out of range.
    """
    if max_buffer < 1:
        raise ValueError(f"max_buffer must be >= 1, got {max_buffer}")
    if reserve is None:
        reserve = max(1, max_buffer // 10)
    if reserve < 0:
        raise ValueError(f"reserve must be >= 0, got {reserve}")
    state = _LogState(max_buffer, reserve)
    return LogChannel._open(state), LogReceiver._open(state)


@final
class LogChannel:
    """The send side of the log pipeline: ``offer`` never blocks and never raises.

    Not thread-safe: call ``offer`` from the trio thread (``ChannelSink`` hops other threads'
    records in with ``TrioToken.run_sync_soon``).
    """

    __slots__ = ("_state",)

    _state: _LogState

    def __init__(self) -> None:
        raise TypeError("use open_log_channel() to make a LogChannel")

    @classmethod
    def _open(cls, state: _LogState) -> LogChannel:
        self = object.__new__(cls)
        self._state = state
        return self

    def offer(self, record: Record, *, essential: bool = False) -> bool:
        """Buffer ``record`` for the writer if there is room; count a drop otherwise.

        Sync and O(1): never a checkpoint, never blocks, never raises. At most one wake of the
        writer per burst of offers (the first offer after it parked reschedules it).

        Args:
            record: a mapping with ``kind`` and ``ts``; handed over, do not mutate it later.
            essential: ``True`` for records that may use the reserve (see the module's drop
                policy).

        Returns:
            Whether the record was accepted.
        """
        state = self._state
        state.offered += 1
        buffer = state.buffer
        size = len(buffer)
        if (
            state.send_closed
            or state.receive_closed
            or size >= (state.limit if essential else state.max_buffer)
        ):
            if essential:
                state.essential_dropped += 1
            else:
                state.dropped += 1
                if record.get("kind") == "log" and record.get("level") in _ERROR_LEVELS:
                    state.errors_dropped += 1
            return False
        buffer.append(record)
        state.accepted += 1
        if size >= state.peak:
            state.peak = size + 1
        waiter = state.waiter
        if waiter is not None:
            state.waiter = None
            trio.lowlevel.reschedule(waiter)
        return True

    def close(self) -> None:
        """Stop accepting records; the writer drains the buffer, then gets ``EndOfChannel``.

        Sync and idempotent; later offers are dropped and counted.
        """
        state = self._state
        state.send_closed = True
        state.wake()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        """Whether this side was closed."""
        return self._state.send_closed

    def statistics(self) -> LogStatistics:
        """The channel's and writer's counters (a frozen snapshot)."""
        return _statistics(self._state)


@final
class LogReceiver:
    """The receive side of the log pipeline, for the one writer task."""

    __slots__ = ("_state",)

    _state: _LogState

    def __init__(self) -> None:
        raise TypeError("use open_log_channel() to make a LogReceiver")

    @classmethod
    def _open(cls, state: _LogState) -> LogReceiver:
        self = object.__new__(cls)
        self._state = state
        return self

    def receive_batch_nowait(self, max_records: int) -> list[Record]:
        """Take up to ``max_records`` buffered records, oldest first. Sync: no checkpoint.

        Raises:
            trio.WouldBlock: the buffer is empty.
            trio.EndOfChannel: the send side is closed and the buffer is empty.
            trio.ClosedResourceError: this side was closed.
        """
        state = self._state
        if state.receive_closed:
            raise trio.ClosedResourceError("the log receiver is closed")
        buffer = state.buffer
        if not buffer:
            if state.send_closed:
                raise trio.EndOfChannel
            raise trio.WouldBlock
        if len(buffer) <= max_records:
            batch = list(buffer)
            buffer.clear()
            return batch
        popleft = buffer.popleft
        return [popleft() for _ in range(max_records)]

    async def receive_batch(self, max_records: int) -> list[Record]:
        """Wait until records are buffered, then take up to ``max_records`` of them.

        Always a checkpoint. The records are taken after the last point where ``Cancelled`` can
        be raised, so a cancelled call has taken nothing and a returned batch is in the caller's
        hands (keep it until it is written).

        Raises:
            trio.EndOfChannel: the send side is closed and the buffer is empty.
            trio.ClosedResourceError: this side was closed.
            trio.BusyResourceError: another task is already waiting here.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            batch = self.receive_batch_nowait(max_records)
        except trio.WouldBlock:
            pass
        else:
            await trio.lowlevel.cancel_shielded_checkpoint()
            return batch
        state = self._state
        if state.waiter is not None:
            raise trio.BusyResourceError("another task is already receiving")
        while True:
            state.waiter = trio.lowlevel.current_task()

            def abort(_: trio.lowlevel.RaiseCancelT) -> trio.lowlevel.Abort:
                state.waiter = None
                return trio.lowlevel.Abort.SUCCEEDED

            await trio.lowlevel.wait_task_rescheduled(abort)
            try:
                return self.receive_batch_nowait(max_records)
            except trio.WouldBlock:  # someone else took them between the wake and now
                continue

    def close(self) -> None:
        """Stop receiving: records still buffered are dropped and counted. Sync, idempotent."""
        state = self._state
        if state.receive_closed:
            return
        state.receive_closed = True
        for record in state.buffer:
            state.dropped += 1
            if record.get("kind") == "log" and record.get("level") in _ERROR_LEVELS:
                state.errors_dropped += 1
        state.buffer.clear()
        state.wake()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def statistics(self) -> LogStatistics:
        """The channel's and writer's counters (a frozen snapshot)."""
        return _statistics(self._state)


def _statistics(state: _LogState) -> LogStatistics:
    return LogStatistics(
        max_buffer=state.max_buffer,
        reserve=state.reserve,
        offered=state.offered,
        accepted=state.accepted,
        dropped=state.dropped,
        errors_dropped=state.errors_dropped,
        essential_dropped=state.essential_dropped,
        buffered=len(state.buffer),
        peak_buffered=state.peak,
        written=state.written,
        unserializable=state.unserializable,
        batches_written=state.batches_written,
        bytes_written=state.bytes_written,
        closed=state.send_closed,
    )


# --- the writer --------------------------------------------------------------------------------


def encode_records(records: list[Record]) -> tuple[bytes, int]:
    """Encode records as JSON lines with orjson. Pure and sync (runs in the worker thread).

    Values orjson cannot encode natively go through ``str()``. A record that still fails (a
    reference cycle, an integer beyond 64 bits) becomes a ``log.unserializable`` line holding
    its ``kind`` and the error, so one bad record never stops the log.

    Returns:
        ``(data, unserializable)``: the lines, and how many records were replaced.
    """
    dumps = orjson.dumps
    parts: list[bytes] = []
    bad = 0
    for record in records:
        try:
            parts.append(dumps(record, default=str, option=_JSON_OPTIONS))
        except orjson.JSONEncodeError as exc:
            bad += 1
            placeholder = {
                "kind": "log.unserializable",
                "ts": record.get("ts"),
                "record_kind": str(record.get("kind")),
                "error": str(exc),
            }
            parts.append(dumps(placeholder, default=str, option=_JSON_OPTIONS))
    return b"".join(parts), bad


def write_and_flush(file: BinaryIO, data: bytes) -> None:
    """The default ``WriteBatch``: write and flush, so a crash loses at most the current batch."""
    file.write(data)
    file.flush()


def _open_append(path: Path) -> BinaryIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("ab")


def _write(
    write_batch: WriteBatch, file: BinaryIO, records: list[Record], *, close: bool = False
) -> tuple[int, int]:
    """Encode and write one batch (worker thread); returns ``(bytes, unserializable)``."""
    try:
        if not records:
            return 0, 0
        data, bad = encode_records(records)
        write_batch(file, data)
        return len(data), bad
    finally:
        if close:
            file.close()


@final
class _DropReporter:
    """Turns growth of the drop counters into ``log.dropped`` records."""

    __slots__ = ("_dropped", "_errors", "_essential", "_wall_clock")

    def __init__(self, wall_clock: Callable[[], float]) -> None:
        self._wall_clock = wall_clock
        self._dropped = 0
        self._errors = 0
        self._essential = 0

    def report(self, state: _LogState) -> Record | None:
        dropped = state.dropped - self._dropped
        essential = state.essential_dropped - self._essential
        if not dropped and not essential:
            return None
        errors = state.errors_dropped - self._errors
        self._dropped = state.dropped
        self._errors = state.errors_dropped
        self._essential = state.essential_dropped
        return {
            "kind": "log.dropped",
            "ts": self._wall_clock(),
            "dropped": dropped,
            "errors_dropped": errors,
            "essential_dropped": essential,
            "dropped_total": state.dropped,
            "essential_dropped_total": state.essential_dropped,
        }


async def run_log_writer(
    receive: LogReceiver,
    path: Path | str,
    *,
    batch_max: int = 256,
    write_batch: WriteBatch = write_and_flush,
    final_flush_timeout: float = 2.0,
    wall_clock: Callable[[], float] = time.time,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """The one log-writer task: batches of records -> JSON lines appended to ``path``.

    Opening, encoding and writing all happen in worker threads (one ``trio.to_thread.run_sync``
    hop per batch), so the event loop never waits on the disk; producers never wait on this task.
    Returns when the ``LogChannel`` is closed and everything buffered is written.

    Cancellation: a batch taken from the channel stays in hand until its thread has run (a
    cancel can land at the hop before the thread starts: trio's "``Cancelled`` means it did not
    happen"); the ``finally`` writes it and everything still buffered, shielded, within
    ``final_flush_timeout`` seconds. That final write may be abandoned at the deadline (a hung
    disk); the file is then closed by its thread if it ever finishes. ``receive`` is closed on
    exit, so later offers are dropped and counted.

    Args:
        receive: the channel's receive side.
        path: the JSON-lines file, opened for append (parent directories are created).
        batch_max: records per write at most (``LogConfig.batch_max``).
        write_batch: writes one batch of bytes to the open binary file in the worker thread;
            tests inject a slow one.
        final_flush_timeout: seconds the shielded final flush may take.
        wall_clock: the clock for the writer's own ``log.dropped`` stamps.
        task_status: ``started()`` once the file is open.
    """
    if batch_max < 1:
        raise ValueError(f"batch_max must be >= 1, got {batch_max}")
    state = receive._state
    reporter = _DropReporter(wall_clock)
    pending: list[Record] = []
    with receive:
        file = await trio.to_thread.run_sync(_open_append, Path(path))
        try:
            task_status.started()
            while True:
                try:
                    pending = await receive.receive_batch(batch_max)
                except trio.EndOfChannel:
                    break
                gap = reporter.report(state)
                if gap is not None:
                    pending.append(gap)
                # ``pending`` is cleared only once the thread has run. If ``Cancelled`` comes
                # out of this call, the thread never started and ``finally`` writes the batch.
                size, bad = await trio.to_thread.run_sync(_write, write_batch, file, pending)
                _count(state, len(pending), size, bad)
                pending = []
        finally:
            with trio.move_on_after(final_flush_timeout, shield=True):
                while state.buffer:
                    pending.extend(receive.receive_batch_nowait(_FINAL_DRAIN_MAX))
                gap = reporter.report(state)
                if gap is not None:
                    pending.append(gap)
                # Abandon on cancel so the deadline holds even when the disk hangs.
                size, bad = await trio.to_thread.run_sync(
                    partial(_write, write_batch, file, pending, close=True),
                    abandon_on_cancel=True,
                )
                _count(state, len(pending), size, bad)


def _count(state: _LogState, records: int, size: int, bad: int) -> None:
    if records:
        state.written += records
        state.unserializable += bad
        state.batches_written += 1
        state.bytes_written += size


# --- loguru ------------------------------------------------------------------------------------


def _to_record(message: Message, task: str | None) -> dict[str, object]:
    """A loguru message as a plain ``kind="log"`` record (no reference to the loguru record)."""
    record = message.record
    out: dict[str, object] = {
        "kind": "log",
        "ts": record["time"].timestamp(),
        "level": record["level"].name,
        "message": record["message"],
        "logger": record["name"],
        "function": record["function"],
        "line": record["line"],
    }
    if task is not None:
        out["task"] = task
    else:
        out["thread"] = record["thread"].name
    if record["extra"]:
        out["extra"] = dict(record["extra"])
    exception = record["exception"]
    if exception is not None and exception.value is not None:
        # Plain traceback formatting: no local variable values (nothing like ``diagnose``).
        out["exception"] = "".join(traceback.format_exception(exception.value))
    return out


@final
class ChannelSink:
    """A loguru sink that offers each message as a ``kind="log"`` record to a ``LogChannel``.

    Never blocks and never raises. A message logged in the trio thread is offered directly; one
    logged from a worker thread is converted there and hopped into the trio thread with
    ``TrioToken.run_sync_soon`` (``offer`` is not thread-safe). Create it inside ``trio.run``
    (it captures the trio token and thread). Human lines are droppable records (see the module's
    drop policy).

    Do not use a coroutine sink instead: loguru schedules those on asyncio, and under trio they
    silently drop everything.
    """

    __slots__ = ("_channel", "_from_threads", "_lost_after_run", "_records", "_thread", "_token")

    def __init__(self, channel: LogChannel) -> None:
        self._channel = channel
        self._token = trio.lowlevel.current_trio_token()
        self._thread = threading.get_ident()
        self._records = 0
        self._from_threads = 0
        self._lost_after_run = 0

    def __call__(self, message: Message) -> None:
        """Take one formatted loguru message (called by loguru, in the logging thread)."""
        self._records += 1
        if threading.get_ident() == self._thread:
            try:
                task: str | None = trio.lowlevel.current_task().name
            except RuntimeError:  # the trio thread, but outside trio.run
                task = None
            self._channel.offer(_to_record(message, task))
            return
        self._from_threads += 1
        record = _to_record(message, None)
        try:
            self._token.run_sync_soon(self._channel.offer, record)
        except trio.RunFinishedError:
            self._lost_after_run += 1

    def statistics(self) -> ChannelSinkStatistics:
        """The sink's counters (a frozen snapshot)."""
        return ChannelSinkStatistics(
            records=self._records,
            from_threads=self._from_threads,
            lost_after_run=self._lost_after_run,
        )


def configure_logging(channel: LogChannel, level: LogLevel | str, *, console: bool) -> ChannelSink:
    """Route loguru into the log channel; optionally also to stderr, human-readable.

    Removes every loguru handler (the default stderr one included), then adds a ``ChannelSink``
    at ``level`` with ``diagnose=False`` (no variable values in tracebacks) and ``catch=True``
    (a sink error never reaches the logging call). Call it inside ``trio.run``. Nothing here logs
    configuration or secrets.

    Args:
        channel: the log channel's send side.
        level: the minimum level (``LogConfig.level``).
        console: also write human-readable lines to stderr, at the same level. That sink writes
            synchronously in the logging thread, so a slow terminal or a full pipe slows the
            caller: meant for interactive runs, not for unattended production.

    Returns:
        The channel sink (for its ``statistics()``).
    """
    logger.remove()
    sink = ChannelSink(channel)
    logger.add(
        sink,
        level=str(level),
        format="{message}",
        serialize=False,
        backtrace=False,
        diagnose=False,
        catch=True,
        colorize=False,
        enqueue=False,
    )
    if console:
        logger.add(
            sys.stderr,
            level=str(level),
            format=CONSOLE_FORMAT,
            backtrace=False,
            diagnose=False,
            catch=True,
        )
    return sink

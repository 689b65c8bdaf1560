"""The bounded log pipeline: drops counted, the feed never waits, every accepted record lands.

Tests that write files or use threads run on the real clock (TRIO_IDIOMS.md section 7: autojump
plus threads makes virtual time jump while a thread works).
"""

from __future__ import annotations

import threading
import time
from functools import partial
from typing import TYPE_CHECKING, BinaryIO

import orjson
import pytest
import trio
import trio.testing
from loguru import logger

from bot.shell.logsink import (
    ChannelSink,
    LogChannel,
    LogReceiver,
    configure_logging,
    encode_records,
    open_log_channel,
    run_log_writer,
    write_and_flush,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture(autouse=True)
def _restore_loguru() -> Iterator[None]:
    """Every test leaves loguru without handlers (tests add their own sinks)."""
    logger.remove()
    try:
        yield
    finally:
        logger.remove()


def read_lines(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def record(n: int, kind: str = "market") -> dict[str, object]:
    return {"kind": kind, "ts": float(n), "n": n}


def slow_write(file: BinaryIO, data: bytes) -> None:
    time.sleep(0.1)  # a stalled disk: every batch takes 100 ms (worker thread)
    write_and_flush(file, data)


# --- offering ----------------------------------------------------------------------------------


async def test_offers_without_checkpoint_drop_exactly_the_overflow() -> None:
    channel, _receive = open_log_channel(100)
    other_task_ran = False

    async def other() -> None:
        nonlocal other_task_ran
        other_task_ran = True

    async with trio.open_nursery() as nursery:
        nursery.start_soon(other)
        start = time.perf_counter()
        accepted = [channel.offer(record(n)) for n in range(1000)]
        elapsed = time.perf_counter() - start
        assert not other_task_ran  # offer never yielded
    assert accepted == [True] * 100 + [False] * 900
    stats = channel.statistics()
    assert (stats.offered, stats.accepted, stats.dropped) == (1000, 100, 900)
    assert (stats.buffered, stats.peak_buffered, stats.essential_dropped) == (100, 100, 0)
    assert elapsed < 0.5


async def test_loguru_lines_without_checkpoint_drop_exactly_the_overflow() -> None:
    channel, _receive = open_log_channel(100)
    sink = configure_logging(channel, "INFO", console=False)
    for n in range(1000):
        logger.info("line {}", n)
    logger.debug("below the level: not even offered")
    stats = channel.statistics()
    assert (stats.offered, stats.accepted, stats.dropped, stats.errors_dropped) == (
        1000,
        100,
        900,
        0,
    )
    logger.error("an error that does not fit")
    assert channel.statistics().errors_dropped == 1
    assert sink.statistics().records == 1001


async def test_essential_records_use_the_reserve() -> None:
    channel, receive = open_log_channel(4, reserve=2)
    assert all(channel.offer(record(n)) for n in range(4))
    assert not channel.offer(record(4))  # droppable: full
    assert channel.offer(record(5, "fill"), essential=True)
    assert channel.offer(record(6, "fill"), essential=True)
    assert not channel.offer(record(7, "fill"), essential=True)  # reserve full too
    stats = channel.statistics()
    assert (stats.dropped, stats.essential_dropped, stats.buffered) == (1, 1, 6)
    batch = receive.receive_batch_nowait(3)
    assert [r["n"] for r in batch] == [0, 1, 2]
    assert [r["n"] for r in receive.receive_batch_nowait(100)] == [3, 5, 6]
    with pytest.raises(trio.WouldBlock):
        receive.receive_batch_nowait(1)


async def test_close_semantics() -> None:
    channel, receive = open_log_channel(10)
    assert channel.offer(record(1))
    with channel:
        pass  # closes the send side
    assert channel.closed
    assert not channel.offer(record(2))
    assert not channel.offer(record(3), essential=True)
    assert [r["n"] for r in await receive.receive_batch(10)] == [1]  # drained first
    with pytest.raises(trio.EndOfChannel):
        await receive.receive_batch(10)
    receive.close()
    with pytest.raises(trio.ClosedResourceError):
        receive.receive_batch_nowait(1)
    stats = receive.statistics()
    assert (stats.dropped, stats.essential_dropped, stats.closed) == (1, 1, True)


async def test_closing_the_receive_side_counts_buffered_records_as_dropped() -> None:
    channel, receive = open_log_channel(10)
    channel.offer(record(1))
    channel.offer({"kind": "log", "ts": 0.0, "level": "ERROR", "message": "x"})
    with receive:
        pass
    assert not channel.offer(record(3))
    stats = channel.statistics()
    assert (stats.dropped, stats.errors_dropped, stats.buffered) == (3, 1, 0)


async def test_constructors_and_validation() -> None:
    with pytest.raises(ValueError, match="max_buffer"):
        open_log_channel(0)
    with pytest.raises(ValueError, match="reserve"):
        open_log_channel(1, reserve=-1)
    assert open_log_channel(1000)[0].statistics().reserve == 100
    assert open_log_channel(5)[0].statistics().reserve == 1
    with pytest.raises(TypeError):
        LogChannel()
    with pytest.raises(TypeError):
        LogReceiver()


async def test_receive_batch_waits_is_a_checkpoint_and_is_exclusive() -> None:
    channel, receive = open_log_channel(10)
    got: list[int] = []

    async def writer() -> None:
        batch = await receive.receive_batch(10)
        got.extend(int(str(r["n"])) for r in batch)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(trio.BusyResourceError):
            await receive.receive_batch(1)
        for n in range(5):  # one burst, one wake
            channel.offer(record(n))
    assert got == [0, 1, 2, 3, 4]

    channel.offer(record(9))
    with trio.CancelScope() as scope:
        scope.cancel()
        await receive.receive_batch(10)
    assert scope.cancelled_caught
    assert channel.statistics().buffered == 1  # a cancelled receive took nothing


def test_encode_records() -> None:
    from decimal import Decimal

    data, bad = encode_records(
        [
            {"kind": "a", "ts": 1.0, "price": Decimal("0.48"), "by_id": {7: "int key"}},
            {"kind": "b", "ts": 2.0, "huge": 2**70},
        ]
    )
    first, second = (orjson.loads(line) for line in data.splitlines())
    assert first == {"kind": "a", "ts": 1.0, "price": "0.48", "by_id": {"7": "int key"}}
    assert second["kind"] == "log.unserializable"
    assert second["record_kind"] == "b"
    assert second["ts"] == 2.0
    assert bad == 1


# --- the writer (real clock, real files) ---------------------------------------------------------


async def test_writer_writes_valid_json_lines_and_stops_on_close(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "bot.jsonl"  # the directory is created
    channel, receive = open_log_channel(1000)
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(run_log_writer, receive, path, batch_max=16))
        for n in range(100):
            channel.offer(record(n))
            if n % 7 == 0:
                await trio.lowlevel.checkpoint()
        channel.close()  # the writer drains and returns by itself
    lines = read_lines(path)
    assert [line["n"] for line in lines] == list(range(100))
    assert all(line["kind"] == "market" and "ts" in line for line in lines)
    stats = channel.statistics()
    assert (stats.written, stats.unserializable, stats.dropped) == (100, 0, 0)
    assert stats.batches_written >= 100 // 16
    assert stats.bytes_written == path.stat().st_size


async def test_slow_disk_never_stalls_the_feed(tmp_path: Path) -> None:
    path = tmp_path / "bot.jsonl"
    channel, receive = open_log_channel(10_000)
    gaps: list[float] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(
            partial(run_log_writer, receive, path, batch_max=1000, write_batch=slow_write)
        )
        # The "feed": 1 ms ticks for 0.6 s, offering 5 records per tick.
        last = trio.current_time()
        deadline = last + 0.6
        n = 0
        while trio.current_time() < deadline:
            for _ in range(5):
                channel.offer(record(n))
                n += 1
            await trio.sleep(0.001)
            now = trio.current_time()
            gaps.append(now - last)
            last = now
        channel.close()
    assert max(gaps) < 0.020, f"feed loop stalled {max(gaps) * 1000:.1f} ms"
    stats = channel.statistics()
    assert stats.dropped == 0
    assert stats.batches_written > 1  # several slow writes happened during the loop
    assert len(read_lines(path)) == stats.accepted == n


async def test_cancelled_writer_flushes_every_accepted_record(tmp_path: Path) -> None:
    path = tmp_path / "bot.jsonl"
    channel, receive = open_log_channel(10_000)
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            await nursery.start(
                partial(run_log_writer, receive, path, batch_max=50, write_batch=slow_write)
            )
            for n in range(500):
                channel.offer(record(n))
                if n % 100 == 0:
                    await trio.sleep(0.02)  # let a slow write start mid-stream
            scope.cancel()
    assert [line["n"] for line in read_lines(path)] == list(range(500))
    stats = channel.statistics()
    assert (stats.accepted, stats.written) == (500, 500)
    assert not channel.offer(record(500))  # the writer closed its side on the way out


async def test_batch_in_hand_is_written_when_cancel_lands_before_the_write(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bot.jsonl"
    channel, receive = open_log_channel(100)
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            await nursery.start(partial(run_log_writer, receive, path))
            await trio.testing.wait_all_tasks_blocked()  # the writer is parked in receive
            for n in range(5):
                channel.offer(record(n))  # wakes it: it will take the batch ...
            scope.cancel()  # ... and meet the cancel at the thread hop, batch in hand
    assert [line["n"] for line in read_lines(path)] == [0, 1, 2, 3, 4]


async def test_drops_are_reported_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bot.jsonl"
    channel, receive = open_log_channel(10, reserve=1)
    for n in range(15):
        channel.offer(record(n))
    channel.offer(record(15, "fill"), essential=True)
    channel.offer(record(16, "fill"), essential=True)
    channel.close()
    await run_log_writer(receive, path, batch_max=100, wall_clock=lambda: 123.0)
    lines = read_lines(path)
    assert [line["n"] for line in lines[:-1]] == [*range(10), 15]
    assert lines[-1] == {
        "kind": "log.dropped",
        "ts": 123.0,
        "dropped": 5,
        "errors_dropped": 0,
        "essential_dropped": 1,
        "dropped_total": 5,
        "essential_dropped_total": 1,
    }


async def test_loguru_from_trio_and_from_a_worker_thread(tmp_path: Path) -> None:
    path = tmp_path / "bot.jsonl"
    channel, receive = open_log_channel(100)
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(run_log_writer, receive, path), name="log-writer")
        sink = configure_logging(channel, "DEBUG", console=False)

        def in_thread() -> int:
            logger.bind(strategy="maker").warning("from {where}", where="thread")
            return threading.get_ident()

        thread_id = await trio.to_thread.run_sync(in_thread)
        assert thread_id != threading.get_ident()
        logger.debug("from trio")
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("it failed")
        channel.close()  # the thread's record hopped in before run_sync returned
    lines = read_lines(path)
    assert [line["message"] for line in lines] == ["from thread", "from trio", "it failed"]
    thread_line, trio_line, error_line = lines
    assert thread_line["kind"] == "log"
    assert thread_line["level"] == "WARNING"
    assert thread_line["extra"] == {"strategy": "maker", "where": "thread"}
    assert "task" not in thread_line
    assert thread_line["thread"] != threading.current_thread().name
    assert abs(float(str(thread_line["ts"])) - time.time()) < 60
    assert "test_loguru_from_trio_and_from_a_worker_thread" in str(trio_line["task"])
    assert "thread" not in trio_line
    assert trio_line["function"] == "test_loguru_from_trio_and_from_a_worker_thread"
    assert error_line["level"] == "ERROR"
    assert "ValueError: boom" in str(error_line["exception"])
    assert sink.statistics().from_threads == 1


async def test_configure_logging_console(capfd: pytest.CaptureFixture[str]) -> None:
    channel, receive = open_log_channel(10)
    configure_logging(channel, "INFO", console=True)
    logger.info("hello {}", "console")
    captured = capfd.readouterr()
    assert "hello console" in captured.err
    assert "| INFO" in captured.err
    assert [r["message"] for r in receive.receive_batch_nowait(10)] == ["hello console"]


def test_sink_after_run_finished_counts_thread_records() -> None:
    holder: list[tuple[ChannelSink, LogChannel]] = []

    async def main() -> None:
        channel, _receive = open_log_channel(10)
        holder.append((ChannelSink(channel), channel))

    trio.run(main)
    ((sink, channel),) = holder
    logger.add(sink, format="{message}", catch=True)
    worker = threading.Thread(target=lambda: logger.info("too late"))
    worker.start()
    worker.join()
    logger.info("too late, trio thread")  # offered directly: still buffered (nobody reads)
    assert sink.statistics().lost_after_run == 1
    assert channel.statistics().accepted == 1

"""``FrameRecorder``: a non-blocking, bounded frame buffer written to gzip off the event loop.

Real clock throughout: the writer uses worker threads, which the autojump clock mistakes for
idleness (TRIO_IDIOMS.md section 7).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import trio

from bot.shell.recorder import FrameRecorder
from bot.sim.replay import RecordedFrame, read_recording

if TYPE_CHECKING:
    from pathlib import Path

EPOCH_MS = 1_790_000_000_000


async def test_frames_are_written_in_order_with_epoch_receive_times(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl.gz"
    t0 = trio.current_time()
    recorder = FrameRecorder(path, epoch_ms=EPOCH_MS, trio_now=t0)
    async with trio.open_nursery() as nursery:
        await nursery.start(recorder.run)
        recorder.offer(t0 + 0.0015, '[{"event_type": "book"}]')
        recorder.offer(t0 + 0.25, "PONG")
        await trio.sleep(0.05)  # let the writer take the first batch
        recorder.offer(t0 + 1.0, '{"event_type": "price_change"}')
        recorder.close()
    assert read_recording(path) == [
        RecordedFrame(EPOCH_MS + 1, '[{"event_type": "book"}]'),
        RecordedFrame(EPOCH_MS + 250, "PONG"),
        RecordedFrame(EPOCH_MS + 1000, '{"event_type": "price_change"}'),
    ]
    stats = recorder.statistics()
    assert (stats.offered, stats.written, stats.dropped, stats.pending) == (3, 3, 0, 0)
    assert stats.batches == 2
    assert stats.closed


async def test_a_full_buffer_drops_and_counts_instead_of_blocking(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl.gz"
    t0 = trio.current_time()
    recorder = FrameRecorder(path, epoch_ms=EPOCH_MS, trio_now=t0, max_pending=5)
    async with trio.open_nursery() as nursery:
        await nursery.start(recorder.run)
        # No checkpoint in between: the writer cannot run, as when the disk is slow.
        for i in range(12):
            recorder.offer(t0 + i / 1000, f"frame {i}")
        stats = recorder.statistics()
        assert (stats.pending, stats.dropped, stats.peak_pending) == (5, 7, 5)
        recorder.close()
        recorder.offer(t0 + 1, "after close")
    assert [f.frame for f in read_recording(path)] == [f"frame {i}" for i in range(5)]
    stats = recorder.statistics()
    assert (stats.offered, stats.written, stats.dropped) == (13, 5, 8)


async def test_cancelling_the_writer_still_flushes_and_closes_the_file(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl.gz"
    t0 = trio.current_time()
    recorder = FrameRecorder(path, epoch_ms=EPOCH_MS, trio_now=t0)
    async with trio.open_nursery() as nursery:
        await nursery.start(recorder.run)
        for i in range(1000):
            recorder.offer(t0, f"frame {i}")
        nursery.cancel_scope.cancel()  # before the writer took anything
    frames = read_recording(path)  # a closed, complete gzip stream
    assert [f.frame for f in frames] == [f"frame {i}" for i in range(1000)]
    assert recorder.statistics().written == 1000


async def test_an_unwritable_path_fails_before_anything_is_offered(tmp_path: Path) -> None:
    recorder = FrameRecorder(tmp_path / "no" / "such" / "dir.gz", epoch_ms=0, trio_now=0.0)
    with pytest.RaisesGroup(FileNotFoundError):
        async with trio.open_nursery() as nursery:
            await nursery.start(recorder.run)


def test_max_pending_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_pending: expected an integer >= 1, got 0"):
        FrameRecorder(tmp_path / "x.gz", epoch_ms=0, trio_now=0.0, max_pending=0)

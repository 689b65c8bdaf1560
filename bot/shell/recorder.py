"""Recording the market channel to disk without ever slowing the feed down.

``MarketFeed`` calls its ``recorder`` synchronously for every frame it receives, from the
reader task, before it decodes the frame. That callback must therefore never block and never
touch the disk: ``FrameRecorder.offer`` only appends ``(received_at, raw)`` to an in-memory
buffer and, at most once per burst, wakes the writer task. The writer (``FrameRecorder.run``)
swaps the whole buffer out and hands it to a worker thread (``trio.to_thread.run_sync``), which
encodes the lines and writes them through gzip. The buffer is bounded (``max_pending`` frames):
when the disk falls that far behind, further frames are dropped and counted -- never waited
for -- and the count is reported (``statistics().dropped``), because a recording with a hole
replays into wrong books and whoever replays it must know.

The file is the format ``bot.sim.replay.read_recording`` reads: gzip JSON lines
``{"t_ms": <epoch ms>, "frame": <raw text>}`` in receive order. The feed stamps frames with
``trio.current_time()``; the recorder turns that into epoch milliseconds from one pair of
readings taken when it was made (``epoch_ms`` at ``trio_now``), so every ``t_ms`` comes from the
same monotonic clock and the receive times never go backwards, whatever the wall clock does.

Shutdown: ``close()`` tells the writer that no more frames will come; it writes what is still
buffered and closes the file, which ends ``run``. If ``run`` is cancelled instead, it still
writes what it holds and closes the file, shielded and bounded by ``final_flush_timeout_s``: a
batch already pulled from the buffer is never lost to a cancel (TRIO_IDIOMS.md section 5).

Synopsis::

    recorder = FrameRecorder(path, epoch_ms=int(time.time() * 1000), trio_now=trio.current_time())
    async with trio.open_nursery() as nursery:
        await nursery.start(recorder.run)
        try:
            ...  # MarketFeed(..., recorder=recorder.offer) runs here
        finally:
            recorder.close()        # the writer drains and ``run`` returns
    recorder.statistics().written
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import TYPE_CHECKING, Final

import attrs
import orjson
import trio

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["DEFAULT_MAX_PENDING", "FrameRecorder", "RecorderStatistics"]

DEFAULT_MAX_PENDING: Final = 100_000
"""Frames the buffer holds before dropping: tens of seconds of a busy feed, a few tens of MB."""


@attrs.frozen
class RecorderStatistics:
    """Counters of a ``FrameRecorder``.

    Attributes:
        offered: Frames handed to ``offer``.
        written: Frames written to the file (encoded and passed to gzip).
        dropped: Frames dropped because ``max_pending`` were already waiting for the disk.
        pending: Frames waiting in the buffer now.
        peak_pending: The most frames ever waiting at once (size ``max_pending`` from it).
        batches: Worker-thread writes.
        closed: ``close()`` was called (later frames are dropped and counted).
    """

    offered: int
    written: int
    dropped: int
    pending: int
    peak_pending: int
    batches: int
    closed: bool


def _encode(batch: Sequence[tuple[int, str]]) -> bytes:
    dumps = orjson.dumps
    return b"".join(dumps({"t_ms": t_ms, "frame": frame}) + b"\n" for t_ms, frame in batch)


class FrameRecorder:
    """A bounded, non-blocking frame buffer and the task that writes it to a gzip file.

    Args:
        path: The recording to create (replaced if it exists).
        epoch_ms: The wall clock, epoch milliseconds, at ``trio_now``.
        trio_now: ``trio.current_time()`` read together with ``epoch_ms``.
        max_pending: Frames buffered before further ones are dropped and counted.
        final_flush_timeout_s: Bound of the shielded final write when ``run`` is cancelled.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        epoch_ms: int,
        trio_now: float,
        max_pending: int = DEFAULT_MAX_PENDING,
        final_flush_timeout_s: float = 5.0,
    ) -> None:
        if max_pending < 1:
            raise ValueError(f"max_pending: expected an integer >= 1, got {max_pending}")
        self.path = Path(path)
        self._epoch_ms = epoch_ms
        self._trio_now = trio_now
        self._max_pending = max_pending
        self._final_flush_timeout_s = final_flush_timeout_s
        self._pending: list[tuple[int, str]] = []
        self._wake = trio.Event()
        self._closed = False
        self._offered = 0
        self._written = 0
        self._dropped = 0
        self._peak = 0
        self._batches = 0

    def offer(self, received_at: float, raw: str) -> None:
        """Buffer one frame (``MarketFeed``'s ``recorder`` callback). Sync; never blocks.

        ``received_at`` is the feed's ``trio.current_time()`` for the frame.
        """
        self._offered += 1
        pending = self._pending
        if self._closed or len(pending) >= self._max_pending:
            self._dropped += 1
            return
        t_ms = self._epoch_ms + int((received_at - self._trio_now) * 1000)
        pending.append((t_ms, raw))
        if len(pending) > self._peak:
            self._peak = len(pending)
        if len(pending) == 1:
            self._wake.set()

    def close(self) -> None:
        """No more frames: the writer writes what is buffered, closes the file and returns."""
        self._closed = True
        self._wake.set()

    def statistics(self) -> RecorderStatistics:
        """A frozen copy of the counters."""
        return RecorderStatistics(
            offered=self._offered,
            written=self._written,
            dropped=self._dropped,
            pending=len(self._pending),
            peak_pending=self._peak,
            batches=self._batches,
            closed=self._closed,
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Write buffered frames until ``close()``, then flush and close the file.

        ``task_status.started()`` once the file is open (so a bad path fails before the feed
        starts).

        Raises:
            OSError: The file could not be created or written.
        """
        out: gzip.GzipFile = await trio.to_thread.run_sync(gzip.open, self.path, "wb")
        batch: list[tuple[int, str]] = []
        try:
            task_status.started()
            while True:
                if not self._pending:
                    if self._closed:
                        break
                    self._wake = trio.Event()
                    await self._wake.wait()
                    continue
                batch, self._pending = self._pending, []
                # Not abandoned on cancel: a batch is either written whole (``_write`` empties
                # it) or not started, and then the ``finally`` below writes it.
                await trio.to_thread.run_sync(self._write, out, batch)
        finally:
            with trio.move_on_after(self._final_flush_timeout_s, shield=True):
                rest, self._pending = batch + self._pending, []
                if rest:
                    await trio.to_thread.run_sync(self._write, out, rest)
                await trio.to_thread.run_sync(out.close)

    def _write(self, out: gzip.GzipFile, batch: list[tuple[int, str]]) -> None:
        """Encode and write one batch, then empty it (worker thread).

        The trio task that handed the batch over waits for this call, so nothing else writes
        the batch or the counters meanwhile and no lock is needed.
        """
        out.write(_encode(batch))
        self._written += len(batch)
        self._batches += 1
        batch.clear()

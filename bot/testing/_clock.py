"""Make worker threads take no time under pytest-trio's autojump clock.

The bot does its disk I/O in worker threads (the log writer, the SQLite journal, ``trio.Path``):
``trio.to_thread.run_sync`` parks the calling task until the thread is done. To trio that task
is just blocked, which has two consequences in a test:

* when every task is blocked, the ``MockClock`` jumps to the next deadline (TRIO_IDIOMS.md
  section 7) -- and keeps jumping, deadline after deadline, for as long as the thread runs;
* while the thread runs, the other tasks keep going, so how far they get before the thread's
  result comes back depends on how fast the disk and the machine are.

Either way a scenario would not give the same result twice (measured before this guard: one
fill in five was still in flight at a virtual deadline it always met with the guard on, and a
strategy saw the feed's first "fresh" events on some runs and not on others).

The guard is a trio instrument that makes a thread *instantaneous*: after a task step that
started a worker thread (``trio.testing.active_thread_count()`` went up), it waits, right there
in the scheduler, until the thread has handed its result back (trio's ``run_sync_soon`` queue
grew), so no other task runs in between and the result is picked up at the scheduler's next
look for I/O -- the same number of scheduler rounds later on every run. As a backstop, when the
scheduler is about to go idle (the moment the clock would jump) while a thread is still active
(a slow disk past the wait's bound), it makes a *keeper* task runnable so that round is not idle
and virtual time stays put.

With no thread running it costs two counter reads per task step. Only the virtual clock needs
it: under the real clock a thread's duration is real time anyway.
"""

from __future__ import annotations

import time
from typing import Final

import trio
import trio.testing

__all__ = ["THREAD_WAIT_LIMIT_S", "ThreadGuard", "guard_threads"]

THREAD_WAIT_LIMIT_S: Final = 10.0
"""How long the scheduler is held for one thread (a hung disk) before the guard lets go; the
clock still does not jump while the thread is active."""

_POLL_S: Final = 0.0001
"""How long the guard sleeps, the GIL released, between two looks at the thread.

These are blocking ``time.sleep`` calls on the event loop's thread, on purpose: holding the
scheduler until the worker thread is done is the whole point of the guard. It is installed only
under pytest-trio's ``MockClock`` (``guard_threads``), never in a running bot."""


def _abort(_raise_cancel: object) -> trio.lowlevel.Abort:
    return trio.lowlevel.Abort.SUCCEEDED


class ThreadGuard(trio.abc.Instrument):
    """The instrument (see the module docstring).

    Attributes:
        threads: worker threads the guard waited for.
        holds: scheduler rounds it kept from being idle (the backstop).
    """

    def __init__(self) -> None:
        self._keeper: trio.lowlevel.Task | None = None
        self._parked = False
        self._threads_before = 0
        self._queued_before = 0
        self.threads = 0
        self.holds = 0

    async def keep(self) -> None:
        """Be the keeper until cancelled: the task the guard makes runnable so that a
        scheduler round is not idle (call it from the task that is to be the keeper)."""
        self._keeper = trio.lowlevel.current_task()
        try:
            while True:
                self._parked = True
                await trio.lowlevel.wait_task_rescheduled(_abort)
        finally:
            self._parked = False
            self._keeper = None

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self._threads_before = trio.testing.active_thread_count()
        self._queued_before = trio.lowlevel.current_statistics().run_sync_soon_queue_size

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        started = trio.testing.active_thread_count() - self._threads_before
        if started <= 0:
            return
        self.threads += started
        # Each thread posts its result with one run_sync_soon call when it is done.
        wanted = self._queued_before + started
        give_up = time.monotonic() + THREAD_WAIT_LIMIT_S
        while trio.lowlevel.current_statistics().run_sync_soon_queue_size < wanted:
            if time.monotonic() > give_up:
                return
            time.sleep(_POLL_S)
        # The worker queues the result, then writes trio's wake-up byte: let it finish that,
        # so the result is seen at the very next look for I/O.
        time.sleep(_POLL_S)

    def before_io_wait(self, timeout: float) -> None:
        keeper = self._keeper
        if timeout > 0 or keeper is None or not self._parked:
            return
        if not trio.testing.active_thread_count():
            return
        if trio.lowlevel.current_statistics().tasks_runnable:
            return
        self.holds += 1
        time.sleep(_POLL_S)
        self._parked = False
        trio.lowlevel.reschedule(keeper)


async def guard_threads(*, task_status: trio.TaskStatus[ThreadGuard | None]) -> None:
    """Install a ``ThreadGuard`` until cancelled, if the run's clock is a ``MockClock``.

    Use as ``guard = await nursery.start(guard_threads)``: the guard (this task is its keeper),
    or ``None`` under any other clock.
    """
    if not isinstance(trio.lowlevel.current_clock(), trio.testing.MockClock):
        task_status.started(None)
        await trio.sleep_forever()
    guard = ThreadGuard()
    trio.lowlevel.add_instrument(guard)
    try:
        task_status.started(guard)
        await guard.keep()
    finally:
        trio.lowlevel.remove_instrument(guard)

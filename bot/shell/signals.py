"""Graceful shutdown on SIGINT/SIGTERM (TRIO_IDIOMS.md section 3)."""

from __future__ import annotations

import signal

import trio
from loguru import logger


async def cancel_on_signals(
    scope: trio.CancelScope, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Cancel ``scope`` on the first SIGINT/SIGTERM, with the signal as the reason.

    Leaving the receiver block restores the default handling, so a second signal is a hard stop
    (SIGINT raises ``KeyboardInterrupt``, exit 130; SIGTERM kills the process). Main thread only.
    """
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for signum in signals:
            name = signal.Signals(signum).name
            logger.warning("{} received: shutting down (again to force)", name)
            scope.cancel(reason=f"{name} received")
            return

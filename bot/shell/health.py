"""Health figures: latency reservoirs, event-loop lag, and the periodic status line.

Everything here is cheap to update on the hot path (an append to a bounded deque) and computes
percentiles only when someone asks: the status line every few seconds, or ``polybot`` health JSON.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

import attrs
import trio
from loguru import logger

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from bot.shell.logsink import LogChannel


@attrs.frozen
class Percentiles:
    """Summary of a reservoir of samples (seconds unless stated)."""

    count: int
    p50: float
    p99: float
    max: float

    def as_ms(self) -> dict[str, float]:
        return {
            "count": self.count,
            "p50_ms": round(self.p50 * 1e3, 3),
            "p99_ms": round(self.p99 * 1e3, 3),
            "max_ms": round(self.max * 1e3, 3),
        }


@attrs.define(eq=False)
class Reservoir:
    """The most recent ``size`` samples of a figure, plus the count and maximum of all of them."""

    size: int = 4096
    _samples: deque[float] = attrs.field(init=False)
    total: int = attrs.field(default=0, init=False)
    peak: float = attrs.field(default=0.0, init=False)

    def __attrs_post_init__(self) -> None:
        self._samples = deque(maxlen=self.size)

    def add(self, value: float) -> None:
        self._samples.append(value)
        self.total += 1
        if value > self.peak:
            self.peak = value

    def summary(self) -> Percentiles:
        if not self._samples:
            return Percentiles(self.total, 0.0, 0.0, self.peak)
        ordered = sorted(self._samples)
        last = len(ordered) - 1
        return Percentiles(
            self.total, ordered[last // 2], ordered[min(last, (last * 99) // 100)], self.peak
        )


async def run_loop_lag_monitor(
    lag: Reservoir,
    *,
    interval_s: float = 0.05,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Measure how late the event loop wakes a sleeper: a stalled loop shows up here.

    Every ``interval_s`` the task sleeps until a deadline and records how far past it it woke.
    """
    task_status.started()
    deadline = trio.current_time() + interval_s
    while True:
        await trio.sleep_until(deadline)
        now = trio.current_time()
        lag.add(max(0.0, now - deadline))
        deadline = now + interval_s


async def run_status_line(
    gather: Callable[[], Mapping[str, Any]],
    render: Callable[[Mapping[str, Any]], str],
    log: LogChannel,
    *,
    interval_s: float,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Every ``interval_s``: one human status line (loguru) and one ``health`` JSON record."""
    task_status.started()
    while True:
        await trio.sleep(interval_s)
        figures = gather()
        log.offer({"kind": "health", **figures})
        logger.info("{}", render(figures))

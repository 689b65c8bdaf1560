"""Health figures: latency reservoirs, histograms, event-loop lag, and the periodic status line.

Everything here is cheap to update on the hot path (an append to a bounded deque, one bucket
increment) and computes percentiles only when someone asks: the status line every few seconds,
or ``polybot`` health JSON. The histograms are cumulative over the whole run, which the
reservoirs' percentiles (the recent samples only) cannot be: Prometheus needs them
(``bot.shell.metrics``) to compute rates and quantiles over any window it likes.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left
from collections import deque
from typing import TYPE_CHECKING, Any, Final, final

import attrs
import trio
from loguru import logger

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from bot.shell.logsink import LogChannel


LATENCY_BUCKETS_S: Final = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
"""Upper bounds (seconds) of the tick-to-decision and loop-lag histograms: 100 us (a fast
strategy) to 10 s (a stalled loop)."""


@attrs.frozen
class HistogramSnapshot:
    """A histogram at one moment, in Prometheus' cumulative form.

    Attributes:
        bounds: The buckets' upper bounds, ascending (``+Inf`` is implied after the last).
        cumulative: Observations ``<=`` each bound, then the total (``len(bounds) + 1`` items).
        sum: The sum of every observation.
        count: How many observations (equal to ``cumulative[-1]``).
    """

    bounds: tuple[float, ...]
    cumulative: tuple[int, ...]
    sum: float
    count: int


@final
class Histogram:
    """Fixed-bucket counts of every observation since start (never reset, never sampled).

    ``observe`` is one bisection and three additions, cheap enough for the feed's per-book
    refresh and the strategies' per-wake latency.
    """

    __slots__ = ("_counts", "bounds", "count", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        if not bounds or any(a >= b for a, b in itertools.pairwise(bounds)):
            raise ValueError(f"histogram bounds must be non-empty and ascending, got {bounds}")
        self.bounds = bounds
        self._counts = [0] * (len(bounds) + 1)  # the last one is the +Inf bucket
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        # bisect_left: a value equal to a bound belongs to that bound's bucket (``le``).
        self._counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def snapshot(self) -> HistogramSnapshot:
        return HistogramSnapshot(
            self.bounds, tuple(itertools.accumulate(self._counts)), self.sum, self.count
        )


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
    """The most recent ``size`` samples of a figure, plus the count and maximum of all of them,
    and a cumulative ``histogram`` of all of them (``buckets``: its upper bounds)."""

    size: int = 4096
    buckets: tuple[float, ...] = LATENCY_BUCKETS_S
    _samples: deque[float] = attrs.field(init=False)
    total: int = attrs.field(default=0, init=False)
    peak: float = attrs.field(default=0.0, init=False)
    histogram: Histogram = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._samples = deque(maxlen=self.size)
        self.histogram = Histogram(self.buckets)

    def add(self, value: float) -> None:
        self._samples.append(value)
        self.histogram.observe(value)
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

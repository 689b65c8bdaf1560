"""Shared pieces of the benchmarks: the result record and a timer."""

from __future__ import annotations

import gc
import time
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from collections.abc import Callable


@attrs.frozen
class Result:
    """One printed figure."""

    name: str
    value: float
    unit: str
    extra: dict[str, Any] = attrs.field(factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "unit": self.unit, **self.extra}


def best_rate(work: Callable[[], int], *, repeats: int = 5) -> float:
    """Items per second of ``work`` (which returns how many items it did), best of ``repeats``.

    Best-of-N is the usual choice for throughput on a shared machine: interference only ever
    makes a run slower, so the fastest run is the closest to what the code itself costs.
    """
    best = 0.0
    gc.collect()
    for _ in range(repeats):
        start = time.perf_counter()
        items = work()
        elapsed = time.perf_counter() - start
        best = max(best, items / elapsed)
    return best

"""Retry policy, pure: a jittered exponential backoff and a restart budget.

Both are values with no clock and no randomness of their own: the caller passes ``now`` (from
``trio.current_time()``) and a seeded ``random.Random``, so a test can predict every delay and
every give-up exactly (TRIO_IDIOMS.md section 2).

**Why full jitter.** After a venue outage every client reconnects at once; with a plain
exponential schedule they all retry in lock-step and knock the venue over again. Drawing each
delay uniformly from ``[0, min(max, base * 2**attempt))`` ("full jitter") spreads the herd over
the whole window and, for the same expected load, finishes sooner than "equal" or "decorrelated"
jitter. The cost is that a single delay may be tiny; that is fine, because the *expected* delay
still doubles per attempt and the restart budget below bounds the total.

**Why a restart budget.** Backoff alone retries forever, so an endpoint that is permanently
broken (a revoked key, a moved URL, a region block) becomes a quiet infinite loop. The budget
allows at most ``max_failures`` failures within any ``window_s`` seconds; one more and the
caller escalates (raises to the root nursery) so the failure is visible and the process manager
can decide. Failures older than the window are forgotten, so a service that drops once an hour
for years never exhausts it.

Synopsis::

    backoff = Backoff(base_s=1.0, max_s=30.0)
    budget = RestartBudget(max_failures=10, window_s=300.0)
    attempt = 0
    while True:
        try:
            await run_session()
        except* RECONNECTABLE:
            pass
        now = trio.current_time()
        budget = budget.record_failure(now)
        if budget.exhausted(now):
            raise FeedGaveUp(budget.describe(now))
        await trio.sleep(backoff.delay(attempt, rng))
        attempt += 1
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Final

import attrs

if TYPE_CHECKING:
    import random

__all__ = ["Backoff", "RestartBudget"]

_MAX_EXPONENT: Final = 1000
"""``2.0 ** 1000`` is still a finite float; beyond it the cap is ``max_s`` anyway."""


def _positive(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{attribute.name} must be a finite number > 0, got {value!r}")


@attrs.frozen
class Backoff:
    """Exponential backoff with full jitter.

    Attributes:
        base_s: The cap of the first delay (attempt 0), in seconds; > 0.
        max_s: The largest cap, in seconds; >= ``base_s``.
    """

    base_s: float = attrs.field(validator=_positive)
    max_s: float = attrs.field(validator=_positive)

    def __attrs_post_init__(self) -> None:
        if self.max_s < self.base_s:
            raise ValueError(f"max_s ({self.max_s}) must be >= base_s ({self.base_s})")

    def cap(self, attempt: int) -> float:
        """The upper bound of the delay for ``attempt``: ``min(max_s, base_s * 2**attempt)``.

        Raises:
            ValueError: ``attempt`` is negative.
        """
        if attempt < 0:
            raise ValueError(f"attempt must be >= 0, got {attempt}")
        # Clamp the exponent: a float power past ~2**1023 overflows, and any realistic base
        # reaches max_s long before that.
        return min(self.max_s, self.base_s * 2.0 ** min(attempt, _MAX_EXPONENT))

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before retry number ``attempt`` (0 for the first retry).

        Drawn uniformly from ``[0, cap(attempt)]`` with ``rng``, so a seeded generator makes the
        schedule reproducible.

        Raises:
            ValueError: ``attempt`` is negative.
        """
        return rng.uniform(0.0, self.cap(attempt))


@attrs.frozen
class RestartBudget:
    """At most ``max_failures`` failures within any ``window_s`` seconds.

    Immutable: ``record_failure`` returns the next state, so a task keeps it in a local variable
    and nothing is shared. Only the failures still inside the window are kept (at most
    ``max_failures + 1`` of them), so the state stays small however long the process runs.

    A failure recorded at ``t`` counts while ``now - t < window_s``. ``now`` must not go
    backwards between calls (``trio.current_time()`` never does).

    Attributes:
        max_failures: Failures tolerated within the window; one more exhausts the budget. >= 1.
        window_s: The sliding window, in seconds; > 0.
        failures: Times of the recent failures, oldest first (normally left to its default).
    """

    max_failures: int
    window_s: float = attrs.field(validator=_positive)
    failures: tuple[float, ...] = ()

    def __attrs_post_init__(self) -> None:
        if self.max_failures < 1:
            raise ValueError(f"max_failures must be >= 1, got {self.max_failures}")

    def _recent(self, now: float) -> tuple[float, ...]:
        return tuple(t for t in self.failures if now - t < self.window_s)

    def record_failure(self, now: float) -> RestartBudget:
        """The budget after one more failure at ``now``."""
        # Keeping max_failures + 1 entries is enough to answer ``exhausted``; older ones can
        # only leave the window before the newer ones do.
        recent = (*self._recent(now), now)[-(self.max_failures + 1) :]
        return attrs.evolve(self, failures=recent)

    def count(self, now: float) -> int:
        """Failures inside the window ending at ``now``."""
        return len(self._recent(now))

    def exhausted(self, now: float) -> bool:
        """True when more than ``max_failures`` failures fall in the window ending at ``now``."""
        return self.count(now) > self.max_failures

    def remaining(self, now: float) -> int:
        """Failures that may still happen at ``now`` before the budget is exhausted (>= 0)."""
        return max(0, self.max_failures - self.count(now))

    def describe(self, now: float) -> str:
        """A one-line account for an error message, e.g. ``11 failures within 300 s (max 10)``."""
        return f"{self.count(now)} failures within {self.window_s:g} s (max {self.max_failures})"

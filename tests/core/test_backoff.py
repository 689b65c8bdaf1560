"""Backoff delays stay within their full-jitter bounds; the restart budget is a sliding window."""

from __future__ import annotations

import random
import statistics

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.backoff import Backoff, RestartBudget

# --- Backoff -----------------------------------------------------------------------------------


def test_cap_doubles_from_base_and_stops_at_max() -> None:
    backoff = Backoff(base_s=0.5, max_s=10.0)
    assert [backoff.cap(n) for n in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_huge_attempts_do_not_overflow() -> None:
    backoff = Backoff(base_s=1.0, max_s=30.0)
    assert backoff.cap(10**6) == 30.0
    assert 0.0 <= backoff.delay(10**6, random.Random(1)) <= 30.0


@given(
    attempt=st.integers(min_value=0, max_value=5_000),
    seed=st.integers(min_value=0, max_value=2**32),
    base=st.floats(min_value=1e-3, max_value=10.0),
    extra=st.floats(min_value=0.0, max_value=100.0),
)
def test_delay_is_always_within_zero_and_cap(
    attempt: int, seed: int, base: float, extra: float
) -> None:
    backoff = Backoff(base_s=base, max_s=base + extra)
    delay = backoff.delay(attempt, random.Random(seed))
    assert 0.0 <= delay <= backoff.cap(attempt) <= backoff.max_s


def test_delays_spread_over_the_whole_window() -> None:
    """Full jitter: uniform on [0, cap], so mean ~ cap/2 and both ends of the range are used."""
    backoff = Backoff(base_s=1.0, max_s=8.0)
    rng = random.Random(42)
    samples = [backoff.delay(3, rng) for _ in range(20_000)]
    assert min(samples) >= 0.0
    assert max(samples) <= 8.0
    assert statistics.fmean(samples) == pytest.approx(4.0, abs=0.1)
    assert min(samples) < 0.05
    assert max(samples) > 7.95
    # Each quarter of the window gets about a quarter of the draws.
    quarters = [sum(1 for s in samples if q * 2 <= s < (q + 1) * 2) for q in range(4)]
    assert all(abs(n - 5_000) < 400 for n in quarters), quarters


def test_same_seed_same_schedule() -> None:
    backoff = Backoff(base_s=1.0, max_s=30.0)
    first = [backoff.delay(n, random.Random(7)) for n in range(10)]
    second = [backoff.delay(n, random.Random(7)) for n in range(10)]
    assert first == second


def test_delay_matches_uniform_draw_of_the_injected_rng() -> None:
    backoff = Backoff(base_s=1.0, max_s=30.0)
    expected = random.Random(5).uniform(0.0, 4.0)
    assert backoff.delay(2, random.Random(5)) == expected


def test_negative_attempt_is_rejected() -> None:
    with pytest.raises(ValueError, match="attempt must be >= 0"):
        Backoff(base_s=1.0, max_s=2.0).delay(-1, random.Random(0))


@pytest.mark.parametrize(
    ("base", "maximum", "message"),
    [
        (0.0, 1.0, "base_s must be"),
        (-1.0, 1.0, "base_s must be"),
        (float("nan"), 1.0, "base_s must be"),
        (1.0, float("inf"), "max_s must be"),
        (2.0, 1.0, "max_s .* must be >= base_s"),
    ],
)
def test_invalid_backoff(base: float, maximum: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Backoff(base_s=base, max_s=maximum)


# --- RestartBudget -----------------------------------------------------------------------------


def test_budget_allows_max_failures_then_is_exhausted() -> None:
    budget = RestartBudget(max_failures=3, window_s=60.0)
    for t in (0.0, 1.0, 2.0):
        budget = budget.record_failure(t)
        assert not budget.exhausted(t)
    assert budget.remaining(2.0) == 0
    budget = budget.record_failure(3.0)
    assert budget.exhausted(3.0)
    assert budget.describe(3.0) == "4 failures within 60 s (max 3)"


def test_old_failures_leave_the_window() -> None:
    budget = RestartBudget(max_failures=2, window_s=10.0)
    budget = budget.record_failure(0.0).record_failure(5.0)
    assert budget.count(5.0) == 2
    # The failure at 0 counts while now - 0 < 10: at exactly 10 it has left.
    assert budget.count(9.999) == 2
    assert budget.count(10.0) == 1
    budget = budget.record_failure(10.0)
    assert not budget.exhausted(10.0)
    assert budget.remaining(10.0) == 0


def test_slow_steady_failures_never_exhaust() -> None:
    budget = RestartBudget(max_failures=1, window_s=60.0)
    for hour in range(1_000):
        now = hour * 3_600.0
        budget = budget.record_failure(now)
        assert not budget.exhausted(now)
    assert len(budget.failures) == 1


def test_state_is_bounded_and_immutable() -> None:
    empty = RestartBudget(max_failures=3, window_s=1e9)
    budget = empty
    for t in range(100):
        budget = budget.record_failure(float(t))
    assert empty.failures == ()
    assert budget.failures == (96.0, 97.0, 98.0, 99.0)
    assert budget.exhausted(99.0)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        budget.failures = ()  # type: ignore[misc]


def test_burst_exhausts_budget_even_after_quiet_period() -> None:
    budget = RestartBudget(max_failures=2, window_s=30.0)
    budget = budget.record_failure(0.0)
    budget = budget.record_failure(100.0).record_failure(101.0).record_failure(102.0)
    assert budget.count(102.0) == 3
    assert budget.exhausted(102.0)
    assert not budget.exhausted(200.0)


@pytest.mark.parametrize(("failures", "window"), [(0, 1.0), (1, 0.0), (1, float("nan"))])
def test_invalid_budget(failures: int, window: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        RestartBudget(max_failures=failures, window_s=window)

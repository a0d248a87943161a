"""The SMPP link's throughput limiter on a simulated clock: never more than L sends in any
one-second window, and close to L per second when there is always something to send."""

from __future__ import annotations

import bisect

import pytest

from mmsq.adapters.smpp_client import PacedLimiter


def greedy_sends(rate: float, seconds: float, step: float, jitter_every: int = 0) -> list[float]:
    """Send whenever allowed, polling every ``step`` seconds (with an occasional stall)."""
    limiter = PacedLimiter(rate)
    sends: list[float] = []
    t, n = 0.0, 0
    while t < seconds:
        while limiter.take(t):
            sends.append(t)
        n += 1
        t += step * (25 if jitter_every and n % jitter_every == 0 else 1)
    return sends


def max_in_one_second(times: list[float]) -> int:
    return max(bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times))


@pytest.mark.parametrize("rate", [1.0, 7.5, 200.0, 2500.0])
def test_never_more_than_the_limit_in_any_second(rate: float) -> None:
    sends = greedy_sends(rate, 20.0, 0.0005, jitter_every=97)
    assert max_in_one_second(sends) <= int(rate)


def test_sustains_the_limit_within_one_percent() -> None:
    sends = greedy_sends(200.0, 60.0, 0.0005)
    achieved = len(sends) / 60.0
    assert 0.99 * 200 <= achieved <= 200


def test_wait_says_when_the_next_send_is_allowed() -> None:
    limiter = PacedLimiter(10.0, margin=0.0, burst=1)
    assert limiter.take(0.0)
    assert not limiter.take(0.05)
    assert limiter.wait(0.05) == pytest.approx(0.05)
    assert limiter.take(0.1)

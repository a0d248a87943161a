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


def test_sends_written_late_are_counted_from_when_they_were_written() -> None:
    """Ten sends taken over the first second and written only at 1.5 s (the thread was not
    scheduled): the next send waits until 1.5 s + horizon, so that no second on the wire holds
    more than the limit."""
    limiter = PacedLimiter(10.0, margin=0.0, burst=1)
    for i in range(10):
        assert limiter.take(i * 0.1)
    limiter.written(10, 1.5)
    assert not limiter.take(1.0)
    assert limiter.wait(1.0) == pytest.approx(1.5)
    assert limiter.take(2.5)


def test_greedy_sender_with_late_writes_keeps_the_limit_on_the_wire() -> None:
    """Sends are taken as allowed but written in batches after random delays: counted at their
    write times, no second holds more than the limit."""
    import random

    rng = random.Random(7)
    limiter = PacedLimiter(200.0)
    wire: list[float] = []
    t = 0.0
    while t < 20.0:
        taken = 0
        while limiter.take(t):
            taken += 1
        t += 0.0005 if rng.random() < 0.998 else rng.uniform(0.01, 0.08)  # a late write
        if taken:
            limiter.written(taken, t)
            wire.extend([t] * taken)
    assert max_in_one_second(wire) <= 200
    assert len(wire) / 20.0 >= 0.95 * 200  # stalls this frequent cost a little capacity

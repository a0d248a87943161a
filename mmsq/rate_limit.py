"""Per-caller token buckets: a steady rate per minute with a burst allowance.

``RateLimiter`` keeps its buckets in the process (the daemon, ``mmsq api`` with one worker);
``mmsq.adapters.shared_rate_limit.SharedRateLimiter`` keeps them in a file that the worker
processes of ``mmsq api --workers N`` share, so that a token gets its limit once per host.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

from mmsq.ports import Clock

__all__ = ["RateLimiter", "RateLimits", "RateVerdict", "take_token"]


@dataclass(frozen=True, slots=True)
class RateVerdict:
    allowed: bool
    retry_after_s: float = 0.0
    remaining: int = 0


def take_token(
    tokens: float, at: float, now: float, rate_per_s: float, burst: float
) -> tuple[float, RateVerdict]:
    """One check of a token bucket that held ``tokens`` at ``at``: what it holds at ``now``
    (after refilling and taking one token if there is one), and the verdict."""
    tokens = min(burst, tokens + max(0.0, now - at) * rate_per_s)
    if tokens >= 1.0:
        return tokens - 1.0, RateVerdict(True, 0.0, int(tokens - 1.0))
    return tokens, RateVerdict(False, (1.0 - tokens) / rate_per_s, 0)


class RateLimits(Protocol):
    """Per-caller limits: take one request's token for ``key``, or say when there is one."""

    def check(self, key: str) -> RateVerdict: ...


class RateLimiter:
    """Token bucket per key: ``per_minute`` tokens added per minute, at most ``burst`` held."""

    def __init__(self, per_minute: int, burst: int, clock: Clock) -> None:
        if per_minute <= 0 or burst <= 0:
            raise ValueError("rate and burst must be positive")
        self._rate = per_minute / 60.0
        self._burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    def check(self, key: str) -> RateVerdict:
        """Take one token for ``key`` if there is one; else say how long until there is."""
        now = self._clock.now().timestamp()
        with self._lock:
            tokens, at = self._buckets.get(key, (self._burst, now))
            tokens, verdict = take_token(tokens, at, now, self._rate, self._burst)
            self._buckets[key] = (tokens, now)
            return verdict

"""Rate limits shared by the worker processes of `mmsq api` through one mapped file."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mmsq.adapters.shared_rate_limit import SLOTS, SharedRateLimiter
from mmsq.bootstrap import SystemClock
from tests.api_fakes import FixedClock


def test_two_limiters_on_one_file_share_each_bucket(tmp_path: Path) -> None:
    clock = FixedClock()
    path = tmp_path / "limits.bin"
    a = SharedRateLimiter(path, per_minute=60, burst=4, clock=clock)
    b = SharedRateLimiter(path, per_minute=60, burst=4, clock=clock)
    try:
        taken = [a.check("agent:1").allowed, b.check("agent:1").allowed]
        taken += [a.check("agent:1").allowed, b.check("agent:1").allowed]
        assert taken == [True] * 4
        refused = b.check("agent:1")
        assert not refused.allowed
        assert 0 < refused.retry_after_s <= 1.0
        assert not a.check("agent:1").allowed
        assert a.check("agent:2").allowed  # per key
        clock.advance(1.0)  # one token a second
        assert b.check("agent:1").allowed
        assert not a.check("agent:1").allowed
    finally:
        a.close()
        b.close()


def test_a_restart_keeps_the_buckets_and_new_limits_reset_them(tmp_path: Path) -> None:
    clock = FixedClock()
    path = tmp_path / "limits.bin"
    first = SharedRateLimiter(path, per_minute=60, burst=2, clock=clock)
    assert [first.check("k").allowed for _ in range(3)] == [True, True, False]
    first.close()
    again = SharedRateLimiter(path, per_minute=60, burst=2, clock=clock)
    assert not again.check("k").allowed  # same limits: the spent burst is remembered
    again.close()
    changed = SharedRateLimiter(path, per_minute=120, burst=2, clock=clock)
    assert changed.check("k").allowed  # other limits: every bucket starts full
    changed.close()


def test_slots_of_refilled_buckets_are_reused(tmp_path: Path) -> None:
    clock = FixedClock()
    limiter = SharedRateLimiter(tmp_path / "limits.bin", per_minute=60, burst=1, clock=clock)
    try:
        for i in range(SLOTS):  # every slot taken, every bucket empty
            assert limiter.check(f"agent:{i}").allowed
        assert not limiter.check("agent:7").allowed
        clock.advance(1.0)  # all full again: their slots are free for new keys
        assert limiter.check("newcomer").allowed
        assert not limiter.check("newcomer").allowed
        assert limiter.check("agent:7").allowed
    finally:
        limiter.close()


def test_rejects_a_zero_rate(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="positive"):
        SharedRateLimiter(tmp_path / "limits.bin", per_minute=0, burst=1, clock=FixedClock())


_TAKE = """
import sys
from pathlib import Path
from mmsq.adapters.shared_rate_limit import SharedRateLimiter
from mmsq.bootstrap import SystemClock
limiter = SharedRateLimiter(Path(sys.argv[1]), per_minute=1, burst=100, clock=SystemClock())
sys.stdin.readline()  # all start together
print(sum(limiter.check("agent:1").allowed for _ in range(60)))
"""


def test_processes_and_threads_racing_take_exactly_the_burst(tmp_path: Path) -> None:
    path = tmp_path / "limits.bin"
    local = SharedRateLimiter(path, per_minute=1, burst=100, clock=SystemClock())
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _TAKE, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    counts: list[int] = []

    def take() -> None:
        counts.append(sum(local.check("agent:1").allowed for _ in range(60)))

    threads = [threading.Thread(target=take) for _ in range(2)]
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    totals = [int(p.communicate(timeout=60)[0]) for p in procs]
    local.close()
    # 300 attempts within seconds at one token a minute: the burst, and at most one refill.
    assert 100 <= sum(totals) + sum(counts) <= 101
    assert all(0 <= n <= 60 for n in totals)

"""Per-caller token buckets shared by the API's worker processes on one host.

``mmsq api`` with ``[api] workers`` above 1 runs several processes behind one listening
socket; a caller's requests land on any of them. Each worker maps the same small file
(``data_dir/api-rate-limits.bin``) and keeps the buckets there, so a token gets its limit
once, not once per worker. The file holds fixed slots (key hash, tokens, last update) in open
addressing; a check takes the file lock (``flock``, between processes) and a thread lock
(between the threads of one process) for a few microseconds.

A slot whose bucket has refilled completely is as good as empty and is reused for a new key,
so the table never fills with old callers. The file is state, not data: deleting it between
runs only forgets who used part of their burst.
"""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import struct
import threading
from pathlib import Path

from mmsq.ports import Clock
from mmsq.rate_limit import RateVerdict, take_token

__all__ = ["SharedRateLimiter"]

_MAGIC = b"mmsqrl01"
_HEADER = struct.Struct("<8sdd")  # magic, tokens per second, burst
_SLOT = struct.Struct("<Qdd")  # key hash (0: never used), tokens, last update (epoch s)
#: Slots in the file (384 KiB): callers are agents, hundreds at most.
SLOTS = 16384


def _hash(key: str) -> int:
    h = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")
    return h or 1  # 0 marks a slot never used


class SharedRateLimiter:
    """Token bucket per key, ``per_minute`` tokens a minute and at most ``burst`` held, kept
    in the file ``path`` that every worker process of one server maps."""

    def __init__(self, path: Path, per_minute: int, burst: int, clock: Clock) -> None:
        if per_minute <= 0 or burst <= 0:
            raise ValueError("rate and burst must be positive")
        self._rate = per_minute / 60.0
        self._burst = float(burst)
        self._full_after_s = self._burst / self._rate  # an idle bucket is full again by then
        self._clock = clock
        self._lock = threading.Lock()
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        size = _HEADER.size + SLOTS * _SLOT.size
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                if os.fstat(self._fd).st_size != size:
                    os.ftruncate(self._fd, 0)
                    os.ftruncate(self._fd, size)
                self._map = mmap.mmap(self._fd, size)
                magic, rate, held = _HEADER.unpack_from(self._map, 0)
                if (magic, rate, held) != (_MAGIC, self._rate, self._burst):
                    # A new file, or the limits changed: start every bucket full.
                    self._map[:] = bytes(size)
                    _HEADER.pack_into(self._map, 0, _MAGIC, self._rate, self._burst)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        except BaseException:
            os.close(self._fd)
            raise

    def check(self, key: str) -> RateVerdict:
        """Take one token for ``key`` if there is one; else say how long until there is."""
        h = _hash(key)
        now = self._clock.now().timestamp()
        with self._lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                offset, tokens, at = self._slot(h, now)
                tokens, verdict = take_token(tokens, at, now, self._rate, self._burst)
                _SLOT.pack_into(self._map, offset, h, tokens, now)
                return verdict
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _slot(self, h: int, now: float) -> tuple[int, float, float]:
        """(offset, tokens, last update) of ``h``'s slot; a new key gets a full bucket in a
        never-used slot, else in one whose bucket is full again, else in the stalest."""
        start = h % SLOTS
        reusable: int | None = None
        stalest, stalest_at = 0, float("inf")
        for i in range(SLOTS):
            offset = _HEADER.size + ((start + i) % SLOTS) * _SLOT.size
            held, tokens, at = _SLOT.unpack_from(self._map, offset)
            if held == h:
                return offset, tokens, at
            if held == 0:  # the end of the probe chain: ``h`` is not in the table
                return (offset if reusable is None else reusable), self._burst, now
            if reusable is None and now - at >= self._full_after_s:
                reusable = offset
            if at < stalest_at:
                stalest, stalest_at = offset, at
        return (stalest if reusable is None else reusable), self._burst, now

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)

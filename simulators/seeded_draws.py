"""Reproducible random draws keyed by (seed, subscriber, day, sequence number), not by call order.

A splitmix64 hash turns such a key into uniforms, with a scalar twin (Python ints, for one
message) and a vectorised twin (numpy uint64, for a whole edition) that give identical numbers.
Keying draws this way makes a subscriber's outcomes independent of the order in which the
simulators' threads ask about other subscribers.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["EventKeys", "WeightedPick", "mix64", "mix64_array", "unit", "unit_array"]

_M64 = (1 << 64) - 1
_INV53 = 2.0**-53


def mix64(x: int) -> int:
    """splitmix64 finaliser on a Python int (the scalar twin of ``mix64_array``)."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def mix64_array(x: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """splitmix64 finaliser on a uint64 array (wraps modulo 2**64 like ``mix64``)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def unit(h: int, k: int) -> float:
    """The k-th uniform in [0, 1) drawn from key ``h``."""
    return (mix64(h + k) >> 11) * _INV53


def unit_array(h: NDArray[np.uint64], k: int) -> NDArray[np.float64]:
    return (mix64_array(h + np.uint64(k)) >> np.uint64(11)).astype(np.float64) * _INV53


class EventKeys:
    """Keys for events of one kind (``salt``) under one seed."""

    def __init__(self, seed: int, salt: int) -> None:
        self._base = mix64(mix64((seed & _M64) ^ 0x5EED5EED) ^ salt)

    def key(self, subscriber: int, day: int, seq: int) -> int:
        return mix64(mix64(self._base ^ subscriber) ^ ((day << 32) | seq))

    def keys(
        self, subscribers: NDArray[np.int64], day: int, seq: NDArray[np.uint32]
    ) -> NDArray[np.uint64]:
        h = mix64_array(np.uint64(self._base) ^ subscribers.astype(np.uint64))
        return mix64_array(h ^ (np.uint64(day << 32) | seq.astype(np.uint64)))


@dataclass(frozen=True)
class WeightedPick:
    """Weighted choice among ids by one uniform, scalar and vectorised alike."""

    ids: NDArray[np.int32]
    cum: NDArray[np.float64]
    id_list: tuple[int, ...]
    cum_list: tuple[float, ...]

    @classmethod
    def of(cls, ids: Sequence[int], weights: Sequence[float]) -> WeightedPick:
        w = np.asarray(weights, dtype=np.float64)
        cum = np.cumsum(w) / w.sum()
        arr = np.asarray(ids, dtype=np.int32)
        return cls(arr, cum, tuple(arr.tolist()), tuple(cum.tolist()))

    def one(self, u: float) -> int:
        return self.id_list[min(bisect_right(self.cum_list, u), len(self.id_list) - 1)]

    def many(self, u: NDArray[np.float64]) -> NDArray[np.int32]:
        pos = np.minimum(np.searchsorted(self.cum, u, side="right"), len(self.ids) - 1)
        return self.ids[pos]

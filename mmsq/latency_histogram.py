"""Percentiles of submit-to-done latency read from a binned histogram.

The store keeps, per (day, edition), how many delivered events took up to each edge of
``mmsq.aggregates.LATENCY_EDGES_S`` seconds. A percentile is computed the way PostgreSQL's
``percentile_cont`` would on the raw latencies, with each latency replaced by an estimate:
the ``k`` latencies of bin ``(lo, hi]`` are taken as evenly spread, the last one at ``hi``.

Resolution: an estimate is never further from the true latency than the width of its bin,
so a percentile is off by at most that much: 1 s below 10 s, 12.5% of the value from 10 s to
one hour, 50% above; latencies over a day (the open last bin) count as exactly one day.
Values that fall on an edge (whole minutes, for example) come out exact.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["histogram_percentiles"]


def histogram_percentiles(
    counts: Sequence[int] | npt.NDArray[np.int64],
    edges: Sequence[int],
    percentiles: Sequence[float],
) -> list[float | None]:
    """``percentiles`` (0..1) of the latencies counted in ``counts`` (one per bin: ``len(edges)
    + 1``, the last one open-ended); None for each when nothing was counted."""
    c = np.asarray(counts, dtype=np.int64)
    if len(c) != len(edges) + 1:
        raise ValueError(f"{len(c)} counts for {len(edges)} edges: expected {len(edges) + 1}")
    n = int(c.sum())
    if n == 0:
        return [None for _ in percentiles]
    hi = np.asarray([*edges, edges[-1]], dtype=np.float64)
    lo = np.asarray([0, *edges], dtype=np.float64)
    cum = np.cumsum(c)

    def ranked(r: int) -> float:
        """The estimate of the r-th smallest latency (0-based)."""
        b = int(np.searchsorted(cum, r, side="right"))
        j = r - (int(cum[b - 1]) if b else 0)
        return float(lo[b] + (j + 1) / c[b] * (hi[b] - lo[b]))

    out: list[float | None] = []
    for p in percentiles:
        h = p * (n - 1)
        k = int(h)
        low = ranked(k)
        high = ranked(k + 1) if k + 1 < n else low
        out.append(low + (h - k) * (high - low))
    return out

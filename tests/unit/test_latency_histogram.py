"""Latency percentiles read from the stored histogram."""

from __future__ import annotations

import numpy as np
import pytest

from mmsq.aggregates import LATENCY_EDGES_S
from mmsq.latency_histogram import histogram_percentiles
from mmsq.rules_loader import load_rules

P = (0.5, 0.9, 0.99)


def histogram(latencies: list[float]) -> np.ndarray:
    bins = np.searchsorted(np.asarray(LATENCY_EDGES_S), latencies, side="left")
    return np.bincount(bins, minlength=len(LATENCY_EDGES_S) + 1)


def test_latencies_on_edges_come_out_exact_like_percentile_cont() -> None:
    got = histogram_percentiles(histogram([60, 120, 300]), LATENCY_EDGES_S, P)
    assert got == pytest.approx([120.0, 264.0, 296.4])


def test_nothing_counted_has_no_percentiles() -> None:
    assert histogram_percentiles(histogram([]), LATENCY_EDGES_S, P) == [None, None, None]


def test_an_estimate_stays_within_its_bin_width() -> None:
    rng = np.random.default_rng(3)
    latencies = np.round(rng.lognormal(np.log(45), 0.9, 5000), 1)
    exact = np.percentile(latencies, [50, 90, 99])
    got = histogram_percentiles(histogram(list(latencies)), LATENCY_EDGES_S, P)
    for e, g in zip(exact, got, strict=True):
        assert g is not None
        assert abs(g - e) <= 0.125 * e  # 10 s to 1 h: edges at most 12.5% apart


def test_slower_than_a_day_counts_as_one_day() -> None:
    got = histogram_percentiles(histogram([100_000, 200_000]), LATENCY_EDGES_S, (0.5,))
    assert got == [86400.0]


def test_counts_must_match_the_edges() -> None:
    with pytest.raises(ValueError, match="expected"):
        histogram_percentiles([1, 2], LATENCY_EDGES_S, P)


def test_shipped_rules_make_every_delivered_code_final() -> None:
    """Aggregates and edition counters count delivered-cause events as delivered; the weekly
    report's "delivered" means final and delivered. The two agree while no rule makes a
    delivered code non-final."""
    rules = load_rules().status_codes
    for name, ns in rules.namespaces.items():
        for entry in (*ns.codes, *ns.ranges):
            if entry.cause.value == "delivered":
                assert entry.final, f"{name}: a delivered code that is not final"

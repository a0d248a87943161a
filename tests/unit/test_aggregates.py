"""Counting per subscriber-day, per edition-day and per device (pure numpy/pandas)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mmsq.aggregates import (
    COUNT_COLUMNS,
    LATENCY_EDGES_S,
    cause_codes,
    daily_counts,
    edition_counts,
    latest_devices,
    merge_counts,
)
from mmsq.ingest import AGGREGATE_COUNTS


def test_count_columns_are_the_ingest_aggregate_counts() -> None:
    assert COUNT_COLUMNS == AGGREGATE_COUNTS


def test_daily_counts_group_by_subscriber_and_day() -> None:
    msisdn = np.array([2, 1, 2, 2], dtype=np.int64)
    day = np.array([10, 10, 10, 11], dtype=np.int32)
    cause = cause_codes(pd.Series(["delivered", "not_fetched", "not_fetched", "pending"]))
    final = np.array([True, True, True, False])
    notify_ok = np.array([True, True, False, False])
    ts = np.array([5, 7, 9, 100], dtype=np.int64)
    got = daily_counts(msisdn, day, cause, final, notify_ok, ts)
    assert got[["msisdn", "day"]].values.tolist() == [[1, 10], [2, 10], [2, 11]]
    assert got["attempts"].tolist() == [1, 2, 1]
    assert got["final"].tolist() == [1, 2, 0]
    assert got["delivered"].tolist() == [0, 1, 0]
    assert got["notified_not_fetched"].tolist() == [1, 0, 0]
    assert got["c_not_fetched"].tolist() == [1, 1, 0]
    assert got["c_pending"].tolist() == [0, 0, 1]
    assert got["last_ts"].tolist() == [7, 9, 100]


def test_unknown_cause_names_count_as_unknown() -> None:
    assert cause_codes(pd.Series(["sunspots"])).tolist() == [len(COUNT_COLUMNS) - 5]


def test_merge_counts_adds_counters_and_keeps_the_newest_time() -> None:
    old = pd.DataFrame({"msisdn": [1, 3], "attempts": [1, 2], "last_ts": [10, 30]})
    new = pd.DataFrame({"msisdn": [2, 3], "attempts": [5, 1], "last_ts": [20, 25]})
    got = merge_counts(old, new)
    assert got.values.tolist() == [[1, 1, 10], [2, 5, 20], [3, 3, 30]]


def test_latest_devices_picks_the_newest_event_with_an_imei() -> None:
    msisdn = np.array([5, 5, 5, 3, 4], dtype=np.int64)
    has = np.array([True, True, False, True, False])
    ts = np.array([1, 9, 20, 4, 4], dtype=np.int64)
    assert latest_devices(msisdn, has, ts).tolist() == [3, 1]


def test_edition_counts_histogram_delivered_latency() -> None:
    cause = cause_codes(pd.Series(["delivered", "delivered", "delivered", "not_fetched"]))
    got = edition_counts(
        np.array([1, 1, 1, 1], dtype=np.int32),
        pd.Series(["am", "am", None, "am"], dtype="string"),
        cause,
        np.ones(4, dtype=bool),
        np.zeros(4, dtype=bool),
        np.array([10, 100_000, 31, 5], dtype=np.int64),
    ).set_index("edition")
    assert got.loc["am", "attempts"] == 3
    assert got.loc["am", "latency_n"] == 2
    assert got.loc["am", f"lat_{LATENCY_EDGES_S.index(10)}"] == 1  # 10 s: the bin <= 10 s
    assert got.loc["am", f"lat_{len(LATENCY_EDGES_S)}"] == 1  # slower than a day
    assert got.loc["", f"lat_{LATENCY_EDGES_S.index(33)}"] == 1  # 31 s: the bin (30, 33]

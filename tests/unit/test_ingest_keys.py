"""Event keys, segment and recent-index order, newline counts: the faster computations give
what the plain ones give."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mmsq.adapters.cdr_csv import _count_newlines
from mmsq.adapters.recent_blocks import RECENT_PARTS, _partition_order
from mmsq.adapters.sql_ingest_session import _json_ints, _segment_order, _stable_order_by
from mmsq.ingest import _event_keys
from mmsq.text_hash import hash_text


def _frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "m": pd.Series([f"+86138{v:08d}" for v in rng.integers(0, 500, n)], dtype="string"),
            "i": pd.Series([f"id-{v}" for v in rng.permutation(n)], dtype="string"),
            "s": pd.Series(rng.choice(["mm7", "cmpp", "smpp"], n), dtype="string"),
            "c": pd.Series(rng.choice(["retrieved", "expired", "ß", None], n), dtype="string"),
            "d": pd.array(np.where(rng.random(n) < 0.2, -1, rng.integers(0, 10**9, n))),
        }
    )


@pytest.mark.parametrize("n", [0, 1, 7, 5000])
def test_event_keys_are_pandas_row_hashes(n: int) -> None:
    frame = _frame(np.random.default_rng(n), n)
    expected = pd.util.hash_pandas_object(frame, index=False).to_numpy().view(np.int64)
    got = _event_keys(*(frame[c] for c in frame.columns), distinct=(0, 1))
    assert np.array_equal(got, expected)


def test_event_keys_with_missing_distinct_values() -> None:
    frame = _frame(np.random.default_rng(3), 100)
    frame.loc[5, "i"] = pd.NA
    expected = pd.util.hash_pandas_object(frame, index=False).to_numpy().view(np.int64)
    assert np.array_equal(
        _event_keys(*(frame[c] for c in frame.columns), distinct=(0, 1)), expected
    )


@pytest.mark.parametrize("seed", range(20))
def test_segment_order_is_lexsort(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 3000))
    day = rng.integers(20000, 20000 + int(rng.integers(1, 4)), n).astype(np.int32)
    msisdn = rng.integers(8613800000000, 8613800000000 + int(rng.integers(1, 3000)), n)
    submitted = rng.integers(0, int(rng.integers(1, 40)), n)
    expected = np.lexsort((submitted, msisdn, day))
    assert np.array_equal(_segment_order(day, msisdn, submitted), expected)


def test_segment_order_far_apart_days() -> None:
    day = np.array([0, 9000, 5, 5], dtype=np.int32)
    msisdn = np.array([3, 2, 1, 1], dtype=np.int64)
    submitted = np.array([0, 0, 2, 1], dtype=np.int64)
    expected = np.lexsort((submitted, msisdn, day))
    assert np.array_equal(_segment_order(day, msisdn, submitted), expected)


@pytest.mark.parametrize("seed", range(10))
def test_stable_order_by_is_lexsort(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 5000))
    day = rng.integers(20000, 20000 + int(rng.integers(1, 5)), n).astype(np.int32)
    part = rng.integers(0, 10**13, n) % 64
    assert np.array_equal(_stable_order_by(day, part, 64), np.lexsort((part, day)))


def test_stable_order_by_many_days() -> None:
    day = np.array([0, 1000, 0], dtype=np.int32)
    part = np.array([5, 3, 1])
    assert np.array_equal(_stable_order_by(day, part, 64), np.lexsort((part, day)))


def test_hash_text_is_pandas_hash_array() -> None:
    rng = np.random.default_rng(7)
    letters = list("abcß€x😀 ,0")
    texts = ["".join(rng.choice(letters, int(rng.integers(0, 30)))) for _ in range(3000)]
    texts += ["x" * k for k in range(40)] + [None, ""]
    column = pd.Series(texts, dtype="string")
    assert np.array_equal(hash_text(column), pd.util.hash_array(column.array))
    same_length = pd.Series([f"+86138{v:08d}" for v in rng.integers(0, 10**8, 50000)])
    same_length = same_length.astype("string")
    assert np.array_equal(hash_text(same_length), pd.util.hash_array(same_length.array))
    part = pa.array(texts, type=pa.large_string())[17:2500]  # an array with an offset
    assert np.array_equal(
        hash_text(pd.Series(pd.arrays.ArrowStringArray(part))),
        pd.util.hash_array(pd.Series(part.to_pylist(), dtype="string").array),
    )
    python_storage = pd.Series(texts, dtype=pd.StringDtype("python"))
    assert np.array_equal(hash_text(python_storage), pd.util.hash_array(column.array))
    assert hash_text(pd.Series([], dtype="string")).size == 0


def test_json_ints_is_json_of_the_values() -> None:
    rng = np.random.default_rng(11)
    values = rng.integers(-(2**63), 2**63 - 1, 5000, dtype=np.int64)
    values[:3] = [-(2**63), 2**63 - 1, 0]
    assert json.loads(_json_ints(values)) == values.tolist()
    assert json.loads(_json_ints(values[:0])) == []


@pytest.mark.parametrize("seed", range(20))
def test_recent_partition_order_is_the_stable_argsort(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 5000))
    width = int(rng.choice([10, 5000, 10**8, 2**40]))
    # Few distinct numbers when the range is narrow: many ties, which keep input order.
    m = 8613800000000 + rng.integers(0, width, n)
    part = m % RECENT_PARTS
    expected = np.argsort((part << 50) | m, kind="stable")
    assert np.array_equal(_partition_order(m, part), expected)


def test_recent_partition_order_falls_back_beyond_50_bit_msisdns() -> None:
    m = np.array([2**52 + 3, 5, 2**51 + 3, 5, 4096 + 5], dtype=np.int64)
    part = m % RECENT_PARTS
    expected = np.argsort((part << 50) | m, kind="stable")
    assert np.array_equal(_partition_order(m, part), expected)


@pytest.mark.parametrize("step", [1, 3, 64, 1 << 20])
def test_newlines_counted_in_steps(step: int) -> None:
    data = np.frombuffer(b"a,b\n\nc,d\r\n" * 37 + b"tail", dtype=np.uint8)
    assert _count_newlines(data, step) == 111
    assert _count_newlines(data[:0], step) == 0

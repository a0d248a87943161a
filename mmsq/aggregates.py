"""What is counted per subscriber-day, per edition-day and per device, from stored events.

Pure numpy/pandas: the store adapter hands in the new events of an ingest (MSISDNs as int64
E.164 digits, causes as codes into ``CAUSE_CLASSES``) and persists the results. Counting is done
with ``np.bincount`` over group ids, never with Python loops over rows.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from mmsq.domain import CAUSE_CLASSES, CauseClass

__all__ = [
    "COUNT_COLUMNS",
    "LATENCY_EDGES_S",
    "cause_codes",
    "daily_counts",
    "edition_counts",
    "latest_devices",
    "merge_counts",
]

#: Counters kept per (msisdn, day) and per (day, edition); summed when merged.
COUNT_COLUMNS: tuple[str, ...] = (
    "attempts",
    "final",
    "delivered",
    "notified_not_fetched",
    *(f"c_{c}" for c in CAUSE_CLASSES),
)
#: Upper bounds (seconds, inclusive) of the submit-to-done latency histogram of delivered
#: events per (day, edition); the last bin holds everything slower than the last edge.
#: Fine enough to read p50/p90/p99 of MMS delivery from: 1 s steps up to 10 s, neighbouring
#: edges at most 12.5% apart from 10 s to 1 h (where MMS latencies live), at most 50% apart
#: above. Every edge of revision 0002's coarse histogram is among them (see the revision
#: ``recent_index`` that converted stored counts).
LATENCY_EDGES_S: tuple[int, ...] = (
    *range(1, 10),
    *(10, 11, 12, 13, 14, 15, 16, 18, 20, 22, 24, 27, 30, 33, 36, 40, 45, 50, 55),
    *(60, 66, 72, 80, 90, 100, 110, 120, 135, 150, 165, 180, 200, 225, 250, 280, 300),
    *(330, 360, 400, 450, 500, 560, 600, 660, 720, 800, 900, 1000, 1100, 1200, 1350),
    *(1500, 1650, 1800, 2000, 2250, 2500, 2800, 3000, 3300, 3600),
    *(4200, 4800, 5400, 6300, 7200, 9000, 10800, 12600, 14400, 18000, 21600, 28800),
    *(36000, 43200, 57600, 86400),
)

_DELIVERED = CAUSE_CLASSES.index(CauseClass.DELIVERED.value)
_NOT_FETCHED = CAUSE_CLASSES.index(CauseClass.NOT_FETCHED.value)
_N_CAUSES = len(CAUSE_CLASSES)

IntArray = npt.NDArray[np.int64]


def cause_codes(cause: pd.Series) -> npt.NDArray[np.int8]:
    """Cause class names -> their index in ``CAUSE_CLASSES`` (unknown names -> ``unknown``)."""
    if isinstance(cause.dtype, pd.CategoricalDtype) and list(cause.cat.categories) == list(
        CAUSE_CLASSES
    ):
        codes = np.array(cause.cat.codes, dtype=np.int8)
    else:
        codes = pd.Index(CAUSE_CLASSES).get_indexer(pd.Index(cause.astype(object))).astype(np.int8)
    codes[codes < 0] = CAUSE_CLASSES.index(CauseClass.UNKNOWN.value)
    return codes


def _counts(
    gid: IntArray,
    groups: int,
    cause: npt.NDArray[np.int8],
    final: npt.NDArray[np.bool_],
    notify_ok: npt.NDArray[np.bool_],
) -> npt.NDArray[np.int32]:
    """Rows of ``COUNT_COLUMNS`` per group id."""
    width = len(COUNT_COLUMNS)
    out = np.zeros((groups, width), dtype=np.int32)
    out[:, 0] = np.bincount(gid, minlength=groups)
    out[:, 1] = np.bincount(gid[final], minlength=groups)
    # The (group, cause) pairs that occur, counted by one sort and written straight into
    # their cells: a bincount over every possible pair made an int64 array of groups x
    # causes (about 110 MB for 1.5M subscribers), fresh pages the kernel had to zero.
    pairs = np.sort(np.asarray(gid, dtype=np.int64) * _N_CAUSES + cause)
    if len(pairs):
        starts = np.flatnonzero(np.r_[True, pairs[1:] != pairs[:-1]])
        group, cause_of = np.divmod(pairs[starts], _N_CAUSES)
        out.reshape(-1)[group * width + 4 + cause_of] = np.diff(np.r_[starts, len(pairs)])
    out[:, 2] = out[:, 4 + _DELIVERED]
    out[:, 3] = np.bincount(gid[notify_ok & (cause == _NOT_FETCHED)], minlength=groups)
    return out


def daily_counts(
    msisdn: IntArray,
    day: npt.NDArray[np.int32],
    cause: npt.NDArray[np.int8],
    final: npt.NDArray[np.bool_],
    notify_ok: npt.NDArray[np.bool_],
    submitted_ts: IntArray,
) -> pd.DataFrame:
    """Per (msisdn, day): ``COUNT_COLUMNS`` and ``last_ts`` (newest submission), sorted."""
    m_codes, m_uniques = pd.factorize(msisdn, sort=True)
    d_codes, d_uniques = pd.factorize(day, sort=True)
    gid = m_codes.astype(np.int64) * len(d_uniques) + d_codes
    groups = len(m_uniques) * len(d_uniques)
    present = np.bincount(gid, minlength=groups) > 0
    counts = _counts(gid, groups, cause, final, notify_ok)[present]
    last = np.full(groups, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(last, gid, submitted_ts)
    idx = np.flatnonzero(present)
    frame = pd.DataFrame(counts, columns=list(COUNT_COLUMNS))
    frame.insert(0, "day", np.asarray(d_uniques, dtype=np.int32)[idx % len(d_uniques)])
    frame.insert(0, "msisdn", np.asarray(m_uniques, dtype=np.int64)[idx // len(d_uniques)])
    frame["last_ts"] = last[present]
    return frame


def merge_counts(old: pd.DataFrame, new: pd.DataFrame, key: str = "msisdn") -> pd.DataFrame:
    """Sum two per-key count frames (``last_ts`` by max); both sorted and unique on ``key``."""
    if old.empty:
        return new
    keys = np.union1d(old[key].to_numpy(), new[key].to_numpy())
    io = np.searchsorted(keys, old[key].to_numpy())
    inew = np.searchsorted(keys, new[key].to_numpy())
    data: dict[str, object] = {key: keys}
    for col in new.columns:
        if col == key:
            continue
        if col == "last_ts":
            acc = np.full(len(keys), np.iinfo(np.int64).min, dtype=np.int64)
            acc[io] = old[col].to_numpy()
            acc[inew] = np.maximum(acc[inew], new[col].to_numpy())
        else:
            acc = np.zeros(len(keys), dtype=np.int32)
            if col in old.columns:
                acc[io] = old[col].to_numpy()
            acc[inew] += new[col].to_numpy().astype(np.int32)
        data[col] = acc
    return pd.DataFrame(data)


def edition_counts(
    day: npt.NDArray[np.int32],
    edition: pd.Series,
    cause: npt.NDArray[np.int8],
    final: npt.NDArray[np.bool_],
    notify_ok: npt.NDArray[np.bool_],
    latency_s: IntArray,
) -> pd.DataFrame:
    """Per (day, edition): ``COUNT_COLUMNS``, and the latency of delivered events as
    ``latency_n``, ``latency_sum_s`` and histogram columns ``lat_0`` ... (see
    ``LATENCY_EDGES_S``). A missing edition is counted under ``""``.
    """
    e_codes, e_found = pd.factorize(edition, use_na_sentinel=True)
    e_uniques = np.append(np.asarray(e_found, dtype=object), "")
    e_codes = np.where(e_codes < 0, len(e_found), e_codes)
    d_codes, d_uniques = pd.factorize(day)
    gid = d_codes.astype(np.int64) * len(e_uniques) + e_codes
    groups = len(d_uniques) * len(e_uniques)
    present = np.bincount(gid, minlength=groups) > 0
    counts = _counts(gid, groups, cause, final, notify_ok)
    timed = (cause == _DELIVERED) & (latency_s >= 0)
    lat_bin = np.searchsorted(np.asarray(LATENCY_EDGES_S), latency_s[timed], side="left")
    n_bins = len(LATENCY_EDGES_S) + 1
    hist = np.bincount(gid[timed] * n_bins + lat_bin, minlength=groups * n_bins)
    hist = hist.reshape(groups, n_bins)
    idx = np.flatnonzero(present)
    hist = hist[present]
    # Built in one go: inserting ninety columns one by one costs more than the counting.
    columns: dict[str, npt.ArrayLike] = {
        "day": np.asarray(d_uniques, dtype=np.int32)[idx // len(e_uniques)],
        "edition": np.asarray(e_uniques, dtype=object)[idx % len(e_uniques)],
    }
    columns.update(zip(COUNT_COLUMNS, counts[present].T, strict=True))
    columns["latency_n"] = hist.sum(axis=1)
    columns["latency_sum_s"] = np.bincount(gid[timed], weights=latency_s[timed], minlength=groups)[
        present
    ].astype(np.int64)
    columns.update((f"lat_{b}", hist[:, b]) for b in range(n_bins))
    return pd.DataFrame(columns)


def latest_devices(
    msisdn: IntArray, has_imei: npt.NDArray[np.bool_], submitted_ts: IntArray
) -> IntArray:
    """Positions of the newest event with an IMEI per subscriber (ties: the later row),
    in MSISDN order."""
    pos = np.flatnonzero(has_imei)
    if not len(pos):
        return np.zeros(0, dtype=np.int64)
    codes, uniques = pd.factorize(msisdn[pos], sort=True)
    ts = submitted_ts[pos]
    newest = np.full(len(uniques), np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(newest, codes, ts)
    cand = ts == newest[codes]
    chosen = np.full(len(uniques), -1, dtype=np.int64)
    np.maximum.at(chosen, codes[cand], pos[cand])
    return chosen

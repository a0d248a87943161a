"""Synthetic daily aggregates for scoring: subscribers whose histories look like each verdict.

Writes what ingest would have produced (daily aggregate and device blocks)
straight into frames, with the ground truth (profile, expected verdict) beside them, so scoring
can be benchmarked at province size and its quality checked without a CDR pipeline.
Vectorised with numpy, deterministic by seed, generated in chunks of subscribers.

This is a simple stand-in with its own idea of each profile; the handset population simulator
is the independent ground truth.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "DEVICE_ROWS",
    "PROFILES",
    "PopulationChunk",
    "PopulationSpec",
    "device_table",
    "generate",
    "load_chunks",
    "load_into",
]

#: (tac, brand, model, mms_capable, ota_cp, cp_security, settings_profile)
DEVICE_ROWS: tuple[tuple[str, str, str, bool, bool, str, str], ...] = (
    ("35332003", "Nokia", "6300", True, True, "NETWPIN", "nokia-s40"),
    ("35386200", "Samsung", "SGH-E250", True, True, "NETWPIN", "samsung-feature"),
    ("35925406", "Apple", "iPhone 4", True, False, "", "apple-ios"),
    ("86123456", "Huawei", "Ascend Y300", True, True, "USERPIN", "android-generic"),
    ("35694005", "Nokia", "1100", False, False, "", ""),
    ("86345678", "ZTE", "S302", False, False, "", ""),
)
_CAPABLE = np.array([r[0] for r in DEVICE_ROWS if r[3]])
_INCAPABLE = np.array([r[0] for r in DEVICE_ROWS if not r[3]])

#: profile: (share, expected verdict, failure-run length range in days or None, new subscriber)
PROFILES: dict[str, tuple[float, str, tuple[int, int] | None, bool]] = {
    "healthy": (0.78, "healthy", None, False),
    "misconfigured": (0.05, "terminal_misconfigured", (4, 20), False),
    "misconfigured_new": (0.01, "terminal_misconfigured", None, True),
    "incapable_new": (0.015, "terminal_incapable", None, True),
    "capacity": (0.03, "terminal_capacity", (4, 20), False),
    "unreachable": (0.04, "unreachable", (8, 25), False),
    "unreachable_short": (0.015, "insufficient_evidence", (2, 4), False),
    "invalid": (0.02, "subscriber_invalid", (3, 15), False),
    "policy": (0.01, "policy_blocked", (3, 15), False),
    "transient": (0.01, "insufficient_evidence", (4, 12), False),
    "few_days": (0.02, "insufficient_evidence", None, True),
}
_COUNTERS = (
    "attempts",
    "final",
    "delivered",
    "notified_not_fetched",
    "c_delivered",
    "c_not_fetched",
    "c_terminal_capacity",
    "c_terminal_incapable",
    "c_unreachable",
    "c_subscriber_invalid",
    "c_policy_blocked",
    "c_network_transient",
)
#: Columns of the daily frame (the other counters of the table are left at their default 0).
DAILY_COLUMNS: tuple[str, ...] = ("msisdn", "day", *_COUNTERS, "last_ts")


@dataclass(frozen=True)
class PopulationSpec:
    subscribers: int = 10_000
    days: int = 30
    last_day: date = date(2026, 11, 22)
    seed: int = 11
    chunk: int = 100_000
    first_msisdn: int = 13_800_000_000


@dataclass
class PopulationChunk:
    daily: pd.DataFrame
    devices: pd.DataFrame
    truth: pd.DataFrame


def device_table() -> pd.DataFrame:
    """The device rows the population uses, in the ``rules/devices.csv`` format."""
    frame = pd.DataFrame(
        DEVICE_ROWS,
        columns=[
            "tac",
            "brand",
            "model",
            "mms_capable",
            "ota_cp",
            "cp_security",
            "settings_profile",
        ],
    )
    for c in ("mms_capable", "ota_cp"):
        frame[c] = frame[c].map({True: "true", False: "false"})
    return frame


def _fill(
    rows: dict[str, np.ndarray],
    failing: np.ndarray,
    pid: np.ndarray,
    coin: np.ndarray,
    names: list[str],
) -> None:
    """Each day's outcome by profile: healthy before the failures start, then the profile's."""

    def put(mask: np.ndarray, **values: int) -> None:
        for col, v in values.items():
            rows[col][mask] = v

    ok = ~failing
    # healthy days: delivered, with an occasional day powered off
    put(ok & (coin >= 0.03), delivered=2, c_delivered=2)
    put(ok & (coin < 0.03), c_unreachable=2)
    p = {name: failing & (pid == names.index(name)) for name in names}
    for name in ("misconfigured", "misconfigured_new"):
        put(p[name] & (coin < 0.9), notified_not_fetched=2, c_not_fetched=2)
        put(p[name] & (coin >= 0.9), c_unreachable=2)
    put(p["incapable_new"] & (coin < 0.5), notified_not_fetched=2, c_not_fetched=2)
    put(p["incapable_new"] & (coin >= 0.5), c_terminal_incapable=2)
    put(p["capacity"] & (coin < 0.9), c_terminal_capacity=2)
    put(
        p["capacity"] & (coin >= 0.9),
        c_terminal_capacity=1,
        c_not_fetched=1,
        notified_not_fetched=1,
    )
    for name in ("unreachable", "unreachable_short"):
        put(p[name] & (coin < 0.5), c_unreachable=2)
        put(p[name] & (coin >= 0.5), c_not_fetched=2)
    put(p["invalid"], c_subscriber_invalid=2)
    put(p["policy"], c_policy_blocked=2)
    put(p["transient"], c_network_transient=2)


def _chunk(spec: PopulationSpec, start: int, n: int, rng: np.random.Generator) -> PopulationChunk:
    names = list(PROFILES)
    shares = np.array([PROFILES[p][0] for p in names])
    profile = rng.choice(len(names), size=n, p=shares / shares.sum())
    d = spec.days
    run_lo = np.array([(PROFILES[p][2] or (0, 0))[0] for p in names])[profile]
    run_hi = np.array([(PROFILES[p][2] or (0, 0))[1] for p in names])[profile]
    run = np.where(run_hi > 0, rng.integers(run_lo, np.maximum(run_hi, run_lo) + 1), 0)
    run = np.minimum(run, d - 1)
    new = np.array([PROFILES[p][3] for p in names])[profile]
    first = np.where(new, rng.integers(1, max(d - 5, 2), size=n), 0)
    few = profile == names.index("few_days")
    first = np.where(few, d - 2, first)
    # failing from `brk` on: the run for established subscribers, day one for new ones
    brk = np.where(new & ~few, first, np.where(run > 0, d - run, d))

    msisdn = np.array([f"+86{spec.first_msisdn + start + i}" for i in range(n)])
    pid = np.repeat(profile, d)
    sub = np.repeat(np.arange(n), d)
    j = np.tile(np.arange(d), n)
    alive = j >= np.repeat(first, d)
    failing = j >= np.repeat(brk, d)
    coin = rng.random(n * d)
    rows = {c: np.zeros(n * d, dtype=np.int16) for c in _COUNTERS}
    rows["attempts"][:] = 2
    rows["final"][:] = 2
    _fill(rows, failing, pid, coin, names)

    days = np.array([spec.last_day - timedelta(days=d - 1 - k) for k in range(d)], dtype=object)
    noon = np.array(
        [
            int(datetime.combine(x, time(8), tzinfo=timezone(timedelta(hours=8))).timestamp())
            for x in days
        ]
    )
    daily = pd.DataFrame({"msisdn": msisdn[sub[alive]], "day": days[j[alive]]})
    for c in _COUNTERS:
        daily[c] = rows[c][alive]
    daily["last_ts"] = noon[j[alive]]

    incapable = profile == names.index("incapable_new")
    tac = np.where(
        incapable,
        _INCAPABLE[rng.integers(0, len(_INCAPABLE), size=n)],
        _CAPABLE[rng.integers(0, len(_CAPABLE), size=n)],
    )
    imei = np.char.add(
        tac.astype(str), np.char.zfill(rng.integers(0, 10**7, size=n).astype(str), 7)
    )
    devices = pd.DataFrame(
        {"msisdn": msisdn, "imei": imei, "tac": tac, "seen_ts": np.full(n, noon[0], dtype=np.int64)}
    )
    truth = pd.DataFrame(
        {
            "msisdn": msisdn,
            "profile": np.array(names)[profile],
            "expected_verdict": np.array([PROFILES[x][1] for x in names])[profile],
        }
    )
    return PopulationChunk(daily, devices, truth)


def generate(spec: PopulationSpec) -> Iterator[PopulationChunk]:
    """Chunks of at most ``spec.chunk`` subscribers, in MSISDN order."""
    rng = np.random.default_rng(spec.seed)
    for start in range(0, spec.subscribers, spec.chunk):
        yield _chunk(spec, start, min(spec.chunk, spec.subscribers - start), rng)


def _compact(daily: pd.DataFrame) -> pd.DataFrame:
    """A daily frame in a compact form, sorted by (day, msisdn): int64 E.164 digits, day
    number, the generator's counters as int16."""
    digits = daily["msisdn"].astype(str).str.removeprefix("+").astype(np.int64).to_numpy()
    days = pd.to_datetime(daily["day"]).to_numpy("datetime64[D]").astype(np.int64)
    out = pd.DataFrame({"msisdn": digits, "day": days.astype(np.int32)})
    for c in _COUNTERS:
        out[c] = daily[c].to_numpy().astype(np.int16)
    out["last_ts"] = daily["last_ts"].to_numpy().astype(np.int64)
    return out.sort_values(["day", "msisdn"], ignore_index=True)


def _counts(compact: pd.DataFrame) -> pd.DataFrame:
    """Compact rows -> the store's aggregate rows (every counter, int32)."""
    from mmsq.aggregates import COUNT_COLUMNS

    counts = compact[["msisdn", "day"]].copy()
    for c in COUNT_COLUMNS:
        counts[c] = (
            compact[c].to_numpy().astype(np.int32)
            if c in compact
            else np.zeros(len(compact), np.int32)
        )
    counts["last_ts"] = compact["last_ts"].to_numpy()
    return counts


def _devices(devices: pd.DataFrame) -> Any:
    import pyarrow as pa

    digits = devices["msisdn"].astype(str).str.removeprefix("+").astype(np.int64).to_numpy()
    return pa.table(
        {
            "msisdn": pa.array(digits, type=pa.int64()),
            "imei": pa.array(devices["imei"].astype(str).tolist(), type=pa.string()),
            "seen_ts": pa.array(devices["seen_ts"].to_numpy(), type=pa.int64()),
        }
    )


def load_chunks(engine: Any, chunks: Iterable[PopulationChunk]) -> None:
    """Write the chunks' daily aggregates and devices into an mmsq database (SQLAlchemy engine
    at the current schema) as the store's columnar blocks, all at once: each (day, partition)
    block is written once, however many chunks there are."""
    from mmsq.adapters.sql_store import SqlStore

    compact: list[pd.DataFrame] = []
    devices: list[pd.DataFrame] = []
    for chunk in chunks:
        compact.append(_compact(chunk.daily))
        devices.append(chunk.devices)
    if not compact:
        return
    days = np.unique(np.concatenate([c["day"].to_numpy() for c in compact]))
    with SqlStore(engine).ingest_session() as session:
        for day in days.tolist():
            parts = []
            for c in compact:
                d = c["day"].to_numpy()
                a, b = np.searchsorted(d, day, "left"), np.searchsorted(d, day, "right")
                parts.append(c.iloc[a:b])
            rows = _counts(
                pd.concat(parts, ignore_index=True).sort_values("msisdn", ignore_index=True)
            )
            if not _write_new_day(session._conn, int(day), rows):
                # The day has blocks already: the ingest session's block merge (generator only).
                session._merge_aggregates(rows)
        session._merge_devices(_devices(pd.concat(devices, ignore_index=True)))


def _write_new_day(conn: Any, day: int, rows: pd.DataFrame) -> bool:
    """Write the aggregate blocks of a day that has none yet, straight from numpy (the
    store's block layout: one Arrow block per MSISDN partition); False if it has some."""
    import pyarrow as pa
    import sqlalchemy as sa

    from mmsq.adapters.event_blocks import AGGREGATE_SCHEMA, PARTS, encode
    from mmsq.adapters.sql_event_schema import daily_aggregate_blocks as t

    d = date(1970, 1, 1) + timedelta(days=day)
    if conn.execute(sa.select(sa.func.count()).where(t.c.day == d)).scalar_one():
        return False
    msisdn = rows["msisdn"].to_numpy()
    part = msisdn % PARTS
    order = np.argsort(part, kind="stable")  # rows are sorted by MSISDN within a partition
    cols = {name: rows[name].to_numpy()[order] for name in AGGREGATE_SCHEMA.names}
    bounds = np.searchsorted(part[order], np.arange(PARTS + 1))
    out = []
    for p in range(PARTS):
        a, b = int(bounds[p]), int(bounds[p + 1])
        if a == b:
            continue
        table = pa.table({name: pa.array(cols[name][a:b]) for name in AGGREGATE_SCHEMA.names}).cast(
            AGGREGATE_SCHEMA
        )
        out.append({"day": d, "part": p, "rows": b - a, "data": encode(table, True)})
    conn.execute(t.insert(), out)
    return True


def load_into(engine: Any, chunk: PopulationChunk) -> None:
    """Write one chunk's daily aggregates and devices (merged into what is stored)."""
    load_chunks(engine, [chunk])

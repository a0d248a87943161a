"""Synthetic daily aggregates for scoring: subscribers whose histories look like each verdict.

Writes what ingest would have produced (``daily_aggregates`` rows and ``subscriber_devices``)
straight into frames, with the ground truth (profile, expected verdict) beside them, so scoring
can be benchmarked at province size and its quality checked without a CDR pipeline.
Vectorised with numpy, deterministic by seed, generated in chunks of subscribers.

This is a simple stand-in with its own idea of each profile; the handset population simulator
is the independent ground truth.
"""

from __future__ import annotations

from collections.abc import Iterator
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


def load_into(engine: Any, chunk: PopulationChunk) -> None:
    """Bulk-insert a chunk's daily aggregates and devices into an mmsq database (SQLAlchemy
    engine at the current schema): executemany on SQLite, COPY on PostgreSQL."""
    daily = chunk.daily
    day_text = daily["day"].map(date.isoformat)
    columns = list(DAILY_COLUMNS)
    with engine.begin() as conn:
        raw = conn.connection.driver_connection
        for table, cols, frame in (
            ("daily_aggregates", columns, daily.assign(day=day_text)),
            ("subscriber_devices", ["msisdn", "imei", "tac", "seen_ts"], chunk.devices),
        ):
            data = zip(*(frame[c].tolist() for c in cols), strict=True)
            names = ", ".join(cols)
            if engine.dialect.name == "postgresql":
                with raw.cursor() as cur, cur.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                    for row in data:
                        copy.write_row(row)
            else:
                cur = raw.cursor()
                try:
                    cur.executemany(
                        f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(cols))})", data
                    )
                finally:
                    cur.close()

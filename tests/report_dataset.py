"""A hand-countable dataset for the weekly report tests, inserted straight into the tables.

Week 2026-W47 (Mon 16 to Sun 22 Nov 2026) and the week before. Every expected figure in the
tests is counted by hand from the rows below; the comments give the counts.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from mmsq.adapters.sql_schema import delivery_events, subscriber_devices, unknown_codes

DEVICES_CSV = Path(__file__).parent / "fixtures" / "devices.csv"

A, B, C, D, E = (f"+861380000000{i}" for i in range(1, 6))
#: Every number of the dataset, E.164 and national, for the privacy scans.
MSISDNS = [A, B, C, D, E]
NATIONAL = [m.removeprefix("+86") for m in MSISDNS]

# Current handset per subscriber: A and E a Nokia 6300, B a Samsung GT-E1200 (both in the
# fixture device table), C a TAC nobody knows, D no IMEI at all.
DEVICES = {A: "35332510", B: "35391805", C: "99999999", E: "35332510"}

_TZ = timezone(timedelta(hours=8))

# (msisdn, edition, day, region, cause, final, latency seconds or None, status_source, code)
W47 = [
    # ed-1116-am, Mon, Hefei: 5 attempts, 5 final, 3 delivered; latencies 60, 120, 300
    (A, "ed-1116-am", date(2026, 11, 16), "Hefei", "delivered", True, 60, "mm7", "Retrieved"),
    (B, "ed-1116-am", date(2026, 11, 16), "Hefei", "delivered", True, 120, "mm7", "Retrieved"),
    (C, "ed-1116-am", date(2026, 11, 16), "Hefei", "not_fetched", True, 900, "mm7", "Expired"),
    (D, "ed-1116-am", date(2026, 11, 16), "Hefei", "delivered", True, 300, "mm7", "Retrieved"),
    (E, "ed-1116-am", date(2026, 11, 16), "Hefei", "unreachable", True, 50, "cmpp", "MK:0024"),
    # ed-1116-pm, Mon, Wuhu: 3 attempts, 2 final, 1 delivered; latency 30
    (A, "ed-1116-pm", date(2026, 11, 16), "Wuhu", "delivered", True, 30, "mm7", "Retrieved"),
    (B, "ed-1116-pm", date(2026, 11, 16), "Wuhu", "pending", False, None, "mm7", "1000"),
    (C, "ed-1116-pm", date(2026, 11, 16), "Wuhu", "terminal_capacity", True, 40, "cmpp", "MK:0017"),
    # ed-1117-am, Tue, Hefei: nothing final yet
    (A, "ed-1117-am", date(2026, 11, 17), "Hefei", "pending", False, None, "mm7", "1000"),
    (B, "ed-1117-am", date(2026, 11, 17), "Hefei", "pending", False, None, "mm7", "1000"),
    # ed-1118-am, Wed, no region: 3 attempts, 3 final, 2 delivered; latencies 10, 7200 (slow)
    (E, "ed-1118-am", date(2026, 11, 18), None, "unknown", True, 20, "cmpp", "ZZ:1"),
    (D, "ed-1118-am", date(2026, 11, 18), None, "delivered", True, 7200, "mm7", "Retrieved"),
    (A, "ed-1118-am", date(2026, 11, 18), None, "delivered", True, 10, "mm7", "Retrieved"),
]
W46 = [
    # Mon 9 Nov, Hefei: 2 final, 1 delivered
    (A, "ed-1109-am", date(2026, 11, 9), "Hefei", "delivered", True, 60, "mm7", "Retrieved"),
    (B, "ed-1109-am", date(2026, 11, 9), "Hefei", "not_fetched", True, 60, "mm7", "Expired"),
    # Tue 10 Nov, Wuhu: 1 final, 1 delivered
    (C, "ed-1110-am", date(2026, 11, 10), "Wuhu", "delivered", True, 60, "mm7", "Retrieved"),
]


def _event(i: int, row: tuple[Any, ...]) -> dict[str, Any]:
    msisdn, edition, day, region, cause, final, latency, ns, code = row
    submitted = int(datetime(day.year, day.month, day.day, 7, tzinfo=_TZ).timestamp()) + i
    tac = DEVICES.get(msisdn)
    return {
        "event_key": 1000 + i,
        "msisdn": msisdn,
        "message_id": f"m{i}",
        "edition": edition,
        "status_source": ns,
        "status_code": code,
        "error_code": None,
        "cause": cause,
        "final": final,
        "notify_ok": None,
        "imei": f"{tac}1234560" if tac else None,
        "region": region,
        "submitted_ts": submitted,
        "done_ts": None if latency is None else submitted + latency,
        "day": day,
    }


def insert_dataset(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(delivery_events.insert(), [_event(i, r) for i, r in enumerate(W46 + W47)])
        conn.execute(
            subscriber_devices.insert(),
            [
                {"msisdn": m, "imei": f"{t}1234560", "tac": t, "seen_ts": 1_700_000_000}
                for m, t in DEVICES.items()
            ],
        )
        conn.execute(
            unknown_codes.insert(),
            [
                {
                    "namespace": "cmpp",
                    "code": "ZZ:1",
                    "count": 5,
                    "first_seen": datetime(2026, 11, 18, 2, tzinfo=UTC),
                    "last_seen": datetime(2026, 11, 19, 2, tzinfo=UTC),
                },
                # Known to the table but not seen this week: not listed.
                {
                    "namespace": "mm7",
                    "code": "OLD",
                    "count": 9,
                    "first_seen": datetime(2026, 10, 1, tzinfo=UTC),
                    "last_seen": datetime(2026, 10, 2, tzinfo=UTC),
                },
            ],
        )

"""A hand-countable dataset for the weekly report tests, stored the way production stores it:
delivery reports through ``IngestService.ingest_reports`` (classification by the shipped rules,
event segments, aggregates, devices, edition counters, unknown codes).

Week 2026-W47 (Mon 16 to Sun 22 Nov 2026) and the week before. Every expected figure in the
tests is counted by hand from the rows below; the comments give the counts. Each status code
is one the shipped rules classify as the cause written beside it (``ZZ:1`` is unknown to them).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from mmsq.adapters.sql_store import SqlStore
from mmsq.classify import Classifier
from mmsq.domain import DeliveryReport
from mmsq.ingest import IngestService
from mmsq.msisdn import MsisdnNormaliser
from mmsq.rules_loader import load_rules

DEVICES_CSV = Path(__file__).parent / "fixtures" / "devices.csv"

A, B, C, D, E = (f"+861380000000{i}" for i in range(1, 6))
#: Seen only in October and early November, never in the two report weeks.
F = "+8613800000006"
#: Every number of the dataset, E.164 and national, for the privacy scans.
MSISDNS = [A, B, C, D, E]
NATIONAL = [m.removeprefix("+86") for m in MSISDNS]

# Handset per subscriber, reported with each of its events: A and E a Nokia 6300, B a Samsung
# GT-E1200 (both in the fixture device table), C a TAC nobody knows, D no IMEI at all.
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


#: Outside both weeks (W45 and October): they only make the unknown-code totals.
#: ZZ:1 is seen 4 more times on Tue 3 Nov (reported on 19 Nov): 5 in all, first seen on
#: 18 Nov with the W47 event. mm7 OLD is seen once, in October: known to the table, not
#: listed for W47.
EARLIER = [
    *((F, "ed-1103-am", date(2026, 11, 3), "Hefei", "unknown", True, 20, "cmpp", "ZZ:1"),) * 4,
    (F, "ed-1001-am", date(2026, 10, 1), "Hefei", "unknown", True, 20, "mm7", "OLD"),
]

_SEEN_AT = {
    "W47": datetime(2026, 11, 18, 2, tzinfo=UTC),
    "W46": datetime(2026, 11, 18, 3, tzinfo=UTC),
    "ZZ": datetime(2026, 11, 19, 2, tzinfo=UTC),
    "OLD": datetime(2026, 10, 2, tzinfo=UTC),
}


class _SettableClock:
    def __init__(self) -> None:
        self.at = datetime(2026, 11, 23, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at


def _report(i: int, row: tuple[Any, ...]) -> DeliveryReport:
    msisdn, edition, day, region, _cause, _final, latency, ns, code = row
    submitted = datetime(day.year, day.month, day.day, 7, tzinfo=_TZ) + timedelta(seconds=i)
    tac = DEVICES.get(msisdn)
    return DeliveryReport(
        msisdn=msisdn,
        message_id=f"m{i}",
        status_source=ns,
        status_code=code,
        submitted_at=submitted,
        done_at=None if latency is None else submitted + timedelta(seconds=latency),
        edition=edition,
        imei=f"{tac}1234560" if tac else None,
        region=region,
    )


def insert_dataset(store: SqlStore) -> None:
    """Ingest the dataset into ``store`` (already upgraded), as delivery reports."""
    clock = _SettableClock()
    service = IngestService(
        store,
        Classifier(load_rules().status_codes),
        MsisdnNormaliser("CN"),
        clock,
        "Asia/Shanghai",
    )
    batches = [
        ("W47", W47),
        ("W46", W46),
        ("ZZ", EARLIER[:4]),
        ("OLD", EARLIER[4:]),
    ]
    first = 0
    for name, rows in batches:
        clock.at = _SEEN_AT[name]
        reports = [_report(first + i, r) for i, r in enumerate(rows)]
        first += len(rows)
        summary = service.ingest_reports("report-dataset", reports)
        assert summary.stored == len(rows), summary.as_dict()
        causes = {str(r[4]) for r in rows}
        assert set(summary.by_cause) == causes, (summary.by_cause, causes)

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

from mmsq.adapters.sql_api_schema import api_agents, api_resends
from mmsq.adapters.sql_outreach_schema import outreach_decisions
from mmsq.adapters.sql_store import SqlStore
from mmsq.adapters.sql_subscriptions_schema import subscriptions
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


# -- complaints (agent API resends), subscriptions and the outreach holdout ---------------

#: Resends recorded by the agent API, UTC: W47 (16-22 Nov local, UTC+8) has three (the last
#: on Sunday 23:30 local); W46 has one; Monday 23 Nov 00:30 local is W48, not counted.
RESENDS = [
    (A, datetime(2026, 11, 17, 2, tzinfo=UTC), "C-1"),
    (B, datetime(2026, 11, 19, 2, tzinfo=UTC), "C-2"),
    (C, datetime(2026, 11, 22, 15, 30, tzinfo=UTC), None),
    (D, datetime(2026, 11, 10, 2, tzinfo=UTC), "C-0"),
    (E, datetime(2026, 11, 22, 16, 30, tzinfo=UTC), "C-3"),
]
#: Subscriptions: A (two products), B, C, D active, E suspended: 4 active subscribers.
SUBSCRIPTIONS = [
    (A, "daily", "active"),
    (A, "weekly", "active"),
    (B, "daily", "active"),
    (C, "daily", "active"),
    (D, "daily", "active"),
    (E, "daily", "suspended"),
]

H1, H2, H3, H4, H5 = (f"+86137000000{i}" for i in range(11, 16))
#: Recovery log of the holdout candidates (local times, UTC+8), in the format of the recovery
#: log in tests/integration/test_sql_report.py. In W47: H1, H2, H3, H5 flagged; H1 recovers
#: (by itself) in W47, H5 only on Monday of W48. H4 is flagged in W46.
HOLDOUT_LOG = [
    (H1, "2026-11-17T09:00", "active", "flagged", "verdict", "terminal"),
    (H1, "2026-11-20T09:00", "flagged", "recovered", "delivered", "self"),
    (H2, "2026-11-18T09:00", "active", "flagged", "verdict", "terminal"),
    (H3, "2026-11-19T09:00", "active", "flagged", "verdict", "terminal"),
    (H4, "2026-11-10T09:00", "active", "flagged", "verdict", "terminal"),
    (H5, "2026-11-21T09:00", "active", "flagged", "verdict", "terminal"),
    (H5, "2026-11-23T00:30", "flagged", "recovered", "delivered", "self"),
]
#: Outreach decisions: H1, H2, H5 held out in W47 and H4 in W46; H3 only on 23 Nov (W48),
#: so not held out in W47. The other decision is not a holdout. W47 holdout: H1, H2, H5
#: flagged, H1 recovered (1 of 3); W46: H4 flagged, none recovered (0 of 1).
DECISIONS = [
    (H1, "holdout", "2026-11-17"),
    (H2, "holdout", "2026-11-18"),
    (H5, "holdout", "2026-11-21"),
    (H4, "holdout", "2026-11-10"),
    (H3, "holdout", "2026-11-23"),
    ("+8613700000004", "capped", "2026-11-17"),
]


def insert_complaints_and_holdout(store: SqlStore) -> None:
    """Store the resends, subscriptions and outreach decisions above (the recovery log of the
    holdout candidates is applied with the rest of the recovery log by the test)."""
    created = datetime(2026, 11, 1, tzinfo=UTC)
    with store.engine.begin() as conn:
        conn.execute(
            api_agents.insert().values(
                id=1, name="desk", role="agent", token_hash="0" * 64, created_at=created
            )
        )
        conn.execute(
            api_resends.insert(),
            [
                {
                    "id": f"r{i}",
                    "agent_id": 1,
                    "agent_name": "desk",
                    "idempotency_key": f"k{i}",
                    "request_hash": "0" * 64,
                    "msisdn": m,
                    "product": "daily",
                    "edition": "ed-1116-am",
                    "reason": "issue missing",
                    "complaint_id": complaint,
                    "priority": 0,
                    "resume_on_delivery": False,
                    "created_at": at,
                }
                for i, (m, at, complaint) in enumerate(RESENDS)
            ],
        )
        conn.execute(
            subscriptions.insert(),
            [{"msisdn": m, "product": p, "status": s} for m, p, s in SUBSCRIPTIONS],
        )
        conn.execute(
            outreach_decisions.insert(),
            [
                {"msisdn": m, "reason": "terminal", "decision": d, "day": day, "decided_ms": 0}
                for m, d, day in DECISIONS
            ],
        )

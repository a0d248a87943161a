"""The recent-events index answers like the event segments, through merges and purges; on
SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from mmsq.adapters.recent_blocks import (
    RECENT_DAYS,
    RECENT_MAX_GENERATIONS,
    RECENT_PARTS,
    read_recent,
)
from mmsq.adapters.sql_recent_schema import recent_event_blocks
from mmsq.adapters.sql_store import SqlStore
from mmsq.classify import Classifier
from mmsq.domain import DeliveryReport
from mmsq.ingest import IngestService, IngestSummary, reports_to_frame
from mmsq.msisdn import MsisdnNormaliser
from mmsq.ports import RawChunk
from mmsq.rules_loader import load_rules

A = "+8613800138000"
B = "+8613900139000"
#: Same partition as A in the index, never looked up: its events must not leak into A's.
NEIGHBOUR = f"+{int(A[1:]) + RECENT_PARTS}"
START = datetime(2026, 11, 1, 1, 0, tzinfo=UTC)


class FixedClock:
    def now(self) -> datetime:
        return datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def store(db_url: str) -> Iterator[SqlStore]:
    s = SqlStore.from_url(db_url)
    s.upgrade()
    yield s
    s.close()


@pytest.fixture
def service(store: SqlStore) -> IngestService:
    rules = load_rules()
    return IngestService(
        store, Classifier(rules.status_codes), MsisdnNormaliser("CN"), FixedClock(), "Asia/Shanghai"
    )


def reports_of_day(day: int, per_subscriber: int) -> list[DeliveryReport]:
    """``per_subscriber`` reports each for A, B and A's neighbour."""
    reports = []
    for msisdn in (A, B, NEIGHBOUR):
        for i in range(per_subscriber):
            sent = START + timedelta(days=day, minutes=7 * i)
            reports.append(
                DeliveryReport(
                    msisdn=msisdn,
                    message_id=f"{msisdn[-4:]}-{day}-{i}",
                    status_source="mm7",
                    status_code="Retrieved" if i % 3 else "Expired",
                    submitted_at=sent,
                    done_at=sent + timedelta(seconds=30 + i),
                    edition=f"ed-{day}",
                    imei="353325101234560",
                    region="Hefei",
                )
            )
    return reports


def ingest_day(service: IngestService, day: int, per_subscriber: int) -> None:
    """One ingest session."""
    service.ingest_reports("mm7", reports_of_day(day, per_subscriber))


def generations(store: SqlStore, msisdn: str) -> int:
    t = recent_event_blocks
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).where(t.c.part == int(msisdn[1:]) % RECENT_PARTS)
            ).scalar_one()
        )


def everything(store: SqlStore, msisdn: str) -> list[dict[str, object]]:
    """All of a subscriber's events: more than the index holds, so read from the segments."""
    return store.recent_events(msisdn, 100_000)


def test_the_index_answers_like_the_segments(store: SqlStore, service: IngestService) -> None:
    for day in range(3):
        ingest_day(service, day, 4)
    all_a = everything(store, A)
    assert len(all_a) == 12
    assert {e["msisdn"] for e in all_a} == {A}
    stamps = [(e["submitted_ts"], e["done_ts"]) for e in all_a]
    assert stamps == sorted(stamps, reverse=True)
    for limit in (1, 5, 12):
        assert store.recent_events(A, limit) == all_a[:limit]
    assert store.recent_events(A, 13) == all_a  # more than there are: the segments
    with store.engine.connect() as conn:
        indexed, _ = read_recent(conn, int(A[1:]), 12)
    assert [e["message_id"] for e in indexed] == [e["message_id"] for e in all_a]  # the index
    assert store.recent_events(B, 3) == everything(store, B)[:3]
    assert store.recent_events("+8613700000000", 5) == []


def test_old_generations_expire_and_older_events_come_from_the_segments(
    store: SqlStore, service: IngestService
) -> None:
    days = RECENT_DAYS + 6
    for day in range(days):
        ingest_day(service, day, 2)
    assert generations(store, A) <= RECENT_DAYS + 2
    all_a = everything(store, A)
    assert len(all_a) == days * 2
    for limit in (1, 10, 2 * RECENT_DAYS - 2, 2 * RECENT_DAYS + 4, days * 2):
        assert store.recent_events(A, limit) == all_a[:limit]
    assert store.recent_events(NEIGHBOUR, 3) == everything(store, NEIGHBOUR)[:3]


def test_many_small_sessions_are_merged(store: SqlStore, service: IngestService) -> None:
    for i in range(RECENT_MAX_GENERATIONS + 2):
        service.ingest_reports(
            "mm7",
            reports_of_day(0, 1)[:1]
            if i == 0
            else [
                DeliveryReport(
                    msisdn=A,
                    message_id=f"live-{i}",
                    status_source="mm7",
                    status_code="Retrieved",
                    submitted_at=START + timedelta(hours=1, minutes=i),
                    done_at=START + timedelta(hours=1, minutes=i, seconds=9),
                )
            ],
        )
    assert generations(store, A) <= RECENT_MAX_GENERATIONS
    assert store.recent_events(A, 10) == everything(store, A)[:10]


def test_a_failed_ingest_adds_nothing_to_the_index(store: SqlStore, service: IngestService) -> None:
    ingest_day(service, 0, 2)
    before = store.recent_events(A, 2)
    chunk = RawChunk("mm7", reports_to_frame(reports_of_day(1, 2)), required=("msisdn",))

    def crash() -> None:
        with store.ingest_session() as writer:
            service.ingest_chunk(chunk, IngestSummary("x"), writer)
            raise RuntimeError("crash before commit")

    with pytest.raises(RuntimeError, match="crash"):
        crash()
    assert store.recent_events(A, 2) == before
    assert len(everything(store, A)) == 2


def test_purged_events_leave_the_index(store: SqlStore, service: IngestService) -> None:
    for day in range(4):
        ingest_day(service, day, 2)
    cutoff = START + timedelta(days=2)
    store.purge_events(cutoff)
    kept = store.recent_events(A, 4)
    assert len(kept) == 4
    assert min(e["submitted_ts"] for e in kept) >= int(cutoff.timestamp())
    assert kept == everything(store, A)

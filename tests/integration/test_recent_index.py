"""The recent-events index answers like the event segments, through merges and purges; on
SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
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
from mmsq.adapters.sql_recent_schema import recent_event_slices
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
    t = recent_event_slices
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count(sa.distinct(t.c.gen))).where(
                    t.c.part == int(msisdn[1:]) % RECENT_PARTS
                )
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


#: Subscribers of A's partition, enough for a daily block of several slices.
CROWD = [f"+{int(A[1:]) + k * RECENT_PARTS}" for k in range(-40, 160)]


def crowd_day(service: IngestService, day: int) -> None:
    """One session: two reports each for the crowd, and a third for every seventh member (so
    slices do not all hold the same number of subscribers)."""
    reports = []
    for n, msisdn in enumerate(CROWD):
        for i in range(3 if n % 7 == 0 else 2):
            sent = START + timedelta(days=day, hours=i, minutes=n % 50)
            reports.append(
                DeliveryReport(
                    msisdn=msisdn,
                    message_id=f"c{n}-{day}-{i}",
                    status_source="mm7",
                    status_code="Retrieved" if (n + i) % 4 else "Expired",
                    submitted_at=sent,
                    done_at=sent + timedelta(seconds=20 + n % 9),
                    edition=f"ed-{day}-{i}",
                )
            )
    service.ingest_reports("mm7", reports)


def test_a_look_up_reads_the_one_slice_that_holds_the_subscriber(
    store: SqlStore, service: IngestService
) -> None:
    for day in range(3):
        crowd_day(service, day)
    t = recent_event_slices
    part = int(A[1:]) % RECENT_PARTS
    with store.engine.connect() as conn:
        per_gen = conn.execute(
            sa.select(t.c.gen, sa.func.count(), sa.func.sum(t.c.rows))
            .where(t.c.part == part)
            .group_by(t.c.gen)
        ).all()
    assert len(per_gen) == 3
    assert all(slices >= 3 for _, slices, _ in per_gen)  # several slices per block
    assert all(rows == 2 * len(CROWD) + len(CROWD[::7]) for _, _, rows in per_gen)
    # First, last, every slice boundary and its neighbours, and numbers between them.
    with store.engine.connect() as conn:
        firsts = [
            int(m)
            for (m,) in conn.execute(sa.select(t.c.msisdn_min).where(t.c.part == part).distinct())
        ]
    probes = {CROWD[0], CROWD[-1], CROWD[1], CROWD[-2]}
    for m in firsts:
        probes |= {f"+{m}", f"+{m - RECENT_PARTS}", f"+{m + RECENT_PARTS}"}
    for msisdn in sorted(probes):
        if msisdn not in CROWD:
            continue
        all_events = everything(store, msisdn)
        assert len(all_events) in (6, 9)
        assert store.recent_events(msisdn, 4) == all_events[:4]
        with store.engine.connect() as conn:
            indexed, _ = read_recent(conn, int(msisdn[1:]), len(all_events))
        assert [e["message_id"] for e in indexed] == [e["message_id"] for e in all_events]
    # Numbers of the partition between members, before the first and after the last.
    for stranger in (int(CROWD[0][1:]) - RECENT_PARTS, int(CROWD[-1][1:]) + RECENT_PARTS):
        with store.engine.connect() as conn:
            assert read_recent(conn, stranger, 5)[0] == []


def test_slices_hold_whole_subscribers_and_decode_to_the_block() -> None:
    import numpy as np
    import pyarrow as pa

    from mmsq.adapters.recent_blocks import (
        RECENT_SCHEMA,
        RECENT_SLICE_ROWS,
        block_rows,
        decode_block,
    )

    rng = np.random.default_rng(5)
    counts = rng.integers(1, 7, size=150)
    counts[40] = RECENT_SLICE_ROWS * 2 + 3  # one subscriber bigger than a slice
    m = np.repeat(8613800000000 + np.arange(len(counts)) * RECENT_PARTS, counts)
    n = len(m)
    columns = {
        "event_key": pa.array(np.arange(n, dtype=np.int64)),
        "msisdn": pa.array(m),
        "message_id": pa.array([f"m{i}" for i in range(n)]),
        "submitted_ts": pa.array(1_790_000_000 + rng.integers(0, 86400, n)),
        "done_ts": pa.array([None if i % 5 == 0 else 1_790_100_000 + i for i in range(n)]),
    }
    table = pa.table(
        [
            columns[f.name].cast(f.type) if f.name in columns else pa.nulls(n, f.type)
            for f in RECENT_SCHEMA
        ],
        schema=RECENT_SCHEMA,
    )
    rows = block_rows(7, 3, table.to_batches()[0])
    starts = [r[2] for r in rows]
    assert starts == sorted(starts)
    assert starts[0] == m[0]
    sizes = [r[3] for r in rows]
    assert sum(sizes) == n
    assert len(rows) <= -(-n // RECENT_SLICE_ROWS)
    assert max(sizes) <= RECENT_SLICE_ROWS + int(counts.max())
    big = int(m[int(counts[:40].sum())])
    assert sizes[max(i for i, first in enumerate(starts) if first <= big)] >= int(counts[40])
    decoded = [decode_block([(r[6], r[7])]) for r in rows]
    for r, piece in zip(rows, decoded, strict=True):
        assert piece.num_rows == r[3]
        assert piece["msisdn"][0].as_py() == r[2]  # keyed by its first subscriber
        assert (r[4], r[5]) == (
            int(table["submitted_ts"].to_numpy().min()),
            int(table["submitted_ts"].to_numpy().max()),
        )
    # No subscriber is split over two slices.
    owners = [set(p["msisdn"].to_pylist()) for p in decoded]
    assert all(a.isdisjoint(b) for a, b in itertools.pairwise(owners))
    assert decode_block([(r[6], r[7]) for r in rows]).equals(table)


def test_downgrade_empties_the_index_and_upgrade_rebuilds_it_from_the_segments(
    store: SqlStore, service: IngestService
) -> None:
    from alembic import command

    for day in range(3):
        crowd_day(service, day)
    before = {m: store.recent_events(m, 5) for m in CROWD[::17]}
    t = recent_event_slices
    with store.engine.connect() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
    with store.engine.begin() as conn:
        command.downgrade(store._alembic(conn), "device_parts")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM recent_event_blocks").scalar() == 0
    store.upgrade()
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one() == stored
    assert {m: store.recent_events(m, 5) for m in CROWD[::17]} == before
    with store.engine.connect() as conn:
        indexed, _ = read_recent(conn, int(CROWD[0][1:]), 6)
    assert len(indexed) == 6  # from the rebuilt index, not the segments

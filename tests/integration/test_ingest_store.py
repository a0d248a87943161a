"""Ingest into a real database (SQLite and PostgreSQL): storage, idempotency, quarantine."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mmsq.adapters.cdr_csv import CdrFileError, CdrFileReader
from mmsq.adapters.sql_store import SchemaNotCurrentError, SqlStore, create_engine_for
from mmsq.classify import Classifier
from mmsq.ingest import IngestService
from mmsq.msisdn import MsisdnNormaliser
from mmsq.rules_loader import load_rules


class FixedClock:
    def now(self) -> datetime:
        return datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


HEADER = (
    "msisdn,message_id,edition,submitted_at,done_at,status_source,status_code,"
    "notify_status,imei,region,extra"
)
ROWS = [
    # 2: delivered, national number, local day 2026-11-22
    "13800138000,m1,ah-20261122-am,2026-11-22T07:00:00+08:00,2026-11-22T07:05:00+08:00,mm7,Retrieved,DELIVRD,35332510123456,Hefei,x",
    # 3: same subscriber, E.164, notified but never fetched
    "+8613800138000,m2,ah-20261122-pm,2026-11-22T17:00:00+08:00,2026-11-24T17:00:00+08:00,mm7,Expired,DELIVRD,35332510123456,Hefei,x",
    # 4: memory full, case differs from the rules
    "13900139000,m3,ah-20261122-am,2026-11-22T07:00:01+08:00,2026-11-22T07:06:00+08:00,cmpp,mk:0017,MK:0017,,Wuhu,x",
    # 5: a code nobody knows
    "13900139000,m4,ah-20261122-pm,2026-11-22T17:00:00+08:00,2026-11-22T17:01:00+08:00,cmpp,ZZ:4242,DELIVRD,,Wuhu,x",
    # 6: missing message_id
    "13700137000,,ah-20261122-am,2026-11-22T07:00:00+08:00,,mm7,Retrieved,,,,x",
    # 7: bad time
    "13700137000,m6,ah-20261122-am,yesterday,,mm7,Retrieved,,,,x",
    # 8: invalid MSISDN
    "12345,m7,ah-20261122-am,2026-11-22T07:00:00+08:00,,mm7,Retrieved,,,,x",
    # 9: wrong column count
    "13700137000,m8,ah-20261122-am",
    # 10: empty line (skipped, not quarantined)
    "",
    # 11: pending (no done_at), local time without offset
    "13600136000,m9,ah-20261122-am,2026-11-22T07:00:00,,smpp,ENROUTE,,,,x",
]


def write(path: Path, rows: list[str], gz: bool = False, raw_tail: bytes = b"") -> Path:
    data = ("\n".join([HEADER, *rows]) + "\n").encode() + raw_tail
    if gz:
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


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


def test_cdr_rows_are_classified_stored_and_aggregated(
    tmp_path: Path, store: SqlStore, service: IngestService
) -> None:
    summary = service.ingest([CdrFileReader(write(tmp_path / "a.csv", ROWS))])
    assert summary.records == 5
    assert summary.stored == 5
    assert summary.quarantined == 4
    assert summary.by_cause["delivered"] == 1
    assert summary.by_cause["not_fetched"] == 1
    assert summary.by_cause["terminal_capacity"] == 1
    assert summary.by_cause["pending"] == 1
    assert summary.unknown_codes == {"cmpp:ZZ:4242": 1}

    daily = {(r["msisdn"], str(r["day"])): r for r in store.daily_rows()}
    a = daily[("+8613800138000", "2026-11-22")]
    assert (a["attempts"], a["final"], a["delivered"], a["notified_not_fetched"]) == (2, 2, 1, 1)
    b = daily[("+8613900139000", "2026-11-22")]
    assert (b["c_terminal_capacity"], b["c_unknown"]) == (1, 1)
    c = daily[("+8613600136000", "2026-11-22")]
    assert (c["attempts"], c["final"], c["c_pending"]) == (1, 0, 1)
    assert len(store.devices()) == 1


def test_quarantine_keeps_line_numbers_and_reasons(
    tmp_path: Path, store: SqlStore, service: IngestService
) -> None:
    path = write(
        tmp_path / "a.csv", ROWS, raw_tail=b"13500135000,m10,e,\xff\xfe,,mm7,Retrieved,,,,x\n"
    )
    summary = service.ingest([CdrFileReader(path)])
    got = {r["line"]: r["reason"] for r in store.quarantine_rows(summary.batch_id)}
    assert got == {
        6: "missing required field message_id",
        7: "unparsable submitted_at (ISO 8601 expected)",
        8: "invalid MSISDN",
        9: "wrong column count: 3 (header has 11)",
        12: "bytes that are not UTF-8",
    }


def test_reingesting_the_same_file_stores_nothing_new(
    tmp_path: Path, store: SqlStore, service: IngestService
) -> None:
    path = write(tmp_path / "a.csv.gz", ROWS, gz=True)
    first = service.ingest([CdrFileReader(path)])
    before = store.daily_rows()
    second = service.ingest([CdrFileReader(path)])
    assert (first.stored, first.duplicates) == (5, 0)
    assert (second.stored, second.duplicates) == (0, 5)
    assert store.event_count() == 5
    assert store.daily_rows() == before


def test_small_chunks_give_the_same_result_as_one_chunk(
    tmp_path: Path, store: SqlStore, service: IngestService
) -> None:
    rows = [
        f"1380013{i:04d},id{i},ed-am,2026-11-22T07:00:00+08:00,2026-11-22T07:01:00+08:00,mm7,Retrieved,DELIVRD,,,x"
        for i in range(3000)
    ]
    rows[1500] = "garbage"
    summary = service.ingest([CdrFileReader(write(tmp_path / "b.csv", rows), chunk_bytes=65536)])
    assert (summary.stored, summary.quarantined) == (2999, 1)
    assert [r["line"] for r in store.quarantine_rows(summary.batch_id)] == [1502]


def test_unreadable_file_is_reported_and_others_still_ingested(
    tmp_path: Path, service: IngestService
) -> None:
    good = write(tmp_path / "good.csv", ROWS[:1])
    bad = tmp_path / "bad.csv"
    bad.write_text("foo,bar\n1,2\n")
    summary = service.ingest([CdrFileReader(bad), CdrFileReader(good)])
    assert summary.stored == 1
    assert "message_id" in summary.failed_sources[str(bad)]


def test_header_without_required_columns_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("msisdn,foo\n")
    with pytest.raises(CdrFileError, match="lacks required column"):
        list(CdrFileReader(bad).chunks())


def test_purge_removes_raw_events_before_the_cutoff_and_keeps_aggregates(
    tmp_path: Path, store: SqlStore, service: IngestService
) -> None:
    service.ingest([CdrFileReader(write(tmp_path / "a.csv", ROWS))])
    aggregates = store.daily_rows()
    assert store.purge_events(datetime(2026, 11, 22, 5, 0, tzinfo=UTC)) == 3
    assert store.event_count() == 2
    assert store.daily_rows() == aggregates


def test_a_fresh_database_asks_for_an_upgrade(db_url: str) -> None:
    s = SqlStore.from_url(db_url)
    try:
        with pytest.raises(SchemaNotCurrentError, match="mmsq db upgrade"):
            s.check_schema()
    finally:
        s.close()


def test_single_reports_go_through_the_same_checks_and_store_once(
    store: SqlStore, service: IngestService
) -> None:
    from mmsq.domain import DeliveryReport

    done = datetime(2026, 11, 22, 0, 5, tzinfo=UTC)
    good = DeliveryReport(
        msisdn="8613800138000",
        message_id="MMSC-1",
        status_source="mm7",
        status_code="retrieved",
        done_at=done,
        edition="ah-20261122-am",
    )
    bad = DeliveryReport(
        msisdn="123", message_id="MMSC-2", status_source="mm7", status_code="Expired", done_at=done
    )
    first = service.ingest_reports("mm7-dr", [good, bad])
    again = service.ingest_reports("mm7-dr", [good])
    assert (first.stored, first.quarantined, first.by_cause["delivered"]) == (1, 1, 1)
    assert (again.stored, again.duplicates) == (0, 1)
    assert store.daily_rows()[0]["delivered"] == 1


def test_mm7_delivery_report_and_smpp_receipt_are_stored_and_classified(
    store: SqlStore, service: IngestService
) -> None:
    from mmsq.adapters.mm7_soap import parse_delivery_report
    from mmsq.adapters.smpp_receipt import parse_receipt
    from tests.unit.test_mm7_soap import MBUNI_REL5

    dr = parse_delivery_report(MBUNI_REL5).to_report(edition="ah-20261122-am")
    receipt = parse_receipt(
        "id:9 submit date:2611220700 done date:2611220705 stat:UNDELIV err:027",
        source_addr="8613900139000",
    ).to_report()
    summary = service.ingest_reports("live", [dr, receipt])
    assert summary.stored == 2
    assert dict(summary.by_cause) == {"delivered": 1, "unreachable": 1}


def test_an_ingest_session_gives_the_connection_its_page_cache_back(tmp_path: Path) -> None:
    """The smaller cache of a session storing chunks ends with it, failed or not."""
    store = SqlStore(create_engine_for(f"sqlite:///{tmp_path / 'x.db'}", pool_size=1))
    store.upgrade()

    def cache() -> int:
        with store.engine.connect() as conn:
            return int(conn.exec_driver_sql("PRAGMA cache_size").scalar_one())

    try:
        usual = cache()
        with store.ingest_session() as session:
            session._bulk_cache()  # as a chunk of 65,536 events or more does
            inside = int(session._conn.exec_driver_sql("PRAGMA cache_size").scalar_one())
        assert (usual, inside, cache()) == (-262144, -32768, usual)

        def fail_in_a_bulk_session() -> None:
            with store.ingest_session() as session:
                session._bulk_cache()
                raise RuntimeError("a chunk failed")

        with pytest.raises(RuntimeError):
            fail_in_a_bulk_session()
        assert cache() == usual
    finally:
        store.close()


def _tables(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every table the ingest writes, in storage order (batch ids left out)."""
    engine = create_engine_for(url)
    order = {"event_keys": "part, event_key", "unknown_codes": "namespace, code"}
    out = {}
    with engine.connect() as conn:
        for table in (
            "event_segments",
            "event_keys",
            "daily_aggregate_blocks",
            "device_blocks",
            "edition_daily",
            "recent_event_slices",
            "quarantine",
        ):
            rows = conn.exec_driver_sql(
                f"SELECT * FROM {table} ORDER BY {order.get(table, 'rowid')}"
            ).all()
            out[table] = [tuple(v for k, v in r._mapping.items() if k != "batch_id") for r in rows]
    engine.dispose()
    return out


def test_the_threaded_fold_of_a_bulk_session_stores_what_the_inline_one_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bulk sessions (chunks of 65,536 events or more) fold in worker threads, small ones in
    the calling thread: the same tables either way, for a first ingest and for a file of
    rows stored before, new ones and repeated ones."""
    from mmsq.adapters import sql_ingest_session
    from mmsq.simulators.cdr_generator import CdrSpec, write_cdr

    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    write_cdr(first, CdrSpec(subscribers=400, malformed_share=0.02))
    write_cdr(second, CdrSpec(subscribers=500, malformed_share=0.02, seed=8))
    mixed = tmp_path / "mixed.csv"
    a, b = first.read_text().splitlines(), second.read_text().splitlines()
    mixed.write_text("\n".join([a[0], *a[1:300], *b[1:], *b[50:120]]) + "\n")
    results = []
    for bulk_rows in (1, 10**9):
        monkeypatch.setattr(sql_ingest_session, "_BULK_ROWS", bulk_rows)
        url = f"sqlite:///{tmp_path / f'bulk-{bulk_rows}.db'}"
        store = SqlStore.from_url(url)
        store.upgrade()
        rules = load_rules()
        service = IngestService(
            store,
            Classifier(rules.status_codes),
            MsisdnNormaliser("CN"),
            FixedClock(),
            "Asia/Shanghai",
        )
        for path in (first, mixed):
            service.ingest([CdrFileReader(path, chunk_bytes=65536)])
        store.close()
        results.append(_tables(url))
    threaded, inline = results
    assert all(threaded[t] for t in threaded if t != "quarantine")
    assert threaded == inline

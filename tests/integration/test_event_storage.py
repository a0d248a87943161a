"""The store's read methods and block maintenance, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from alembic import command

from mmsq.adapters.cdr_csv import CdrFileReader
from mmsq.adapters.sql_store import SqlStore
from mmsq.aggregates import LATENCY_EDGES_S
from mmsq.classify import Classifier
from mmsq.domain import DeliveryReport
from mmsq.ingest import AGGREGATE_COUNTS, IngestService
from mmsq.msisdn import MsisdnNormaliser
from mmsq.ports import RawChunk
from mmsq.rules_loader import load_rules


class FixedClock:
    def now(self) -> datetime:
        return datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


HEADER = (
    "msisdn,message_id,edition,submitted_at,done_at,status_source,status_code,notify_status,imei"
)


def row(
    msisdn: str,
    mid: str,
    edition: str,
    submitted: str,
    done: str,
    code: str = "Retrieved",
    imei: str = "",
    source: str = "mm7",
    notify: str = "DELIVRD",
) -> str:
    return f"{msisdn},{mid},{edition},{submitted},{done},{source},{code},{notify},{imei}"


def write(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join([HEADER, *rows]) + "\n")
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


A = "13800138000"
B = "13900139000"


def test_recent_events_are_newest_first_and_limited(
    tmp_path: Path, store: SqlStore, service: IngestService
) -> None:
    rows = [
        row(
            A,
            f"a{d}{h}",
            f"ed-{d}-{h}",
            f"2026-11-{d}T{h}:00:00+08:00",
            f"2026-11-{d}T{h}:05:00+08:00",
            code="Expired" if d == 21 else "Retrieved",
        )
        for d in (19, 20, 21)
        for h in (7, 17)
    ]
    rows.append(row(B, "b1", "ed", "2026-11-21T07:00:00+08:00", "2026-11-21T07:01:00+08:00"))
    service.ingest([CdrFileReader(write(tmp_path / "a.csv", rows))])
    got = store.recent_events("+86" + A, limit=3)
    assert [e["message_id"] for e in got] == ["a2117", "a217", "a2017"]
    assert got[0]["cause"] == "not_fetched"
    assert got[0]["msisdn"] == "+86" + A
    assert got[0]["done_ts"] - got[0]["submitted_ts"] == 300
    assert len(store.recent_events("+86" + A, limit=50)) == 6
    assert store.recent_events("+8613700137000") == []
    assert store.recent_events("not a number") == []


def test_daily_aggregates_for_a_window_of_days(
    tmp_path: Path, store: SqlStore, service: IngestService
) -> None:
    rows = [
        row(A, "m1", "e", "2026-11-20T07:00:00+08:00", "2026-11-20T07:01:00+08:00"),
        row(A, "m2", "e", "2026-11-21T07:00:00+08:00", "2026-11-21T07:01:00+08:00"),
        row(A, "m3", "e", "2026-11-21T17:00:00+08:00", "2026-11-23T17:00:00+08:00", "Expired"),
        row(
            B,
            "m4",
            "e",
            "2026-11-21T07:00:00+08:00",
            "2026-11-21T07:01:00+08:00",
            "MK:0017",
            source="cmpp",
        ),
        row(B, "m5", "e", "2026-11-22T07:00:00+08:00", "2026-11-22T07:01:00+08:00"),
    ]
    service.ingest([CdrFileReader(write(tmp_path / "a.csv", rows))])
    frame = store.daily_aggregates(date(2026, 11, 21), date(2026, 11, 21))
    assert list(frame.columns) == ["msisdn", "day", *AGGREGATE_COUNTS, "last_ts"]
    by = {str(r.msisdn): r for r in frame.itertuples()}
    assert set(by) == {"+86" + A, "+86" + B}
    a = by["+86" + A]
    assert (a.attempts, a.final, a.delivered, a.notified_not_fetched) == (2, 2, 1, 1)
    assert a.day == pd.Timestamp("2026-11-21")
    assert by["+86" + B].c_terminal_capacity == 1
    assert len(store.daily_aggregates(date(2026, 11, 1), date(2026, 11, 30))) == 4
    assert store.daily_aggregates(date(2026, 12, 1), date(2026, 12, 2)).empty


def test_a_second_file_for_the_same_day_adds_to_the_aggregates(
    tmp_path: Path, store: SqlStore, service: IngestService
) -> None:
    first = [row(A, "m1", "am", "2026-11-22T07:00:00+08:00", "2026-11-22T07:01:00+08:00")]
    second = [
        row(A, "m2", "pm", "2026-11-22T17:00:00+08:00", "2026-11-22T17:01:00+08:00"),
        row(B, "m3", "pm", "2026-11-22T17:00:00+08:00", "2026-11-22T17:09:00+08:00"),
    ]
    service.ingest([CdrFileReader(write(tmp_path / "a.csv", first))])
    service.ingest([CdrFileReader(write(tmp_path / "b.csv", second))])
    again = service.ingest([CdrFileReader(write(tmp_path / "b.csv", second))])
    assert (again.stored, again.duplicates) == (0, 2)
    daily = {(r["msisdn"], r["day"]): r for r in store.daily_rows()}
    a = daily[("+86" + A, date(2026, 11, 22))]
    assert (a["attempts"], a["delivered"]) == (2, 2)
    assert a["last_ts"] == int(datetime(2026, 11, 22, 9, 0, tzinfo=UTC).timestamp())
    assert daily[("+86" + B, date(2026, 11, 22))]["attempts"] == 1


def test_device_changes_only_on_a_handset_swap(
    tmp_path: Path, store: SqlStore, service: IngestService
) -> None:
    old, new = "35332510123456", "86012345678901"
    service.ingest(
        [
            CdrFileReader(
                write(
                    tmp_path / "a.csv",
                    [
                        row(A, "m1", "e", "2026-11-21T07:00:00+08:00", "", imei=old),
                        row(A, "m2", "e", "2026-11-21T17:00:00+08:00", "", imei=old),
                        row(B, "m3", "e", "2026-11-21T07:00:00+08:00", "", imei=old),
                    ],
                )
            )
        ]
    )
    first = store.device("+86" + A)
    assert first is not None
    assert (first["imei"], first["tac"]) == (old, "35332510")
    service.ingest(
        [
            CdrFileReader(
                write(
                    tmp_path / "b.csv",
                    [
                        row(A, "m4", "e", "2026-11-22T07:00:00+08:00", "", imei=new),
                        row(
                            B, "m5", "e", "2026-11-20T07:00:00+08:00", "", imei=new
                        ),  # older than the stored
                        row(
                            B, "m6", "e", "2026-11-22T07:00:00+08:00", "", imei=old
                        ),  # same handset
                    ],
                )
            )
        ]
    )
    devices = store.devices().set_index("msisdn")
    assert devices.loc["+86" + A, "imei"] == new
    assert devices.loc["+86" + A, "tac"] == "86012345"
    assert devices.loc["+86" + B, "imei"] == old
    b = store.device("+86" + B)
    assert b is not None
    assert b["seen_ts"] == int(datetime(2026, 11, 20, 23, 0, tzinfo=UTC).timestamp())
    assert store.device("+8613700137000") is None


def test_only_device_blocks_with_a_changed_handset_are_rewritten(
    tmp_path: Path, store: SqlStore, service: IngestService
) -> None:
    from mmsq.adapters.sql_event_schema import device_blocks

    def blocks() -> dict[int, bytes]:
        with store.engine.connect() as conn:
            return dict(conn.execute(sa.select(device_blocks.c.part, device_blocks.c.data)).all())

    numbers = [f"138{i:08d}" for i in range(0, 50_000, 997)]
    day1 = [
        row(n, f"a{i}", "e", "2026-11-21T07:00:00+08:00", "", imei=f"353325{i:08d}")
        for i, n in enumerate(numbers)
    ]
    service.ingest([CdrFileReader(write(tmp_path / "a.csv", day1))])
    before = blocks()
    assert sum(1 for _ in before) > 1
    # The next day: the same handsets, and one subscriber with a new one.
    day2 = [
        row(n, f"b{i}", "e", "2026-11-22T07:00:00+08:00", "", imei=f"353325{i:08d}")
        for i, n in enumerate(numbers)
    ]
    day2[3] = row(numbers[3], "b3", "e", "2026-11-22T07:00:00+08:00", "", imei="86012345678901")
    service.ingest([CdrFileReader(write(tmp_path / "b.csv", day2))])
    after = blocks()
    assert after.keys() == before.keys()
    changed = [p for p in after if after[p] != before[p]]
    assert changed == [int("86" + numbers[3]) % 4096]
    swapped = store.device("+86" + numbers[3])
    assert swapped is not None
    assert swapped["imei"] == "86012345678901"
    kept = store.device("+86" + numbers[4])
    assert kept is not None
    assert kept["imei"] == f"353325{4:08d}"
    assert kept["seen_ts"] == int(datetime(2026, 11, 20, 23, 0, tzinfo=UTC).timestamp())


def test_edition_stats_count_outcomes_and_latency(
    tmp_path: Path, store: SqlStore, service: IngestService
) -> None:
    rows = [
        row(A, "m1", "am", "2026-11-22T07:00:00+08:00", "2026-11-22T07:05:00+08:00"),  # 300 s
        row(B, "m2", "am", "2026-11-22T07:00:00+08:00", "2026-11-22T09:00:00+08:00"),  # 7200 s
        row(B, "m3", "am", "2026-11-22T07:00:00+08:00", "2026-11-23T07:00:00+08:00", "Expired"),
        row(A, "m4", "pm", "2026-11-22T17:00:00+08:00", "2026-11-22T17:00:05+08:00"),  # 5 s
    ]
    path = write(tmp_path / "a.csv", rows)
    service.ingest([CdrFileReader(path)])
    service.ingest([CdrFileReader(path)])  # duplicates change nothing
    # A receipt need not name the edition: counted under "".
    service.ingest_reports(
        "smpp",
        [
            DeliveryReport(
                msisdn=A,
                message_id="r1",
                status_source="smpp",
                status_code="DELIVRD",
                done_at=datetime(2026, 11, 22, 10, 0, tzinfo=UTC),
            )
        ],
    )
    stats = store.edition_stats(date(2026, 11, 22), date(2026, 11, 22)).set_index("edition")
    am = stats.loc["am"]
    assert (am["attempts"], am["final"], am["delivered"], am["c_not_fetched"]) == (3, 3, 2, 1)
    assert (am["latency_n"], am["latency_sum_s"]) == (2, 7500)
    bins = {f"lat_{LATENCY_EDGES_S.index(s)}": 1 for s in (300, 7200)}  # <= 300 s, <= 7200 s
    assert {k: am[k] for k in am.index if k.startswith("lat_") and am[k]} == bins
    assert stats.loc["pm", f"lat_{LATENCY_EDGES_S.index(5)}"] == 1
    assert stats.loc["", "attempts"] == 1


class _FailingReader:
    """Yields the chunks of a file, then fails the way a crash would (not an input error)."""

    def __init__(self, path: Path) -> None:
        self._inner = CdrFileReader(path, chunk_bytes=65536)
        self.source = self._inner.source
        self.total_bytes = self._inner.total_bytes

    def chunks(self) -> Iterator[RawChunk]:
        yield from self._inner.chunks()
        raise RuntimeError("power cut")


def test_an_interrupted_source_stores_nothing_and_a_rerun_stores_all(
    tmp_path: Path, store: SqlStore, service: IngestService
) -> None:
    rows = [
        row(
            f"1380013{i:04d}",
            f"id{i}",
            "e",
            "2026-11-22T07:00:00+08:00",
            "2026-11-22T07:01:00+08:00",
            imei="35332510123456",
        )
        for i in range(4000)
    ]
    path = write(tmp_path / "a.csv", rows)
    with pytest.raises(RuntimeError, match="power cut"):
        service.ingest([_FailingReader(path)])
    assert store.event_count() == 0
    assert store.daily_rows() == []
    assert store.devices().empty
    summary = service.ingest([CdrFileReader(path, chunk_bytes=65536)])
    assert (summary.stored, summary.duplicates) == (4000, 0)
    assert store.event_count() == 4000
    assert sum(r["attempts"] for r in store.daily_rows()) == 4000
    assert len(store.devices()) == 4000


def test_duplicates_across_chunks_of_one_file_are_counted_once(
    tmp_path: Path, store: SqlStore, service: IngestService
) -> None:
    rows = [
        row(
            f"1380013{i % 2500:04d}",
            f"id{i % 2500}",
            "e",
            "2026-11-22T07:00:00+08:00",
            "2026-11-22T07:01:00+08:00",
        )
        for i in range(5000)
    ]
    summary = service.ingest([CdrFileReader(write(tmp_path / "a.csv", rows), chunk_bytes=65536)])
    assert (summary.stored, summary.duplicates) == (2500, 2500)
    assert sum(r["attempts"] for r in store.daily_rows()) == 2500


def test_upgrade_from_0001_keeps_events_aggregates_and_devices(db_url: str) -> None:
    store = SqlStore.from_url(db_url)
    try:
        with store.engine.begin() as conn:
            command.upgrade(store._alembic(conn), "0001")
            conn.execute(
                sa.text(
                    "INSERT INTO delivery_events (event_key, msisdn, message_id, edition, "
                    "status_source, status_code, cause, final, notify_ok, imei, submitted_ts, "
                    "done_ts, day) VALUES (42, '+8613800138000', 'm1', 'am', 'mm7', 'Retrieved', "
                    "'delivered', true, 1, '35332510123456', 1763766000, 1763766300, "
                    "'2026-11-22')"
                )
            )
            conn.execute(
                sa.text(
                    "INSERT INTO daily_aggregates (msisdn, day, attempts, final, delivered, "
                    "c_delivered, last_ts) VALUES ('+8613800138000', '2026-11-22', 1, 1, 1, 1, "
                    "1763766000)"
                )
            )
            conn.execute(
                sa.text(
                    "INSERT INTO subscriber_devices (msisdn, imei, tac, seen_ts) VALUES "
                    "('+8613800138000', '35332510123456', '35332510', 1763766000)"
                )
            )
        store.upgrade()
        store.check_schema()
        events = store.recent_events("+8613800138000")
        assert [(e["message_id"], e["cause"], e["event_key"]) for e in events] == [
            ("m1", "delivered", 42)
        ]
        assert store.daily_rows()[0]["delivered"] == 1
        assert store.devices()["imei"].tolist() == ["35332510123456"]
        assert store.edition_stats(date(2026, 11, 22), date(2026, 11, 22))["attempts"].tolist() == [
            1
        ]
    finally:
        store.close()

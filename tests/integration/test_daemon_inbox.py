"""The inbox job on real directories and a real database: done/, failed/, nothing lost."""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmsq.adapters.cdr_csv import CdrFileReader
from mmsq.adapters.cdr_inbox import DirectoryInbox
from mmsq.bootstrap import App, build_app
from mmsq.inbox import InboxIngestJob
from mmsq.metrics import Metrics
from mmsq.settings import DatabaseSettings, Settings
from mmsq.simulators.cdr_generator import CdrSpec, write_cdr

NOW = 2_000_000_000.0


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    settings = Settings(
        data_dir=tmp_path, database=DatabaseSettings(url=f"sqlite:///{tmp_path / 'mmsq.db'}")
    )
    a = build_app(settings, check_schema=False)
    a.store.upgrade()
    try:
        yield a
    finally:
        a.close()


def make_inbox(tmp_path: Path, settle_s: float = 30.0) -> DirectoryInbox:
    inbox = DirectoryInbox(
        tmp_path / "inbox", tmp_path / "done", tmp_path / "failed", settle_s, wall_time=lambda: NOW
    )
    inbox.ensure_dirs()
    return inbox


def drop(path: Path, age_s: float = 60.0) -> Path:
    os.utime(path, (NOW - age_s, NOW - age_s))
    return path


def job_for(inbox: DirectoryInbox, app: App, metrics: Metrics) -> InboxIngestJob:
    return InboxIngestJob(inbox, app.ingest, lambda p: CdrFileReader(p, 64 * 1024), metrics)


def test_only_complete_cdr_files_are_ready(tmp_path: Path) -> None:
    inbox = make_inbox(tmp_path)
    d = inbox.inbox
    for name in ("a.csv", "b.csv.gz", "c.csv.gz.part", ".d.csv", "e.txt", "F.CSV"):
        (d / name).write_text("x")
        drop(d / name)
    (d / "fresh.csv").write_text("x")
    drop(d / "fresh.csv", age_s=5)
    (d / "sub.csv").mkdir()
    scan = inbox.scan()
    assert sorted(p.name for p in scan.ready) == ["F.CSV", "a.csv", "b.csv.gz"]
    assert scan.settling == 1


def test_files_are_ingested_then_moved_to_done_or_failed_with_the_reason(
    tmp_path: Path, app: App
) -> None:
    inbox = make_inbox(tmp_path)
    good = inbox.inbox / "cdr-20261122.csv.gz"
    rows = write_cdr(good, CdrSpec(subscribers=50, malformed_share=0.04))
    drop(good)
    bad = inbox.inbox / "broken.csv.gz"
    bad.write_bytes(gzip.compress(b"not,a,cdr,header\n1,2,3,4\n"))
    drop(bad)
    metrics = Metrics()
    summary = job_for(inbox, app, metrics)()
    assert summary["files_done"] == 1
    assert summary["files_failed"] == 1
    assert summary["records"] + summary["quarantined"] == rows
    assert app.store.event_count() == summary["stored"] > 0
    assert list(inbox.inbox.iterdir()) == []
    assert (inbox.done / good.name).is_file()
    assert (inbox.failed / bad.name).is_file()
    why = (inbox.failed / "broken.csv.gz.error.txt").read_text()
    assert "lacks required column" in why
    assert metrics.registry.get_sample_value("mmsq_inbox_files_total", {"outcome": "done"}) == 1
    assert metrics.registry.get_sample_value("mmsq_inbox_backlog_files") == 0


def test_the_same_file_name_twice_keeps_both_and_stores_once(tmp_path: Path, app: App) -> None:
    inbox = make_inbox(tmp_path)
    job = job_for(inbox, app, Metrics())
    spec = CdrSpec(subscribers=20, malformed_share=0)
    write_cdr(inbox.inbox / "a.csv", spec)
    drop(inbox.inbox / "a.csv")
    first = job()
    write_cdr(inbox.inbox / "a.csv", spec)
    drop(inbox.inbox / "a.csv")
    second = job()
    assert second["stored"] == 0
    assert second["duplicates"] == first["stored"]
    assert len(list(inbox.done.iterdir())) == 2


def test_a_file_stays_in_the_inbox_when_the_database_fails(tmp_path: Path, app: App) -> None:
    inbox = make_inbox(tmp_path)
    write_cdr(inbox.inbox / "a.csv", CdrSpec(subscribers=20))
    drop(inbox.inbox / "a.csv")
    with app.store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE event_segments")
    with pytest.raises(Exception, match="event_segments"):
        job_for(inbox, app, Metrics())()
    assert (inbox.inbox / "a.csv").is_file()
    assert list(inbox.done.iterdir()) == list(inbox.failed.iterdir()) == []


def test_a_stop_request_leaves_the_remaining_files_for_next_time(tmp_path: Path, app: App) -> None:
    inbox = make_inbox(tmp_path)
    for i in range(3):
        write_cdr(inbox.inbox / f"{i}.csv", CdrSpec(subscribers=5, seed=i))
        drop(inbox.inbox / f"{i}.csv", age_s=60 - i)
    calls = {"n": 0}

    def stopping() -> bool:
        calls["n"] += 1
        return calls["n"] > 1

    job = InboxIngestJob(inbox, app.ingest, CdrFileReader, Metrics(), stopping=stopping)
    assert job()["files_done"] == 1
    assert sorted(p.name for p in inbox.inbox.iterdir()) == ["1.csv", "2.csv"]

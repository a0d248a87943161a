"""APScheduler with its job store in mmsq's database (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
import sqlalchemy as sa

from mmsq.adapters.scheduler import ApsScheduler, ScheduleError, build_trigger
from mmsq.adapters.sql_store import SqlStore
from mmsq.jobs import Job, JobRegistry, JobRunner, Schedule
from mmsq.metrics import Metrics

TZ = "Asia/Shanghai"


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        time.sleep(0.02)


@pytest.fixture
def store(db_url: str) -> Iterator[SqlStore]:
    s = SqlStore.from_url(db_url)
    s.upgrade()
    try:
        yield s
    finally:
        s.close()


class Counted:
    def __init__(self, fail_first: int = 0) -> None:
        self.calls = 0
        self.fail_first = fail_first
        self.lock = threading.Lock()

    def __call__(self) -> Mapping[str, object]:
        with self.lock:
            self.calls += 1
            n = self.calls
        if n <= self.fail_first:
            raise RuntimeError(f"failure {n}")
        return {"call": n}


def scheduler_for(store: SqlStore, jobs: list[Job], metrics: Metrics) -> ApsScheduler:
    registry = JobRegistry()
    for job in jobs:
        registry.add(job)
    return ApsScheduler(store.engine, JobRunner(registry, metrics), metrics, TZ, workers=2)


def stored_jobs(store: SqlStore) -> set[str]:
    with store.engine.connect() as conn:
        return set(conn.execute(sa.text("SELECT id FROM scheduler_jobs")).scalars())


def test_a_failing_job_keeps_its_schedule_and_the_others_keep_running(store: SqlStore) -> None:
    flaky, steady = Counted(fail_first=2), Counted()
    metrics = Metrics()
    scheduler = scheduler_for(
        store,
        [
            Job("flaky", flaky, Schedule(interval_s=0.1)),
            Job("steady", steady, Schedule(interval_s=0.1)),
        ],
        metrics,
    )
    scheduler.start()
    try:
        wait_until(lambda: flaky.calls >= 4 and steady.calls >= 4)
        assert scheduler.running
    finally:
        scheduler.shutdown(wait=True)
    assert not scheduler.running
    get = metrics.registry.get_sample_value
    assert get("mmsq_job_failures_total", {"job": "flaky"}) == 2
    assert get("mmsq_job_runs_total", {"job": "flaky", "outcome": "ok"}) >= 2
    assert get("mmsq_job_failures_total", {"job": "steady"}) == 0


def test_jobs_persist_across_restarts_and_follow_the_config(store: SqlStore) -> None:
    metrics = Metrics()
    daily = Schedule(cron="30 3 * * *", misfire_grace_s=3600)
    first = scheduler_for(
        store,
        [Job("purge", Counted(), daily), Job("retired", Counted(), Schedule(cron="0 1 * * *"))],
        metrics,
    )
    first.start()
    next_purge = first.next_runs()["purge"]
    first.shutdown()
    assert stored_jobs(store) == {"purge", "retired"}

    # Same schedule: the stored job (and its next run time) is kept; "retired" is gone.
    second = scheduler_for(store, [Job("purge", Counted(), daily)], Metrics())
    second.start()
    try:
        assert second.next_runs() == {"purge": next_purge}
        assert "next purge at" in second.health()
    finally:
        second.shutdown()
    assert stored_jobs(store) == {"purge"}

    # A changed schedule replaces the stored job.
    third = scheduler_for(store, [Job("purge", Counted(), Schedule(cron="0 4 * * *"))], Metrics())
    third.start()
    try:
        moved = third.next_runs()["purge"]
        assert moved is not None
        assert next_purge is not None
        assert (moved.hour, moved.minute) == (4, 0) != (next_purge.hour, next_purge.minute)
    finally:
        third.shutdown()


def test_one_scheduler_per_process_and_health_fails_when_stopped(tmp_path: Path) -> None:
    store = SqlStore.from_url(f"sqlite:///{tmp_path / 'mmsq.db'}")
    store.upgrade()
    try:
        a = scheduler_for(store, [Job("x", Counted(), Schedule(cron="0 1 * * *"))], Metrics())
        b = scheduler_for(store, [Job("x", Counted(), Schedule(cron="0 1 * * *"))], Metrics())
        a.start()
        try:
            with pytest.raises(RuntimeError, match="already running"):
                b.start()
        finally:
            a.shutdown()
        with pytest.raises(RuntimeError, match="not running"):
            a.health()
    finally:
        store.close()


def test_a_bad_cron_expression_names_its_config_key() -> None:
    from zoneinfo import ZoneInfo

    with pytest.raises(ScheduleError, match=r"daemon\.jobs\.score\.cron"):
        build_trigger("score", Schedule(cron="61 * * * *"), ZoneInfo(TZ))

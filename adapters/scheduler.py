"""APScheduler 3 as the daemon's only scheduler, with its job store in mmsq's database.

Jobs are persisted (SQLAlchemyJobStore, table ``scheduler_jobs`` created by the ``daemon``
migration), so each job's next run time survives a restart and runs missed while the daemon
was down are handled by each job's ``coalesce`` and ``misfire_grace_time``.

APScheduler stores a job as a textual reference to a function plus its arguments, so closures
cannot be stored. Every stored job therefore names the same module-level function,
``run_registered``, with the job's name as argument; that function hands the name to the
``JobRunner`` of the scheduler running in this process. At start the stored jobs are
reconciled with the registry: new jobs are added, jobs whose schedule changed in the config are
replaced, stored jobs that are no longer registered are removed, unchanged jobs keep their next
run time.
"""

from __future__ import annotations

import logging
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_RUNNING, STATE_STOPPED
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.engine import Engine

from mmsq.jobs import Job, JobRegistry, JobRunner, Schedule
from mmsq.metrics import Metrics

__all__ = ["JOBS_TABLE", "ApsScheduler", "ScheduleError", "build_trigger", "run_registered"]

log = structlog.get_logger("mmsq.scheduler")

JOBS_TABLE = "scheduler_jobs"
_FUNC_REF = f"{__name__}:run_registered"
# The runner of the scheduler started in this process (at most one): see the module docstring.
_ACTIVE: dict[str, JobRunner] = {}


class ScheduleError(ValueError):
    """A job's schedule in the config cannot be used; the message names the key."""


def run_registered(name: str) -> None:
    """What every stored job calls: run the registered job ``name`` through the runner."""
    runner = _ACTIVE.get("runner")
    if runner is None:
        log.error("scheduler.no_runner", job=name)
        return
    if name not in runner.registry:
        log.error("scheduler.unknown_job", job=name)
        return
    runner.run(name)


def build_trigger(name: str, schedule: Schedule, tz: tzinfo) -> BaseTrigger:
    """The APScheduler trigger for a schedule; ScheduleError names the config key."""
    if schedule.cron:
        try:
            return CronTrigger.from_crontab(schedule.cron, timezone=tz)
        except ValueError as exc:
            raise ScheduleError(f"daemon.jobs.{name}.cron: {exc}") from None
    assert schedule.interval_s is not None
    return IntervalTrigger(seconds=schedule.interval_s, timezone=tz)


class ApsScheduler:
    """A BackgroundScheduler (thread pool) whose jobs are the registry's, stored in the DB."""

    def __init__(
        self,
        engine: Engine,
        runner: JobRunner,
        metrics: Metrics,
        timezone: str,
        workers: int = 4,
    ) -> None:
        self.runner = runner
        self._registry: JobRegistry = runner.registry
        self._metrics = metrics
        self._tz = ZoneInfo(timezone)
        self._triggers = {
            job.name: build_trigger(job.name, job.schedule, self._tz) for job in self._registry
        }
        self._scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=engine, tablename=JOBS_TABLE)},
            executors={"default": ThreadPoolExecutor(workers)},
            job_defaults={"max_instances": 1},
            timezone=self._tz,
        )
        self._scheduler.add_listener(self._on_skipped, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)

    # -- SchedulerPort -------------------------------------------------------------------

    def start(self) -> None:
        if _ACTIVE:
            raise RuntimeError("a scheduler is already running in this process")
        _ACTIVE["runner"] = self.runner
        try:
            self._scheduler.start(paused=True)
            self._reconcile()
            self._scheduler.resume()
        except BaseException:
            _ACTIVE.pop("runner", None)
            if self._scheduler.state != STATE_STOPPED:
                self._scheduler.shutdown(wait=False)
            raise
        self._metrics.scheduler_running.set(1)

    def shutdown(self, wait: bool = True) -> None:
        """Start nothing new; with ``wait``, return once the running jobs have finished."""
        self._metrics.scheduler_running.set(0)
        if self._scheduler.state != STATE_STOPPED:
            self._scheduler.shutdown(wait=wait)
        if _ACTIVE.get("runner") is self.runner:
            _ACTIVE.pop("runner", None)

    @property
    def running(self) -> bool:
        return bool(self._scheduler.state == STATE_RUNNING)

    def job_names(self) -> list[str]:
        return self._registry.names()

    # -- details ---------------------------------------------------------------------------

    def next_runs(self) -> dict[str, datetime | None]:
        return {job.id: job.next_run_time for job in self._scheduler.get_jobs()}

    def health(self) -> str:
        """Health check: raises unless running; the detail names the next due job."""
        if not self.running:
            raise RuntimeError("scheduler is not running")
        due = [(t, name) for name, t in self.next_runs().items() if t is not None]
        if not due:
            return f"{len(self._registry)} jobs"
        when, name = min(due)
        return f"{len(self._registry)} jobs; next {name} at {when.isoformat(timespec='seconds')}"

    def _wanted(self, job: Job) -> dict[str, Any]:
        return {
            "func": _FUNC_REF,
            "args": (job.name,),
            "coalesce": job.schedule.coalesce,
            "misfire_grace_time": job.schedule.misfire_grace_s,
            "max_instances": 1,
        }

    def _reconcile(self) -> None:
        stored = {j.id: j for j in self._scheduler.get_jobs()}
        for job in self._registry:
            trigger = self._triggers[job.name]
            wanted = self._wanted(job)
            old = stored.pop(job.name, None)
            if old is not None and self._same(old, trigger, wanted):
                log.info("scheduler.job_kept", job=job.name, next_run=str(old.next_run_time))
                continue
            first: dict[str, Any] = {}
            if job.schedule.cron is None:
                first["next_run_time"] = datetime.now(self._tz)  # interval jobs start at once
            self._scheduler.add_job(
                id=job.name,
                name=job.name,
                trigger=trigger,
                replace_existing=True,
                **wanted,
                **first,
            )
            log.info(
                "scheduler.job_scheduled",
                job=job.name,
                schedule=job.schedule.describe(),
                replaced=old is not None,
            )
        for name in stored:
            self._scheduler.remove_job(name)
            log.info("scheduler.job_removed", job=name, reason="no longer registered")

    @staticmethod
    def _same(old: Any, trigger: BaseTrigger, wanted: dict[str, Any]) -> bool:
        return bool(
            str(old.trigger) == str(trigger)
            and str(getattr(old.trigger, "timezone", "")) == str(getattr(trigger, "timezone", ""))
            and old.func_ref == wanted["func"]
            and tuple(old.args) == wanted["args"]
            and old.coalesce == wanted["coalesce"]
            and old.misfire_grace_time == wanted["misfire_grace_time"]
            and old.max_instances == wanted["max_instances"]
        )

    def _on_skipped(self, event: JobExecutionEvent) -> None:
        reason = "missed" if event.code == EVENT_JOB_MISSED else "still_running"
        self._metrics.job_runs.labels(job=event.job_id, outcome=reason).inc()
        # A poll skipped because the previous one is still ingesting a big file is normal.
        level = logging.WARNING if reason == "missed" else logging.INFO
        log.log(
            level,
            "job.skipped",
            job=event.job_id,
            reason=reason,
            scheduled=event.scheduled_run_time.isoformat(),
        )

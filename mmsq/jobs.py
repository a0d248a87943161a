"""Daemon jobs: named callables with a schedule, and the wrapper every run goes through.

A job is built by the composition root (``mmsq.bootstrap``) from a service that exists; the
scheduler knows jobs only by name. ``JobRunner.run`` gives each run a ``run_id``, binds the
structlog context variables ``job`` and ``run_id``, writes one summary line, updates the job
metrics and never lets an exception escape: a failed run is logged and the job simply runs
again at its next scheduled time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from uuid import uuid4

import structlog

from mmsq.metrics import Metrics

__all__ = ["Job", "JobFunc", "JobOutcome", "JobRegistry", "JobRunner", "Schedule"]

log = structlog.get_logger("mmsq.jobs")

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO}

#: What a job does: returns a small summary (counts, ids) for its log line, or None. A summary
#: with ``idle=True`` (nothing to do) is logged at DEBUG rather than INFO.
JobFunc = Callable[[], Mapping[str, object] | None]


@dataclass(frozen=True, slots=True)
class Schedule:
    """Every ``interval_s`` seconds, or a 5-field ``cron`` expression (cron wins when set).

    ``coalesce`` and ``misfire_grace_s`` decide what happens to runs missed while the daemon
    was down or busy (see config.example.toml for the reasoning behind each default).
    """

    interval_s: float | None = None
    cron: str | None = None
    coalesce: bool = True
    misfire_grace_s: int | None = 60

    def __post_init__(self) -> None:
        if self.cron is None and self.interval_s is None:
            raise ValueError("a schedule needs interval_s or cron")

    def describe(self) -> str:
        return f"cron {self.cron!r}" if self.cron else f"every {self.interval_s:g}s"


@dataclass(frozen=True, slots=True)
class Job:
    """A named unit of scheduled work."""

    name: str
    func: JobFunc
    schedule: Schedule
    description: str = ""


class JobRegistry:
    """The jobs this daemon runs, by unique name, in registration order."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}

    def add(self, job: Job) -> None:
        if job.name in self._jobs:
            raise ValueError(f"job {job.name!r} is already registered")
        self._jobs[job.name] = job

    def get(self, name: str) -> Job:
        return self._jobs[name]

    def __contains__(self, name: object) -> bool:
        return name in self._jobs

    def __iter__(self) -> Iterator[Job]:
        return iter(list(self._jobs.values()))

    def __len__(self) -> int:
        return len(self._jobs)

    def names(self) -> list[str]:
        return list(self._jobs)


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """What one run did: ``ok`` with the job's summary, or the error it raised."""

    job: str
    run_id: str
    ok: bool
    duration_s: float
    summary: Mapping[str, object] = field(default_factory=dict)
    error: str | None = None


class JobRunner:
    """Runs registered jobs by name with logging context, metrics and error containment."""

    def __init__(
        self,
        registry: JobRegistry,
        metrics: Metrics,
        monotonic: Callable[[], float] = time.monotonic,
        wall_time: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self._metrics = metrics
        self._monotonic = monotonic
        self._wall_time = wall_time
        for name in registry.names():
            metrics.declare_job(name)

    def run(self, name: str) -> JobOutcome:
        """Run one job now; an exception is logged with its context and counted, not raised."""
        run_id = uuid4().hex[:12]
        job = self.registry.get(name)
        started = self._monotonic()
        with structlog.contextvars.bound_contextvars(job=name, run_id=run_id):
            try:
                summary = dict(job.func() or {})
            except Exception as exc:
                duration = self._monotonic() - started
                error = f"{type(exc).__name__}: {exc}"
                self._metrics.job_finished(name, duration, ok=False)
                log.error("job.failed", duration_s=round(duration, 3), error=error, exc_info=True)
                return JobOutcome(name, run_id, False, duration, error=error)
            duration = self._monotonic() - started
            self._metrics.job_finished(name, duration, ok=True, at=self._wall_time())
            # A run that found nothing to do (an empty inbox poll) says so at DEBUG level.
            level = "debug" if summary.get("idle") else "info"
            log.log(_LEVELS[level], "job.finished", duration_s=round(duration, 3), **summary)
        return JobOutcome(name, run_id, True, duration, summary)

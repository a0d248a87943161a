"""The daemon's in-process parts: the job wrapper, health checks, shutdown hooks, settings."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path

import pytest
import structlog
from prometheus_client import generate_latest

from mmsq.daemon import EXIT_FORCED, Daemon
from mmsq.health import HealthRegistry
from mmsq.jobs import Job, JobRegistry, JobRunner, Schedule
from mmsq.metrics import Metrics
from mmsq.settings import ConfigError, load_settings
from mmsq.shutdown import ShutdownHooks

EVERY_SECOND = Schedule(interval_s=1.0)


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


class Flaky:
    """Raises on its first call, then succeeds: the shape of a transient failure."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> Mapping[str, object]:
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("database went away")
        return {"files_done": 1}


def test_a_job_that_raises_is_logged_with_context_and_runs_again_next_time() -> None:
    registry = JobRegistry()
    flaky = Flaky()
    registry.add(Job("inbox", flaky, EVERY_SECOND))
    metrics = Metrics()
    runner = JobRunner(registry, metrics)
    with structlog.testing.capture_logs(
        processors=[structlog.contextvars.merge_contextvars]
    ) as logs:
        first = runner.run("inbox")
        second = runner.run("inbox")
    assert not first.ok
    assert first.error == "ConnectionError: database went away"
    assert second.ok
    assert second.summary == {"files_done": 1}
    failed = [e for e in logs if e["event"] == "job.failed"]
    finished = [e for e in logs if e["event"] == "job.finished"]
    assert len(failed) == 1
    assert len(finished) == 1
    assert failed[0]["job"] == "inbox"
    assert failed[0]["run_id"] == first.run_id
    assert failed[0]["error"] == "ConnectionError: database went away"
    assert failed[0]["exc_info"] is True
    assert finished[0]["run_id"] == second.run_id != first.run_id
    assert finished[0]["files_done"] == 1
    assert sample(metrics, "mmsq_job_failures_total", job="inbox") == 1
    assert sample(metrics, "mmsq_job_runs_total", job="inbox", outcome="ok") == 1
    assert sample(metrics, "mmsq_job_runs_total", job="inbox", outcome="failed") == 1
    # The context does not leak out of the run.
    assert "job" not in structlog.contextvars.get_contextvars()


def test_every_registered_job_is_exported_at_zero_before_its_first_run() -> None:
    registry = JobRegistry()
    registry.add(Job("purge", lambda: None, Schedule(cron="30 3 * * *")))
    metrics = Metrics()
    JobRunner(registry, metrics)
    assert sample(metrics, "mmsq_job_failures_total", job="purge") == 0
    assert b'mmsq_job_runs_total{job="purge",outcome="failed"} 0.0' in generate_latest(
        metrics.registry
    )


def test_an_idle_run_logs_its_summary_at_debug_level() -> None:
    registry = JobRegistry()
    registry.add(Job("inbox", lambda: {"idle": True}, EVERY_SECOND))
    with structlog.testing.capture_logs() as logs:
        JobRunner(registry, Metrics()).run("inbox")
    assert [(e["event"], e["log_level"]) for e in logs] == [("job.finished", "debug")]


def test_job_names_are_unique_and_a_schedule_needs_a_time() -> None:
    registry = JobRegistry()
    registry.add(Job("inbox", lambda: None, EVERY_SECOND))
    with pytest.raises(ValueError, match="already registered"):
        registry.add(Job("inbox", lambda: None, EVERY_SECOND))
    with pytest.raises(ValueError, match="interval_s or cron"):
        Schedule()


def test_two_metrics_objects_never_share_a_registry() -> None:
    a, b = Metrics(), Metrics()
    a.delivery_reports.labels(outcome="stored").inc()
    assert sample(a, "mmsq_delivery_reports_received_total", outcome="stored") == 1
    assert sample(b, "mmsq_delivery_reports_received_total", outcome="stored") is None


def test_readiness_fails_when_any_check_raises_and_says_why() -> None:
    health = HealthRegistry()
    health.add("database", lambda: "sqlite")
    health.add("smpp_bind", lambda: (_ for _ in ()).throw(RuntimeError("unbound")))
    readiness = health.check()
    assert not readiness.ok
    assert readiness.as_dict() == {
        "status": "not ready",
        "checks": {
            "database": {"ok": True, "detail": "sqlite"},
            "smpp_bind": {"ok": False, "detail": "RuntimeError: unbound"},
        },
    }


def test_shutdown_hooks_run_newest_first_once_and_survive_a_failing_hook() -> None:
    ran: list[str] = []
    hooks = ShutdownHooks()
    hooks.add("outbox", lambda: ran.append("outbox"))

    def broken() -> None:
        raise OSError("peer gone")

    hooks.add("smpp", broken)
    hooks.add("report", lambda: ran.append("report"))
    assert hooks.run() == ["smpp"]
    assert ran == ["report", "outbox"]
    assert hooks.run() == []
    assert ran == ["report", "outbox"]


class FakeScheduler:
    def __init__(self, job_gate: threading.Event | None = None) -> None:
        self.events: list[str] = []
        self._gate = job_gate
        self._running = False

    def start(self) -> None:
        self.events.append("scheduler.start")
        self._running = True

    def shutdown(self, wait: bool = True) -> None:
        self._running = False
        if self._gate is not None:
            self._gate.wait()  # a job still running
        self.events.append(f"scheduler.shutdown(wait={wait})")

    @property
    def running(self) -> bool:
        return self._running

    def job_names(self) -> list[str]:
        return ["inbox"]


class FakeHttp:
    def __init__(self, events: list[str]) -> None:
        self.events = events
        self.url = "http://127.0.0.1:1"

    def start(self) -> None:
        self.events.append("http.start")

    def stop(self) -> None:
        self.events.append("http.stop")


def test_shutdown_stops_work_then_runs_hooks_then_stops_http() -> None:
    scheduler = FakeScheduler()
    events = scheduler.events
    hooks = ShutdownHooks()
    hooks.add("smpp", lambda: events.append("hook.smpp"))
    daemon = Daemon(
        scheduler=scheduler,
        http=FakeHttp(events),
        hooks=hooks,
        shutdown_grace_s=5,
        on_close=lambda: events.append("close"),
    )
    daemon.request_stop("test")
    assert daemon.run() == 0
    assert events == [
        "http.start",
        "scheduler.start",
        "scheduler.shutdown(wait=True)",
        "hook.smpp",
        "http.stop",
        "close",
    ]
    assert daemon.stopping()


def test_shutdown_gives_up_when_a_second_stop_request_arrives() -> None:
    gate = threading.Event()
    scheduler = FakeScheduler(job_gate=gate)
    daemon = Daemon(
        scheduler=scheduler,
        http=FakeHttp(scheduler.events),
        hooks=ShutdownHooks(),
        shutdown_grace_s=3600,
    )
    daemon.request_stop("first")
    daemon.request_stop("second")
    try:
        assert daemon.run() == EXIT_FORCED
    finally:
        gate.set()
    assert "http.stop" not in scheduler.events


def test_daemon_settings_defaults_and_a_bad_cron_named_by_key(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[daemon.jobs.purge]\ncron = "every night"\n')
    with pytest.raises(ConfigError, match=r"daemon\.jobs\.purge\.cron"):
        load_settings(cfg)
    cfg.write_text("[daemon.jobs.inbox]\ninterval_s = 2\n[daemon.jobs.score]\nenabled = false\n")
    s = load_settings(cfg)
    assert s.daemon.jobs.inbox.interval_s == 2
    assert s.daemon.jobs.inbox.misfire_grace_s == 30  # the inbox's own default survives
    assert s.daemon.jobs.purge.cron == "30 3 * * *"
    assert not s.daemon.jobs.score.enabled


def test_example_config_spells_out_the_daemon_defaults() -> None:
    from mmsq.settings import DaemonSettings

    example = Path(__file__).parents[2] / "config.example.toml"
    assert load_settings(example).daemon == DaemonSettings()

"""The weekly report service: compute, render and send the report, never losing it.

``send_weekly_report`` is what the daemon schedules and what ``mmsq report --send`` runs. A
failed send is retried with doubling waits; when every attempt fails the complete email is
written to the spool directory and the run says so, so that nobody's report is lost silently.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import structlog

from mmsq.mailer import Mailer, MailError
from mmsq.ports import Clock
from mmsq.report_data import ReportSource, ReportWeek
from mmsq.report_devices import DeviceTable
from mmsq.report_figures import WeeklyReport, build_weekly_report
from mmsq.report_render import RenderedReport, build_message, render_report
from mmsq.settings import Settings

__all__ = ["ReportConfig", "ReportRun", "make_report", "send_weekly_report", "spool_message"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ReportConfig:
    """What the report service needs from the settings (see ``[report]`` in the config)."""

    sender: str = "mmsq@localhost"
    recipients: tuple[str, ...] = ()
    p90_limit_s: float = 3600.0
    top_n: int = 10
    timezone: str = "Asia/Shanghai"
    week_start: int = 0
    send_attempts: int = 3
    retry_backoff_s: float = 30.0
    spool_dir: Path = Path("var/report-spool")

    @classmethod
    def from_settings(cls, settings: Settings) -> ReportConfig:
        r = settings.report
        return cls(
            sender=r.sender,
            recipients=tuple(r.recipients),
            p90_limit_s=r.p90_limit_s,
            top_n=r.top_n,
            timezone=r.timezone or settings.ingest.timezone,
            week_start=r.week_start_index,
            send_attempts=r.send_attempts,
            retry_backoff_s=r.retry_backoff_s,
            spool_dir=r.spool_dir or settings.data_dir / "report-spool",
        )

    @property
    def domain(self) -> str:
        return self.sender.rpartition("@")[2] or "mmsq.report"


@dataclass(frozen=True)
class ReportRun:
    """The outcome of one report run: what was built, whether it went out, where it was kept."""

    report: WeeklyReport
    rendered: RenderedReport
    message: EmailMessage
    sent: bool
    attempts: int
    spooled: Path | None = None
    error: str | None = None


def make_report(
    source: ReportSource,
    config: ReportConfig,
    *,
    devices: DeviceTable,
    clock: Clock,
    week: ReportWeek | None = None,
) -> tuple[WeeklyReport, RenderedReport]:
    """Compute and render the report for ``week`` (default: the last complete week)."""
    tz = ZoneInfo(config.timezone)
    now = clock.now().astimezone(tz)
    week = week or ReportWeek.last_complete(now.date(), config.week_start)
    report = build_weekly_report(
        source,
        week,
        devices=devices,
        now=now,
        p90_limit_s=config.p90_limit_s,
        top_n=config.top_n,
    )
    return report, render_report(report, config.domain)


def spool_message(message: EmailMessage, spool_dir: Path, label: str, now: datetime) -> Path:
    """Write the complete email as an .eml file (openable in any mail client, resendable)."""
    spool_dir.mkdir(parents=True, exist_ok=True)
    stamp = now.strftime("%Y%m%dT%H%M%S")
    path = spool_dir / f"mmsq-report-{label}-{stamp}.eml"
    n = 1
    while path.exists():
        n += 1
        path = spool_dir / f"mmsq-report-{label}-{stamp}-{n}.eml"
    tmp = path.with_suffix(".eml.tmp")
    tmp.write_bytes(message.as_bytes())
    tmp.replace(path)
    return path


def send_weekly_report(
    source: ReportSource,
    mailer: Mailer,
    config: ReportConfig,
    *,
    devices: DeviceTable,
    clock: Clock,
    week: ReportWeek | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> ReportRun:
    """Build the week's report and email it; retry with backoff, spool it if all attempts fail.

    Returns the run; ``sent`` is False (and ``spooled`` names the .eml file) on failure.
    """
    report, rendered = make_report(source, config, devices=devices, clock=clock, week=week)
    label = report.week.label
    message = build_message(
        rendered, sender=config.sender, recipients=config.recipients, now=clock.now()
    )
    error: str | None = None
    attempts = 0
    if not config.recipients:
        error = "no recipients configured (report.recipients)"
    else:
        for attempt in range(1, config.send_attempts + 1):
            attempts = attempt
            try:
                mailer.send(message)
            except MailError as exc:
                error = str(exc)
                log.warning(
                    "report.send_failed",
                    week=label,
                    attempt=attempt,
                    attempts=config.send_attempts,
                    error=error,
                )
                if attempt < config.send_attempts:
                    sleep(config.retry_backoff_s * 2 ** (attempt - 1))
                continue
            log.info(
                "report.sent",
                week=label,
                recipients=len(config.recipients),
                attempts=attempt,
                success_rate=report.totals.rate.text,
                bytes=len(message.as_bytes()),
            )
            return ReportRun(report, rendered, message, True, attempt)
    path = spool_message(message, config.spool_dir, label, clock.now())
    log.error("report.spooled", week=label, path=str(path), attempts=attempts, error=error)
    return ReportRun(report, rendered, message, False, attempts, path, error)

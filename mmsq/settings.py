"""The one settings model: ``config.toml`` plus ``MMSQ_`` environment overrides.

This is the only module that reads the environment. Precedence: environment, then the
config file, then the defaults documented in ``config.example.toml``.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from mmsq.subscriptions import DifferenceClass

__all__ = ["ConfigError", "Settings", "load_settings"]

CONFIG_ENV = "MMSQ_CONFIG"


class ConfigError(Exception):
    """A setting is wrong or missing; the message names the key and the problem."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSettings(_Section):
    url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; empty means an SQLite file data_dir/mmsq.db",
    )
    echo: bool = False


class IngestSettings(_Section):
    default_region: str = "CN"
    timezone: str = "Asia/Shanghai"
    chunk_bytes: int = Field(default=32 * 1024 * 1024, ge=64 * 1024)
    notify_status_source: str = "cmpp"
    retention_days: int = Field(default=90, ge=1)

    @field_validator("default_region")
    @classmethod
    def _region(cls, v: str) -> str:
        v = v.upper()
        if v not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown region {v!r} (use an ISO 3166 code such as CN)")
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r}") from exc
        return v


class RulesSettings(_Section):
    dir: Path | None = Field(
        default=None, description="operator rules directory merged over the shipped rules"
    )


class LogSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["auto", "json", "console"] = "auto"


_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class ReportSettings(_Section):
    """The weekly success-rate report: how it is sent, to whom, and its thresholds."""

    smtp_host: str = "localhost"
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_starttls: bool = True
    smtp_ssl: bool = Field(default=False, description="implicit TLS (port 465)")
    smtp_username: str | None = None
    smtp_password: SecretStr | None = Field(
        default=None, description="set MMSQ_REPORT__SMTP_PASSWORD rather than the file"
    )
    smtp_timeout_s: float = Field(default=30.0, gt=0)
    sender: str = "mmsq@localhost"
    recipients: tuple[str, ...] = ()
    p90_limit_s: float = Field(default=3600.0, gt=0)
    timezone: str | None = Field(default=None, description="empty: ingest.timezone")
    week_start: Literal[
        "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"
    ] = "monday"
    send_attempts: int = Field(default=3, ge=1, le=10)
    retry_backoff_s: float = Field(default=30.0, ge=0)
    top_n: int = Field(default=10, ge=1, le=100)
    devices_file: Path | None = None
    spool_dir: Path | None = Field(default=None, description="empty: data_dir/report-spool")

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str | None) -> str | None:
        if v:
            try:
                ZoneInfo(v)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"unknown time zone {v!r}") from exc
        return v or None

    @property
    def week_start_index(self) -> int:
        """0 for Monday ... 6 for Sunday."""
        return _WEEKDAYS.index(self.week_start)


class JobSchedule(_Section):
    """When a daemon job runs: every ``interval_s`` seconds, or by ``cron`` (which wins when set).

    ``coalesce``: after downtime, run a job once rather than once per missed time.
    ``misfire_grace_s``: how late (seconds) a missed run may still start; later ones are skipped.
    """

    enabled: bool = True
    interval_s: float | None = Field(default=None, gt=0)
    cron: str | None = Field(default=None, description="5 fields, in ingest.timezone")
    coalesce: bool = True
    misfire_grace_s: int | None = Field(default=60, ge=1)

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str | None) -> str | None:
        if v is not None and len(v.split()) != 5:
            raise ValueError(
                f"cron {v!r} needs 5 fields: minute hour day-of-month month day-of-week"
            )
        return v or None


class InboxJobSchedule(JobSchedule):
    interval_s: float | None = Field(default=10.0, gt=0)
    misfire_grace_s: int | None = Field(default=30, ge=1)


class PurgeJobSchedule(JobSchedule):
    cron: str | None = "30 3 * * *"
    misfire_grace_s: int | None = Field(default=6 * 3600, ge=1)


class ScoreJobSchedule(JobSchedule):
    cron: str | None = "0 5 * * *"
    misfire_grace_s: int | None = Field(default=6 * 3600, ge=1)


class PlanJobSchedule(JobSchedule):
    cron: str | None = "30 5 * * *"
    misfire_grace_s: int | None = Field(default=3 * 3600, ge=1)


class DispatchJobSchedule(JobSchedule):
    interval_s: float | None = Field(default=30.0, gt=0)
    misfire_grace_s: int | None = Field(default=30, ge=1)


class ReconcileJobSchedule(JobSchedule):
    cron: str | None = "0 4 * * *"
    misfire_grace_s: int | None = Field(default=6 * 3600, ge=1)


class MonthlyReconcileJobSchedule(JobSchedule):
    cron: str | None = "0 6 1 * *"
    misfire_grace_s: int | None = Field(default=24 * 3600, ge=1)


class WeeklyReportJobSchedule(JobSchedule):
    cron: str | None = "0 8 * * mon"
    misfire_grace_s: int | None = Field(default=12 * 3600, ge=1)


class ProbeJobSchedule(JobSchedule):
    cron: str | None = "0 10 * * *"
    misfire_grace_s: int | None = Field(default=6 * 3600, ge=1)


class DaemonJobsSettings(_Section):
    """One schedule per daemon job; see config.example.toml ``[daemon.jobs.*]``."""

    inbox: InboxJobSchedule = InboxJobSchedule()
    purge: PurgeJobSchedule = PurgeJobSchedule()
    score: ScoreJobSchedule = ScoreJobSchedule()
    plan: PlanJobSchedule = PlanJobSchedule()
    dispatch: DispatchJobSchedule = DispatchJobSchedule()
    reconcile: ReconcileJobSchedule = ReconcileJobSchedule()
    reconcile_monthly: MonthlyReconcileJobSchedule = MonthlyReconcileJobSchedule()
    weekly_report: WeeklyReportJobSchedule = WeeklyReportJobSchedule()
    probe: ProbeJobSchedule = ProbeJobSchedule()


class DaemonSettings(_Section):
    """``mmsq daemon``: directories, HTTP listener, scheduler and shutdown."""

    inbox_dir: Path | None = Field(default=None, description="empty: data_dir/inbox")
    done_dir: Path | None = Field(default=None, description="empty: data_dir/done")
    failed_dir: Path | None = Field(default=None, description="empty: data_dir/failed")
    settle_s: float = Field(default=30.0, ge=0)
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    mm7_dr_path: str = "/mm7/dr"
    workers: int = Field(default=4, ge=1, le=64)
    shutdown_grace_s: float = Field(default=60.0, gt=0)
    jobs: DaemonJobsSettings = DaemonJobsSettings()

    @field_validator("mm7_dr_path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError("must start with /")
        return v


class ReconcileSettings(_Section):
    """Three-way reconciliation of BOSS, MISC and the content platform's send list."""

    stale_after_days: int = Field(
        default=1,
        ge=0,
        description="a source whose newest snapshot is older than this (days before the "
        "reconciliation date) is stale: its comparisons are skipped",
    )
    auto_repair: list[DifferenceClass] = Field(
        default_factory=list,
        description="difference classes whose platform repairs are applied automatically",
    )
    repair_dir: Path | None = Field(
        default=None, description="folder the content platform picks repair files from"
    )
    export_dir: Path | None = Field(
        default=None, description="default folder for the per-class difference CSV files"
    )
    examples: int = Field(default=3, ge=0, le=50, description="examples per class in the summary")

    @model_validator(mode="after")
    def _repairs_need_a_folder(self) -> ReconcileSettings:
        if self.auto_repair and self.repair_dir is None:
            raise ValueError("auto_repair needs repair_dir (where the platform picks repairs up)")
        return self


class Mm7Settings(_Section):
    """The MM7 link to the MMSC for the MMs mmsq sends itself (recovery probes, resends)."""

    url: str = "http://127.0.0.1:8007/mm7"
    vaspid: str = "sp01"
    vasid: str = "news"
    service_code: str = ""
    sender_address: str = ""
    username: str | None = None
    password: SecretStr | None = Field(
        default=None, description="set MMSQ_MM7__PASSWORD rather than the file"
    )
    connect_timeout_s: float = Field(default=5.0, gt=0)
    read_timeout_s: float = Field(default=30.0, gt=0)
    concurrency: int = Field(default=4, ge=1, le=64)
    rate_per_s: float = Field(default=10.0, ge=0, description="0: no limit")
    max_attempts: int = Field(default=5, ge=1, le=50)
    backoff_s: float = Field(default=30.0, ge=0)
    backoff_cap_s: float = Field(default=900.0, ge=0)
    lease_s: float = Field(default=60.0, gt=0)
    max_in_doubt_resends: int = Field(default=1, ge=0, le=3)
    expiry_hours: float = Field(default=24.0, gt=0)
    probe_subject: str = "彩信接收测试"
    probe_text: str = "【手机报】彩信接收测试，无需回复。"  # noqa: RUF001 - Chinese punctuation
    editions_dir: Path | None = Field(
        default=None, description="published editions, one directory each, for resends"
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"not an http(s) URL: {v!r}")
        return v

    @model_validator(mode="after")
    def _lease_outlasts_a_request(self) -> Mm7Settings:
        if self.lease_s <= self.connect_timeout_s + self.read_timeout_s:
            raise ValueError(
                f"lease_s ({self.lease_s:g}) must exceed connect_timeout_s + read_timeout_s "
                f"({self.connect_timeout_s + self.read_timeout_s:g}): a claim older than the "
                "lease is taken for one whose sender died"
            )
        return self


class ApiSettings(_Section):
    """The agent HTTP API (``mmsq api``)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    rate_limit_per_minute: int = Field(default=120, ge=1, description="requests per token")
    rate_limit_burst: int = Field(default=30, ge=1, description="requests a token may bunch up")
    max_body_bytes: int = Field(default=16384, ge=256, description="larger bodies get 413")
    auth_cache_seconds: float = Field(
        default=5.0, ge=0, description="how long a token lookup is reused; revocation delay"
    )
    deliveries_shown: int = Field(default=10, ge=1, le=100)
    threads: int = Field(
        default=2, ge=1, le=64, description="threads running endpoint and database work"
    )
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="processes serving `mmsq api` (the daemon serves in its own one); "
        "rate limits are shared through data_dir/api-rate-limits.bin",
    )


class SmppSettings(_Section):
    """The SMSC link for help SMS and OTA pushes (see docs/outreach.md)."""

    host: str = "127.0.0.1"
    port: int = Field(default=2775, ge=1, le=65535)
    system_id: str = Field(default="mmsq", min_length=1, max_length=15)
    password: SecretStr = Field(default=SecretStr(""), description="MMSQ_SMPP__PASSWORD")
    system_type: str = Field(default="", max_length=12)
    bind_mode: Literal["transceiver", "transmitter_receiver"] = "transceiver"
    window: int = Field(default=10, ge=1, le=1000, description="submit_sm outstanding")
    throughput_per_s: float | None = Field(
        default=None, gt=0, description="segments per second per bind; empty: no limit"
    )
    receipt_id_base: Literal["same", "decimal", "hex"] = Field(
        default="same", description="base of receipt ids when it differs from submit_sm_resp"
    )
    source_addr: str = Field(default="10086", max_length=20)
    source_addr_ton: int = Field(default=0, ge=0, le=6)
    source_addr_npi: int = Field(default=0, ge=0, le=18)
    enquire_link_s: float = Field(default=30.0, gt=0)
    response_timeout_s: float = Field(default=30.0, gt=0)
    reconnect_initial_s: float = Field(default=1.0, gt=0)
    reconnect_max_s: float = Field(default=60.0, gt=0)
    throttle_pause_s: float = Field(default=1.0, gt=0)
    msgqful_backoff_s: float = Field(default=1.0, gt=0)


class OutreachSettings(_Section):
    """Planning and dispatch of help SMS and OTA pushes."""

    expiry_hours: float = Field(default=24.0, gt=0, description="unsent contacts expire")
    batch_size: int = Field(default=500, ge=1, description="contacts stored per transaction")
    receipt_grace_s: float = Field(
        default=600.0, ge=0, description="a receipt waits this long for its submit answer"
    )
    max_attempts: int = Field(default=3, ge=1, description="submits of a retryable error")
    retry_delay_s: float = Field(default=60.0, ge=0)


class Settings(BaseSettings):
    """Every setting mmsq reads; see config.example.toml for each one's meaning and unit."""

    model_config = SettingsConfigDict(
        env_prefix="MMSQ_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    data_dir: Path = Path("var")
    database: DatabaseSettings = DatabaseSettings()
    ingest: IngestSettings = IngestSettings()
    rules: RulesSettings = RulesSettings()
    log: LogSettings = LogSettings()
    report: ReportSettings = ReportSettings()
    daemon: DaemonSettings = DaemonSettings()
    reconcile: ReconcileSettings = ReconcileSettings()
    mm7: Mm7Settings = Mm7Settings()
    api: ApiSettings = ApiSettings()
    smpp: SmppSettings = SmppSettings()
    outreach: OutreachSettings = OutreachSettings()

    @property
    def database_url(self) -> str:
        if self.database.url:
            return self.database.url
        return f"sqlite:///{(self.data_dir / 'mmsq.db').as_posix()}"


def _format_error(exc: ValidationError, origin: str) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown setting"
        lines.append(f"{key}: {msg}")
    return f"configuration error ({origin}): " + "; ".join(lines)


def load_settings(config_path: Path | None = None) -> Settings:
    """Load settings from ``config_path`` (or ``$MMSQ_CONFIG``, or ./config.toml if present).

    Raises ConfigError with one readable message naming each bad key.
    """
    path = config_path
    if path is None and os.environ.get(CONFIG_ENV):
        path = Path(os.environ[CONFIG_ENV])
    if path is None and Path("config.toml").is_file():
        path = Path("config.toml")
    if path is not None:
        if not path.is_file():
            raise ConfigError(f"configuration error: config file {path} does not exist")
        try:
            with path.open("rb") as fh:
                tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"configuration error ({path}): not valid TOML: {exc}") from exc

    toml_path = path

    class _FromFile(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
            if toml_path is not None:
                sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
            return tuple(sources)

    origin = str(path) if path else "defaults and MMSQ_ environment"
    try:
        return _FromFile()
    except ValidationError as exc:
        raise ConfigError(_format_error(exc, origin)) from None

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
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

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

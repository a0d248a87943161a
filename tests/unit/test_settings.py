from __future__ import annotations

from pathlib import Path

import pytest

from mmsq.settings import ConfigError, load_settings


def test_defaults_use_sqlite_under_the_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings()
    assert s.database_url == "sqlite:///var/mmsq.db"
    assert s.ingest.default_region == "CN"


def test_example_config_loads_with_its_documented_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    example = Path(__file__).parents[2] / "config.example.toml"
    s = load_settings(example)
    assert s.ingest.retention_days == 90
    assert s.ingest.timezone == "Asia/Shanghai"


def test_environment_overrides_nested_settings_over_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[ingest]\ndefault_region = "GB"\nretention_days = 30\n')
    monkeypatch.setenv("MMSQ_INGEST__RETENTION_DAYS", "7")
    s = load_settings(cfg)
    assert s.ingest.default_region == "GB"
    assert s.ingest.retention_days == 7


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('[ingest]\nretention_days = "often"\n', "ingest.retention_days"),
        ('[ingest]\ndefault_region = "XX"\n', "unknown region 'XX'"),
        ('[ingest]\ntimezone = "Mars/Base"\n', "unknown time zone"),
        ("[databse]\nurl = 'x'\n", "databse: unknown setting"),
        ("[ingest\n", "not valid TOML"),
    ],
)
def test_bad_setting_gives_one_message_naming_the_key(
    tmp_path: Path, body: str, expected: str
) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(body)
    with pytest.raises(ConfigError, match="configuration error") as info:
        load_settings(cfg)
    assert expected in str(info.value)


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_report_settings_defaults_and_password_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    example = Path(__file__).parents[2] / "config.example.toml"
    s = load_settings(example)
    assert s.report.smtp_port == 587
    assert s.report.smtp_starttls
    assert s.report.week_start_index == 0
    assert s.report.recipients == ()
    monkeypatch.setenv("MMSQ_REPORT__SMTP_PASSWORD", "pw-from-env")
    s = load_settings(example)
    assert s.report.smtp_password is not None
    assert s.report.smtp_password.get_secret_value() == "pw-from-env"
    assert "pw-from-env" not in repr(s)

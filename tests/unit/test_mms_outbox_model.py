"""Outbox values: MessageID keys, report shapes, backoff, and the [mm7] settings' checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mmsq.adapters.mm7_soap import Mm7DeliveryReport
from mmsq.mms_outbox import OutboxPolicy
from mmsq.mms_outbox_model import ReceivedReport, message_key
from mmsq.settings import ConfigError, load_settings


@pytest.mark.parametrize(
    ("raw", "key"),
    [("MMSC00000001A", "mmsc00000001a"), ("  <Ab-12>  ", "ab-12"), ("0012", "0012")],
)
def test_message_key_ignores_blanks_brackets_and_case_only(raw: str, key: str) -> None:
    assert message_key(raw) == key


def test_report_from_the_mm7_parser_or_a_tuple_is_the_same() -> None:
    done = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    parsed = Mm7DeliveryReport(
        transaction_id="t",
        namespace="ns",
        mm7_version="6.8.0",
        message_id="M1",
        recipient="+8613800138000",
        sender=None,
        date=done,
        mm_status="Retrieved",
        status_text=None,
    )
    assert ReceivedReport.of(parsed) == ReceivedReport.of(
        ("M1", "+8613800138000", "Retrieved", done)
    )


def test_backoff_doubles_up_to_the_cap() -> None:
    policy = OutboxPolicy(backoff_s=30, backoff_cap_s=100)
    assert [policy.backoff(n) for n in (1, 2, 3, 4)] == [
        timedelta(seconds=s) for s in (30, 60, 100, 100)
    ]


def test_mm7_defaults_point_at_the_simulator_and_speak_chinese(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MMSQ_MM7__PASSWORD", "s3cret")
    mm7 = load_settings().mm7
    assert mm7.url == "http://127.0.0.1:8007/mm7"
    assert mm7.probe_text.startswith("【手机报】")
    assert mm7.password is not None
    assert mm7.password.get_secret_value() == "s3cret"
    example = load_settings(Path(__file__).parents[2] / "config.example.toml").mm7
    assert example == mm7  # the example documents every default


def test_lease_shorter_than_a_request_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[mm7]\nread_timeout_s = 60\nlease_s = 30\n")
    with pytest.raises(ConfigError, match="lease_s"):
        load_settings(cfg)

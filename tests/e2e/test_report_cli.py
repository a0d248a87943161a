"""``mmsq report`` as an operator runs it: real process, real database file, exit codes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from mmsq.adapters.sql_store import SqlStore
from tests.report_dataset import DEVICES_CSV, MSISDNS, NATIONAL, insert_dataset


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MMSQ_")}
    env["MMSQ_REPORT__SMTP_PASSWORD"] = "from-the-environment"
    return subprocess.run(
        [sys.executable, "-m", "mmsq", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _setup(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        "[report]\n"
        f'smtp_host = "127.0.0.1"\nsmtp_port = {_closed_port()}\nsmtp_starttls = false\n'
        'recipients = ["noc@example.com"]\nsend_attempts = 2\nretry_backoff_s = 0.0\n'
        f'devices_file = "{DEVICES_CSV.as_posix()}"\n'
    )
    assert run(["db", "upgrade"], tmp_path).returncode == 0
    store = SqlStore.from_url(f"sqlite:///{tmp_path / 'var' / 'mmsq.db'}")
    insert_dataset(store)
    store.close()


def test_report_prints_json_and_writes_html(tmp_path: Path) -> None:
    _setup(tmp_path)
    r = run(["report", "--week", "2026-W47", "--json", "--out", "r.html"], tmp_path)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["week"] == "2026-W47"
    assert doc["success_rate"] == 0.6
    # The recovery cycle and reconciliation come from their (empty) stores; no resend
    # (complaint) is recorded by the agent API, nor any holdout decision by outreach.
    assert set(doc["not_available"]) == {"complaints"}
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in html
    assert "60.0%" in html
    text = run(["report", "--week", "2026-W47"], tmp_path)
    assert text.returncode == 0
    assert "HEADLINES" in text.stdout
    assert "Holdout and uplift: not available yet" in text.stdout
    for output in (r.stdout, html, text.stdout):
        assert not any(n in output for n in MSISDNS + NATIONAL)


def test_bad_week_is_a_usage_error(tmp_path: Path) -> None:
    _setup(tmp_path)
    r = run(["report", "--week", "47"], tmp_path)
    assert r.returncode == 2
    assert "ISO week" in r.stderr
    assert "Traceback" not in r.stderr


def test_send_that_fails_is_spooled_and_exits_non_zero(tmp_path: Path) -> None:
    _setup(tmp_path)
    r = run(["report", "--week", "2026-W47", "--send"], tmp_path)
    assert r.returncode == 1, r.stderr
    assert "not sent after 2 attempt(s)" in r.stderr
    spooled = list((tmp_path / "var" / "report-spool").glob("mmsq-report-2026-W47-*.eml"))
    assert len(spooled) == 1
    assert b"mmsq-report-2026-W47.zip" in spooled[0].read_bytes()
    assert "from-the-environment" not in r.stderr + r.stdout

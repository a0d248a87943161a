"""The command line as an operator runs it: real processes, real files, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mmsq.simulators.cdr_generator import CdrSpec, write_cdr


def run(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MMSQ_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "mmsq", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_ingest_before_upgrade_tells_the_operator_what_to_run(tmp_path: Path) -> None:
    write_cdr(tmp_path / "a.csv", CdrSpec(subscribers=10))
    r = run(["ingest", "a.csv"], tmp_path)
    assert r.returncode == 2
    assert "mmsq db upgrade" in r.stderr
    assert "Traceback" not in r.stderr


def test_ingest_json_summary_and_idempotent_rerun(tmp_path: Path) -> None:
    assert run(["db", "upgrade"], tmp_path).returncode == 0
    rows = write_cdr(tmp_path / "a.csv.gz", CdrSpec(subscribers=500, malformed_share=0.02))
    first = run(["ingest", "--json", "a.csv.gz"], tmp_path)
    assert first.returncode == 0, first.stderr
    doc = json.loads(first.stdout)
    assert doc["records"] + doc["quarantined"] == rows
    assert doc["quarantined"] == 20
    assert doc["stored"] == doc["records"]
    assert sum(doc["by_cause"].values()) == doc["records"]
    assert doc["unknown_codes"]
    second = json.loads(run(["ingest", "--json", "a.csv.gz"], tmp_path).stdout)
    assert (second["stored"], second["duplicates"]) == (0, doc["records"])


def test_logs_never_show_a_full_msisdn(tmp_path: Path) -> None:
    run(["db", "upgrade"], tmp_path)
    (tmp_path / "a.csv").write_text(
        "msisdn,message_id,edition,submitted_at,status_source,status_code\n"
        "13800138000,m1,e,2026-11-22T07:00:00+08:00,cmpp,QQ:0001\n"
    )
    r = run(["ingest", "--json", "a.csv"], tmp_path, {"MMSQ_LOG__FORMAT": "json"})
    assert r.returncode == 0, r.stderr
    assert "13800138000" not in r.stderr
    assert "QQ:0001" in r.stderr


def test_nothing_readable_exits_non_zero(tmp_path: Path) -> None:
    run(["db", "upgrade"], tmp_path)
    (tmp_path / "a.csv").write_text("not,a,cdr\n")
    r = run(["ingest", "a.csv"], tmp_path)
    assert r.returncode == 1
    assert "lacks required column" in r.stderr


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"MMSQ_INGEST__RETENTION_DAYS": "-3"}, "ingest.retention_days"),
        ({"MMSQ_LOG__LEVEL": "LOUD"}, "log.level"),
    ],
)
def test_bad_setting_exits_2_naming_the_key(tmp_path: Path, env: dict[str, str], key: str) -> None:
    r = run(["db", "upgrade"], tmp_path, env)
    assert r.returncode == 2
    assert key in r.stderr
    assert "Traceback" not in r.stderr


def test_rules_check_reports_file_key_and_reason(tmp_path: Path) -> None:
    ok = run(["rules", "check", "--json"], tmp_path)
    assert ok.returncode == 0
    assert json.loads(ok.stdout)["ok"] is True
    (tmp_path / "status_codes.toml").write_text(
        '[namespaces.cmpp]\n[[namespaces.cmpp.codes]]\ncode = "MK:9999"\ncause = "sunspots"\nprovenance = "x"\n'
    )
    bad = run(["rules", "check", "--json", str(tmp_path)], tmp_path)
    assert bad.returncode == 1
    problems = json.loads(bad.stdout)["problems"]
    assert problems[0]["file"].endswith("status_codes.toml (merged over the shipped file)")
    assert "cause" in problems[0]["key"]


def test_operator_rules_override_and_extend_the_shipped_codes(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "status_codes.toml").write_text(
        '[namespaces.cmpp]\n[[namespaces.cmpp.codes]]\ncode = "QQ:0001"\ncause = "unreachable"\n'
        'provenance = "operator table 2026"\n'
    )
    run(["db", "upgrade"], tmp_path)
    (tmp_path / "a.csv").write_text(
        "msisdn,message_id,edition,submitted_at,status_source,status_code\n"
        "13800138000,m1,e,2026-11-22T07:00:00+08:00,cmpp,QQ:0001\n"
        "13800138000,m2,e,2026-11-22T07:00:00+08:00,cmpp,MK:0017\n"
    )
    r = run(["ingest", "--json", "a.csv"], tmp_path, {"MMSQ_RULES__DIR": str(rules)})
    doc = json.loads(r.stdout)
    assert doc["by_cause"] == {"terminal_capacity": 1, "unreachable": 1}

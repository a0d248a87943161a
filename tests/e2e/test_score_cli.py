"""Scoring and recovery from the command line, as an operator runs them."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from mmsq.adapters.sql_store import SqlStore
from mmsq.simulators.daily_population import PopulationSpec, device_table, generate, load_chunks
from tests.e2e.test_cli import run


def test_blacklist_score_show_and_export(tmp_path: Path) -> None:
    assert run(["db", "upgrade"], tmp_path).returncode == 0
    store = SqlStore.from_url(f"sqlite:///{tmp_path / 'var' / 'mmsq.db'}")
    chunks = list(generate(PopulationSpec(subscribers=300, seed=5)))
    load_chunks(store.engine, chunks)
    truth = [chunk.truth for chunk in chunks]
    store.close()
    (tmp_path / "rules").mkdir()
    device_table().to_csv(tmp_path / "rules" / "devices.csv", index=False)
    (tmp_path / "config.toml").write_text('[rules]\ndir = "rules"\n')
    misconfigured = next(t.msisdn for t in truth[0].itertuples() if t.profile == "misconfigured")
    national = misconfigured.removeprefix("+86")

    (tmp_path / "dnc.csv").write_text(f"msisdn,reason,until\n{national},complaint,\nbogus,test,\n")
    r = run(["blacklist", "import", "--json", "dnc.csv"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {
        "stored": 1,
        "rejected": [{"line": 3, "reason": "invalid MSISDN"}],
    }

    r = run(["score", "--json", "--as-of", "2026-11-22", "--export", "verdicts.csv"], tmp_path)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["subscribers"] == 300
    assert doc["by_transition"]["active->flagged"] > 0
    with (tmp_path / "verdicts.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["msisdn", "verdict", "score", "state", "reasons"]
    assert len(rows) == 300
    mine = next(row for row in rows if row["msisdn"] == misconfigured)
    assert mine["verdict"] == "terminal_misconfigured"
    assert "do-not-contact list (complaint)" in mine["reasons"]

    r = run(
        [
            "subscriber",
            "show",
            "--json",
            "--as-of",
            "2026-11-22",
            national[:3] + " " + national[3:7] + " " + national[7:],
        ],
        tmp_path,
    )
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    assert shown["msisdn"] == misconfigured
    assert shown["verdict"] == "terminal_misconfigured"
    assert shown["state"] in ("flagged", "suspended")
    assert shown["history"][0]["to_state"] == "flagged"
    assert shown["features"]["blacklisted"] is True

    r = run(["suspensions", "export", "suspended.csv"], tmp_path)
    assert r.returncode == 0, r.stderr
    with (tmp_path / "suspended.csv").open() as fh:
        suspended = list(csv.DictReader(fh))
    assert suspended
    assert list(suspended[0]) == ["msisdn", "reason", "since"]

    r = run(["subscriber", "show", "12345"], tmp_path)
    assert r.returncode == 2
    assert "not a valid MSISDN" in r.stderr


def test_rules_check_validates_scoring_rules_and_the_device_table(tmp_path: Path) -> None:
    ok = run(["rules", "check", "--json"], tmp_path)
    assert ok.returncode == 0, ok.stderr
    doc = json.loads(ok.stdout)
    assert doc["scoring"]["verdicts"] == 6
    assert doc["devices"] > 200
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "scoring.toml").write_text("[window]\ndays = 99\n")
    (rules / "devices.csv").write_text(
        "tac,brand,model,mms_capable,ota_cp,cp_security,settings_profile\n"
        "1234,Nokia,6300,true,true,NETWPIN,default\n"
    )
    bad = run(["rules", "check", "--json", str(rules)], tmp_path)
    assert bad.returncode == 1
    problems = json.loads(bad.stdout)["problems"]
    files = {Path(p["file"].split(" ")[0]).name for p in problems}
    assert files == {"scoring.toml", "devices.csv"}
    assert any("window" in p["key"] and "days" in p["key"] for p in problems)
    assert any(p["key"] == "line 2" and "8 digits" in p["reason"] for p in problems)

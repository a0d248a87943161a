"""`mmsq devices import` and `mmsq devices match` as an operator runs them: a CDR with IMEIs,
an operator TAC list with bad rows, the coverage before and after the import."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.test_cli import run

CDR_HEADER = (
    "msisdn,message_id,edition,submitted_at,done_at,status_source,status_code,"
    "notify_status,imei,region,extra"
)
# 35690060 is in the shipped table (Nokia 2600 classic); 99000001 and 99000002 are not.
IMEIS = {
    "13800138000": "35690060123456",
    "13800138001": "99000001123456",
    "13800138002": "99000001654321",
    "13800138003": "99000002123456",
    "13800138004": "",
}


def write_cdr(path: Path) -> None:
    rows = [
        f"{m},m{i},ah-20261122-am,2026-11-22T07:00:00+08:00,2026-11-22T07:05:00+08:00,"
        f"mm7,Retrieved,DELIVRD,{imei},Hefei,x"
        for i, (m, imei) in enumerate(IMEIS.items())
    ]
    path.write_text("\n".join([CDR_HEADER, *rows]) + "\n", encoding="utf-8")


def match(cwd: Path, env: dict[str, str]) -> dict[str, object]:
    r = run(["devices", "match", "--json"], cwd, env)
    assert r.returncode == 0, r.stderr
    doc: dict[str, object] = json.loads(r.stdout)
    return doc


def test_import_merges_the_good_rows_and_match_reports_the_coverage(
    tmp_path: Path, db_url: str
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    env = {"MMSQ_DATABASE__URL": db_url, "MMSQ_RULES__DIR": str(rules)}
    assert run(["db", "upgrade"], tmp_path, env).returncode == 0
    write_cdr(tmp_path / "a.csv")
    ingested = run(["ingest", "a.csv"], tmp_path, env)
    assert ingested.returncode == 0, ingested.stderr

    before = match(tmp_path, env)
    assert {k: before[k] for k in ("subscribers", "known", "unknown", "unknown_tacs")} == {
        "subscribers": 4,
        "known": 1,
        "unknown": 3,
        "unknown_tacs": 2,
    }
    assert before["top_unknown"] == [
        {"tac": "99000001", "subscribers": 2},
        {"tac": "99000002", "subscribers": 1},
    ]

    (tmp_path / "tacs.csv").write_text(
        "tac,brand,model,mms_capable,ota_cp,cp_security,settings_profile\n"
        "99000001,Acme,A1,true,true,USERPIN,default\n"
        "9900000,Acme,short,true,true,USERPIN,default\n"
        "99000003,Acme,A3,maybe,true,USERPIN,default\n"
        "99000001,Acme,A1 again,true,true,USERPIN,default\n"
        "99000004,Acme,A4,true\n"
        "35690060,Nokia,2600 classic (operator),true,false,USERPIN,default\n",
        encoding="utf-8",
    )
    imported = run(["devices", "import", "--json", "tacs.csv"], tmp_path, env)
    assert imported.returncode == 0, imported.stderr
    doc = json.loads(imported.stdout)
    assert (doc["added"], doc["changed"], doc["unchanged"]) == (2, 0, 0)
    assert [b["line"] for b in doc["bad_rows"]] == ["line 3", "line 4", "line 5", "line 6"]
    assert "not 8 digits" in doc["bad_rows"][0]["reason"]
    assert "listed twice (first on line 2)" in doc["bad_rows"][2]["reason"]
    assert (rules / "devices.csv").read_text(encoding="utf-8").splitlines() == [
        "tac,brand,model,mms_capable,ota_cp,cp_security,settings_profile",
        "99000001,Acme,A1,true,true,USERPIN,default",
        "35690060,Nokia,2600 classic (operator),true,false,USERPIN,default",
    ]

    # The same list again changes nothing; one changed row is counted as changed.
    again = run(["devices", "import", "tacs.csv"], tmp_path, env)
    assert again.returncode == 0, again.stderr
    assert "0 TACs added, 0 changed, 2 unchanged; 4 bad rows left out" in again.stdout
    assert "line 3: tac '9900000' is not 8 digits" in again.stderr
    (tmp_path / "one.csv").write_text(
        "tac,brand,model,mms_capable,ota_cp,cp_security,settings_profile\n"
        "99000001,Acme,A1 Pro,true,true,USERPIN,default\n",
        encoding="utf-8",
    )
    changed = json.loads(run(["devices", "import", "--json", "one.csv"], tmp_path, env).stdout)
    assert (changed["added"], changed["changed"], changed["tacs"]) == (0, 1, 2)

    after = match(tmp_path, env)
    assert (after["known"], after["unknown_tacs"]) == (3, 1)
    assert after["top_unknown"] == [{"tac": "99000002", "subscribers": 1}]
    table = run(["devices", "match"], tmp_path, env)
    assert table.returncode == 0, table.stderr
    assert "3 of 4 subscribers" in table.stdout
    assert "99000002" in table.stdout


def test_import_without_a_rules_directory_exits_2(tmp_path: Path) -> None:
    (tmp_path / "tacs.csv").write_text(
        "tac,brand,model,mms_capable,ota_cp,cp_security,settings_profile\n", encoding="utf-8"
    )
    r = run(["devices", "import", "tacs.csv"], tmp_path)
    assert r.returncode == 2
    assert "rules.dir is not configured" in r.stderr
    assert "Traceback" not in r.stderr


def test_import_with_a_wrong_header_exits_2(tmp_path: Path) -> None:
    (tmp_path / "tacs.csv").write_text("tac,model\n12345678,X\n", encoding="utf-8")
    r = run(["devices", "import", "tacs.csv"], tmp_path, {"MMSQ_RULES__DIR": str(tmp_path / "r")})
    assert r.returncode == 2
    assert "columns must be exactly" in r.stderr
    assert not (tmp_path / "r" / "devices.csv").exists()

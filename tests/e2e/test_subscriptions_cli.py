"""`mmsq subscriptions import` and `mmsq reconcile` as an operator runs them."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

from tests.e2e.test_cli import run

BOSS = (
    "msisdn,product,status,since,channel\n"
    "13800000001,daily,active,2025-03-01,sms\n"
    "13800000002,daily,active,,\n"
    "13800000003,daily,suspended,,\n"
    "not-a-number,daily,active,,\n"
)
MISC = "msisdn,product,status\n13800000001,daily,active\n13800000002,daily,active\n13800000003,daily,suspended\n"
PLATFORM = "product,msisdn,status,extra\ndaily,+8613800000001,active,x\ndaily,13800000003,active,y\ndaily,13800000004,active,z\n"


def test_import_and_reconcile_with_json_and_export(tmp_path: Path) -> None:
    assert run(["db", "upgrade"], tmp_path).returncode == 0
    (tmp_path / "boss.csv.gz").write_bytes(gzip.compress(BOSS.encode()))
    (tmp_path / "misc.csv").write_text(MISC)
    (tmp_path / "platform.csv").write_text(PLATFORM)
    docs = {}
    for source, name in (
        ("boss", "boss.csv.gz"),
        ("misc", "misc.csv"),
        ("platform", "platform.csv"),
    ):
        r = run(
            [
                "subscriptions",
                "import",
                "--source",
                source,
                name,
                "--as-of",
                "2026-11-22",
                "--json",
            ],
            tmp_path,
        )
        assert r.returncode == 0, r.stderr
        docs[source] = json.loads(r.stdout)
    assert (docs["boss"]["records"], docs["boss"]["quarantined"]) == (3, 1)
    assert docs["boss"]["by_status"] == {"active": 2, "suspended": 1}
    assert docs["platform"]["as_of"] == "2026-11-22"

    r = run(["reconcile", "--json", "--as-of", "2026-11-23", "--export", "out"], tmp_path)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["stale"] == []
    assert doc["counts"] == {
        "billed_not_on_send_list": 1,
        "on_send_list_not_billed": 1,
        "status_mismatch": 1,
        "product_mismatch": 0,
        "missing_in_misc": 1,
    }
    assert doc["repairs"] == {
        "proposed": {"add": 1, "remove": 1, "suspend": 1},
        "applied": 0,
        "auto_repair": [],
    }
    assert doc["examples"]["billed_not_on_send_list"][0]["msisdn"] == "+86138****0002"
    assert "13800000002" not in r.stdout  # only masked numbers on the terminal
    with (tmp_path / "out" / "platform_repairs.csv").open() as fh:
        repairs = list(csv.DictReader(fh))
    assert sorted((x["action"], x["msisdn"]) for x in repairs) == [
        ("add", "+8613800000002"),
        ("remove", "+8613800000004"),
        ("suspend", "+8613800000003"),
    ]
    assert doc["trend"][0]["as_of"] == "2026-11-23"

    # Two days later with no new snapshots: every source is stale, nothing is compared.
    late = json.loads(run(["reconcile", "--json", "--as-of", "2026-11-25"], tmp_path).stdout)
    assert late["stale"] == ["boss", "misc", "platform"]
    assert set(late["counts"].values()) == {None}


def test_import_refuses_an_unknown_source_and_a_bad_date(tmp_path: Path) -> None:
    run(["db", "upgrade"], tmp_path)
    (tmp_path / "a.csv").write_text(MISC)
    bad_source = run(["subscriptions", "import", "--source", "crm", "a.csv"], tmp_path)
    assert bad_source.returncode == 2
    assert "boss, misc or platform" in bad_source.stderr
    bad_date = run(
        ["subscriptions", "import", "--source", "misc", "a.csv", "--as-of", "22/11"], tmp_path
    )
    assert bad_date.returncode == 2
    assert "Traceback" not in bad_date.stderr + bad_source.stderr


def test_auto_repair_without_a_drop_folder_is_a_configuration_error(tmp_path: Path) -> None:
    r = run(["reconcile"], tmp_path, {"MMSQ_RECONCILE__AUTO_REPAIR": '["billed_not_on_send_list"]'})
    assert r.returncode == 2
    assert "reconcile" in r.stderr
    assert "repair_dir" in r.stderr

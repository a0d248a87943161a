"""The README's main job, small: runs end to end and is reproducible with a fixed seed."""

from __future__ import annotations

import json
from pathlib import Path

from mmsq.demo import DemoConfig, run_demo
from tests.e2e.test_cli import run


def test_demo_json_reports_every_day(tmp_path: Path) -> None:
    r = run(
        ["demo", "--subscribers", "400", "--days", "4", "--observe-days", "1", "--json"], tmp_path
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [d["phase"] for d in doc["days"]] == ["observe", "act", "act", "act"]
    for day in doc["days"]:
        assert day["sent"] == 800  # two editions to everyone
        assert day["final"] == sum(v for k, v in day["by_cause"].items() if k != "pending")
        assert 0.4 < day["success_rate"] < 0.95
    # Last night's plan went out this morning: help SMS and OTA settings reached handsets.
    handsets = doc["handsets"]
    assert handsets["ota_pushes_received"] > 0
    assert handsets["help_sms_received"] > 0
    assert handsets["fixed_by_ota"] <= handsets["ota_pushes_applied"]
    assert (tmp_path / "var" / "demo" / "mmsq-demo.db").exists()


def test_same_seed_same_run(tmp_path: Path) -> None:
    def once(where: str, seed: int) -> list[dict[str, object]]:
        result = run_demo(
            DemoConfig(subscribers=300, days=3, observe_days=1, seed=seed, workdir=tmp_path / where)
        )
        days: list[dict[str, object]] = result.as_dict()["days"]
        return days

    assert once("a", 11) == once("b", 11)
    assert once("c", 11) != once("d", 12)


def test_demo_probes_resume_suspended_subscribers(tmp_path: Path) -> None:
    """Probes over MM7 to suspended subscribers, their delivery reports over HTTP back to
    mmsq, and the funnel: a schedule compressed by the operator's rules so that a short run
    reaches it (suspension after 3 failed days, probes 1 and 2 days after)."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "scoring.toml").write_text(
        "[recovery]\nsuspend_after_failed_run = 3\nprobe_after_days = [1, 2]\n", encoding="utf-8"
    )
    result = run_demo(
        DemoConfig(
            subscribers=500,
            days=7,
            observe_days=2,
            seed=5,
            workdir=tmp_path / "demo",
            rules_dir=rules,
        )
    )
    doc = result.as_dict()
    assert "recovery MMS" in doc["capabilities"]
    assert doc["endpoints"]["mm7_delivery_reports"].startswith("http://127.0.0.1:")
    acts = [d["actions"] for d in doc["days"] if d["phase"] == "act"]
    queued = sum(a["probes_queued"] for a in acts)
    sent = sum(a["probes_sent"] for a in acts)
    delivered = sum(a["probes_delivered"] for a in acts)
    funnel = doc["funnel"]
    assert funnel["suspended"] > 0
    # Every probe queued by a night's round went out the next morning, except the last
    # night's (the run ends before that morning).
    assert 0 < sent <= queued
    assert funnel["probed"] == queued
    # A delivered probe resumes its subscriber at once (the endpoint's correlation).
    assert 0 < delivered == funnel["resumed"]
    # Resumed subscribers are sent the newspaper again: fewer are held back than suspended.
    last = doc["days"][-1]["actions"]
    assert last["under_suspension"] < funnel["suspended"]

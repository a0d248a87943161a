"""The README's main job, small: runs end to end and is reproducible with a fixed seed."""

from __future__ import annotations

import json
from pathlib import Path

from mmsq.demo import DemoConfig, run_demo
from tests.e2e.test_cli import run


def test_demo_json_reports_every_day(tmp_path: Path) -> None:
    r = run(
        ["demo", "--subscribers", "400", "--days", "3", "--observe-days", "1", "--json"], tmp_path
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [d["phase"] for d in doc["days"]] == ["observe", "act", "act"]
    for day in doc["days"]:
        assert day["sent"] == 800  # two editions to everyone
        assert day["final"] == sum(v for k, v in day["by_cause"].items() if k != "pending")
        assert 0.4 < day["success_rate"] < 0.95
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

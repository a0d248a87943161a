"""`mmsq outreach plan|dispatch|status` as an operator runs them: real processes, a real SMSC."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mmsq.simulators.outcomes import FixedOutcomes, SmsOutcome
from mmsq.simulators.smsc import SmscSimulator
from mmsq.simulators.smsc_config import SmscConfig


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MMSQ_")}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "mmsq", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_plan_dispatch_and_status(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "contact_policy.toml").write_text(
        'blackouts = []\n\n[quiet_hours]\nstart = "00:00"\nend = "00:00"\n\n'
        "[holdout]\nshare = 0.0\n",
        encoding="utf-8",
    )
    (tmp_path / "candidates.csv").write_text(
        "msisdn,verdict,delivered\n13800138001,terminal_capacity,12\n"
        "13800138002,terminal_capacity,3\nnot-a-number,terminal_capacity,1\n"
        "13800138003,unreachable,0\n",
        encoding="utf-8",
    )
    (tmp_path / "blacklist.txt").write_text("13800138002\n", encoding="utf-8")
    outcomes = FixedOutcomes(default_sms=SmsOutcome(delay_s=0.0))
    with SmscSimulator(SmscConfig(), outcomes) as smsc:
        env = {
            "MMSQ_RULES__DIR": str(rules),
            "MMSQ_SMPP__PORT": str(smsc.port),
            "MMSQ_SMPP__PASSWORD": "secret",
        }
        assert run(["db", "upgrade"], tmp_path, env).returncode == 0
        planned = run(
            [
                "outreach",
                "plan",
                "--candidates",
                "candidates.csv",
                "--blacklist",
                "blacklist.txt",
                "--json",
            ],
            tmp_path,
            env,
        )
        assert planned.returncode == 0, planned.stderr
        plan = json.loads(planned.stdout)
        assert plan["planned"] == 1
        assert plan["invalid_msisdns"] == 1
        assert plan["skipped"] == {"blacklist": 1, "no_remedy": 1}
        sent = run(
            ["outreach", "dispatch", "--until-idle", "--receipt-wait", "10", "--json"],
            tmp_path,
            env,
        )
        assert sent.returncode == 0, sent.stderr
        summary = json.loads(sent.stdout)
        assert summary["accepted"] == 1
        assert summary["receipts"] == 1
        assert summary["metrics"]["receipts"] == {"DELIVRD": 1}
    status = run(["outreach", "status", "--json", "--msisdn", "13800138002"], tmp_path, env)
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    assert doc["contacts"] == {"delivered": 1}
    assert doc["decisions"] == {"blacklist": 1, "no_remedy": 1}
    assert doc["subscriber"]["decisions"][0]["decision"] == "blacklist"
    text = run(["outreach", "status", "--msisdn", "13800138003"], tmp_path, env)
    assert "no_remedy" in text.stdout

"""Crash safety of dispatch, with a real SIGKILL: ``mmsq outreach dispatch`` is killed while
submits are in flight, then started again. Every planned message must reach the SMSC; a message
may arrive twice only if its submit_sm_resp had not been stored when the process died, and at
most one window of them per kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from mmsq.adapters.sql_outbox import SqlOutbox
from mmsq.simulators.outcomes import FixedOutcomes, SmsOutcome
from mmsq.simulators.smsc import SmscSimulator
from mmsq.simulators.smsc_config import SmscConfig
from tests.outreach_fixtures import candidates, new_outbox, planner

pytestmark = pytest.mark.slow

WINDOW = 10
CONTACTS = 300
KILL_AT = (40, 130, 220)  # SMSC submits seen before each kill


def write_config(tmp_path: Path, port: int, db_url: str) -> Path:
    rules = tmp_path / "rules"
    rules.mkdir()
    # Send at any hour: no quiet hours, no blackouts (the test runs whenever CI does).
    (rules / "contact_policy.toml").write_text(
        'blackouts = []\n\n[quiet_hours]\nstart = "00:00"\nend = "00:00"\n', encoding="utf-8"
    )
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "{db_url}"\n\n[rules]\ndir = "{rules}"\n\n'
        f'[smpp]\nhost = "127.0.0.1"\nport = {port}\nwindow = {WINDOW}\n'
        f"reconnect_initial_s = 0.1\n",
        encoding="utf-8",
    )
    return config


def dispatch(config: Path, tmp_path: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MMSQ_")}
    env["MMSQ_CONFIG"] = str(config)
    env["MMSQ_SMPP__PASSWORD"] = "secret"
    return subprocess.Popen(
        [sys.executable, "-m", "mmsq", "outreach", "dispatch", "--until-idle", "--json"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def test_sigkill_mid_flight_loses_nothing_and_resends_only_unanswered(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'mmsq.db'}"
    store = new_outbox(db_url)
    numbers = [f"+86138{i:08d}" for i in range(CONTACTS)]
    assert planner(store).plan(candidates(numbers)).planned == CONTACTS
    outcomes = FixedOutcomes(default_sms=SmsOutcome(delay_s=0.0))
    # Slow answers keep a full window in flight, so that every kill lands mid-flight.
    with SmscSimulator(SmscConfig(resp_delay_s=0.05), outcomes) as smsc:
        config = write_config(tmp_path, smsc.port, db_url)
        unanswered_at_kill: list[set[str]] = []
        for threshold in KILL_AT:
            proc = dispatch(config, tmp_path)
            deadline = time.monotonic() + 60
            while smsc.stats().submits < threshold:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    proc.communicate()
                    pytest.fail(f"dispatch ended before {threshold} submits: {proc.returncode}")
                time.sleep(0.001)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            assert proc.stdout is not None
            proc.stdout.close()
            # What the database says was written without a stored answer at the kill.
            unanswered = {
                str(c["msisdn"]).lstrip("+")
                for c, s in contact_segments(store)
                if s["state"] == "submitting" and s["response_ms"] is None
            }
            assert len(unanswered) <= WINDOW
            unanswered_at_kill.append(unanswered)
        final = dispatch(config, tmp_path)
        out, _ = final.communicate(timeout=120)
        assert final.returncode == 0, out
        summary = json.loads(out)
        received = Counter(r.destination for r in smsc.received())

    assert any(unanswered_at_kill), "no kill landed mid-flight: the test proved nothing"
    assert summary["requeued"] == len(unanswered_at_kill[-1])
    # Nothing lost: every planned message reached the SMSC.
    assert set(received) == {n.lstrip("+") for n in numbers}
    # Duplicates: only messages whose answer was not stored at a kill, at most a window a kill.
    duplicated = {n for n, k in received.items() if k > 1}
    assert duplicated <= set().union(*unanswered_at_kill)
    assert sum(k - 1 for k in received.values()) <= WINDOW * len(KILL_AT)
    states = store.status().segments
    assert set(states) <= {"accepted", "delivered"}
    assert sum(states.values()) == CONTACTS
    store.close()


def contact_segments(store: SqlOutbox) -> list[tuple[dict[str, object], dict[str, object]]]:
    contacts = {c["id"]: c for c in store.contacts()}
    return [(contacts[s["contact_id"]], s) for s in store.segments()]

"""The agent API served by `mmsq daemon` (a real process) with the MMSC simulator on 127.0.0.1.

An agent token from `mmsq agents add`, an active subscription from `mmsq subscriptions import`,
then `POST /v1/resends`: the daemon's MM7 outbox sends the SubmitReq to the simulator, the
simulator's DeliveryReportReq comes back to the daemon's MM7 endpoint, is correlated with the
resend, and is stored under the resend's edition; the subscriber, suspended by mmsq before,
is resumed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from mmsq.adapters.sql_store import SqlStore
from mmsq.bootstrap import SystemClock
from mmsq.simulators.mmsc import MmscConfig, MmscSimulator
from mmsq.simulators.mmsc_http import MmscServer
from mmsq.simulators.outcomes import FixedOutcomes
from tests.api_harness import suspend_by_mmsq
from tests.daemon_harness import DaemonProcess, dr_body, wait_until

MSISDN = "+8613800138000"
EDITION = "ah-daily-20261123-am"


@pytest.fixture
def mmsc() -> Iterator[tuple[MmscSimulator, MmscServer]]:
    sim = MmscSimulator(FixedOutcomes(), MmscConfig(vaspid="sp01", vasid="news"))
    with MmscServer(sim) as server:
        server.start_report_loop(0.05)
        yield sim, server


@pytest.fixture
def daemon(
    tmp_path: Path, db_url: str, mmsc: tuple[MmscSimulator, MmscServer]
) -> Iterator[DaemonProcess]:
    _sim, server = mmsc
    editions = tmp_path / "editions"
    (editions / EDITION).mkdir(parents=True)
    (editions / EDITION / "news.txt").write_text("今日新闻", encoding="utf-8")
    proc = DaemonProcess(
        tmp_path,
        db_url,
        "[mm7]\n"
        f'url = "{server.url}"\n'
        f'editions_dir = "{editions.as_posix()}"\n'
        "rate_per_s = 0\nconnect_timeout_s = 2\nread_timeout_s = 5\nlease_s = 10\n"
        "backoff_s = 0.2\n",
    )
    assert proc.mmsq("db", "upgrade").returncode == 0
    try:
        yield proc
    finally:
        proc.kill()


def test_resend_through_the_daemon_is_sent_reported_and_stored(
    daemon: DaemonProcess, mmsc: tuple[MmscSimulator, MmscServer], db_url: str
) -> None:
    sim, _server = mmsc
    added = daemon.mmsq("agents", "add", "li.wei", "--role", "agent")
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()
    (daemon.workdir / "boss.csv").write_text(
        "msisdn,product,status\n13800138000,ah-daily,active\n", encoding="utf-8"
    )
    imported = daemon.mmsq("subscriptions", "import", "--source", "boss", "boss.csv", "--json")
    assert imported.returncode == 0, imported.stderr
    sql = SqlStore.from_url(db_url)
    try:
        suspend_by_mmsq(sql.engine, SystemClock(), MSISDN)
        daemon.start()
        sim.config = dataclasses.replace(sim.config, vasp_url=f"{daemon.url}/mm7/dr")
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=daemon.url, timeout=30) as c:
            before = c.get(f"/v1/subscribers/{MSISDN}/diagnosis", headers=auth).json()
            assert before["suspended_by_mmsq"] is True
            r = c.post(
                "/v1/resends",
                json={"msisdn": "138 0013 8000", "reason": "issue missing", "edition": EDITION},
                headers={**auth, "Idempotency-Key": "e2e-1"},
            )
            assert r.status_code == 202, r.text
            assert r.json()["resume_on_delivery"] is True
            location = r.headers["location"]

            def resend() -> dict[str, Any]:
                doc: dict[str, Any] = c.get(location, headers=auth).json()
                return doc

            wait_until(lambda: resend()["status"] == "delivered", 60, "resend delivered")
            done = resend()
            # The simulator received the SubmitReq for the subscriber, with the edition's MM.
            [accepted] = sim.accepted
            assert accepted.request.numbers == (MSISDN,)
            assert done["message_id"] == accepted.message_id
            assert any(p.content_type.startswith("text/plain") for p in accepted.request.parts)
            after = c.get(f"/v1/subscribers/{MSISDN}/diagnosis", headers=auth).json()
            assert after["suspended_by_mmsq"] is False
            assert after["recovery"]["state"] == "resumed"
            # A report that matches nothing the outbox sent is stored as it came.
            other = c.post(
                "/mm7/dr",
                content=dr_body("MMSC-ELSEWHERE", "+8613800138009", "Retrieved"),
                headers={"Content-Type": "text/xml"},
            )
            assert other.status_code == 200
        stored = sql.recent_events(MSISDN, 10)
        assert [(e["edition"], e["message_id"], e["cause"]) for e in stored] == [
            (EDITION, accepted.message_id, "delivered")
        ]
        assert [e["edition"] for e in sql.recent_events("+8613800138009", 10)] == [None]
    finally:
        sql.close()
    assert daemon.terminate() == 0
    stopped = daemon.event("daemon.stopped")
    assert stopped is not None
    assert stopped["clean"] is True
    assert stopped["failed_hooks"] == []

"""``mmsq daemon`` as operations run it: a real process, real files, HTTP, signals."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from mmsq.adapters.sql_schema import quarantine
from mmsq.adapters.sql_store import SqlStore
from mmsq.simulators.cdr_generator import CdrSpec, write_cdr
from tests.daemon_harness import DaemonProcess, dr_body, wait_until


@pytest.fixture
def daemon(tmp_path: Path, db_url: str) -> Iterator[DaemonProcess]:
    d = DaemonProcess(tmp_path, db_url)
    upgraded = d.mmsq("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    try:
        yield d
    finally:
        d.kill()


def events_for(db_url: str, msisdn: str, message_id: str) -> list[dict[str, object]]:
    store = SqlStore.from_url(db_url)
    try:
        return [e for e in store.recent_events(msisdn, 1000) if e["message_id"] == message_id]
    finally:
        store.close()


def quarantined(db_url: str) -> list[dict[str, object]]:
    store = SqlStore.from_url(db_url)
    try:
        with store.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(quarantine))]
    finally:
        store.close()


def metric(text: str, name: str, labels: str = "") -> float:
    pattern = re.escape(name + (f"{{{labels}}}" if labels else "")) + r" (\S+)"
    found = re.search("^" + pattern + "$", text, re.MULTILINE)
    assert found, f"{name}{{{labels}}} not in /metrics"
    return float(found.group(1))


def test_daemon_ingests_files_and_reports_and_stops_cleanly(
    daemon: DaemonProcess, db_url: str
) -> None:
    daemon.start()
    client = httpx.Client(base_url=daemon.url, timeout=10)
    try:
        assert client.get("/healthz").json() == {"status": "alive"}
        wait_until(lambda: client.get("/readyz").status_code == 200, what="ready")
        checks = client.get("/readyz").json()["checks"]
        assert {name for name, c in checks.items() if c["ok"]} == {
            "database",
            "schema",
            "scheduler",
            "smpp_bind",
        }
        # No contact has been dispatched yet: the SMPP bind is not open, and not a failure.
        assert checks["smpp_bind"]["detail"].startswith("not bound")

        # The MMSC's convention: write under a .part name, then rename into place.
        part = daemon.inbox / "cdr-20261122.csv.gz.part"
        rows = write_cdr(part, CdrSpec(subscribers=300, malformed_share=0.02))
        part.rename(daemon.inbox / "cdr-20261122.csv.gz")
        wait_until((daemon.done / "cdr-20261122.csv.gz").is_file, what="moved to done")
        assert not list(daemon.inbox.iterdir())
        assert not list(daemon.failed.iterdir())

        # A delivery report, twice: stored once.
        for tid in ("dr-1", "dr-2"):
            r = client.post(
                "/mm7/dr",
                content=dr_body(message_id="DR-E2E-1", tid=tid),
                headers={"Content-Type": "text/xml"},
            )
            assert r.status_code == 200, r.text
            assert b"<StatusCode>1000</StatusCode>" in r.content
        stored = events_for(db_url, "+8613800138000", "DR-E2E-1")
        assert len(stored) == 1
        assert stored[0]["cause"] == "delivered"
        assert stored[0]["msisdn"] == "+8613800138000"

        # A malformed report: refused, quarantined, and the daemon carries on.
        bad = client.post(
            "/mm7/dr", content=b"<Envelope><oops", headers={"Content-Type": "text/xml"}
        )
        assert bad.status_code == 400
        assert any(q["source"] == "mm7:DeliveryReportReq" for q in quarantined(db_url))
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200

        text = client.get("/metrics").text
        cdr_rows = metric(text, "mmsq_ingest_records_total", 'source="cdr"') + metric(
            text, "mmsq_ingest_quarantined_total", 'source="cdr"'
        )
        assert cdr_rows == rows
        assert metric(text, "mmsq_inbox_files_total", 'outcome="done"') == 1
        assert metric(text, "mmsq_delivery_reports_received_total", 'outcome="stored"') == 1
        assert metric(text, "mmsq_delivery_reports_received_total", 'outcome="duplicate"') == 1
        assert metric(text, "mmsq_delivery_reports_received_total", 'outcome="malformed"') == 1
        assert metric(text, "mmsq_job_runs_total", 'job="inbox",outcome="ok"') >= 1
        assert metric(text, "mmsq_job_failures_total", 'job="inbox"') == 0
        assert metric(text, "mmsq_scheduler_running") == 1
        assert "# TYPE mmsq_receipts_unmatched_total counter" in text
    finally:
        client.close()

    assert daemon.terminate() == 0
    events = daemon.events()
    stopped = [e for e in events if e["event"] == "daemon.stopped"]
    assert stopped == [stopped[0]]
    assert stopped[0]["clean"] is True
    names = [e["event"] for e in events]
    assert (
        names.index("daemon.stopping")
        < names.index("daemon.jobs_drained")
        < names.index("daemon.stopped")
    )
    runs = [e for e in events if e["event"] == "job.finished" and e.get("files_done")]
    assert runs
    assert runs[0]["job"] == "inbox"
    assert re.fullmatch(r"[0-9a-f]{12}", runs[0]["run_id"])
    log_text = daemon.log_path.read_text()
    assert "13800138000" not in log_text  # MSISDNs are masked in every line
    assert "Traceback" not in log_text


def test_daemon_refuses_to_start_on_an_old_schema(tmp_path: Path) -> None:
    d = DaemonProcess(tmp_path, f"sqlite:///{tmp_path / 'mmsq.db'}")
    r = d.mmsq("daemon")
    assert r.returncode == 2
    assert "mmsq db upgrade" in r.stderr
    assert "Traceback" not in r.stderr


def test_mmsc_simulator_reports_reach_the_daemon_and_are_stored(tmp_path: Path) -> None:
    from mmsq.adapters.mm7_client import Mm7Client, Mm7ClientConfig
    from mmsq.mms import MmsSubmission, SubmitOutcome, probe_content
    from mmsq.simulators.mmsc import MmscConfig, MmscSimulator
    from mmsq.simulators.mmsc_http import MmscServer
    from mmsq.simulators.outcomes import FixedOutcomes, MmsOutcome

    db_url = f"sqlite:///{tmp_path / 'mmsq.db'}"
    d = DaemonProcess(tmp_path, db_url)
    assert d.mmsq("db", "upgrade").returncode == 0
    d.start()
    try:
        outcomes = FixedOutcomes(
            default_mms=MmsOutcome(mm_status="Retrieved", delay_s=0.0),
            mms={"+8613900139000": MmsOutcome(mm_status="Expired", delay_s=0.0)},
        )
        sim = MmscSimulator(
            outcomes,
            MmscConfig(vaspid="SP001", vasid="news", vasp_url=d.url + "/mm7/dr", seed=1),
        )
        with MmscServer(sim) as server:
            server.start_report_loop(interval_s=0.05)
            config = Mm7ClientConfig(url=server.url, vaspid="SP001", vasid="news")
            with Mm7Client(config) as client:
                ids = {}
                for msisdn in ("+8613800138000", "+8613900139000"):
                    result = client.submit(
                        MmsSubmission(msisdn, "ah-probe", probe_content("彩信已恢复"), msisdn)
                    )
                    assert result.outcome is SubmitOutcome.ACCEPTED
                    assert result.message_id
                    ids[msisdn] = result.message_id
            wait_until(lambda: sim.stats().reports_delivered == 2, what="reports delivered")
        stats = sim.stats()
        assert stats.reports_abandoned == stats.reports_rejected == 0
        ok = events_for(db_url, "+8613800138000", ids["+8613800138000"])
        expired = events_for(db_url, "+8613900139000", ids["+8613900139000"])
        assert [(e["status_code"], e["cause"]) for e in ok] == [("Retrieved", "delivered")]
        assert len(expired) == 1
        assert expired[0]["cause"] != "delivered"
    finally:
        code = d.terminate()
    assert code == 0

"""`mmsq mms` as an operator runs it, against the MMSC simulator: real processes, a real kill.

The crash test SIGKILLs `mmsq mms dispatch` while SubmitReq are held by the simulator's response
delay, restarts it, and checks the simulator's own record of what it accepted: each item at most
twice, and twice only when its first MessageID was never stored.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import cast

import pytest

from mmsq.adapters.mm7_soap import build_delivery_report_rsp, parse_delivery_report
from mmsq.adapters.sql_mms_outbox import SqlMmsOutboxStore
from mmsq.adapters.sql_store import SqlStore
from mmsq.bootstrap import SystemClock
from mmsq.classify import Classifier
from mmsq.mms import SubmitResult
from mmsq.mms_content import OutboxContent
from mmsq.mms_outbox import MmsOutbox, OutboxPolicy
from mmsq.mms_outbox_model import OutboxState
from mmsq.rules_loader import load_rules
from mmsq.simulators.mmsc import MmscConfig, MmscFaults, MmscSimulator
from mmsq.simulators.mmsc_http import MmscServer
from mmsq.simulators.outcomes import FixedOutcomes

CONCURRENCY = 4


def mmsq(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mmsq", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def environment(db_url: str, mmsc_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MMSQ_")}
    env.update(
        {
            "MMSQ_DATABASE__URL": db_url,
            "MMSQ_LOG__LEVEL": "WARNING",
            "MMSQ_MM7__URL": mmsc_url,
            "MMSQ_MM7__RATE_PER_S": "0",
            "MMSQ_MM7__CONCURRENCY": str(CONCURRENCY),
            "MMSQ_MM7__CONNECT_TIMEOUT_S": "1",
            "MMSQ_MM7__READ_TIMEOUT_S": "3",
            "MMSQ_MM7__LEASE_S": "5",
            "MMSQ_MM7__BACKOFF_S": "0.2",
        }
    )
    return env


class _Outboxless:
    """Placeholder gateway for the test's own outbox: it only correlates, never sends."""

    def submit(self, submission: object) -> SubmitResult:
        raise AssertionError("the test process does not send")


@pytest.fixture
def outbox(db_url: str) -> Iterator[MmsOutbox]:
    sql = SqlStore.from_url(db_url)
    sql.upgrade()
    try:
        yield MmsOutbox(
            SqlMmsOutboxStore(sql.engine),
            _Outboxless(),
            OutboxContent("t", "s"),
            Classifier(load_rules(None).status_codes),
            SystemClock(),
            OutboxPolicy(),
        )
    finally:
        sql.close()


@pytest.fixture
def vasp_url(outbox: MmsOutbox) -> Iterator[str]:
    """The VASP endpoint: every DeliveryReportReq goes to the outbox's correlation."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            report = parse_delivery_report(body, self.headers["Content-Type"])
            outbox.on_delivery_report(report)
            answer = build_delivery_report_rsp(report.transaction_id, report.namespace)
            self.send_response(200)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = False
    server.block_on_close = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,))
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/dr"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def mmsc(vasp_url: str) -> Iterator[tuple[MmscSimulator, MmscServer]]:
    sim = MmscSimulator(FixedOutcomes(), MmscConfig(vaspid="sp01", vasid="news", vasp_url=vasp_url))
    with MmscServer(sim) as server:
        server.start_report_loop(0.05)
        yield sim, server


def test_send_probe_then_status_by_reference_and_message_id(
    tmp_path: Path,
    db_url: str,
    outbox: MmsOutbox,
    mmsc: tuple[MmscSimulator, MmscServer],
) -> None:
    sim, server = mmsc
    env = environment(db_url, server.url)
    sent = mmsq(
        ["mms", "send-probe", "13800138000", "--reference", "hs-1", "--json"], tmp_path, env
    )
    assert sent.returncode == 0, sent.stderr
    doc = json.loads(sent.stdout)
    (accepted,) = sim.accepted
    assert (doc["state"], doc["message_id"], doc["edition"]) == (
        "submitted",
        accepted.message_id,
        "recovery-probe",
    )
    assert doc["msisdn"] == "+86138****8000"
    assert accepted.request.numbers == ("+8613800138000",)
    assert "13800138000" not in sent.stdout + sent.stderr

    # The simulator's report reaches the VASP endpoint and ends the probe delivered.
    for _ in range(200):
        if outbox.status("hs-1")[0].state is OutboxState.DELIVERED:
            break
        time.sleep(0.05)
    by_ref = json.loads(mmsq(["mms", "status", "hs-1", "--json"], tmp_path, env).stdout)
    assert [(i["kind"], i["state"], i["mm_status"]) for i in by_ref["items"]] == [
        ("probe", "delivered", "Retrieved")
    ]
    by_id = mmsq(["mms", "status", "--message-id", accepted.message_id.lower()], tmp_path, env)
    assert by_id.returncode == 0
    assert "delivered" in by_id.stdout

    again = json.loads(
        mmsq(
            ["mms", "send-probe", "13800138000", "--reference", "hs-1", "--json"], tmp_path, env
        ).stdout
    )
    assert again["created"] is False
    assert len(sim.accepted) == 1
    assert mmsq(["mms", "status", "nope"], tmp_path, env).returncode == 1
    idle = json.loads(mmsq(["mms", "dispatch", "--json"], tmp_path, env).stdout)
    assert idle["dispatched"]["claimed"] == 0
    assert idle["states"] == {"delivered": 1}


@pytest.mark.slow
def test_dispatch_killed_mid_submit_resends_only_what_may_be_lost(
    tmp_path: Path,
    db_url: str,
    outbox: MmsOutbox,
    mmsc: tuple[MmscSimulator, MmscServer],
) -> None:
    sim, server = mmsc
    sim.faults = MmscFaults(response_delay_s=0.4)
    numbers = [f"+86138001{i:05d}" for i in range(16)]
    for i, number in enumerate(numbers):
        outbox.enqueue("probe", number, "", f"crash-{i}")
    env = environment(db_url, server.url)
    store = cast(SqlMmsOutboxStore, outbox.store)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mmsq", "mms", "dispatch", "--until-idle"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            counts = store.counts()
            if counts.get("submitted", 0) + counts.get("delivered", 0) >= 2 and counts.get(
                "submitting", 0
            ):
                break
            time.sleep(0.02)
        else:
            pytest.fail(f"dispatch never got going: {store.counts()}")
        # Let the claimed SubmitReq reach the simulator, which holds each for 0.4 s: killed
        # now, the MMSC accepts MMs whose SubmitRsp nobody will store.
        time.sleep(0.2)
    finally:
        proc.kill()  # SIGKILL: no handler, no cleanup
        proc.wait(timeout=30)

    # What the database said at the moment of death.
    at_kill = {i.msisdn: i for i in store.all_items()}
    stored_before = {n for n, i in at_kill.items() if i.message_id}
    in_flight = {n for n, i in at_kill.items() if i.state is OutboxState.SUBMITTING}
    assert 1 <= len(in_flight) <= CONCURRENCY

    sim.faults = MmscFaults()
    rerun = mmsq(["mms", "dispatch", "--until-idle", "--json"], tmp_path, env)
    assert rerun.returncode == 0, rerun.stderr
    doc = json.loads(rerun.stdout)
    assert doc["dispatched"]["requeued_in_doubt"] == len(in_flight)

    for _ in range(200):  # let the simulator's reports arrive
        if sim.pending_reports == 0 and not store.counts().get("submitted"):
            break
        time.sleep(0.05)

    accepted = Counter(n for mm in sim.accepted for n in mm.request.numbers)
    last_id = {mm.request.numbers[0]: mm.message_id for mm in sim.accepted}
    final = {i.msisdn: i for i in store.all_items()}
    assert set(accepted) == set(numbers)  # nothing lost
    assert max(accepted.values()) <= 2
    twice = {n for n, k in accepted.items() if k == 2}
    assert twice <= in_flight  # only what may have reached the MMSC unrecorded
    assert not twice & stored_before  # a stored MessageID is never resubmitted
    for number, item in final.items():
        assert item.state is OutboxState.DELIVERED, item
        assert item.message_id == last_id[number]
        assert item.in_doubt == (1 if number in in_flight else 0)
    # The first copy's report carries a MessageID nobody stored: kept as unmatched.
    assert store.unmatched_count() == len(twice)

"""The MM7 outbox against the MMSC simulator on 127.0.0.1, with a VASP endpoint for its reports.

The simulator decodes SubmitReq with its own codec; its delivery reports come back over HTTP
to a small VASP server that hands ``parse_delivery_report``'s result to the outbox.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mmsq.adapters.mm7_client import Mm7Client, Mm7ClientConfig
from mmsq.adapters.mm7_soap import build_delivery_report_rsp, parse_delivery_report
from mmsq.adapters.mms_edition_dir import EditionDirectory
from mmsq.adapters.sql_mms_outbox import SqlMmsOutboxStore
from mmsq.adapters.sql_store import SqlStore
from mmsq.classify import Classifier
from mmsq.ingest import IngestService
from mmsq.mms import PROBE_EDITION, MmsSubmission, probe_content
from mmsq.mms_content import OutboxContent
from mmsq.mms_outbox import Correlation, MmsOutbox, OutboxPolicy
from mmsq.mms_outbox_model import OutboxKind, OutboxState
from mmsq.msisdn import MsisdnNormaliser
from mmsq.rules_loader import load_rules
from mmsq.simulators.mmsc import MmscConfig, MmscFaults, MmscSimulator
from mmsq.simulators.mmsc_http import MmscServer
from mmsq.simulators.outcomes import FixedOutcomes, MmsOutcome

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
A, B = "+8613800138001", "+8613800138002"


@dataclass
class FakeClock:
    now_value: datetime = T0

    def now(self) -> datetime:
        return self.now_value

    def advance(self, seconds: float) -> None:
        self.now_value += timedelta(seconds=seconds)


@dataclass
class Vasp:
    """The VASP's DeliveryReportReq endpoint: parse, hand to the outbox, answer 1000."""

    url: str
    outbox: MmsOutbox | None = None
    correlations: list[Correlation | None] = field(default_factory=list)


@pytest.fixture
def vasp() -> Iterator[Vasp]:
    holder: list[Vasp] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            report = parse_delivery_report(body, self.headers["Content-Type"])
            outbox = holder[0].outbox
            assert outbox is not None
            holder[0].correlations.append(outbox.on_delivery_report(report))
            answer = build_delivery_report_rsp(report.transaction_id, report.namespace)
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
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
    holder.append(Vasp(f"http://127.0.0.1:{server.server_address[1]}/mm7/dr"))
    try:
        yield holder[0]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@dataclass
class Rig:
    outbox: MmsOutbox
    store: SqlMmsOutboxStore
    sql: SqlStore
    sim: MmscSimulator
    server: MmscServer
    clock: FakeClock
    vasp: Vasp
    client: Mm7Client


@pytest.fixture
def make_rig(db_url: str, vasp: Vasp, tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    made: list[Rig] = []

    def make(faults: MmscFaults | None = None, service_codes: frozenset[str] = frozenset()) -> Rig:
        clock = FakeClock()
        sim = MmscSimulator(
            FixedOutcomes(default_mms=MmsOutcome(delay_s=1.0)),
            MmscConfig(
                vaspid="sp01",
                vasid="news",
                service_codes=service_codes,
                vasp_url=vasp.url,
                faults=faults or MmscFaults(),
            ),
            clock=clock.now,
        )
        server = MmscServer(sim).start()
        client = Mm7Client(
            Mm7ClientConfig(
                url=server.url,
                vaspid="sp01",
                vasid="news",
                service_code="1065",
                rate_per_s=0,
                max_attempts=1,
                connect_timeout_s=2,
                read_timeout_s=5,
            )
        )
        sql = SqlStore.from_url(db_url)
        sql.upgrade()
        store = SqlMmsOutboxStore(sql.engine)
        editions = tmp_path / "editions"
        (editions / "ah-daily-20261122-am").mkdir(parents=True, exist_ok=True)
        (editions / "ah-daily-20261122-am" / "01.txt").write_text("今日要闻", encoding="utf-8")
        outbox = MmsOutbox(
            store,
            client,
            OutboxContent("【手机报】彩信接收测试", "彩信接收测试", EditionDirectory(editions)),
            Classifier(load_rules(None).status_codes),
            clock,
            OutboxPolicy(max_attempts=4, backoff_s=10, backoff_cap_s=60, lease_s=30, concurrency=1),
        )
        vasp.outbox = outbox
        rig = Rig(outbox, store, sql, sim, server, clock, vasp, client)
        made.append(rig)
        return rig

    try:
        yield make
    finally:
        for rig in made:
            rig.client.close()
            rig.server.close()
            rig.sql.close()


def test_probe_is_accepted_and_its_report_ends_it_delivered(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    delivered: list[str] = []
    rig.outbox.on_delivered(OutboxKind.PROBE, lambda item: delivered.append(item.reference))
    rig.outbox.enqueue("probe", A, "", "recovery-42")
    summary = rig.outbox.dispatch_once()
    assert summary.submitted == 1
    (accepted,) = rig.sim.accepted
    item = rig.store.find("recovery-42")[0]
    assert item.state is OutboxState.SUBMITTED
    assert item.message_id == accepted.message_id
    assert accepted.request.numbers == (A,)
    assert accepted.request.delivery_report is True
    assert accepted.request.subject == "彩信接收测试"

    rig.sim.deliver_due(T0 + timedelta(seconds=5))
    (corr,) = rig.vasp.correlations
    assert corr is not None
    assert (corr.kind, corr.reference, corr.edition) == (
        OutboxKind.PROBE,
        "recovery-42",
        PROBE_EDITION,
    )
    assert corr.item.state is OutboxState.DELIVERED
    assert delivered == ["recovery-42"]

    # The daemon then feeds ingest with the item's edition: a probe is never a newspaper issue.
    rules = load_rules(None)
    ingest = IngestService(
        store=rig.sql,
        classifier=Classifier(rules.status_codes),
        normaliser=MsisdnNormaliser("CN"),
        clock=rig.clock,
        timezone="Asia/Shanghai",
        notify_status_source="cmpp",
    )
    result = ingest.ingest_reports("mm7-dr", [corr.delivery_report()])
    assert result.stored == 1
    events = rig.sql.recent_events(A)
    assert [(e["edition"], e["cause"]) for e in events] == [(PROBE_EDITION, "delivered")]


def test_service_unavailable_is_retried_then_accepted(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(MmscFaults(unavailable_windows=((T0, T0 + timedelta(seconds=25)),)))
    rig.outbox.enqueue("probe", A, "", "p-1")
    rig.outbox.dispatch_once()
    item = rig.store.find("p-1")[0]
    assert (item.state, item.status_code) == (OutboxState.QUEUED, 4006)
    rig.clock.advance(10)
    rig.outbox.dispatch_once()  # still inside the outage window
    rig.clock.advance(20)
    rig.outbox.dispatch_once()
    item = rig.store.find("p-1")[0]
    assert (item.state, item.attempts) == (OutboxState.SUBMITTED, 3)
    assert rig.sim.stats().refused_by_code == {4006: 2}
    assert [mm.message_id for mm in rig.sim.accepted] == [item.message_id]


def test_client_error_fails_with_the_mmsc_status_text(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(service_codes=frozenset({"2000"}))
    rig.outbox.enqueue("probe", A, "", "p-1")
    rig.outbox.dispatch_once()
    rig.clock.advance(3600)
    rig.outbox.dispatch_once()
    item = rig.store.find("p-1")[0]
    assert item.state is OutboxState.FAILED
    assert item.status_code == 2001
    assert item.cause == "policy_blocked"
    assert item.reason is not None
    assert item.reason.startswith("refused by the MMSC: 2001")
    assert rig.sim.stats().submits_received == 1


def test_refused_connection_is_retried_later(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    rig.server.pause()
    rig.outbox.enqueue("probe", A, "", "p-1")
    rig.outbox.dispatch_once()
    item = rig.store.find("p-1")[0]
    assert item.state is OutboxState.QUEUED
    assert item.in_doubt == 0  # refused: the MMSC cannot have it
    assert item.reason is not None
    assert item.reason.startswith("retry: transport")
    rig.server.resume()
    rig.clock.advance(10)
    rig.outbox.dispatch_once()
    assert rig.store.find("p-1")[0].state is OutboxState.SUBMITTED
    assert len(rig.sim.accepted) == 1


def test_resend_carries_its_edition_and_goes_before_probes(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    rig.outbox.enqueue("probe", A, "", "p-1")
    rig.outbox.enqueue("resend", B, "ah-daily-20261122-am", "ticket-7")
    rig.outbox.dispatch_once()
    first, second = rig.sim.accepted
    assert first.request.numbers == (B,)
    assert second.request.numbers == (A,)
    parts = {p.content_id.strip("<>"): p for p in first.request.parts}
    assert parts["01.txt"].content_type.startswith("text/plain")
    assert parts["01.txt"].size == len("今日要闻".encode())
    resend = rig.store.find("ticket-7", OutboxKind.RESEND)[0]
    assert resend.edition == "ah-daily-20261122-am"
    rig.sim.deliver_due(T0 + timedelta(seconds=5))
    by_ref = {c.reference: c for c in rig.vasp.correlations if c is not None}
    assert by_ref["ticket-7"].edition == "ah-daily-20261122-am"
    assert by_ref["ticket-7"].item.state is OutboxState.DELIVERED


def test_report_for_an_mm_the_outbox_did_not_send_is_kept(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    other = rig.client.submit(MmsSubmission(A, "x", probe_content("hi"), "elsewhere"))
    assert other.message_id
    rig.sim.deliver_due(T0 + timedelta(seconds=5))
    assert rig.vasp.correlations == [None]
    assert rig.store.unmatched_count() == 1
    (kept,) = rig.outbox.unmatched()
    assert (kept.report.message_id, kept.report.mm_status) == (other.message_id, "Retrieved")
    assert kept.report.recipient == A


def test_due_probe_is_sent_once_a_day_and_its_delivery_resumes_the_subscriber(
    make_rig: Callable[..., Rig],
) -> None:
    from mmsq.adapters.sql_recovery import SqlRecoveryStore
    from mmsq.delivery_feedback import connect_recovery
    from mmsq.recovery import RecoveryService
    from mmsq.remedies import send_due_probes
    from mmsq.scoring_rules import load_scoring_rules
    from tests.api_harness import suspend_by_mmsq

    rig = make_rig()
    # Suspended eight days ago: the first probe (7 days after) is due; B is do-not-contact.
    eight_days_ago = FakeClock(T0 - timedelta(days=6))
    for msisdn in (A, B):
        suspend_by_mmsq(rig.sql.engine, eight_days_ago, msisdn)
    store = SqlRecoveryStore(rig.sql.engine)
    recovery = RecoveryService(
        store, store, load_scoring_rules(None).recovery, rig.clock, "Asia/Shanghai"
    )
    connect_recovery(rig.outbox, recovery)
    day = recovery.today()

    first = send_due_probes(recovery, rig.outbox, {B}, day)
    assert first.as_dict() == {
        "due": 2,
        "enqueued": 1,
        "repeated": 0,
        "do_not_contact": 1,
        "refused": 0,
    }
    assert (recovery.state_of(A) or {})["state"] == "probing"
    assert (recovery.state_of(B) or {})["state"] == "suspended"
    # A rerun the same day queues nothing more and counts no second probe.
    again = send_due_probes(recovery, rig.outbox, {B}, day)
    assert (again.enqueued, again.do_not_contact) == (0, 1)
    assert (recovery.state_of(A) or {})["probes_sent"] == 1

    assert rig.outbox.dispatch_once().submitted == 1
    (accepted,) = rig.sim.accepted
    assert accepted.request.numbers == (A,)
    rig.sim.deliver_due(T0 + timedelta(seconds=5))
    (corr,) = rig.vasp.correlations
    assert corr is not None
    assert corr.reference == f"probe:{A}:{day}"
    assert (recovery.state_of(A) or {})["state"] == "resumed"
    assert [t["event"] for t in recovery.history(A)][-2:] == ["probe_sent", "probe_delivered"]


def test_a_probe_queued_by_a_round_that_stopped_is_recorded_once_on_the_rerun(
    make_rig: Callable[..., Rig],
) -> None:
    """The round queues a probe, then stops before recording it (a kill between the two
    writes): the rerun finds the item already queued and records the probe, once."""
    from mmsq.adapters.sql_recovery import SqlRecoveryStore
    from mmsq.recovery import RecoveryService
    from mmsq.remedies import send_due_probes
    from mmsq.scoring_rules import load_scoring_rules
    from tests.api_harness import suspend_by_mmsq

    rig = make_rig()
    suspend_by_mmsq(rig.sql.engine, FakeClock(T0 - timedelta(days=6)), A)
    store = SqlRecoveryStore(rig.sql.engine)
    recovery = RecoveryService(
        store, store, load_scoring_rules(None).recovery, rig.clock, "Asia/Shanghai"
    )
    day = recovery.today()
    assert rig.outbox.enqueue("probe", A, "", reference=f"probe:{A}:{day}").created
    assert (recovery.state_of(A) or {})["state"] == "suspended"

    rerun = send_due_probes(recovery, rig.outbox, (), day)
    assert (rerun.due, rerun.enqueued, rerun.repeated) == (1, 0, 1)
    state = recovery.state_of(A) or {}
    assert (state["state"], state["probes_sent"]) == ("probing", 1)
    again = send_due_probes(recovery, rig.outbox, (), day)
    assert (again.due, again.enqueued) == (0, 0)
    assert (recovery.state_of(A) or {})["probes_sent"] == 1
    assert [t["event"] for t in recovery.history(A)].count("probe_sent") == 1

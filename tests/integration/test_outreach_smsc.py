"""The SMPP link and the dispatcher against the SMSC simulator on a real socket: window,
throttling, queue-full back-off, dropped connections, permanent errors, receipt correlation
(early, hex/decimal, multipart, unmatched) and UCS2 concatenation."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import smpplib.client

from mmsq.adapters.smpp_client import SmppGateway
from mmsq.adapters.sql_outbox import SqlOutbox
from mmsq.outbox import GatewayEvent, Receipt, SubmitRequest, SubmitResult
from mmsq.simulators.outcomes import FixedOutcomes, SmsOutcome
from mmsq.simulators.smpp_pdu import encode_submit_sm_resp
from mmsq.simulators.smsc import SmscSimulator
from mmsq.simulators.smsc_config import SmscConfig
from tests.outreach_fixtures import (
    RecordingMetrics,
    candidates,
    dispatcher,
    new_outbox,
    planner,
    smpp_config,
)

WAIT_S = 20.0


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.005)


def msisdns(n: int, prefix: str = "86138") -> list[str]:
    return [f"+{prefix}{i:08d}" for i in range(n)]


class Sink:
    """Collects what the gateway reports, thread-safely."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.results: list[SubmitResult] = []
        self.receipts: list[Receipt] = []

    def __call__(self, event: GatewayEvent) -> None:
        with self.lock:
            if isinstance(event, SubmitResult):
                self.results.append(event)
            else:
                self.receipts.append(event)


def requests(n: int) -> list[SubmitRequest]:
    return [SubmitRequest((i, 1), f"86138{i:08d}", f"m{i}".encode(), 0, 0) for i in range(n)]


def texts(smsc: SmscSimulator) -> list[str]:
    return [r.message.decode() for r in smsc.received()]


@pytest.fixture
def outcomes() -> FixedOutcomes:
    return FixedOutcomes(default_sms=SmsOutcome(delay_s=0.0))


def run_gateway(
    smsc: SmscSimulator,
    reqs: list[SubmitRequest],
    metrics: RecordingMetrics | None = None,
    **kw: object,
) -> Sink:
    sink = Sink()
    gw = SmppGateway(smpp_config(smsc, **kw), metrics)
    gw.start(sink)
    try:
        gw.submit(reqs)
        wait_until(lambda: len(sink.results) >= len(reqs), "all submit answers")
    finally:
        gw.stop(2.0)
    return sink


# -- the link -----------------------------------------------------------------------------


def test_window_bounds_unanswered_submits(outcomes: FixedOutcomes) -> None:
    with SmscSimulator(SmscConfig(resp_delay_s=1.5), outcomes) as smsc:
        sink = Sink()
        gw = SmppGateway(smpp_config(smsc, window=4))
        gw.start(sink)
        try:
            gw.submit(requests(12))
            wait_until(lambda: smsc.stats().submits >= 4, "the first window")
            time.sleep(0.3)  # answers are 1.5 s away: nothing more may be written meanwhile
            assert smsc.stats().submits == 4
            assert sink.results == []
            wait_until(lambda: len(sink.results) == 12, "all answers")
        finally:
            gw.stop(2.0)
    assert all(r.status == 0 and r.message_id for r in sink.results)


def test_throttling_pauses_the_bind_and_resends_in_order(outcomes: FixedOutcomes) -> None:
    metrics = RecordingMetrics()
    with SmscSimulator(SmscConfig(throughput=40), outcomes) as smsc:
        sink = run_gateway(smsc, requests(120), metrics, window=10)
        received = texts(smsc)
        assert smsc.stats().throttled > 0
    assert metrics.throttle_events > 0
    assert "throttled" in metrics.state_history
    assert all(r.status == 0 for r in sink.results)
    assert sorted(received, key=lambda t: int(t[1:])) == [f"m{i}" for i in range(120)]
    # Throttled PDUs go out again before anything new: a message is never overtaken by more
    # than what was already on the wire with it (one window).
    for pos, text in enumerate(received):
        assert abs(pos - int(text[1:])) < 10


def test_queue_full_backs_off_and_every_message_gets_through(outcomes: FixedOutcomes) -> None:
    metrics = RecordingMetrics()
    with SmscSimulator(SmscConfig(msgqful_rate=0.3, seed=3), outcomes) as smsc:
        sink = run_gateway(smsc, requests(40), metrics)
        received = texts(smsc)
        assert smsc.stats().msgqful > 0
    assert "backoff" in metrics.state_history
    assert all(r.status == 0 for r in sink.results)
    assert sorted(received) == sorted(f"m{i}" for i in range(40))


def test_dropped_connection_reconnects_and_continues(outcomes: FixedOutcomes) -> None:
    metrics = RecordingMetrics()
    with SmscSimulator(SmscConfig(drop_rate=0.05, seed=11), outcomes) as smsc:
        sink = run_gateway(smsc, requests(80), metrics)
        stats = smsc.stats()
        received = texts(smsc)
    assert stats.dropped_connections > 0
    assert stats.binds == stats.dropped_connections + 1
    assert "disconnected" in metrics.state_history
    assert {r.key for r in sink.results} == {(i, 1) for i in range(80)}
    assert all(r.status == 0 for r in sink.results)
    assert set(received) == {f"m{i}" for i in range(80)}


def test_transmitter_and_receiver_binds(outcomes: FixedOutcomes) -> None:
    with SmscSimulator(SmscConfig(), outcomes) as smsc:
        sink = Sink()
        gw = SmppGateway(smpp_config(smsc, bind_mode="transmitter_receiver"))
        gw.start(sink)
        try:
            wait_until(gw.healthy, "both binds")
            assert set(gw.states()) == {"mmsq:transmitter", "mmsq:receiver"}
            gw.submit(requests(5))
            wait_until(lambda: len(sink.receipts) == 5, "receipts on the receiver bind")
        finally:
            gw.stop(2.0)
        assert smsc.stats().receipts_acked == 5
    assert {r.message_id for r in sink.receipts} == {r.message_id for r in sink.results}
    assert gw.state == "stopped"
    assert not gw.healthy()


def test_stop_hands_back_what_was_never_written(outcomes: FixedOutcomes) -> None:
    with SmscSimulator(SmscConfig(resp_delay_s=0.3), outcomes) as smsc:
        sink = Sink()
        gw = SmppGateway(smpp_config(smsc, window=3))
        gw.start(sink)
        gw.submit(requests(10))
        wait_until(lambda: smsc.stats().submits >= 3, "the first window")
        gw.stop(2.0)
    answered = [r for r in sink.results if r.status == 0]
    handed_back = [r for r in sink.results if r.status == -1]
    assert len(answered) == smsc.stats().submits
    assert len(answered) + len(handed_back) == 10


# -- through the outbox -------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlOutbox]:
    s = new_outbox(f"sqlite:///{tmp_path / 'mmsq.db'}")
    yield s
    s.close()


def test_receipts_before_the_submit_answer_are_matched(
    store: SqlOutbox, outcomes: FixedOutcomes
) -> None:
    planner(store).plan(candidates(msisdns(20)))
    with SmscSimulator(SmscConfig(resp_delay_s=0.2), outcomes) as smsc:
        summary = dispatcher(store, smsc).dispatch_once(receipt_wait_s=10)
    assert summary.accepted == 20
    assert summary.receipts == 20
    status = store.status()
    assert status.contacts == {"delivered": 20}
    assert status.waiting_receipts == status.unmatched_receipts == 0


@pytest.mark.parametrize(
    ("ids", "receipt_ids", "base"),
    [
        ("hex", "dec", "decimal"),
        ("dec", "hex", "hex"),
        ("hex", None, "same"),
        ("dec", None, "same"),
    ],
)
def test_hex_and_decimal_ids_correlate(
    tmp_path: Path, outcomes: FixedOutcomes, ids: str, receipt_ids: str | None, base: str
) -> None:
    store = new_outbox(f"sqlite:///{tmp_path / 'ids.db'}", receipt_id_base=base)
    planner(store).plan(candidates(msisdns(30)))
    # From 4090: ids that need a few hex digits, some of them all digits ("1000" = 4096), and
    # receipts that come before their answers, so that a wrong reading would find a segment.
    cfg = SmscConfig(
        id_format=ids, receipt_id_format=receipt_ids, first_message_id=4090, resp_delay_s=0.05
    )
    with SmscSimulator(cfg, outcomes) as smsc:
        summary = dispatcher(store, smsc).dispatch_once(receipt_wait_s=10)
    assert store.status().contacts == {"delivered": 30}
    assert summary.receipts == 30
    assert summary.duplicate_receipts == 0
    raw = {s["message_id_raw"] for s in store.segments()}
    assert raw == {format(n, "x" if ids == "hex" else "d") for n in range(4090, 4120)}
    store.close()


def test_ucs2_help_sms_is_concatenated_and_reassembled(
    store: SqlOutbox, outcomes: FixedOutcomes
) -> None:
    # The settings template is long Chinese text: UCS2 in two segments.
    planner(store).plan(candidates(["+8613800138000"], "terminal_misconfigured", ota_capable=False))
    (contact,) = store.contacts()
    assert contact["segments"] == 2
    with SmscSimulator(SmscConfig(), outcomes) as smsc:
        summary = dispatcher(store, smsc).dispatch_once(receipt_wait_s=10)
    (sms,) = outcomes.texts
    assert sms.text == contact["text"]
    assert sms.segments == 2
    assert sms.data_coding == 8
    assert sms.msisdn == "8613800138000"
    # One receipt per segment: the first final one decides, the others are kept per segment.
    assert summary.receipts == 2
    assert store.status().contacts == {"delivered": 1}
    assert [s["receipt_stat"] for s in store.segments()] == ["DELIVRD"] * 2


def test_a_failed_receipt_on_any_segment_fails_the_contact(store: SqlOutbox) -> None:
    outcomes = FixedOutcomes(default_sms=SmsOutcome(stat="UNDELIV", err="001", delay_s=0.0))
    planner(store).plan(candidates(["+8613800138000"]))
    with SmscSimulator(SmscConfig(), outcomes) as smsc:
        dispatcher(store, smsc).dispatch_once(receipt_wait_s=10)
    (contact,) = store.contacts()
    assert contact["state"] == "failed"
    assert contact["status_code"] == "UNDELIV"
    assert contact["cause"]  # classified through the rules (namespace smpp)


class RefusingSmsc(SmscSimulator):
    """Refuses numbers starting 86199 with ESME_RINVDSTADR (0x0B), as a real SMSC would."""

    def _submit(self, session, sequence, body):  # type: ignore[no-untyped-def]
        if b"86199" in body:
            return self._respond(session, encode_submit_sm_resp(0x0B, sequence, ""))
        return super()._submit(session, sequence, body)


def test_permanent_error_is_final_and_recorded_with_its_cause(
    store: SqlOutbox, outcomes: FixedOutcomes
) -> None:
    planner(store).plan(candidates(["+8619900000001", "+8613800000002"]))
    metrics = RecordingMetrics()
    with RefusingSmsc(SmscConfig(), outcomes) as smsc:
        summary = dispatcher(store, smsc, metrics).dispatch_once(receipt_wait_s=10)
    assert summary.failed == 1
    assert summary.retried == 0
    by_msisdn = {c["msisdn"]: c for c in store.contacts()}
    refused = by_msisdn["+8619900000001"]
    assert refused["state"] == "failed"
    assert refused["status_code"] == "0x0B"
    assert refused["cause"] == "subscriber_invalid"  # rules/status_codes.toml smpp_command
    assert by_msisdn["+8613800000002"]["state"] == "delivered"
    assert metrics.results == {"accepted": 1, "subscriber_invalid": 1}
    # A refusal before the SMSC does not count against the caps: the subscriber can be planned.
    assert [h[0] for h in store.contact_history(refused_since())] == ["+8613800000002"]


def refused_since():  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) - timedelta(days=1)


def test_unmatched_receipts_are_kept_for_inspection(
    store: SqlOutbox, outcomes: FixedOutcomes
) -> None:
    outcomes.default_sms = SmsOutcome(delay_s=0.2)
    with SmscSimulator(SmscConfig(), outcomes) as smsc:
        # Another client on the same account sends and leaves: its receipt comes to us.
        other = smpplib.client.Client(
            smsc.host, smsc.port, timeout=5, allow_unknown_opt_params=True
        )
        other.connect()
        other.bind_transmitter(system_id="mmsq", password="secret")
        other.send_message(
            source_addr="10086",
            destination_addr="8613900000000",
            short_message=b"elsewhere",
            registered_delivery=1,
        )
        other.read_pdu()
        other.unbind()
        other.disconnect()
        metrics = RecordingMetrics()
        d = dispatcher(store, smsc, metrics, receipt_grace_s=0.0)
        summary = d.dispatch_once(max_seconds=1.5, until_idle=False)
    assert summary.unmatched_receipts == 1
    assert metrics.unmatched == 1
    (kept,) = store.unmatched_receipts()
    assert kept["message_id_raw"] == "1"
    assert kept["state"] == "unmatched"
    assert kept["stat"] == "DELIVRD"
    assert "elsewhere" in kept["text"]


def test_the_same_dispatcher_sends_again_after_a_finished_round(
    store: SqlOutbox, outcomes: FixedOutcomes
) -> None:
    # The daemon's dispatch job and the demo reuse one dispatcher: its SMPP link is opened
    # and closed once per round and must open again the next time.
    with SmscSimulator(SmscConfig(), outcomes) as smsc:
        d = dispatcher(store, smsc)
        planner(store).plan(candidates(["+8613800138001"]))
        first = d.dispatch_once(receipt_wait_s=10)
        planner(store).plan(candidates(["+8613800138002"]))
        second = d.dispatch_once(receipt_wait_s=10)
    assert (first.accepted, second.accepted) == (1, 1)
    assert store.status().contacts == {"delivered": 2}

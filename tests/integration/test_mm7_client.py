"""The MM7 client against a real HTTP server on 127.0.0.1 that answers as an MMSC would."""

from __future__ import annotations

import base64
import email
import email.policy
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import defusedxml.ElementTree as SafeET
import pytest

from mmsq.adapters.mm7_client import Mm7Client, Mm7ClientConfig, parse_submit_rsp
from mmsq.mms import MmsSubmission, SubmitOutcome, probe_content

NS = "http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/REL-6-MM7-1-4"


def submit_rsp(code: int, text: str = "Success", message_id: str | None = "mmsc-1") -> bytes:
    mid = f"<MessageID>{message_id}</MessageID>" if message_id else ""
    return (
        '<?xml version="1.0"?><env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/">'
        f'<env:Header><mm7:TransactionID xmlns:mm7="{NS}">t</mm7:TransactionID></env:Header>'
        f'<env:Body><SubmitRsp xmlns="{NS}"><MM7Version>6.8.0</MM7Version><Status>'
        f"<StatusCode>{code}</StatusCode><StatusText>{text}</StatusText></Status>{mid}"
        "</SubmitRsp></env:Body></env:Envelope>"
    ).encode()


@dataclass
class Script:
    """What the fake MMSC answers, in order (the last answer repeats), and what it received."""

    answers: list[tuple[int, bytes]] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next(self) -> tuple[int, bytes]:
        with self.lock:
            return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


@pytest.fixture
def mmsc() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            script.received.append((dict(self.headers.items()), body))
            status, answer = script.next()
            self.send_response(status)
            self.send_header("Content-Type", "text/xml; charset=utf-8")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/mm7", script
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def client(url: str, **kw: object) -> Mm7Client:
    cfg = Mm7ClientConfig(
        url=url,
        vaspid="SP001",
        vasid="newspaper",
        service_code="1065",
        rate_per_s=0,
        **kw,  # type: ignore[arg-type]
    )
    return Mm7Client(cfg, sleep=lambda s: None)


def probe(msisdn: str = "+8613800138000") -> MmsSubmission:
    return MmsSubmission(msisdn, "recovery-probe", probe_content("您的彩信已恢复"), "probe-1")


def test_submit_accepted_sends_soap_with_mm_attachment(mmsc: tuple[str, Script]) -> None:
    url, script = mmsc
    script.answers = [(200, submit_rsp(1000, message_id="0a1b2c"))]
    with client(url, username="sp", password="secret") as c:
        result = c.submit(probe())
    assert result.outcome is SubmitOutcome.ACCEPTED
    assert (result.status_code, result.message_id, result.attempts) == (1000, "0a1b2c", 1)

    headers, body = script.received[0]
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"sp:secret").decode()
    msg = email.message_from_bytes(
        b"Content-Type: " + headers["Content-Type"].encode() + b"\r\n\r\n" + body,
        policy=email.policy.default,
    )
    parts = {p["Content-ID"]: p for p in msg.walk() if p["Content-ID"]}
    envelope = SafeET.fromstring(parts["<mm7-soap>"].get_payload(decode=True))
    texts = {el.tag.rsplit("}", 1)[-1]: el.text for el in envelope.iter()}
    assert texts["VASPID"] == "SP001"
    assert texts["Number"] == "+8613800138000"
    assert texts["DeliveryReport"] == "true"
    content = next(el for el in envelope.iter() if el.tag.endswith("Content"))
    assert content.get("href") == "cid:mm-content"
    assert parts["<mm-content>"].get_content_type() == "multipart/related"
    assert parts["<probe-text>"].get_content() == "您的彩信已恢复"
    assert parts["<probe-image>"].get_payload(decode=True).startswith(b"\x89PNG")
    assert 2_000 < len(body) < 20_000  # a few KB: cheap, but a real MM


def test_service_unavailable_is_retried_then_accepted(mmsc: tuple[str, Script]) -> None:
    url, script = mmsc
    script.answers = [
        (500, submit_rsp(4006, "Service unavailable", None)),
        (200, submit_rsp(3001, "Operation restricted", None)),
        (200, submit_rsp(1000)),
    ]
    with client(url) as c:
        result = c.submit(probe())
    assert result.outcome is SubmitOutcome.ACCEPTED
    assert result.attempts == 3
    assert len(script.received) == 3


def test_client_error_is_final_and_not_retried(mmsc: tuple[str, Script]) -> None:
    url, script = mmsc
    script.answers = [(200, submit_rsp(2002, "Address Error", None))]
    with client(url) as c:
        result = c.submit(probe())
    assert result.outcome is SubmitOutcome.REJECTED
    assert (result.status_code, result.attempts) == (2002, 1)
    assert len(script.received) == 1


def test_retries_stop_at_the_cap(mmsc: tuple[str, Script]) -> None:
    url, script = mmsc
    script.answers = [(503, b"<html>busy</html>")]
    with client(url, max_attempts=3) as c:
        result = c.submit(probe())
    assert result.outcome is SubmitOutcome.RETRY
    assert result.attempts == 3
    assert "HTTP 503" in result.status_text


def test_refused_connection_is_a_transient_failure() -> None:
    with client("http://127.0.0.1:9/mm7", max_attempts=2, connect_timeout_s=0.5) as c:
        result = c.submit(probe())
    assert result.outcome is SubmitOutcome.RETRY
    assert result.status_code is None
    assert result.status_text.startswith("transport")


def test_submit_rsp_with_external_entity_is_refused() -> None:
    evil = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'
    with pytest.raises(ValueError, match=r"not well-formed|Entit|DTD"):
        parse_submit_rsp(evil)


def test_soap_fault_with_status_code_is_read() -> None:
    fault = (
        b'<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"><env:Body>'
        b"<env:Fault><faultcode>env:Client</faultcode><faultstring>Client error</faultstring>"
        b"<detail><RSErrorRsp><MM7Version>6.8.0</MM7Version><Status><StatusCode>2007</StatusCode>"
        b"<StatusText>Message format corrupt</StatusText></Status></RSErrorRsp></detail>"
        b"</env:Fault></env:Body></env:Envelope>"
    )
    assert parse_submit_rsp(fault) == (2007, "Message format corrupt", None)


# -- against the MMSC simulator (its own MM7 codec, not the adapter's) -----------------------


def test_probe_accepted_by_the_mmsc_simulator_and_reported() -> None:
    from datetime import UTC, datetime

    from mmsq.adapters.mm7_soap import parse_delivery_report
    from mmsq.simulators.mmsc import MmscConfig, MmscFaults, MmscSimulator
    from mmsq.simulators.mmsc_http import MmscServer
    from mmsq.simulators.outcomes import FixedOutcomes, MmsOutcome

    reports: list[bytes] = []

    class Vasp(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            reports.append(body)
            report = parse_delivery_report(body, self.headers["Content-Type"])
            from mmsq.adapters.mm7_soap import build_delivery_report_rsp

            answer = build_delivery_report_rsp(report.transaction_id, report.namespace)
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    vasp = ThreadingHTTPServer(("127.0.0.1", 0), Vasp)
    vasp_thread = threading.Thread(target=vasp.serve_forever, args=(0.05,), daemon=True)
    vasp_thread.start()
    clock = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    outcomes = FixedOutcomes(default_mms=MmsOutcome(mm_status="Retrieved", delay_s=0.0))
    sim = MmscSimulator(
        outcomes,
        MmscConfig(
            vaspid="SP001",
            vasid="newspaper",
            vasp_url=f"http://127.0.0.1:{vasp.server_address[1]}/dr",
            faults=MmscFaults(unavailable_rate=0.5),
            seed=3,
        ),
        clock=lambda: clock,
    )
    try:
        with MmscServer(sim) as server, client(server.url, max_attempts=8) as c:
            results = [c.submit(probe(f"+86138000001{i:02d}")) for i in range(6)]
            assert {r.outcome for r in results} == {SubmitOutcome.ACCEPTED}
            assert any(r.attempts > 1 for r in results)  # some met 4006 and were retried
            assert [r.message_id for r in results] == [mm.message_id for mm in sim.accepted]
            sim.deliver_due(clock)
    finally:
        vasp.shutdown()
        vasp.server_close()
        vasp_thread.join()
    statuses = {
        parse_delivery_report(r).message_id: parse_delivery_report(r).mm_status for r in reports
    }
    assert statuses == {r.message_id: "Retrieved" for r in results}

"""The MMSC simulator as a VASP meets it: MM7 over real HTTP on 127.0.0.1, reports to a test VASP.

Request bodies are written out by hand here (not with any mmsq code), and answers are read with
plain defusedxml, so these tests pin the protocol rather than agree with either side's codec.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import defusedxml.ElementTree as SafeET
import pytest

from mmsq.simulators.mmsc import MmscConfig, MmscFaults, MmscSimulator
from mmsq.simulators.mmsc_http import MmscServer
from mmsq.simulators.outcomes import FixedOutcomes, MmsOutcome

REL6 = "http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/REL-6-MM7-1-4"
REL5 = "http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/REL-5-MM7-1-2"
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
T0 = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4 + b"\xff\xd9"


class SimClock:
    """Simulated time that moves only when the test says so."""

    def __init__(self, start: datetime = T0) -> None:
        self.t = start

    def now(self) -> datetime:
        return self.t

    def advance(self, seconds: float) -> datetime:
        self.t += timedelta(seconds=seconds)
        return self.t


# -- hand-written MM7 requests -------------------------------------------------------------


def submit_req(
    ns: str = REL6,
    tid: str = "tx-1",
    vaspid: str = "sp01",
    vasid: str = "news",
    service_code: str = "1001",
    recipients: str = "<To><Number>13800138000</Number></To>",
    report: bool = True,
    content: str = '<Content href="cid:mm-content"/>',
) -> str:
    tid_xml = (
        f'<mm7:TransactionID xmlns:mm7="{ns}" env:mustUnderstand="1">{tid}</mm7:TransactionID>'
        if tid
        else ""
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<env:Envelope xmlns:env="{SOAP}">
 <env:Header>{tid_xml}</env:Header>
 <env:Body>
  <SubmitReq xmlns="{ns}">
   <MM7Version>6.8.0</MM7Version>
   <SenderIdentification>
    <VASPID>{vaspid}</VASPID><VASID>{vasid}</VASID>
    <SenderAddress><ShortCode>10658000</ShortCode></SenderAddress>
   </SenderIdentification>
   <Recipients>{recipients}</Recipients>
   <ServiceCode>{service_code}</ServiceCode>
   <ExpiryDate>P2D</ExpiryDate>
   <DeliveryReport>{"true" if report else "false"}</DeliveryReport>
   <Subject>Morning edition</Subject>
   {content}
  </SubmitReq>
 </env:Body>
</env:Envelope>"""


def multipart(envelope: str, image: bytes = JPEG) -> tuple[str, bytes]:
    """multipart/related: the envelope as the root part, the MM (SMIL-less text + JPEG) next."""
    outer, inner = "MM7-outer-boundary", "MM-inner-boundary"
    b64 = base64.encodebytes(image).decode()
    body = (
        f"--{outer}\r\n"
        "Content-Type: text/xml; charset=utf-8\r\n"
        "Content-ID: <soap-start>\r\n\r\n"
        f"{envelope}\r\n"
        f"--{outer}\r\n"
        f'Content-Type: multipart/mixed; boundary="{inner}"\r\n'
        "Content-ID: <mm-content>\r\n\r\n"
        f"--{inner}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-ID: <text1>\r\n\r\n"
        "Good morning, here is today's paper.\r\n"
        f"--{inner}\r\n"
        "Content-Type: image/jpeg\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "Content-ID: <front-page>\r\n\r\n"
        f"{b64}\r\n"
        f"--{inner}--\r\n"
        f"--{outer}--\r\n"
    )
    ctype = f'multipart/related; boundary="{outer}"; type="text/xml"; start="<soap-start>"'
    return ctype, body.encode()


def post(
    url: str, body: bytes, content_type: str = "text/xml; charset=utf-8", auth: str | None = None
) -> tuple[int, bytes]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    headers = {"Content-Type": content_type, "SOAPAction": '""'}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    try:
        conn.request("POST", parts.path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def fields(xml: bytes) -> dict[str, str]:
    """Local element name -> text (first occurrence), plus the namespace of the body's child."""
    root = SafeET.fromstring(xml)
    out: dict[str, str] = {}
    for elem in root.iter():
        name = elem.tag.rsplit("}", 1)[-1]
        out.setdefault(name, (elem.text or "").strip())
    body = next(e for e in root if e.tag.endswith("}Body"))
    first = body[0].tag
    out["_op"] = first.rsplit("}", 1)[-1]
    out["_ns"] = first[1:].split("}")[0] if first.startswith("{") else ""
    return out


# -- a test VASP that receives DeliveryReportReq -------------------------------------------


@dataclass
class Vasp:
    """Receives DeliveryReportReq on 127.0.0.1 and answers DeliveryReportRsp (or 500 on demand)."""

    port: int = 0
    bodies: list[bytes] = field(default_factory=list)
    fail_next: int = 0
    received: threading.Event = field(default_factory=threading.Event)
    _httpd: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/dr"

    def start(self) -> Vasp:
        vasp = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if vasp.fail_next > 0:
                    vasp.fail_next -= 1
                    self._answer(500, b"<oops/>")
                    return
                vasp.bodies.append(body)
                vasp.received.set()
                try:
                    tid = fields(body).get("TransactionID", "")
                except Exception:
                    self._answer(400, b"bad report")
                    return
                rsp = (
                    f'<env:Envelope xmlns:env="{SOAP}"><env:Header>'
                    f'<mm7:TransactionID xmlns:mm7="{REL6}">{tid}</mm7:TransactionID></env:Header>'
                    f'<env:Body><DeliveryReportRsp xmlns="{REL6}"><MM7Version>6.8.0</MM7Version>'
                    "<Status><StatusCode>1000</StatusCode><StatusText>Success</StatusText>"
                    "</Status></DeliveryReportRsp></env:Body></env:Envelope>"
                )
                self._answer(200, rsp.encode())

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,))
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def vasp() -> Iterator[Vasp]:
    v = Vasp().start()
    yield v
    v.stop()


@pytest.fixture
def clock() -> SimClock:
    return SimClock()


def make_mmsc(
    clock: SimClock,
    vasp_url: str | None = None,
    outcomes: FixedOutcomes | None = None,
    **config: object,
) -> MmscSimulator:
    cfg = MmscConfig(vaspid="sp01", vasid="news", vasp_url=vasp_url, **config)  # type: ignore[arg-type]
    return MmscSimulator(outcomes or FixedOutcomes(), cfg, clock)


@pytest.fixture
def served(clock: SimClock, vasp: Vasp) -> Iterator[tuple[MmscSimulator, MmscServer]]:
    outcomes = FixedOutcomes(
        mms={"13900139000": MmsOutcome("Expired", "mm7", "Expired", "DELIVRD", 172_800.0)}
    )
    sim = make_mmsc(clock, vasp.url, outcomes)
    with MmscServer(sim) as server:
        yield sim, server


# -- SubmitReq -----------------------------------------------------------------------------


def test_rel6_multipart_submit_with_an_image_is_accepted(
    served: tuple[MmscSimulator, MmscServer],
) -> None:
    sim, server = served
    ctype, body = multipart(submit_req(tid="tx-42"))
    status, answer = post(server.url, body, ctype)
    assert status == 200
    rsp = fields(answer)
    assert (rsp["_op"], rsp["_ns"]) == ("SubmitRsp", REL6)
    assert (rsp["StatusCode"], rsp["StatusText"]) == ("1000", "Success")
    assert rsp["TransactionID"] == "tx-42"
    assert rsp["MessageID"] == sim.accepted[0].message_id
    parts = {p.content_type: p.size for p in sim.accepted[0].request.parts}
    assert parts == {
        "text/plain": len("Good morning, here is today's paper."),
        "image/jpeg": len(JPEG),
    }
    assert sim.stats().recipients_accepted == 1


def test_rel5_plain_xml_without_attachment_and_prefixed_elements_is_accepted(
    served: tuple[MmscSimulator, MmscServer],
) -> None:
    sim, server = served
    envelope = f"""<soap:Envelope xmlns:soap="{SOAP}" xmlns:m="{REL5}">
<soap:Header><m:TransactionID soap:mustUnderstand="1">T-5</m:TransactionID></soap:Header>
<soap:Body><m:SubmitReq><m:MM7Version>5.6.0</m:MM7Version>
<m:SenderIdentification><m:VASPID>sp01</m:VASPID><m:VASID>news</m:VASID></m:SenderIdentification>
<m:Recipients><m:To><m:Number>+8613800138000/TYPE=PLMN</m:Number></m:To>
<m:Cc><m:Number>13900139000</m:Number></m:Cc><m:Bcc><m:Number>13700137000</m:Number></m:Bcc>
</m:Recipients><m:ServiceCode>1001</m:ServiceCode></m:SubmitReq></soap:Body></soap:Envelope>"""
    status, answer = post(server.url, envelope.encode())
    rsp = fields(answer)
    assert (status, rsp["StatusCode"], rsp["_ns"], rsp["MM7Version"]) == (
        200,
        "1000",
        REL5,
        "5.6.0",
    )
    assert sim.accepted[0].request.numbers == ("+8613800138000", "13900139000", "13700137000")
    assert sim.accepted[0].request.parts == ()


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"<env:Envelope xmlns:env='" + SOAP.encode() + b"'><env:Body><SubmitReq>", "truncated"),
        (b"this is not XML at all", "garbage"),
        (b"<Envelope><Body/></Envelope>", "not SOAP"),
    ],
)
def test_malformed_requests_get_a_2007_client_fault(
    served: tuple[MmscSimulator, MmscServer], body: bytes, why: str
) -> None:
    sim, server = served
    status, answer = post(server.url, body)
    rsp = fields(answer)
    assert status == 500, why
    assert (rsp["_op"], rsp["faultcode"], rsp["StatusCode"]) == ("Fault", "env:Client", "2007")
    assert sim.accepted == []


def test_xml_with_a_dtd_and_external_entity_is_refused_not_expanded(
    served: tuple[MmscSimulator, MmscServer],
) -> None:
    sim, server = served
    evil = submit_req(recipients="<To><Number>&x;</Number></To>").replace(
        "<env:Envelope", '<!DOCTYPE env [<!ENTITY x SYSTEM "file:///etc/hostname">]>\n<env:Envelope'
    )
    status, answer = post(server.url, evil.encode())
    rsp = fields(answer)
    assert (status, rsp["StatusCode"]) == (500, "2007")
    assert "DTD" in rsp["Details"]
    assert sim.accepted == []


def test_multipart_whose_start_names_no_part_is_format_corrupt(
    served: tuple[MmscSimulator, MmscServer],
) -> None:
    _sim, server = served
    ctype, body = multipart(submit_req())
    status, answer = post(server.url, body, ctype.replace("<soap-start>", "<elsewhere>"))
    assert (status, fields(answer)["StatusCode"]) == (500, "2007")


@pytest.mark.parametrize(
    ("kwargs", "http_status", "code"),
    [
        ({"vaspid": "intruder"}, 200, "4001"),
        ({"vasid": "other"}, 200, "4001"),
        ({"recipients": ""}, 200, "2002"),
        ({"recipients": "<To><Number>call-me</Number></To>"}, 200, "2002"),
        ({"tid": ""}, 500, "4004"),
        ({"ns": "urn:example:not-mm7"}, 500, "4002"),
    ],
)
def test_bad_submissions_are_refused_with_the_spec_status(
    served: tuple[MmscSimulator, MmscServer],
    kwargs: dict[str, str],
    http_status: int,
    code: str,
) -> None:
    sim, server = served
    status, answer = post(server.url, submit_req(**kwargs).encode())  # type: ignore[arg-type]
    assert (status, fields(answer)["StatusCode"]) == (http_status, code)
    assert "MessageID" not in fields(answer)
    assert sim.stats().refused_by_code == {int(code): 1}


def test_other_operations_are_unsupported(served: tuple[MmscSimulator, MmscServer]) -> None:
    _sim, server = served
    cancel = submit_req().replace("SubmitReq", "CancelReq")
    status, answer = post(server.url, cancel.encode())
    assert (status, fields(answer)["StatusCode"], fields(answer)["faultcode"]) == (
        500,
        "4003",
        "env:Server",
    )


def test_service_code_and_basic_auth_are_checked_when_configured(clock: SimClock) -> None:
    sim = make_mmsc(clock, service_codes=frozenset({"1001"}), basic_auth=("sp01", "s3cret"))
    with MmscServer(sim) as server:
        no_auth, _ = post(server.url, submit_req().encode())
        wrong_auth, _ = post(server.url, submit_req().encode(), auth="sp01:guess")
        _, wrong_code = post(server.url, submit_req(service_code="9").encode(), auth="sp01:s3cret")
        ok, good = post(server.url, submit_req().encode(), auth="sp01:s3cret")
    assert (no_auth, wrong_auth) == (401, 401)
    assert fields(wrong_code)["StatusCode"] == "2001"
    assert (ok, fields(good)["StatusCode"]) == (200, "1000")


# -- faults --------------------------------------------------------------------------------


def test_4006_fault_by_rate_by_window_and_as_submit_rsp(clock: SimClock) -> None:
    sim = make_mmsc(clock, faults=MmscFaults(unavailable_rate=1.0))
    with MmscServer(sim) as server:
        status, answer = post(server.url, submit_req(tid="t-9").encode())
        rsp = fields(answer)
        assert (status, rsp["faultcode"], rsp["StatusCode"]) == (500, "env:Server", "4006")
        assert rsp["TransactionID"] == "t-9"

        sim.faults = MmscFaults(
            unavailable_windows=((T0 + timedelta(minutes=5), T0 + timedelta(minutes=10)),),
            unavailable_as_fault=False,
        )
        before, _ = post(server.url, submit_req().encode())
        clock.advance(6 * 60)
        during, during_body = post(server.url, submit_req().encode())
        clock.advance(5 * 60)
        _after, after_body = post(server.url, submit_req().encode())
    assert before == 200
    assert (during, fields(during_body)["_op"], fields(during_body)["StatusCode"]) == (
        200,
        "SubmitRsp",
        "4006",
    )
    assert fields(after_body)["StatusCode"] == "1000"
    assert sim.stats().unavailable_answers == 2


def test_slow_answers_still_arrive(clock: SimClock) -> None:
    sim = make_mmsc(clock, faults=MmscFaults(response_delay_s=0.05))
    with MmscServer(sim) as server:
        status, answer = post(server.url, submit_req().encode())
    assert (status, fields(answer)["StatusCode"]) == (200, "1000")


def test_paused_mmsc_refuses_connections_and_resumes_on_the_same_port(clock: SimClock) -> None:
    sim = make_mmsc(clock)
    with MmscServer(sim) as server:
        url = server.url
        server.pause()
        with pytest.raises(ConnectionRefusedError):
            post(url, submit_req().encode())
        server.resume()
        assert server.url == url
        status, _ = post(url, submit_req().encode())
    assert status == 200


# -- delivery reports ----------------------------------------------------------------------


def test_delivery_report_reaches_the_vasp_when_due(
    served: tuple[MmscSimulator, MmscServer], clock: SimClock, vasp: Vasp
) -> None:
    sim, server = served
    recipients = "<To><Number>13800138000</Number></To><To><Number>13900139000</Number></To>"
    _, answer = post(server.url, submit_req(recipients=recipients).encode())
    message_id = fields(answer)["MessageID"]
    assert sim.deliver_due() == 0  # nothing is due at submit time
    assert sim.deliver_due(clock.advance(1)) == 1  # the default outcome: Retrieved after 0.05 s
    assert sim.deliver_due(clock.advance(172_800)) == 1  # the other one expires after two days
    first, second = (fields(b) for b in vasp.bodies)
    assert (first["_op"], first["_ns"]) == ("DeliveryReportReq", REL6)
    assert (first["MessageID"], second["MessageID"]) == (message_id, message_id)
    assert (first["Recipient"], first["Number"], first["MMStatus"]) == (
        "",
        "13800138000",
        "Retrieved",
    )
    assert first["ShortCode"] == "10658000"  # the Sender
    assert first["Date"] == "2026-11-22T15:00:00+08:00"
    assert first["StatusText"] == "Message retrieved"
    assert (second["Number"], second["MMStatus"]) == ("13900139000", "Expired")
    assert second["Date"] == "2026-11-24T15:00:00+08:00"
    assert sim.stats().reports_delivered == 2


def test_no_report_unless_the_submit_asked_for_one(
    served: tuple[MmscSimulator, MmscServer], clock: SimClock, vasp: Vasp
) -> None:
    sim, server = served
    post(server.url, submit_req(report=False).encode())
    assert sim.deliver_due(clock.advance(3600)) == 0
    assert vasp.bodies == []


def test_simulator_reports_are_readable_by_the_mm7_adapter(
    served: tuple[MmscSimulator, MmscServer], clock: SimClock, vasp: Vasp
) -> None:
    from mmsq.adapters.mm7_soap import parse_delivery_report

    sim, server = served
    _, answer = post(server.url, submit_req(ns=REL5).encode())
    sim.deliver_due(clock.advance(1))
    report = parse_delivery_report(vasp.bodies[0], 'text/xml; charset="utf-8"')
    assert (report.message_id, report.recipient, report.mm_status) == (
        fields(answer)["MessageID"],
        "13800138000",
        "Retrieved",
    )
    assert (report.namespace, report.sender) == (REL5, "10658000")


def test_reports_are_retried_with_backoff_while_the_vasp_is_down(clock: SimClock) -> None:
    port = free_port()
    sim = make_mmsc(clock, f"http://127.0.0.1:{port}/dr", report_backoff_s=60.0)
    with MmscServer(sim) as server:
        post(server.url, submit_req().encode())
    assert sim.deliver_due(clock.advance(1)) == 0  # refused: retry in 60 s
    assert sim.deliver_due(clock.advance(30)) == 0  # not yet due again
    assert sim.deliver_due(clock.advance(30)) == 0  # second failure: retry in 120 s
    vasp = Vasp(port=port).start()
    try:
        vasp.fail_next = 1
        assert sim.deliver_due(clock.advance(120)) == 0  # an HTTP 500 is retried too
        assert sim.deliver_due(clock.advance(240)) == 1
    finally:
        vasp.stop()
    stats = sim.stats()
    assert (stats.report_attempts_failed, stats.reports_delivered, stats.reports_abandoned) == (
        3,
        1,
        0,
    )
    assert len(vasp.bodies) == 1


def test_reports_are_abandoned_after_the_last_attempt(clock: SimClock) -> None:
    sim = make_mmsc(
        clock, f"http://127.0.0.1:{free_port()}/dr", report_attempts=2, report_backoff_s=1.0
    )
    with MmscServer(sim) as server:
        post(server.url, submit_req().encode())
    for _ in range(5):
        sim.deliver_due(clock.advance(10))
    stats = sim.stats()
    assert (stats.report_attempts_failed, stats.reports_abandoned, sim.pending_reports) == (2, 1, 0)


def test_malformed_reports_are_sent_on_demand(clock: SimClock, vasp: Vasp) -> None:
    sim = make_mmsc(clock, vasp.url, faults=MmscFaults(malformed_report_rate=1.0))
    with MmscServer(sim) as server:
        for i in range(6):
            post(server.url, submit_req(tid=f"t{i}").encode())
    sim.deliver_due(clock.advance(1))
    assert sim.stats().reports_malformed == 6
    assert sim.stats().reports_delivered == 0
    readable = 0
    for body in vasp.bodies:
        try:
            readable += "MMStatus" in fields(body)
        except Exception:  # truncated or with a DTD: what the fault is for
            continue
    assert readable == 0


def test_the_background_loop_sends_reports_on_a_running_clock(vasp: Vasp) -> None:
    sim = MmscSimulator(FixedOutcomes(), MmscConfig(vasp_url=vasp.url))
    with MmscServer(sim) as server:
        server.start_report_loop(interval_s=0.02)
        post(server.url, submit_req().encode())
        assert vasp.received.wait(10)
    assert fields(vasp.bodies[0])["MMStatus"] == "Retrieved"


# -- bulk editions, CDR, reproducibility ---------------------------------------------------


def test_bulk_edition_records_like_http_and_spreads_over_midnight(tmp_path: Path) -> None:
    clock = SimClock(datetime(2026, 11, 23, 12, 0, tzinfo=UTC))
    outcomes = FixedOutcomes(
        mms={"13800000001": MmsOutcome("Expired", "mm7", "Expired", "DELIVRD", 86_400.0)},
        imeis={"13800000000": "353325101234560"},
        regions={"13800000000": "Hefei"},
    )
    sim = MmscSimulator(outcomes, MmscConfig(bulk_rate_per_s=1.0), clock)
    morning = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai
    late = datetime(2026, 11, 22, 15, 59, 58, tzinfo=UTC)  # 23:59:58 in Shanghai
    assert sim.run_bulk_edition("pm", [f"1380000000{i}" for i in range(4)], late) == 4
    assert (sim.records_on(date(2026, 11, 22)), sim.records_on(date(2026, 11, 23))) == (2, 2)
    assert sim.run_bulk_edition("am", ["13800000009"], morning) == 1
    assert sim.records_on(date(2026, 11, 23)) == 3
    export = sim.export_cdr(date(2026, 11, 22), tmp_path / "d.csv")
    lines = (tmp_path / "d.csv").read_text().splitlines()
    assert lines[0] == (
        "msisdn,message_id,edition,submitted_at,done_at,status_source,status_code,"
        "notify_status,imei,region"
    )
    assert lines[1] == (
        "13800000000,MMSC0000000001,pm,2026-11-22T23:59:58+08:00,2026-11-22T23:59:58+08:00,"
        "mm7,Retrieved,DELIVRD,353325101234560,Hefei"
    )
    # done a day later, after the clock: still pending in this export
    assert lines[2] == "13800000001,MMSC0000000002,pm,2026-11-22T23:59:59+08:00,,mm7,1000,,,"
    assert (export.rows, export.pending, export.malformed) == (2, 1, 0)


def _scripted_run(seed: int, tmp: Path) -> tuple[list[str], bytes]:
    clock = SimClock()
    outcomes = FixedOutcomes(
        mms={"13800138001": MmsOutcome("Expired", "cmpp", "MK:0024", "MK:0024", 3600.0)}
    )
    sim = MmscSimulator(
        outcomes,
        MmscConfig(
            seed=seed,
            faults=MmscFaults(unavailable_rate=0.5, malformed_cdr_share=0.2),
        ),
        clock,
    )
    codes = []
    for i in range(30):
        recipients = f"<To><Number>1380013800{i % 3}</Number></To>"
        _, answer = sim.handle_submit(submit_req(recipients=recipients).encode(), "text/xml")
        codes.append(fields(answer)["StatusCode"])
        clock.advance(60)
    sim.run_bulk_edition("am", [f"139{i:08d}" for i in range(50)], T0)
    sim.export_cdr(date(2026, 11, 22), tmp / f"cdr-{seed}.csv.gz", gzip=True)
    return codes, gzip.decompress((tmp / f"cdr-{seed}.csv.gz").read_bytes())


def test_the_same_seed_gives_the_same_run(tmp_path: Path) -> None:
    a = _scripted_run(11, tmp_path / "a")
    b = _scripted_run(11, tmp_path / "b")
    c = _scripted_run(12, tmp_path / "c")
    assert a == b
    assert {"1000", "4006"} <= set(a[0])
    assert a[0] != c[0]


class BrokenOutcomes(FixedOutcomes):
    def mms_outcome(self, msisdn: str) -> MmsOutcome:
        if msisdn == "13900139000":
            raise RuntimeError("population lookup failed")
        return super().mms_outcome(msisdn)


def test_a_failing_outcome_source_is_a_3000_fault_and_the_server_goes_on(clock: SimClock) -> None:
    sim = MmscSimulator(BrokenOutcomes(), MmscConfig(), clock)
    with MmscServer(sim) as server:
        bad = submit_req(recipients="<To><Number>13900139000</Number></To>")
        status, answer = post(server.url, bad.encode())
        assert (status, fields(answer)["StatusCode"]) == (500, "3000")
        status, answer = post(server.url, submit_req().encode())
    assert (status, fields(answer)["StatusCode"]) == (200, "1000")


def test_reports_go_out_over_several_connections_at_once(clock: SimClock, vasp: Vasp) -> None:
    sim = make_mmsc(clock, vasp.url, report_connections=4)
    recipients = "".join(f"<To><Number>1380013{i:04d}</Number></To>" for i in range(12))
    with MmscServer(sim) as server:
        post(server.url, submit_req(recipients=recipients).encode())
        assert sim.deliver_due(clock.advance(1)) == 12
    numbers = sorted(fields(b)["Number"] for b in vasp.bodies)
    assert numbers == [f"1380013{i:04d}" for i in range(12)]
    assert len({fields(b)["TransactionID"] for b in vasp.bodies}) == 12
    assert sim.stats().reports_delivered == 12

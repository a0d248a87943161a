"""MM7 DeliveryReportReq parsing and DeliveryReportRsp generation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import defusedxml.ElementTree as SafeET
import pytest

from mmsq.adapters.mm7_soap import (
    SOAP_ENV,
    Mm7ParseError,
    build_delivery_report_rsp,
    parse_delivery_report,
)

REL5 = "http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/REL-5-MM7-1-0"
REL6 = "http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/REL-6-MM7-1-4"

# As Mbuni sends it: default namespace, REL-5-MM7-1-0, /TYPE=PLMN addresses.
MBUNI_REL5 = f"""<?xml version="1.0" encoding="UTF-8"?>
<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/">
 <env:Header>
  <mm7:TransactionID xmlns:mm7="{REL5}" env:mustUnderstand="1">tx-0001</mm7:TransactionID>
 </env:Header>
 <env:Body>
  <DeliveryReportReq xmlns="{REL5}">
   <MM7Version>5.3.0</MM7Version>
   <MMSRelayServerID>mmsc.example.net</MMSRelayServerID>
   <MessageID>0000mbuni-1a2b</MessageID>
   <Recipient><Number>+8613800138000/TYPE=PLMN</Number></Recipient>
   <Sender><ShortCode>10658000</ShortCode></Sender>
   <Date>2026-11-22T07:05:13+08:00</Date>
   <MMStatus>Retrieved</MMStatus>
   <StatusText>Message retrieved</StatusText>
  </DeliveryReportReq>
 </env:Body>
</env:Envelope>""".encode()

PREFIXED_REL6 = f"""<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:mm7="{REL6}">
<soap:Header><mm7:TransactionID soap:mustUnderstand="1">T-77</mm7:TransactionID></soap:Header>
<soap:Body><mm7:DeliveryReportReq>
  <mm7:MM7Version>6.8.0</mm7:MM7Version>
  <mm7:MessageID>  4F2A9 </mm7:MessageID>
  <mm7:Recipient><mm7:Number>13800138000</mm7:Number></mm7:Recipient>
  <mm7:MMStatus>unrecognized</mm7:MMStatus>
</mm7:DeliveryReportReq></soap:Body></soap:Envelope>""".encode()


def test_mbuni_rel5_report_is_read_with_all_fields() -> None:
    r = parse_delivery_report(MBUNI_REL5, "text/xml; charset=utf-8")
    assert r.transaction_id == "tx-0001"
    assert r.namespace == REL5
    assert r.message_id == "0000mbuni-1a2b"
    assert r.recipient == "+8613800138000"
    assert r.sender == "10658000"
    assert r.date == datetime(2026, 11, 22, 7, 5, 13, tzinfo=timezone(timedelta(hours=8)))
    assert r.mm_status == "Retrieved"
    assert r.status_text == "Message retrieved"
    report = r.to_report(edition="ah-20261122-am")
    assert (report.status_source, report.status_code, report.msisdn) == (
        "mm7",
        "Retrieved",
        "+8613800138000",
    )


def test_prefixed_rel6_report_without_optional_elements_is_accepted() -> None:
    r = parse_delivery_report(PREFIXED_REL6)
    assert r.namespace == REL6
    assert r.message_id == "4F2A9"
    assert r.mm_status == "unrecognized"  # kept as sent; the rules fold case and spelling
    assert r.sender is None
    assert r.date is None
    assert r.status_text is None


def test_report_inside_multipart_related_is_found() -> None:
    boundary = "MIME_boundary_42"
    body = (
        (
            f"--{boundary}\r\nContent-Type: text/xml; charset=UTF-8\r\nContent-ID: <soap-start>\r\n\r\n"
        ).encode()
        + MBUNI_REL5
        + f"\r\n--{boundary}--\r\n".encode()
    )
    ctype = f'multipart/related; boundary="{boundary}"; type="text/xml"; start="<soap-start>"'
    assert parse_delivery_report(body, ctype).message_id == "0000mbuni-1a2b"


def test_date_without_offset_is_read_as_utc() -> None:
    body = MBUNI_REL5.replace(b"2026-11-22T07:05:13+08:00", b"2026-11-22T07:05:13")
    assert parse_delivery_report(body).date == datetime(2026, 11, 22, 7, 5, 13, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
            b"<lolz>&lol2;</lolz>",
            "refused XML",
        ),
        (
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><x>&xxe;</x>',
            "refused XML",
        ),
        (b"\x00\xff garbage", "not well-formed"),
        (b"<html><body>502 Bad Gateway</body></html>", "not a SOAP envelope"),
        (
            MBUNI_REL5.replace(b"DeliveryReportReq", b"SubmitReq"),
            "expected DeliveryReportReq, got SubmitReq",
        ),
        (MBUNI_REL5.replace(b"<MessageID>0000mbuni-1a2b</MessageID>", b""), "without MessageID"),
        (MBUNI_REL5.replace(b"<MMStatus>Retrieved</MMStatus>", b""), "without MMStatus"),
        (
            MBUNI_REL5.replace(
                b"<Recipient><Number>+8613800138000/TYPE=PLMN</Number></Recipient>", b""
            ),
            "without Recipient",
        ),
    ],
)
def test_bad_bodies_are_refused_with_a_reason(body: bytes, reason: str) -> None:
    with pytest.raises(Mm7ParseError, match=reason):
        parse_delivery_report(body)


def test_response_is_strict_soap_in_the_peers_namespace() -> None:
    xml = build_delivery_report_rsp("tx-0001", REL5)
    root = SafeET.fromstring(xml)
    assert root.tag == f"{{{SOAP_ENV}}}Envelope"
    tid = root.find(f"{{{SOAP_ENV}}}Header/{{{REL5}}}TransactionID")
    assert tid is not None
    assert tid.text == "tx-0001"
    assert tid.get(f"{{{SOAP_ENV}}}mustUnderstand") == "1"
    code = root.find(
        f"{{{SOAP_ENV}}}Body/{{{REL5}}}DeliveryReportRsp/{{{REL5}}}Status/{{{REL5}}}StatusCode"
    )
    assert code is not None
    assert code.text == "1000"
    assert xml.startswith(b"<?xml")

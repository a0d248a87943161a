"""MM7 DeliveryReportReq as real MMSCs send it, and the DeliveryReportRsp we answer with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import defusedxml.ElementTree as SafeET
import pytest

from mmsq.adapters.mm7_soap import (
    DEFAULT_NS,
    SOAP_ENV,
    Mm7ParseError,
    build_delivery_report_rsp,
    parse_delivery_report,
)

NS_BASE = "http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/"
REL5_10 = NS_BASE + "REL-5-MM7-1-0"
REL5_13 = NS_BASE + "REL-5-MM7-1-3"
REL6_14 = NS_BASE + "REL-6-MM7-1-4"


def _mbuni_style(
    *,
    ns: str = REL5_10,
    status: str = "Retrieved",
    recipient: str = "<Number>+8613800138000/TYPE=PLMN</Number>",
    extra: str = "",
) -> bytes:
    """Default-namespace body and env:/mm7: header, as Mbuni's mmsbox generates it."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/">
 <env:Header>
  <mm7:TransactionID xmlns:mm7="{ns}" env:mustUnderstand="1">mbuni-dr-000042</mm7:TransactionID>
 </env:Header>
 <env:Body>
  <DeliveryReportReq xmlns="{ns}">
   <MM7Version>5.3.0</MM7Version>
   <MMSRelayServerID>mmsc01.operator.example</MMSRelayServerID>
   <MessageID>20261122070513-mmsc01-7f3a</MessageID>
   <Recipient>{recipient}</Recipient>
   <Sender><ShortCode>10658000</ShortCode></Sender>
   <Date>2026-11-22T07:05:13Z</Date>
   <MMStatus>{status}</MMStatus>
   <StatusText>Message retrieved by recipient</StatusText>{extra}
  </DeliveryReportReq>
 </env:Body>
</env:Envelope>
""".encode()


# REL-6 with every element prefixed, values padded the way some MMSC templates pad them.
REL6_PREFIXED = f"""<?xml version="1.0" encoding="utf-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:mm7="{REL6_14}">
  <soapenv:Header>
    <mm7:TransactionID soapenv:mustUnderstand="1">
      DR-6-0000913
    </mm7:TransactionID>
  </soapenv:Header>
  <soapenv:Body>
    <mm7:DeliveryReportReq>
      <mm7:MM7Version>6.8.0</mm7:MM7Version>
      <mm7:MessageID> 0a1b2c3d4e5f </mm7:MessageID>
      <mm7:Recipient>
        <mm7:Number>13800138000</mm7:Number>
      </mm7:Recipient>
      <mm7:Sender><mm7:RFC2822Address>mms@vasp.example</mm7:RFC2822Address></mm7:Sender>
      <mm7:Date>2026-11-22T15:05:13+08:00</mm7:Date>
      <mm7:MMStatus>Expired</mm7:MMStatus>
      <mm7:StatusText>Message expired</mm7:StatusText>
    </mm7:DeliveryReportReq>
  </soapenv:Body>
</soapenv:Envelope>
""".encode()


def test_mbuni_rel5_report_is_read_with_every_field() -> None:
    r = parse_delivery_report(_mbuni_style(), "text/xml; charset=utf-8")
    assert r.transaction_id == "mbuni-dr-000042"
    assert r.namespace == REL5_10
    assert r.mm7_version == "5.3.0"
    assert r.message_id == "20261122070513-mmsc01-7f3a"
    assert r.recipient == "+8613800138000"
    assert r.sender == "10658000"
    assert r.date == datetime(2026, 11, 22, 7, 5, 13, tzinfo=UTC)
    assert r.mm_status == "Retrieved"
    assert r.status_text == "Message retrieved by recipient"


def test_report_converts_to_a_domain_delivery_report() -> None:
    report = parse_delivery_report(_mbuni_style()).to_report(edition="ah-20261122-am")
    assert report.status_source == "mm7"
    assert report.status_code == "Retrieved"
    assert report.message_id == "20261122070513-mmsc01-7f3a"
    assert report.msisdn == "+8613800138000"
    assert report.done_at == datetime(2026, 11, 22, 7, 5, 13, tzinfo=UTC)
    assert report.edition == "ah-20261122-am"
    assert report.error_code is None


def test_rel6_report_with_mm7_prefixes_and_padding_is_read() -> None:
    r = parse_delivery_report(REL6_PREFIXED)
    assert r.namespace == REL6_14
    assert r.transaction_id == "DR-6-0000913"
    assert r.mm7_version == "6.8.0"
    assert r.message_id == "0a1b2c3d4e5f"
    assert r.recipient == "13800138000"
    assert r.sender == "mms@vasp.example"
    assert r.date == datetime(2026, 11, 22, 15, 5, 13, tzinfo=timezone(timedelta(hours=8)))
    assert r.mm_status == "Expired"


@pytest.mark.parametrize(
    "ns",
    [NS_BASE + f"REL-5-MM7-1-{i}" for i in range(6)]
    + [NS_BASE + f"REL-6-MM7-1-{i}" for i in range(5)],
)
def test_every_rel5_and_rel6_namespace_is_accepted_and_reported(ns: str) -> None:
    assert parse_delivery_report(_mbuni_style(ns=ns)).namespace == ns


def test_report_without_any_namespace_is_accepted() -> None:
    body = (
        b"<Envelope><Header><TransactionID>t1</TransactionID></Header><Body>"
        b"<DeliveryReportReq><MessageID>m1</MessageID><Recipient><Number>123</Number></Recipient>"
        b"<MMStatus>Retrieved</MMStatus></DeliveryReportReq></Body></Envelope>"
    )
    r = parse_delivery_report(body)
    assert (r.transaction_id, r.message_id, r.recipient, r.mm_status) == (
        "t1",
        "m1",
        "123",
        "Retrieved",
    )
    assert r.namespace == DEFAULT_NS  # nothing to echo: we answer in the default namespace


def test_multipart_related_body_finds_the_soap_root_part_named_by_start() -> None:
    boundary = "----=_Part_7_1482915.1763795113"
    body = (
        (
            f"--{boundary}\r\n"
            "Content-Type: text/plain; charset=us-ascii\r\n"
            "Content-ID: <note>\r\n\r\n"
            "not the envelope\r\n"
            f"--{boundary}\r\n"
            "Content-Type: text/xml; charset=UTF-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n"
            "Content-ID: <mm7-soap-root@mmsc01>\r\n\r\n"
        ).encode()
        + _mbuni_style()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    ctype = (
        f'multipart/related; type="text/xml"; boundary="{boundary}"; start="<mm7-soap-root@mmsc01>"'
    )
    r = parse_delivery_report(body, ctype)
    assert r.message_id == "20261122070513-mmsc01-7f3a"


def test_multipart_related_without_start_uses_the_first_xml_part() -> None:
    boundary = "mm7boundary"
    body = (
        (
            f"--{boundary}\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
            f"--{boundary}\r\nContent-Type: text/xml\r\n\r\n"
        ).encode()
        + REL6_PREFIXED
        + f"\r\n--{boundary}--\r\n".encode()
    )
    r = parse_delivery_report(body, f"Multipart/Related; boundary={boundary}")
    assert r.transaction_id == "DR-6-0000913"


def test_multipart_body_with_a_wrong_boundary_is_refused() -> None:
    body = b"--other\r\nContent-Type: text/xml\r\n\r\n<x/>\r\n--other--\r\n"
    with pytest.raises(Mm7ParseError):
        parse_delivery_report(body, 'multipart/related; boundary="expected"')


@pytest.mark.parametrize(
    "status",
    [
        "retrieved",
        "RETRIEVED",
        "Unrecognized",
        "Unrecognised",
        "DeliveryConditionNotMet",
        "Indeterminate",
    ],
)
def test_mmstatus_is_kept_exactly_as_sent(status: str) -> None:
    assert parse_delivery_report(_mbuni_style(status=status)).mm_status == status


def test_mmstatus_surrounding_whitespace_is_trimmed() -> None:
    assert parse_delivery_report(_mbuni_style(status="\n   Deferred  \n")).mm_status == "Deferred"


def test_missing_optional_elements_give_none() -> None:
    body = f"""<env:Envelope xmlns:env="{SOAP_ENV}"><env:Body>
      <DeliveryReportReq xmlns="{REL5_13}">
        <MessageID>M-1</MessageID>
        <Recipient><Number>0712345678</Number></Recipient>
        <MMStatus>Rejected</MMStatus>
      </DeliveryReportReq></env:Body></env:Envelope>""".encode()
    r = parse_delivery_report(body)
    assert r.sender is None
    assert r.date is None
    assert r.status_text is None
    assert r.mm7_version == ""
    assert r.transaction_id == ""  # no Header at all
    assert r.namespace == REL5_13


def test_date_without_offset_is_taken_as_utc() -> None:
    body = _mbuni_style().replace(b"2026-11-22T07:05:13Z", b"2026-11-22T07:05:13")
    assert parse_delivery_report(body).date == datetime(2026, 11, 22, 7, 5, 13, tzinfo=UTC)


def test_unreadable_date_is_dropped_not_fatal() -> None:
    body = _mbuni_style().replace(b"2026-11-22T07:05:13Z", b"yesterday")
    assert parse_delivery_report(body).date is None


@pytest.mark.parametrize(
    ("recipient", "expected"),
    [
        ("<Number>+8613800138000/TYPE=PLMN</Number>", "+8613800138000"),
        ("<Number>8613800138000/type=plmn</Number>", "8613800138000"),
        ("<Number> 0712345678 /TYPE=PLMN </Number>", "0712345678"),
        ("<ShortCode>10658000</ShortCode>", "10658000"),
        ("<RFC2822Address>alice@example.net</RFC2822Address>", "alice@example.net"),
        ("+254712345678/TYPE=PLMN", "+254712345678"),  # no address element, bare text
    ],
)
def test_recipient_address_forms_are_read_and_type_suffix_stripped(
    recipient: str, expected: str
) -> None:
    assert parse_delivery_report(_mbuni_style(recipient=recipient)).recipient == expected


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE env:Envelope [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"><env:Body>
<DeliveryReportReq><MessageID>&lol4;</MessageID></DeliveryReportReq></env:Body></env:Envelope>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"><env:Body>
<DeliveryReportReq><MessageID>&xxe;</MessageID></DeliveryReportReq></env:Body></env:Envelope>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE env:Envelope SYSTEM "http://attacker.example/mm7.dtd">
<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"><env:Body/></env:Envelope>"""


@pytest.mark.parametrize(
    "body", [BILLION_LAUGHS, XXE, EXTERNAL_DTD], ids=["billion-laughs", "xxe", "external-dtd"]
)
def test_dtds_and_entities_are_refused_not_expanded(body: bytes) -> None:
    with pytest.raises(Mm7ParseError, match="refused XML"):
        parse_delivery_report(body)


def test_submit_req_instead_of_a_report_names_the_element() -> None:
    body = f"""<env:Envelope xmlns:env="{SOAP_ENV}">
 <env:Header><mm7:TransactionID xmlns:mm7="{REL6_14}" env:mustUnderstand="1">s1</mm7:TransactionID></env:Header>
 <env:Body><SubmitReq xmlns="{REL6_14}"><MM7Version>6.8.0</MM7Version>
  <Recipients><To><Number>8613800000000</Number></To></Recipients><Content href="cid:mms-content"/>
 </SubmitReq></env:Body></env:Envelope>""".encode()
    with pytest.raises(Mm7ParseError, match="expected DeliveryReportReq, got SubmitReq"):
        parse_delivery_report(body)


def test_soap_fault_is_refused_with_its_element_name() -> None:
    body = (
        f'<env:Envelope xmlns:env="{SOAP_ENV}"><env:Body><env:Fault>'
        "<faultcode>env:Server</faultcode><faultstring>Server Error</faultstring>"
        "</env:Fault></env:Body></env:Envelope>"
    ).encode()
    with pytest.raises(Mm7ParseError, match="got Fault"):
        parse_delivery_report(body)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not well-formed XML"),
        (b"", "not well-formed XML"),
        (b"<env:Envelope xmlns:env='x'><env:Body>", "not well-formed XML"),
        (b"<html><body><h1>502 Bad Gateway</h1></body></html>", "not a SOAP envelope"),
        (
            f'<env:Envelope xmlns:env="{SOAP_ENV}"><env:Header/></env:Envelope>'.encode(),
            "without a Body",
        ),
        (
            f'<env:Envelope xmlns:env="{SOAP_ENV}"><env:Body> </env:Body></env:Envelope>'.encode(),
            "Body",
        ),
    ],
)
def test_garbage_and_non_soap_bodies_are_refused_with_a_reason(body: bytes, reason: str) -> None:
    with pytest.raises(Mm7ParseError, match=reason):
        parse_delivery_report(body)


@pytest.mark.parametrize(
    ("remove", "reason"),
    [
        (b"<MessageID>20261122070513-mmsc01-7f3a</MessageID>", "without MessageID"),
        (b"<Recipient><Number>+8613800138000/TYPE=PLMN</Number></Recipient>", "without Recipient"),
        (b"<MMStatus>Retrieved</MMStatus>", "without MMStatus"),
    ],
)
def test_missing_mandatory_elements_are_named(remove: bytes, reason: str) -> None:
    body = _mbuni_style().replace(remove, b"")
    with pytest.raises(Mm7ParseError, match=reason):
        parse_delivery_report(body)


def test_empty_recipient_number_counts_as_missing() -> None:
    with pytest.raises(Mm7ParseError, match="without Recipient"):
        parse_delivery_report(_mbuni_style(recipient="<Number>/TYPE=PLMN</Number>"))


def test_parse_error_is_a_value_error() -> None:
    assert issubclass(Mm7ParseError, ValueError)


def test_generated_response_is_strict_soap_in_the_peers_namespace() -> None:
    req = parse_delivery_report(REL6_PREFIXED)
    xml = build_delivery_report_rsp(req.transaction_id, req.namespace)
    assert xml.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root = SafeET.fromstring(xml)
    ns = REL6_14
    assert root.tag == f"{{{SOAP_ENV}}}Envelope"
    tid = root.find(f"{{{SOAP_ENV}}}Header/{{{ns}}}TransactionID")
    assert tid is not None
    assert tid.text == "DR-6-0000913"
    assert tid.get(f"{{{SOAP_ENV}}}mustUnderstand") == "1"
    rsp = root.find(f"{{{SOAP_ENV}}}Body/{{{ns}}}DeliveryReportRsp")
    assert rsp is not None
    assert rsp.findtext(f"{{{ns}}}MM7Version") == "6.8.0"
    assert rsp.findtext(f"{{{ns}}}Status/{{{ns}}}StatusCode") == "1000"
    assert rsp.findtext(f"{{{ns}}}Status/{{{ns}}}StatusText") == "Success"


def test_generated_response_carries_a_custom_status_and_escapes_text() -> None:
    xml = build_delivery_report_rsp(
        'tx<&>"1',
        REL5_10,
        status_code=4004,
        status_text="Validation error & more",
        mm7_version="5.3.0",
    )
    root = SafeET.fromstring(xml)
    ns = REL5_10
    assert root.findtext(f"{{{SOAP_ENV}}}Header/{{{ns}}}TransactionID") == 'tx<&>"1'
    status = root.find(f"{{{SOAP_ENV}}}Body/{{{ns}}}DeliveryReportRsp/{{{ns}}}Status")
    assert status is not None
    assert status.findtext(f"{{{ns}}}StatusCode") == "4004"
    assert status.findtext(f"{{{ns}}}StatusText") == "Validation error & more"
    assert (
        root.findtext(f"{{{SOAP_ENV}}}Body/{{{ns}}}DeliveryReportRsp/{{{ns}}}MM7Version") == "5.3.0"
    )


def test_generated_response_is_not_mistaken_for_a_report() -> None:
    with pytest.raises(Mm7ParseError, match="got DeliveryReportRsp"):
        parse_delivery_report(build_delivery_report_rsp("t", REL6_14))


def test_response_needs_a_namespace() -> None:
    with pytest.raises(ValueError, match="namespace"):
        build_delivery_report_rsp("t", "")

"""MM7 (3GPP TS 23.140) SOAP 1.1: parse DeliveryReportReq, generate DeliveryReportRsp.

Lenient in what it accepts (any REL-5/REL-6 namespace matched by local name, any case of
MMStatus, missing optional elements, multipart/related bodies), strict in what it generates.
XML is parsed with defusedxml: DTDs and entities are refused, never expanded. The standard
library ElementTree is used only to generate XML.
"""

from __future__ import annotations

import email.parser
import email.policy
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from mmsq.domain import DeliveryReport

__all__ = [
    "SOAP_ENV",
    "Mm7DeliveryReport",
    "Mm7ParseError",
    "build_delivery_report_rsp",
    "parse_delivery_report",
]

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
DEFAULT_NS = "http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/REL-6-MM7-1-4"


class Mm7ParseError(ValueError):
    """The body is not a DeliveryReportReq mmsq can read; the message says why."""


@dataclass(frozen=True, slots=True)
class Mm7DeliveryReport:
    transaction_id: str
    namespace: str
    mm7_version: str
    message_id: str
    recipient: str
    sender: str | None
    date: datetime | None
    mm_status: str
    status_text: str | None

    def to_report(self, edition: str | None = None) -> DeliveryReport:
        return DeliveryReport(
            msisdn=self.recipient,
            message_id=self.message_id,
            status_source="mm7",
            status_code=self.mm_status,
            done_at=self.date,
            edition=edition,
        )


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _ns(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def _child(elem: ET.Element, name: str) -> ET.Element | None:
    for c in elem:
        if _local(c.tag).lower() == name.lower():
            return c
    return None


def _text(elem: ET.Element | None) -> str | None:
    if elem is None:
        return None
    text = "".join(elem.itertext()).strip()
    return text or None


def _address(elem: ET.Element | None) -> str | None:
    """The first Number / ShortCode / RFC2822Address inside an address element."""
    if elem is None:
        return None
    for node in elem.iter():
        if _local(node.tag) in {"Number", "ShortCode", "RFC2822Address"} and _text(node):
            return (_text(node) or "").split("/TYPE=", 1)[0].strip()
    whole = _text(elem)
    return whole.split("/TYPE=", 1)[0].strip() if whole else None


def _soap_part(body: bytes, content_type: str | None) -> bytes:
    if not content_type or "multipart" not in content_type.lower():
        return body
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not msg.is_multipart():
        raise Mm7ParseError("multipart body without parts")
    parts = list(msg.iter_parts())
    start = msg.get_param("start")
    for part in parts:
        if start and part.get("Content-ID", "").strip() == str(start).strip():
            return bytes(part.get_payload(decode=True) or b"")
    for part in parts:
        if "xml" in part.get_content_type():
            return bytes(part.get_payload(decode=True) or b"")
    return bytes(parts[0].get_payload(decode=True) or b"")


def _parse_date(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_delivery_report(body: bytes, content_type: str | None = None) -> Mm7DeliveryReport:
    """Read an MM7 DeliveryReportReq (SOAP, plain or multipart/related)."""
    xml = _soap_part(body, content_type)
    try:
        root = SafeET.fromstring(xml, forbid_dtd=True)
    except (DefusedXmlException, ValueError) as exc:
        raise Mm7ParseError(
            f"refused XML: {type(exc).__name__} (DTDs and entities are not allowed)"
        ) from exc
    except ET.ParseError as exc:
        raise Mm7ParseError(f"not well-formed XML: {exc}") from exc
    if _local(root.tag) != "Envelope":
        raise Mm7ParseError(f"not a SOAP envelope (root element {_local(root.tag)!r})")
    soap_body = _child(root, "Body")
    if soap_body is None or len(soap_body) == 0:
        raise Mm7ParseError("SOAP envelope without a Body")
    req = soap_body[0]
    if _local(req.tag) != "DeliveryReportReq":
        raise Mm7ParseError(f"expected DeliveryReportReq, got {_local(req.tag)}")
    header = _child(root, "Header")
    transaction_id = _text(_child(header, "TransactionID")) if header is not None else None
    message_id = _text(_child(req, "MessageID"))
    if not message_id:
        raise Mm7ParseError("DeliveryReportReq without MessageID")
    recipient = _address(_child(req, "Recipient"))
    if not recipient:
        raise Mm7ParseError("DeliveryReportReq without Recipient")
    mm_status = _text(_child(req, "MMStatus"))
    if not mm_status:
        raise Mm7ParseError("DeliveryReportReq without MMStatus")
    return Mm7DeliveryReport(
        transaction_id=transaction_id or "",
        namespace=_ns(req.tag) or DEFAULT_NS,
        mm7_version=_text(_child(req, "MM7Version")) or "",
        message_id=message_id,
        recipient=recipient,
        sender=_address(_child(req, "Sender")),
        date=_parse_date(_text(_child(req, "Date")) or _text(_child(req, "TimeStamp"))),
        mm_status=mm_status,
        status_text=_text(_child(req, "StatusText")),
    )


def build_delivery_report_rsp(
    transaction_id: str,
    namespace: str = DEFAULT_NS,
    status_code: int = 1000,
    status_text: str = "Success",
    mm7_version: str = "6.8.0",
) -> bytes:
    """A strict SOAP 1.1 DeliveryReportRsp in the peer's MM7 namespace."""
    ET.register_namespace("env", SOAP_ENV)
    ET.register_namespace("mm7", namespace)
    env = ET.Element(f"{{{SOAP_ENV}}}Envelope")
    header = ET.SubElement(env, f"{{{SOAP_ENV}}}Header")
    tid = ET.SubElement(header, f"{{{namespace}}}TransactionID")
    tid.set(f"{{{SOAP_ENV}}}mustUnderstand", "1")
    tid.text = transaction_id
    body = ET.SubElement(env, f"{{{SOAP_ENV}}}Body")
    rsp = ET.SubElement(body, f"{{{namespace}}}DeliveryReportRsp")
    ET.SubElement(rsp, f"{{{namespace}}}MM7Version").text = mm7_version
    status = ET.SubElement(rsp, f"{{{namespace}}}Status")
    ET.SubElement(status, f"{{{namespace}}}StatusCode").text = str(status_code)
    ET.SubElement(status, f"{{{namespace}}}StatusText").text = status_text
    return bytes(ET.tostring(env, encoding="utf-8", xml_declaration=True))

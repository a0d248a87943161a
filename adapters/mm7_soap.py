"""MM7 (3GPP TS 23.140) SOAP 1.1: parse DeliveryReportReq, generate DeliveryReportRsp.

Lenient in what it accepts (any REL-5/REL-6 namespace matched by local name, any case of
MMStatus, missing optional elements, multipart/related bodies), strict in what it generates.
XML is parsed with defusedxml: DTDs and entities are refused, never expanded. The standard
library ElementTree is used only to generate XML.
"""

from __future__ import annotations

import email.parser
import email.policy
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from mmsq.domain import DeliveryReport

__all__ = [
    "DEFAULT_NS",
    "SOAP_ENV",
    "Mm7DeliveryReport",
    "Mm7ParseError",
    "build_delivery_report_rsp",
    "parse_delivery_report",
]

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
DEFAULT_NS = "http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/REL-6-MM7-1-4"

_ADDRESS_TAGS = frozenset({"number", "shortcode", "rfc2822address"})
_TYPE_SUFFIX = re.compile(r"\s*/TYPE=[^/]*$", re.IGNORECASE)


class Mm7ParseError(ValueError):
    """The body is not a DeliveryReportReq mmsq can read; the message says why."""


@dataclass(frozen=True, slots=True)
class Mm7DeliveryReport:
    """One MM7 DeliveryReportReq as sent by the MMSC (MMStatus kept exactly as sent).

    ``namespace`` is the MM7 namespace of the request (reply in it); for a peer that sent no
    namespace at all it is the TransactionID's namespace, else ``DEFAULT_NS``.
    """

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
        """The report in the engine's vocabulary (status_source ``mm7``)."""
        return DeliveryReport(
            msisdn=self.recipient,
            message_id=self.message_id,
            status_source="mm7",
            status_code=self.mm_status,
            done_at=self.date,
            edition=edition,
        )


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _ns(tag: object) -> str:
    return tag[1:].split("}", 1)[0] if isinstance(tag, str) and tag.startswith("{") else ""


def _child(elem: ET.Element | None, name: str) -> ET.Element | None:
    if elem is None:
        return None
    for c in elem:
        if _local(c.tag).lower() == name.lower():
            return c
    return None


def _text(elem: ET.Element | None) -> str | None:
    if elem is None:
        return None
    text = "".join(elem.itertext()).strip()
    return text or None


def _strip_type(address: str) -> str:
    return _TYPE_SUFFIX.sub("", address.strip()).strip()


def _address(elem: ET.Element | None) -> str | None:
    """The first Number / ShortCode / RFC2822Address in an address element, /TYPE= stripped."""
    if elem is None:
        return None
    for node in elem.iter():
        if _local(node.tag).lower() in _ADDRESS_TAGS and (value := _text(node)):
            return _strip_type(value) or None
    whole = _text(elem)
    return (_strip_type(whole) or None) if whole else None


def _cid(value: object) -> str:
    return str(value or "").strip().strip('"').strip().strip("<>").strip()


def _payload(part: EmailMessage) -> bytes:
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _soap_part(body: bytes, content_type: str | None) -> bytes:
    """The SOAP envelope of a body: the body itself, or the root part of multipart/related."""
    if not content_type or "multipart" not in content_type.lower():
        stripped = body.lstrip()
        if content_type or not stripped.startswith(b"--"):
            return body
        # No Content-Type but a MIME body: take the boundary from its first line.
        boundary = stripped.split(b"\n", 1)[0].strip()[2:].decode("latin-1")
        content_type = f'multipart/related; boundary="{boundary}"'
        body = stripped
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n" + body
    )
    if not isinstance(msg, EmailMessage) or not msg.is_multipart():
        raise Mm7ParseError("multipart body could not be split (missing or wrong boundary?)")
    parts = [p for p in msg.iter_parts() if isinstance(p, EmailMessage)]
    if not parts:
        raise Mm7ParseError("multipart body without parts (missing or wrong boundary?)")
    start = _cid(msg.get_param("start"))
    if start:
        for part in parts:
            if _cid(part.get("Content-ID")) == start:
                return _payload(part)
    for wanted in ("text/xml", "application/soap+xml", "application/xml"):
        for part in parts:
            if part.get_content_type() == wanted:
                return _payload(part)
    return _payload(parts[0])


def _parse_date(text: str | None) -> datetime | None:
    """xs:dateTime to an aware datetime (UTC when no offset); None when unreadable."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _envelope(xml: bytes) -> ET.Element:
    try:
        root = SafeET.fromstring(xml, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise Mm7ParseError(
            f"refused XML: DTDs, entity declarations and external references are not allowed "
            f"({type(exc).__name__})"
        ) from exc
    except ET.ParseError as exc:
        raise Mm7ParseError(f"not well-formed XML: {exc}") from exc
    except ValueError as exc:  # e.g. an unknown encoding in the XML declaration
        raise Mm7ParseError(f"not well-formed XML: {exc}") from exc
    if not isinstance(root, ET.Element):
        raise Mm7ParseError("not well-formed XML: no root element")
    return root


def parse_delivery_report(body: bytes, content_type: str | None = None) -> Mm7DeliveryReport:
    """Read an MM7 DeliveryReportReq (SOAP 1.1, plain or multipart/related).

    Raises Mm7ParseError with a human-readable reason when the body cannot be used.
    """
    root = _envelope(_soap_part(bytes(body), content_type))
    if _local(root.tag) != "Envelope":
        raise Mm7ParseError(f"not a SOAP envelope (root element {_local(root.tag)!r})")
    soap_body = _child(root, "Body")
    if soap_body is None or len(soap_body) == 0:
        raise Mm7ParseError("SOAP envelope without a Body (or with an empty Body)")
    req = soap_body[0]
    if _local(req.tag) != "DeliveryReportReq":
        raise Mm7ParseError(f"expected DeliveryReportReq, got {_local(req.tag)}")
    tid = _child(_child(root, "Header"), "TransactionID")
    message_id = _text(_child(req, "MessageID"))
    if not message_id:
        raise Mm7ParseError("DeliveryReportReq without MessageID")
    recipient = _address(_child(req, "Recipient"))
    if not recipient:
        raise Mm7ParseError("DeliveryReportReq without Recipient")
    mm_status = _text(_child(req, "MMStatus"))
    if not mm_status:
        raise Mm7ParseError("DeliveryReportReq without MMStatus")
    namespace = _ns(req.tag) or (_ns(tid.tag) if tid is not None else "") or DEFAULT_NS
    return Mm7DeliveryReport(
        transaction_id=_text(tid) or "",
        namespace=namespace,
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
    namespace: str,
    status_code: int = 1000,
    status_text: str = "Success",
    mm7_version: str = "6.8.0",
) -> bytes:
    """A strict SOAP 1.1 DeliveryReportRsp in the peer's MM7 namespace, UTF-8 with declaration."""
    if not namespace.strip():
        raise ValueError("an MM7 namespace URI is required (reply in the peer's namespace)")
    # Literal prefixes and xmlns attributes: no global ET.register_namespace side effects.
    env = ET.Element("env:Envelope", {"xmlns:env": SOAP_ENV})
    header = ET.SubElement(env, "env:Header")
    tid = ET.SubElement(
        header, "mm7:TransactionID", {"xmlns:mm7": namespace, "env:mustUnderstand": "1"}
    )
    tid.text = transaction_id
    body = ET.SubElement(env, "env:Body")
    rsp = ET.SubElement(body, "DeliveryReportRsp", {"xmlns": namespace})
    ET.SubElement(rsp, "MM7Version").text = mm7_version
    status = ET.SubElement(rsp, "Status")
    ET.SubElement(status, "StatusCode").text = str(status_code)
    ET.SubElement(status, "StatusText").text = status_text
    xml = ET.tostring(env, encoding="unicode", short_empty_elements=True)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + xml.encode("utf-8")

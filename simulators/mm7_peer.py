"""MM7 (3GPP TS 23.140) as the MMSC speaks it: read SubmitReq, write SubmitRsp, faults and reports.

The simulator's own codec, written apart from ``mmsq.adapters.mm7_soap`` on purpose: a peer that
shared the adapter's code would agree with its bugs. SOAP 1.1 envelopes, plain ``text/xml`` or
``multipart/related`` with the envelope as the root part (RFC 2387: the ``start`` parameter, else
the first part); REL-5 and REL-6 namespaces; elements matched by local name. XML is parsed with
defusedxml (DTDs refused outright); MIME with the standard library ``email`` package.
"""

from __future__ import annotations

import email.parser
import email.policy
import re
import urllib.parse
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from email.message import EmailMessage, Message
from xml.sax.saxutils import escape

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

__all__ = [
    "REL5_NS",
    "REL6_NS",
    "SOAP_ENV",
    "STATUS_TEXTS",
    "DeliveryReportAnswer",
    "Mm7Error",
    "MmPart",
    "SubmitRequest",
    "build_delivery_report_req",
    "build_fault",
    "build_submit_rsp",
    "is_mm7_namespace",
    "is_phone_number",
    "parse_delivery_report_rsp",
    "parse_submit_req",
]

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
_SCHEMA_BASE = "http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/"
REL6_NS = _SCHEMA_BASE + "REL-6-MM7-1-4"
REL5_NS = _SCHEMA_BASE + "REL-5-MM7-1-2"
_MM7_NS = re.compile(r"^" + re.escape(_SCHEMA_BASE) + r"REL-[56]-MM7-1-\d+$")
_TYPE_SUFFIX = re.compile(r"/TYPE=\w+$", re.IGNORECASE)
_PHONE = re.compile(r"^\+?\d{5,15}$")

#: StatusText for the StatusCodes the simulator answers with (TS 23.140 table of status codes).
STATUS_TEXTS: dict[int, str] = {
    1000: "Success",
    2001: "Operation restricted",
    2002: "Address Error",
    2004: "Multimedia content refused",
    2007: "Message format corrupt",
    3000: "Server Error",
    4001: "Improper identification",
    4002: "Unsupported version",
    4003: "Unsupported operation",
    4004: "Validation error",
    4006: "Service unavailable",
}


class Mm7Error(ValueError):
    """A request the MMSC answers with an error ``status_code``; ``fault`` when as a SOAP Fault.

    ``transaction_id`` and ``namespace`` are echoed in the answer when they could be read.
    """

    def __init__(
        self,
        status_code: int,
        detail: str,
        *,
        fault: bool,
        transaction_id: str = "",
        namespace: str = REL6_NS,
    ) -> None:
        super().__init__(f"{status_code} {STATUS_TEXTS.get(status_code, '')}: {detail}")
        self.status_code = status_code
        self.detail = detail
        self.fault = fault
        self.transaction_id = transaction_id
        self.namespace = namespace


@dataclass(frozen=True, slots=True)
class MmPart:
    """One leaf MIME part of the submitted MM (SMIL, text, image ...): what and how big."""

    content_type: str
    content_id: str
    size: int


@dataclass(frozen=True, slots=True)
class SubmitRequest:
    """A SubmitReq as read off the wire; addresses with any ``/TYPE=`` suffix removed.

    ``recipients`` holds (field, kind, address): field ``To``/``Cc``/``Bcc``, kind
    ``Number``/``ShortCode``/``RFC2822Address``.
    """

    transaction_id: str
    namespace: str
    mm7_version: str
    vaspid: str | None
    vasid: str | None
    sender_address: str | None
    sender_kind: str | None
    recipients: tuple[tuple[str, str, str], ...]
    service_code: str | None
    linked_id: str | None
    subject: str | None
    delivery_report: bool
    content_href: str | None
    parts: tuple[MmPart, ...]

    @property
    def numbers(self) -> tuple[str, ...]:
        """The recipients that are phone numbers, in order, without duplicates."""
        seen: dict[str, None] = {}
        for _field, kind, address in self.recipients:
            if kind == "Number":
                seen.setdefault(address, None)
        return tuple(seen)


@dataclass(frozen=True, slots=True)
class DeliveryReportAnswer:
    """What the VASP answered to a DeliveryReportReq: its StatusCode (None when unreadable)."""

    status_code: int | None
    status_text: str | None
    fault: bool


# -- reading -------------------------------------------------------------------------------


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _namespace(tag: object) -> str:
    if isinstance(tag, str) and tag.startswith("{"):
        return tag[1:].partition("}")[0]
    return ""


def _find(parent: ET.Element | None, name: str) -> ET.Element | None:
    if parent is None:
        return None
    return next((c for c in parent if _local(c.tag) == name), None)


def _text(elem: ET.Element | None) -> str | None:
    if elem is None:
        return None
    value = "".join(elem.itertext()).strip()
    return value or None


def is_mm7_namespace(namespace: str) -> bool:
    """True for the TS 23.140 REL-5 and REL-6 MM7 schema namespaces."""
    return bool(_MM7_NS.match(namespace))


def _parse_xml(data: bytes) -> ET.Element:
    try:
        root = SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise Mm7Error(
            2007, f"XML with a DTD or entities refused ({type(exc).__name__})", fault=True
        ) from exc
    except (ET.ParseError, ValueError, LookupError) as exc:
        raise Mm7Error(2007, f"XML not well-formed: {exc}", fault=True) from exc
    if not isinstance(root, ET.Element):
        raise Mm7Error(2007, "no XML root element", fault=True)
    return root


def _clean_cid(value: str) -> str:
    value = value.strip()
    if value.lower().startswith("cid:"):
        value = urllib.parse.unquote(value[4:])
    return value.strip().strip('"').strip("<>").strip()


def _leaves(part: Message) -> list[MmPart]:
    if part.is_multipart():
        out: list[MmPart] = []
        for sub in part.get_payload():
            if isinstance(sub, Message):
                out.extend(_leaves(sub))
        return out
    payload = part.get_payload(decode=True)
    size = len(payload) if isinstance(payload, bytes) else 0
    return [MmPart(part.get_content_type(), _clean_cid(str(part.get("Content-ID", ""))), size)]


def _split_multipart(body: bytes, content_type: str) -> tuple[bytes, list[Message]]:
    """The root part's bytes and the other parts of a multipart/related body."""
    head = b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n"
    msg = email.parser.BytesParser(policy=email.policy.default).parsebytes(head + body)
    payloads = msg.get_payload() if msg.is_multipart() else None
    parts = [p for p in payloads if isinstance(p, Message)] if isinstance(payloads, list) else []
    if not parts:
        raise Mm7Error(2007, "multipart/related body without parts (boundary?)", fault=True)
    root_index = 0
    start = msg.get_param("start")
    if isinstance(start, str) and start:
        wanted = _clean_cid(start)
        ids = [_clean_cid(str(p.get("Content-ID", ""))) for p in parts]
        if wanted not in ids:
            raise Mm7Error(2007, f"no part with the start Content-ID <{wanted}>", fault=True)
        root_index = ids.index(wanted)
    root = parts[root_index]
    payload = root.get_payload(decode=True) if isinstance(root, EmailMessage) else None
    if not isinstance(payload, bytes) or not payload.strip():
        raise Mm7Error(2007, "the root part holds no SOAP envelope", fault=True)
    others = [p for i, p in enumerate(parts) if i != root_index]
    return payload, others


def _address(elem: ET.Element | None) -> tuple[str, str] | None:
    """(kind, address) of the first address child of ``elem``."""
    if elem is None:
        return None
    for child in elem:
        kind = _local(child.tag)
        if kind in ("Number", "ShortCode", "RFC2822Address"):
            value = _text(child)
            if value:
                return kind, _TYPE_SUFFIX.sub("", value).strip()
    return None


def _envelope(body: bytes, content_type: str | None) -> tuple[ET.Element, list[Message]]:
    ctype = (content_type or "").strip()
    attachments: list[Message] = []
    if ctype.lower().startswith("multipart/"):
        if not ctype.lower().startswith("multipart/related"):
            kind = ctype.split(";")[0]
            raise Mm7Error(2007, f"expected multipart/related, got {kind}", fault=True)
        xml, attachments = _split_multipart(body, ctype)
    else:
        xml = body
    root = _parse_xml(xml)
    if _local(root.tag) != "Envelope" or _namespace(root.tag) != SOAP_ENV:
        raise Mm7Error(2007, "not a SOAP 1.1 Envelope", fault=True)
    return root, attachments


def parse_submit_req(body: bytes, content_type: str | None) -> SubmitRequest:
    """Read a SubmitReq; raise Mm7Error with the status code to answer when it cannot be used."""
    root, attachments = _envelope(body, content_type)
    header, soap_body = _find(root, "Header"), _find(root, "Body")
    tid_elem = _find(header, "TransactionID")
    tid = _text(tid_elem) or ""
    ops = list(soap_body) if soap_body is not None else []
    if not ops:
        raise Mm7Error(2007, "SOAP Body is missing or empty", fault=True, transaction_id=tid)
    req = ops[0]
    namespace = _namespace(req.tag) or (_namespace(tid_elem.tag) if tid_elem is not None else "")
    reply_ns = namespace if is_mm7_namespace(namespace) else REL6_NS
    if namespace and not is_mm7_namespace(namespace):
        raise Mm7Error(
            4002,
            f"namespace {namespace!r} is not an MM7 REL-5/REL-6 schema",
            fault=True,
            transaction_id=tid,
        )
    if _local(req.tag) != "SubmitReq":
        raise Mm7Error(
            4003,
            f"{_local(req.tag)} is not supported by this MMSC",
            fault=True,
            transaction_id=tid,
            namespace=reply_ns,
        )
    if not tid:
        raise Mm7Error(4004, "no TransactionID in the SOAP Header", fault=True, namespace=reply_ns)
    ident = _find(req, "SenderIdentification")
    sender = _address(_find(ident, "SenderAddress"))
    recipients: list[tuple[str, str, str]] = []
    recipients_elem = _find(req, "Recipients")
    groups = list(recipients_elem) if recipients_elem is not None else []
    for group in ("To", "Cc", "Bcc"):
        for elem in groups:
            if _local(elem.tag) != group:
                continue
            for child in elem:
                kind = _local(child.tag)
                value = _text(child)
                if kind in ("Number", "ShortCode", "RFC2822Address") and value:
                    recipients.append((group, kind, _TYPE_SUFFIX.sub("", value).strip()))
    content = _find(req, "Content")
    href = content.get("href") if content is not None else None
    parts: list[MmPart] = []
    for attachment in attachments:
        parts.extend(_leaves(attachment))
    if href and attachments:
        wanted = _clean_cid(href)
        ids = {_clean_cid(str(a.get("Content-ID", ""))) for a in attachments}
        locations = {str(a.get("Content-Location", "")).strip() for a in attachments}
        if wanted not in ids and wanted not in locations:
            raise Mm7Error(
                2007,
                f"Content href {href!r} names no MIME part",
                fault=False,
                transaction_id=tid,
                namespace=reply_ns,
            )
    return SubmitRequest(
        transaction_id=tid,
        namespace=reply_ns,
        mm7_version=_text(_find(req, "MM7Version")) or "",
        vaspid=_text(_find(ident, "VASPID")),
        vasid=_text(_find(ident, "VASID")),
        sender_address=sender[1] if sender else None,
        sender_kind=sender[0] if sender else None,
        recipients=tuple(recipients),
        service_code=_text(_find(req, "ServiceCode")),
        linked_id=_text(_find(req, "LinkedID")),
        subject=_text(_find(req, "Subject")),
        delivery_report=(_text(_find(req, "DeliveryReport")) or "").lower() in ("true", "1"),
        content_href=href,
        parts=tuple(parts),
    )


def is_phone_number(address: str) -> bool:
    """A Number recipient the MMSC can route: optional +, 5 to 15 digits."""
    return bool(_PHONE.match(address))


def parse_delivery_report_rsp(body: bytes) -> DeliveryReportAnswer:
    """The VASP's answer to a DeliveryReportReq: a DeliveryReportRsp, or a SOAP Fault."""
    try:
        root = _parse_xml(body)
    except Mm7Error:
        return DeliveryReportAnswer(None, None, fault=False)
    soap_body = _find(root, "Body")
    first = soap_body[0] if soap_body is not None and len(soap_body) else None
    if first is None:
        return DeliveryReportAnswer(None, None, fault=False)
    fault = _local(first.tag) == "Fault"
    status = next((e for e in first.iter() if _local(e.tag) == "Status"), None)
    code_text = _text(_find(status, "StatusCode"))
    code = int(code_text) if code_text and code_text.isdigit() else None
    return DeliveryReportAnswer(code, _text(_find(status, "StatusText")), fault=fault)


# -- writing -------------------------------------------------------------------------------

_XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'


def _wrap(namespace: str, transaction_id: str, body: str) -> bytes:
    header = (
        f'<env:Header><mm7:TransactionID xmlns:mm7="{escape(namespace)}" '
        f'env:mustUnderstand="1">{escape(transaction_id)}</mm7:TransactionID></env:Header>'
        if transaction_id
        else ""
    )
    return (
        f'{_XML_DECL}<env:Envelope xmlns:env="{SOAP_ENV}">{header}'
        f"<env:Body>{body}</env:Body></env:Envelope>"
    ).encode()


def _status(code: int, details: str | None = None) -> str:
    extra = f"<Details>{escape(details)}</Details>" if details else ""
    return (
        f"<Status><StatusCode>{code}</StatusCode>"
        f"<StatusText>{escape(STATUS_TEXTS.get(code, 'Error'))}</StatusText>{extra}</Status>"
    )


def build_submit_rsp(
    transaction_id: str,
    namespace: str,
    mm7_version: str,
    status_code: int,
    message_id: str | None = None,
    details: str | None = None,
) -> bytes:
    """A SubmitRsp in the request's namespace: Status, and the MessageID when accepted."""
    mid = f"<MessageID>{escape(message_id)}</MessageID>" if message_id else ""
    body = (
        f'<SubmitRsp xmlns="{escape(namespace)}"><MM7Version>{escape(mm7_version)}</MM7Version>'
        f"{_status(status_code, details)}{mid}</SubmitRsp>"
    )
    return _wrap(namespace, transaction_id, body)


def build_fault(error: Mm7Error, mm7_version: str = "6.8.0") -> bytes:
    """A SOAP 1.1 Fault carrying an RSErrorRsp (Client fault for 2xxx, Server otherwise)."""
    faultcode = "env:Client" if 2000 <= error.status_code < 3000 else "env:Server"
    text = STATUS_TEXTS.get(error.status_code, "Error")
    body = (
        f"<env:Fault><faultcode>{faultcode}</faultcode><faultstring>{escape(text)}</faultstring>"
        f'<detail><RSErrorRsp xmlns="{escape(error.namespace)}">'
        f"<MM7Version>{escape(mm7_version)}</MM7Version>"
        f"{_status(error.status_code, error.detail)}</RSErrorRsp></detail></env:Fault>"
    )
    return _wrap(error.namespace, error.transaction_id, body)


def build_delivery_report_req(
    *,
    transaction_id: str,
    namespace: str,
    mm7_version: str,
    relay_server_id: str,
    message_id: str,
    recipient: str,
    sender: str | None,
    sender_kind: str,
    date: str,
    mm_status: str,
    status_text: str,
) -> bytes:
    """A DeliveryReportReq as TS 23.140 orders its elements."""
    sender_xml = (
        f"<Sender><{sender_kind}>{escape(sender)}</{sender_kind}></Sender>" if sender else ""
    )
    body = (
        f'<DeliveryReportReq xmlns="{escape(namespace)}">'
        f"<MM7Version>{escape(mm7_version)}</MM7Version>"
        f"<MMSRelayServerID>{escape(relay_server_id)}</MMSRelayServerID>"
        f"<MessageID>{escape(message_id)}</MessageID>"
        f"<Recipient><Number>{escape(recipient)}</Number></Recipient>"
        f"{sender_xml}<Date>{escape(date)}</Date><MMStatus>{escape(mm_status)}</MMStatus>"
        f"<StatusText>{escape(status_text)}</StatusText></DeliveryReportReq>"
    )
    return _wrap(namespace, transaction_id, body)

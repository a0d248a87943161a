"""MM7 SubmitReq over HTTP (3GPP TS 23.140, SOAP 1.1 with attachments): the ``MmsGateway``.

One ``httpx.Client`` with keep-alive and a connection cap; a concurrency limit and a
throughput limit (submits per second) shared by every thread that calls ``submit``; basic
auth when configured. The StatusCode class decides retry: 2xxx never, 3xxx/4xxx and transport
errors with exponential backoff up to a cap. SubmitRsp is parsed with defusedxml.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import default as _default_policy

import defusedxml.ElementTree as SafeET
import httpx
import structlog
from defusedxml import DefusedXmlException

from mmsq.adapters.mm7_soap import DEFAULT_NS, SOAP_ENV
from mmsq.mms import SENT_MAYBE, MmsSubmission, SubmitOutcome, SubmitResult, outcome_of
from mmsq.msisdn import mask_msisdn

__all__ = ["Mm7Client", "Mm7ClientConfig", "build_submit_req", "parse_submit_rsp"]

log = structlog.get_logger(__name__)

# MIME with CRLF line ends and 76-column base64, as MMSCs expect on the wire.
_MIME = _default_policy.clone(linesep="\r\n")


@dataclass(frozen=True, slots=True)
class Mm7ClientConfig:
    """Where and how to submit. Times in seconds, rates in submits per second."""

    url: str
    vaspid: str
    vasid: str
    service_code: str = ""
    sender_address: str = ""
    username: str | None = None
    password: str | None = None
    namespace: str = DEFAULT_NS
    mm7_version: str = "6.8.0"
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0
    concurrency: int = 8
    rate_per_s: float = 50.0
    max_attempts: int = 4
    backoff_s: float = 1.0
    backoff_cap_s: float = 60.0


class _RateLimiter:
    """A token bucket shared by threads: at most ``rate`` acquisitions per second on average."""

    def __init__(self, rate: float, clock: Callable[[], float], sleep: Callable[[float], None]):
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next = clock()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        if not self._interval:
            return
        with self._lock:
            now = self._clock()
            at = max(self._next, now)
            self._next = at + self._interval
        if at > now:
            self._sleep(at - now)


def _el(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    child = ET.SubElement(parent, tag)
    if text is not None:
        child.text = text
    return child


def _mm_part(submission: MmsSubmission) -> EmailMessage:
    """The MM itself: multipart/related with the SMIL as its start and one part per object."""
    mm = EmailMessage(policy=_MIME)
    mm.set_type("multipart/related")
    mm.set_param("type", "application/smil")
    mm.set_param("start", "<smil>")
    smil = EmailMessage(policy=_MIME)
    smil.set_content(
        submission.content.smil.encode(), "application", "smil", cte="8bit", cid="<smil>"
    )
    mm.attach(smil)
    for part in submission.content.parts:
        maintype, _, rest = part.content_type.partition("/")
        subtype = rest.split(";", 1)[0].strip()
        media = EmailMessage(policy=_MIME)
        media.set_content(part.data, maintype, subtype, cid=f"<{part.content_id}>")
        for param in rest.split(";")[1:]:
            key, _, value = param.strip().partition("=")
            if key and value:
                media.set_param(key, value.strip('"'))
        if part.filename:
            media["Content-Location"] = part.filename
        mm.attach(media)

    return mm


def build_submit_req(
    config: Mm7ClientConfig, submission: MmsSubmission, transaction_id: str, now: datetime
) -> tuple[bytes, str]:
    """The HTTP body and Content-Type of a SubmitReq: multipart/related, SOAP part first.

    The MM travels as a second MIME part, itself multipart/related with the SMIL as its start,
    referenced from the SOAP body by ``<Content href="cid:...">``.
    """
    env = ET.Element("env:Envelope", {"xmlns:env": SOAP_ENV})
    header = _el(env, "env:Header")
    tid = ET.SubElement(
        header, "mm7:TransactionID", {"xmlns:mm7": config.namespace, "env:mustUnderstand": "1"}
    )
    tid.text = transaction_id
    body = _el(env, "env:Body")
    req = ET.SubElement(body, "SubmitReq", {"xmlns": config.namespace})
    _el(req, "MM7Version", config.mm7_version)
    sender = _el(req, "SenderIdentification")
    _el(sender, "VASPID", config.vaspid)
    _el(sender, "VASID", config.vasid)
    if config.sender_address:
        _el(_el(sender, "SenderAddress"), "ShortCode", config.sender_address)
    _el(_el(_el(req, "Recipients"), "To"), "Number", submission.msisdn)
    if config.service_code:
        _el(req, "ServiceCode", config.service_code)
    if submission.linked_id:
        _el(req, "LinkedID", submission.linked_id)
    _el(req, "MessageClass", "Informational")
    _el(req, "TimeStamp", now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    _el(req, "DeliveryReport", "true" if submission.delivery_report else "false")
    _el(req, "Subject", submission.content.subject)
    ET.SubElement(req, "Content", {"href": "cid:mm-content", "allowAdaptations": "true"})
    soap = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(env, encoding="unicode").encode()
    )

    mm = _mm_part(submission)

    outer = EmailMessage(policy=_MIME)
    outer.set_type("multipart/related")
    outer.set_param("type", "text/xml")
    outer.set_param("start", "<mm7-soap>")
    soap_part = EmailMessage(policy=_MIME)
    soap_part.set_content(soap, "text", "xml", cte="8bit", cid="<mm7-soap>")
    soap_part.set_param("charset", "utf-8")
    outer.attach(soap_part)
    mm["Content-ID"] = "<mm-content>"
    outer.attach(mm)
    payload = outer.as_bytes(policy=_MIME)
    content_type = " ".join(str(outer["Content-Type"]).split())  # boundary set when serialised
    # Headers of the outer message travel as HTTP headers: send only the MIME body.
    _, _, data = payload.partition(b"\r\n\r\n")
    return data, str(content_type)


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _find(elem: ET.Element | None, name: str) -> ET.Element | None:
    if elem is None:
        return None
    for node in elem.iter():
        if _local(node.tag) == name:
            return node
    return None


def parse_submit_rsp(data: bytes) -> tuple[int, str, str | None]:
    """(StatusCode, StatusText, MessageID) from a SubmitRsp or an MM7 SOAP Fault.

    Raises ValueError when the body is not one of those.
    """
    try:
        root = SafeET.fromstring(data)
    except (ET.ParseError, DefusedXmlException) as exc:
        raise ValueError(f"SubmitRsp is not well-formed XML: {exc}") from exc
    code = _find(root, "StatusCode")
    if code is None or not (code.text or "").strip().isdigit():
        fault = _find(root, "faultstring")
        raise ValueError(
            "no StatusCode in the MMSC's answer"
            + (f" (fault: {fault.text})" if fault is not None and fault.text else "")
        )
    text = _find(root, "StatusText")
    message_id = _find(root, "MessageID")
    return (
        int((code.text or "").strip()),
        (text.text or "").strip() if text is not None else "",
        (message_id.text or "").strip() or None if message_id is not None else None,
    )


class Mm7Client:
    """``MmsGateway`` over MM7. Thread-safe; close it (or use ``with``) to free connections."""

    def __init__(
        self,
        config: Mm7ClientConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config
        auth = httpx.BasicAuth(config.username, config.password or "") if config.username else None
        self._http = httpx.Client(
            transport=transport,
            auth=auth,
            timeout=httpx.Timeout(config.read_timeout_s, connect=config.connect_timeout_s),
            limits=httpx.Limits(
                max_connections=config.concurrency, max_keepalive_connections=config.concurrency
            ),
        )
        self._slots = threading.BoundedSemaphore(config.concurrency)
        self._rate = _RateLimiter(config.rate_per_s, monotonic, sleep)
        self._sleep = sleep
        self._now = now
        self._seq = itertools.count(1)
        self._prefix = uuid.uuid4().hex[:8]

    def __enter__(self) -> Mm7Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _once(self, submission: MmsSubmission) -> SubmitResult:
        tid = f"{self._prefix}-{next(self._seq)}"
        data, content_type = build_submit_req(self.config, submission, tid, self._now())
        headers = {"Content-Type": content_type, "SOAPAction": '""'}
        self._rate.acquire()
        with self._slots:
            try:
                rsp = self._http.post(self.config.url, content=data, headers=headers)
            except httpx.TransportError as exc:
                # Refused or never connected: the MMSC cannot have it. Anything later (a read
                # timeout, a dropped answer) leaves the SubmitReq possibly accepted.
                unsent = isinstance(
                    exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout
                )
                return SubmitResult(
                    SubmitOutcome.RETRY,
                    None,
                    f"transport: {exc!r}",
                    details={"sent": "no" if unsent else SENT_MAYBE},
                )
        try:
            code, text, message_id = parse_submit_rsp(rsp.content)
        except ValueError as exc:
            # No MM7 status: a 5xx or a gateway page is worth retrying, anything else is not.
            outcome = SubmitOutcome.RETRY if rsp.status_code >= 500 else SubmitOutcome.REJECTED
            return SubmitResult(outcome, None, f"HTTP {rsp.status_code}: {exc}")
        outcome = outcome_of(code)
        if outcome is SubmitOutcome.ACCEPTED and not message_id:
            return SubmitResult(SubmitOutcome.RETRY, code, "SubmitRsp without MessageID")
        return SubmitResult(outcome, code, text, message_id)

    def submit(self, submission: MmsSubmission) -> SubmitResult:
        """Submit one MM; transient failures are retried here up to ``max_attempts``."""
        cfg = self.config
        delay = cfg.backoff_s
        result = SubmitResult(SubmitOutcome.RETRY, None, "not attempted", attempts=0)
        maybe_sent = False  # an earlier attempt may have reached the MMSC
        for attempt in range(1, cfg.max_attempts + 1):
            result = self._once(submission)
            maybe_sent = maybe_sent or result.details.get("sent") == SENT_MAYBE
            details = {**result.details, "sent": SENT_MAYBE} if maybe_sent else result.details
            result = replace(result, attempts=attempt, details=details)
            if result.outcome is not SubmitOutcome.RETRY or attempt == cfg.max_attempts:
                break
            log.warning(
                "mm7_submit_retry",
                msisdn=mask_msisdn(submission.msisdn),
                reference=submission.reference,
                attempt=attempt,
                status_code=result.status_code,
                status_text=result.status_text,
                backoff_s=delay,
            )
            self._sleep(delay)
            delay = min(delay * 2, cfg.backoff_cap_s)
        log.info(
            "mm7_submit",
            msisdn=mask_msisdn(submission.msisdn),
            reference=submission.reference,
            outcome=str(result.outcome),
            status_code=result.status_code,
            attempts=result.attempts,
        )
        return result

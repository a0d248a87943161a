"""The VASP side of MM7 over HTTP: the endpoint where the MMSC POSTs DeliveryReportReq.

Each report is parsed with ``mm7_soap.parse_delivery_report`` and handed to ``ReportIntake``
(classified, stored idempotently, aggregated). Answers, as TS 23.140 and the MMSC's retry
logic expect:

- stored or duplicate: HTTP 200, DeliveryReportRsp 1000 in the peer's namespace;
- a report of an MM mmsq sent itself (a recovery probe, a resend) is first correlated by its
  MessageID (``correlate``, the MM7 outbox) and stored under that MM's edition;
- unreadable (not XML, a DTD, no MMStatus, ...) or refused by ingest (an invalid recipient):
  quarantined with the reason, HTTP 400 with a SOAP Client Fault carrying RSErrorRsp 2007
  "Message format corrupt": a 2xxx code tells the MMSC not to send the same thing again;
- mmsq cannot store it now (database down): HTTP 500 with a SOAP Server Fault carrying
  RSErrorRsp 3000 "Server error": the MMSC retries later, nothing is lost.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from uuid import uuid4

import anyio
import anyio.to_thread
import structlog
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from mmsq.adapters.mm7_soap import (
    DEFAULT_NS,
    SOAP_ENV,
    Mm7DeliveryReport,
    Mm7ParseError,
    build_delivery_report_rsp,
    parse_delivery_report,
)
from mmsq.domain import DeliveryReport
from mmsq.report_intake import IntakeOutcome, IntakeResult, ReportIntake

__all__ = ["SOURCE", "Correlate", "build_rs_error_fault", "mm7_delivery_report_router"]

log = structlog.get_logger("mmsq.mm7_vasp")

SOURCE = "mm7:DeliveryReportReq"
_XML = "text/xml; charset=utf-8"
_MAX_BODY = 1024 * 1024
_REPORT_THREADS = 64


def build_rs_error_fault(
    status_code: int,
    status_text: str,
    details: str,
    namespace: str = DEFAULT_NS,
    transaction_id: str = "",
    mm7_version: str = "6.8.0",
) -> bytes:
    """A SOAP 1.1 Fault with an MM7 RSErrorRsp (Client fault for 2xxx, Server otherwise)."""
    env = ET.Element("env:Envelope", {"xmlns:env": SOAP_ENV})
    if transaction_id:
        header = ET.SubElement(env, "env:Header")
        ET.SubElement(
            header, "mm7:TransactionID", {"xmlns:mm7": namespace, "env:mustUnderstand": "1"}
        ).text = transaction_id
    body = ET.SubElement(env, "env:Body")
    fault = ET.SubElement(body, "env:Fault")
    ET.SubElement(fault, "faultcode").text = (
        "env:Client" if 2000 <= status_code < 3000 else "env:Server"
    )
    ET.SubElement(fault, "faultstring").text = status_text
    detail = ET.SubElement(fault, "detail")
    rsp = ET.SubElement(detail, "RSErrorRsp", {"xmlns": namespace})
    ET.SubElement(rsp, "MM7Version").text = mm7_version
    status = ET.SubElement(rsp, "Status")
    ET.SubElement(status, "StatusCode").text = str(status_code)
    ET.SubElement(status, "StatusText").text = status_text
    ET.SubElement(status, "Details").text = details[:500]
    xml = ET.tostring(env, encoding="unicode", short_empty_elements=True)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + xml.encode("utf-8")


Correlate = Callable[[Mm7DeliveryReport], DeliveryReport | None]


def mm7_delivery_report_router(
    intake: ReportIntake, path: str = "/mm7/dr", correlate: Correlate | None = None
) -> APIRouter:
    """A router with ``POST path`` for MM7 DeliveryReportReq.

    ``correlate`` sees each report first: it returns the report to store when the report
    belongs to an MM mmsq sent (with that MM's number and edition), None otherwise (the report
    is then stored as it came).
    """
    router = APIRouter()
    # Reports wait in threads of their own (not the agent API's few): the intake stores the
    # reports that arrive together as one batch, so more waiting means larger batches.
    limiter: list[anyio.CapacityLimiter] = []

    def store(report: Mm7DeliveryReport) -> IntakeResult:
        matched = correlate(report) if correlate is not None else None
        return intake.accept(SOURCE, matched or report.to_report())

    @router.post(path, include_in_schema=False)
    async def delivery_report(request: Request) -> Response:
        request_id = request.headers.get("x-request-id") or uuid4().hex[:12]
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            body = await request.body()
            content_type = request.headers.get("content-type")
            if len(body) > _MAX_BODY:
                return await _malformed(intake, body, f"body over {_MAX_BODY} bytes")
            try:
                report = parse_delivery_report(body, content_type)
            except Mm7ParseError as exc:
                return await _malformed(intake, body, str(exc))
            try:
                if not limiter:
                    limiter.append(anyio.CapacityLimiter(_REPORT_THREADS))
                result = await anyio.to_thread.run_sync(store, report, limiter=limiter[0])
            except Exception as exc:
                intake.failed()
                log.error(
                    "report.store_failed",
                    error=f"{type(exc).__name__}: {exc}",
                    message_id=report.message_id,
                    exc_info=True,
                )
                fault = build_rs_error_fault(
                    3000,
                    "Server error",
                    "the report could not be stored now; send it again later",
                    report.namespace,
                    report.transaction_id,
                )
                return Response(fault, status_code=500, media_type=_XML)
            if result.outcome is IntakeOutcome.QUARANTINED:
                fault = build_rs_error_fault(
                    2007,
                    "Message format corrupt",
                    f"report refused and quarantined (batch {result.batch_id})",
                    report.namespace,
                    report.transaction_id,
                )
                return Response(fault, status_code=400, media_type=_XML)
            answer = build_delivery_report_rsp(report.transaction_id, report.namespace)
            return Response(answer, status_code=200, media_type=_XML)

    return router


async def _malformed(intake: ReportIntake, body: bytes, reason: str) -> Response:
    try:
        result = await run_in_threadpool(intake.reject, SOURCE, reason, body)
        details = f"{reason} (quarantined, batch {result.batch_id})"
    except Exception as exc:
        intake.failed()
        log.error("report.quarantine_failed", error=f"{type(exc).__name__}: {exc}")
        details = reason
    fault = build_rs_error_fault(2007, "Message format corrupt", details)
    return Response(fault, status_code=400, media_type=_XML)

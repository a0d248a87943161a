"""An MMSC for demos, tests and benchmarks: accepts MM7 SubmitReq, reports back, exports CDRs.

``MmscSimulator`` is the MMSC's behaviour without sockets: it answers a SubmitReq body, asks the
``OutcomeSource`` what happens to each MM, queues the MM7 DeliveryReportReq for submit time +
``MmsOutcome.delay_s`` on the simulated clock, sends due reports (``deliver_due``, retrying with
backoff on the same clock) and writes the nightly CDR export. ``mmsc_http.MmscServer`` puts it on
HTTP. Random choices (faults) come from one generator seeded by ``MmscConfig.seed``, so a run is
reproducible for the same inputs in the same order.
"""

from __future__ import annotations

import base64
import csv
import gzip as gzip_module
import heapq
import io
import math
import random
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Protocol, runtime_checkable
from zoneinfo import ZoneInfo

import structlog

from mmsq.msisdn import mask_msisdn
from mmsq.simulators.cdr_generator import CDR_HEADER
from mmsq.simulators.mm7_peer import (
    Mm7Error,
    SubmitRequest,
    build_delivery_report_req,
    build_fault,
    build_submit_rsp,
    is_phone_number,
    parse_delivery_report_rsp,
    parse_submit_req,
)
from mmsq.simulators.outcomes import MmsOutcome, OutcomeSource
from mmsq.simulators.vasp_client import HttpPoster, ReportPoster

__all__ = [
    "AcceptedMm",
    "CdrExport",
    "MmscConfig",
    "MmscFaults",
    "MmscSimulator",
    "MmscStats",
    "NowClock",
]

log = structlog.get_logger(__name__)

#: StatusText the simulator puts next to each MMStatus in a DeliveryReportReq.
_STATUS_TEXTS = {
    "Retrieved": "Message retrieved",
    "Expired": "Message expired before retrieval",
    "Rejected": "Message rejected",
    "Indeterminate": "Delivery status indeterminate",
    "Forwarded": "Message forwarded",
    "Deferred": "Retrieval deferred",
    "DeferredRetrieval": "Retrieval deferred",
    "Unrecognised": "Message unrecognised by the handset",
    "DeliveryConditionNotMet": "Delivery condition not met",
}
_MALFORMED_REPORTS = ("truncated", "no_mmstatus", "doctype")
_MALFORMED_ROWS = ("missing", "time", "msisdn", "columns")
#: A pending row in the CDR: accepted by the MMSC, no final report yet.
_PENDING = ("mm7", "1000", "")


@runtime_checkable
class NowClock(Protocol):
    """A clock object, as ``mmsq.ports.Clock``: ``now()`` returns the current datetime."""

    def now(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class MmscFaults:
    """Faults on demand. Probabilities are drawn from the seeded generator.

    ``unavailable_rate``/``unavailable_windows``: answer SubmitReq with 4006 Service unavailable
    (as a SOAP Fault, or as a SubmitRsp when ``unavailable_as_fault`` is false); windows are
    (start, end) on the simulated clock. ``response_delay_s``: wall-clock wait before every
    answer. ``malformed_report_rate``: share of DeliveryReportReq sent broken (truncated XML,
    no MMStatus, or a DTD). ``malformed_cdr_share``: share of CDR rows written malformed.
    """

    unavailable_rate: float = 0.0
    unavailable_windows: tuple[tuple[datetime, datetime], ...] = ()
    unavailable_as_fault: bool = True
    response_delay_s: float = 0.0
    malformed_report_rate: float = 0.0
    malformed_cdr_share: float = 0.0


@dataclass(frozen=True, slots=True)
class MmscConfig:
    """What the MMSC checks and where it reports.

    ``vaspid``/``vasid``/``service_codes``: when set, a SubmitReq must carry them (else 4001
    Improper identification, or 2001 Operation restricted for a ServiceCode). ``basic_auth``:
    (user, password) the VASP must present. ``vasp_url``: where DeliveryReportReq go (none: no
    reports). Reports are tried ``report_attempts`` times, waiting ``report_backoff_s`` doubled
    after each failure (simulated time). ``bulk_rate_per_s``: the sending rate that spreads a
    bulk edition's submit times. ``timezone``: the operator's, for CDR times and days.
    ``report_connections``: how many reports are POSTed at once (an MMSC keeps several
    connections to a VASP). ``cdr_mm7``: whether MMs submitted over MM7 are written to the
    CDR export too (a real MMSC's export holds every MM; a test of the newspaper's own figures
    may leave them out, their delivery reports still go to ``vasp_url``).
    """

    vaspid: str | None = None
    vasid: str | None = None
    service_codes: frozenset[str] = frozenset()
    basic_auth: tuple[str, str] | None = None
    vasp_url: str | None = None
    vasp_auth: tuple[str, str] | None = None
    relay_server_id: str = "mmsc.sim.invalid"
    mm7_version: str = "6.8.0"
    timezone: str = "Asia/Shanghai"
    seed: int = 0
    message_id_prefix: str = "MMSC"
    report_attempts: int = 4
    report_backoff_s: float = 30.0
    report_timeout_s: float = 5.0
    report_connections: int = 1
    bulk_rate_per_s: float = 500.0
    cdr_mm7: bool = True
    max_body_bytes: int = 4 * 1024 * 1024
    faults: MmscFaults = MmscFaults()


@dataclass(frozen=True, slots=True)
class MmscStats:
    """Counters since start: submissions, 4006 answers, reports and their failures."""

    submits_received: int = 0
    submits_accepted: int = 0
    submits_refused: int = 0
    unavailable_answers: int = 0
    recipients_accepted: int = 0
    bulk_records: int = 0
    reports_scheduled: int = 0
    reports_delivered: int = 0
    report_attempts_failed: int = 0
    reports_abandoned: int = 0
    reports_rejected: int = 0
    reports_malformed: int = 0
    refused_by_code: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AcceptedMm:
    """A SubmitReq the MMSC accepted, with the MessageID it answered."""

    message_id: str
    submitted_at: datetime
    request: SubmitRequest


@dataclass(frozen=True, slots=True)
class CdrExport:
    """What ``export_cdr`` wrote: data rows, of which malformed on purpose and still pending."""

    path: Path
    rows: int
    malformed: int
    pending: int


@dataclass(slots=True)
class _Report:
    """A DeliveryReportReq waiting to be sent (or re-sent)."""

    message_id: str
    recipient: str
    sender: str | None
    sender_kind: str
    done_ts: float
    mm_status: str
    namespace: str
    malformed: str | None
    attempt: int = 0


# One CDR record: msisdn, message sequence, edition, submit epoch seconds, outcome, imei, region.
_Record = tuple[str, int, str, float, MmsOutcome, str, str]


def _as_clock(clock: Callable[[], datetime] | NowClock | None) -> Callable[[], datetime]:
    if clock is None:
        return lambda: datetime.now(UTC)
    if isinstance(clock, NowClock):
        return clock.now
    return clock


class MmscSimulator:
    """The MMSC: SubmitReq in, outcomes recorded, delivery reports out, CDRs exported."""

    def __init__(
        self,
        outcomes: OutcomeSource,
        config: MmscConfig | None = None,
        clock: Callable[[], datetime] | NowClock | None = None,
        poster: ReportPoster | None = None,
    ) -> None:
        self.config = config or MmscConfig()
        self._outcomes = outcomes
        self._clock = _as_clock(clock)
        self._poster: ReportPoster = poster or HttpPoster()
        self._tz = ZoneInfo(self.config.timezone)
        self._faults = self.config.faults
        self._rng = random.Random(self.config.seed)  # noqa: S311 - a simulation, not secrets
        self._lock = threading.Lock()
        self._deliver_lock = threading.Lock()
        self._seq = 0
        self._report_seq = 0
        self._days: dict[date, list[_Record]] = {}
        self._queue: list[tuple[float, int, _Report]] = []
        self._counts: Counter[str] = Counter()
        self._refused: Counter[int] = Counter()
        self.accepted: list[AcceptedMm] = []

    # -- state ----------------------------------------------------------------------------

    @property
    def faults(self) -> MmscFaults:
        return self._faults

    @faults.setter
    def faults(self, value: MmscFaults) -> None:
        """Change the faults while running (a demo turns an outage on and off)."""
        self._faults = value

    def now(self) -> datetime:
        """The simulated time (a naive clock value is read in the operator's time zone)."""
        value = self._clock()
        return value if value.tzinfo else value.replace(tzinfo=self._tz)

    def stats(self) -> MmscStats:
        with self._lock:
            c = self._counts
            return MmscStats(
                **{name: c[name] for name in MmscStats.__dataclass_fields__ if name in c},
                refused_by_code=dict(self._refused),
            )

    @property
    def pending_reports(self) -> int:
        with self._lock:
            return len(self._queue)

    def next_report_due(self) -> datetime | None:
        """When the earliest queued report is due (None when none is queued)."""
        with self._lock:
            return datetime.fromtimestamp(self._queue[0][0], UTC) if self._queue else None

    def message_id(self, seq: int) -> str:
        return f"{self.config.message_id_prefix}{seq:010X}"

    def authorised(self, authorization: str | None) -> bool:
        """Check an HTTP Authorization header against ``basic_auth`` (always true when unset)."""
        expected = self.config.basic_auth
        if expected is None:
            return True
        if not authorization or not authorization.lower().startswith("basic "):
            return False
        try:
            raw = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return False
        user, sep, password = raw.partition(":")
        return bool(sep) and (user, password) == expected

    # -- SubmitReq --------------------------------------------------------------------------

    def handle_submit(self, body: bytes, content_type: str | None) -> tuple[int, bytes]:
        """Answer one MM7 request body: (HTTP status, SOAP envelope)."""
        now = self.now()
        with self._lock:
            self._counts["submits_received"] += 1
        try:
            request = parse_submit_req(body, content_type)
            if self._unavailable(now):
                with self._lock:
                    self._counts["unavailable_answers"] += 1
                raise Mm7Error(
                    4006,
                    "the MMSC is overloaded, try again later",
                    fault=self._faults.unavailable_as_fault,
                    transaction_id=request.transaction_id,
                    namespace=request.namespace,
                )
            self._validate(request)
        except Mm7Error as exc:
            with self._lock:
                self._counts["submits_refused"] += 1
                self._refused[exc.status_code] += 1
            log.info("mmsc.submit_refused", status_code=exc.status_code, reason=exc.detail)
            if exc.fault:
                return 500, build_fault(exc, self.config.mm7_version)
            return 200, build_submit_rsp(
                exc.transaction_id,
                exc.namespace,
                self.config.mm7_version,
                exc.status_code,
                details=exc.detail,
            )
        message_id = self._accept(request, now)
        return 200, build_submit_rsp(
            request.transaction_id,
            request.namespace,
            request.mm7_version or self.config.mm7_version,
            1000,
            message_id,
        )

    def _unavailable(self, now: datetime) -> bool:
        faults = self._faults
        if any(start <= now < end for start, end in faults.unavailable_windows):
            return True
        if faults.unavailable_rate > 0:
            with self._lock:
                return self._rng.random() < faults.unavailable_rate
        return False

    def _validate(self, req: SubmitRequest) -> None:
        cfg = self.config

        def refuse(code: int, detail: str) -> Mm7Error:
            return Mm7Error(
                code,
                detail,
                fault=False,
                transaction_id=req.transaction_id,
                namespace=req.namespace,
            )

        if cfg.vaspid is not None and req.vaspid != cfg.vaspid:
            raise refuse(4001, f"unknown VASPID {req.vaspid!r}")
        if cfg.vasid is not None and req.vasid != cfg.vasid:
            raise refuse(4001, f"unknown VASID {req.vasid!r}")
        if cfg.service_codes and req.service_code not in cfg.service_codes:
            raise refuse(2001, f"ServiceCode {req.service_code!r} not allowed for this VASP")
        if not req.recipients:
            raise refuse(2002, "no recipient (To, Cc or Bcc)")
        bad = [a for _f, kind, a in req.recipients if kind == "Number" and not is_phone_number(a)]
        if bad:
            raise refuse(2002, f"invalid recipient Number {mask_msisdn(bad[0])!r}")
        if not req.numbers:
            raise refuse(2002, "no recipient Number this MMSC can route")

    def _accept(self, req: SubmitRequest, now: datetime) -> str:
        ts = now.timestamp()
        edition = req.service_code or req.vasid or "mm7"
        sender_kind = req.sender_kind if req.sender_kind in ("Number", "ShortCode") else "ShortCode"
        sender = req.sender_address if req.sender_kind in ("Number", "ShortCode") else None
        rows = self._rows_for(now) if self.config.cdr_mm7 else []
        want_report = req.delivery_report and self.config.vasp_url is not None
        with self._lock:
            self._seq += 1
            seq = self._seq
            message_id = self.message_id(seq)
            for msisdn in req.numbers:
                outcome = self._outcomes.mms_outcome(msisdn)
                rows.append(
                    (
                        msisdn,
                        seq,
                        edition,
                        ts,
                        outcome,
                        self._outcomes.imei(msisdn) or "",
                        self._outcomes.region(msisdn) or "",
                    )
                )
                if want_report:
                    self._schedule(
                        _Report(
                            message_id=message_id,
                            recipient=msisdn,
                            sender=sender,
                            sender_kind=sender_kind,
                            done_ts=ts + outcome.delay_s,
                            mm_status=outcome.mm_status,
                            namespace=req.namespace,
                            malformed=self._malformed_kind(),
                        ),
                        ts + outcome.delay_s,
                    )
            self._counts["submits_accepted"] += 1
            self._counts["recipients_accepted"] += len(req.numbers)
            self.accepted.append(AcceptedMm(message_id, now, req))
        log.info(
            "mmsc.submit_accepted",
            message_id=message_id,
            recipients=[mask_msisdn(n) for n in req.numbers],
            parts=len(req.parts),
        )
        return message_id

    def _rows_for(self, when: datetime) -> list[_Record]:
        day = when.astimezone(self._tz).date()
        with self._lock:
            return self._days.setdefault(day, [])

    # -- bulk editions ----------------------------------------------------------------------

    def run_bulk_edition(self, edition: str, msisdns: Sequence[str], submitted_at: datetime) -> int:
        """Send ``edition`` to every subscriber in-process (the content platform's own traffic).

        Each MM is recorded with its outcome exactly like an HTTP submission, without HTTP and
        without delivery reports (they go to the content platform, not to mmsq). Submit times
        are spread at ``bulk_rate_per_s`` from ``submitted_at``. Returns the number recorded.
        """
        if submitted_at.tzinfo is None:
            submitted_at = submitted_at.replace(tzinfo=self._tz)
        # A population that can draw a whole edition at once (``mms_outcomes``) is asked once;
        # the outcomes are the same as asking message by message, only faster.
        batch = getattr(self._outcomes, "mms_outcomes", None)
        drawn = (
            batch(msisdns) if callable(batch) else [self._outcomes.mms_outcome(m) for m in msisdns]
        )
        imei_of = self._outcomes.imei
        region_of = self._outcomes.region
        step = 1.0 / self.config.bulk_rate_per_s
        t0 = submitted_at.timestamp()
        n = len(msisdns)
        with self._lock:
            seq0 = self._seq + 1
            self._seq += n
            i = 0
            while i < n:
                local = datetime.fromtimestamp(t0 + i * step, self._tz)
                midnight = datetime.combine(
                    local.date() + timedelta(days=1), time(), tzinfo=self._tz
                ).timestamp()
                # Records sent before the next local midnight go to this day's list.
                end = min(n, max(i + 1, math.ceil((midnight - t0) / step)))
                append = self._days.setdefault(local.date(), []).append
                for j in range(i, end):
                    m = msisdns[j]
                    append(
                        (
                            m,
                            seq0 + j,
                            edition,
                            t0 + j * step,
                            drawn[j],
                            imei_of(m) or "",
                            region_of(m) or "",
                        )
                    )
                i = end
            self._counts["bulk_records"] += n
        return n

    # -- delivery reports -------------------------------------------------------------------

    def _schedule(self, report: _Report, due_ts: float) -> None:
        """Queue a report; the caller holds the lock."""
        self._report_seq += 1
        heapq.heappush(self._queue, (due_ts, self._report_seq, report))
        if report.attempt == 0:
            self._counts["reports_scheduled"] += 1

    def _malformed_kind(self) -> str | None:
        """Draw whether the next report goes out broken; the caller holds the lock."""
        rate = self._faults.malformed_report_rate
        if rate > 0 and self._rng.random() < rate:
            return _MALFORMED_REPORTS[self._rng.randrange(len(_MALFORMED_REPORTS))]
        return None

    def deliver_due(self, now: datetime | None = None) -> int:
        """Send every report due at ``now`` (default: the clock); returns how many were accepted.

        A connection error, a timeout, an HTTP 5xx or a 3xxx/4xxx StatusCode is retried after
        ``report_backoff_s`` x 2^(attempt-1) simulated seconds, up to ``report_attempts`` tries.
        """
        moment = (now or self.now()).timestamp()
        delivered = 0
        with self._deliver_lock:
            with self._lock:
                due: list[_Report] = []
                while self._queue and self._queue[0][0] <= moment:
                    due.append(heapq.heappop(self._queue)[2])
            width = min(self.config.report_connections, len(due))
            if width > 1:
                with ThreadPoolExecutor(width, thread_name_prefix="mmsc-report") as pool:
                    delivered = sum(pool.map(lambda r: self._send(r, moment), due))
            else:
                for report in due:
                    delivered += self._send(report, moment)
        return delivered

    def _send(self, report: _Report, moment: float) -> int:
        url = self.config.vasp_url
        if url is None:
            return 0
        with self._lock:
            self._report_seq += 1
            tid = f"{self.config.message_id_prefix}-dr-{self._report_seq}"
        body = self._report_body(report, tid)
        headers = {"Content-Type": 'text/xml; charset="utf-8"', "SOAPAction": '""'}
        if self.config.vasp_auth is not None:
            token = base64.b64encode(":".join(self.config.vasp_auth).encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        report.attempt += 1
        try:
            status, answer_body = self._poster.post(
                url, body, headers, self.config.report_timeout_s
            )
        except OSError as exc:
            return self._failed(report, moment, f"{type(exc).__name__}: {exc}")
        answer = parse_delivery_report_rsp(answer_body)
        with self._lock:
            if report.malformed is not None:
                self._counts["reports_malformed"] += 1
                return 0
        code = answer.status_code
        if 200 <= status < 300 and code is not None and 1000 <= code < 2000:
            with self._lock:
                self._counts["reports_delivered"] += 1
            return 1
        retryable = status >= 500 or (code is not None and code >= 3000)
        if code is not None and 2000 <= code < 3000:
            retryable = False
        if retryable:
            return self._failed(report, moment, f"HTTP {status}, StatusCode {code}")
        with self._lock:
            self._counts["reports_rejected"] += 1
        log.warning(
            "mmsc.report_rejected", message_id=report.message_id, http=status, status_code=code
        )
        return 0

    def _failed(self, report: _Report, moment: float, why: str) -> int:
        with self._lock:
            self._counts["report_attempts_failed"] += 1
            if report.attempt >= self.config.report_attempts:
                self._counts["reports_abandoned"] += 1
                abandoned = True
            else:
                wait = self.config.report_backoff_s * 2 ** (report.attempt - 1)
                self._schedule(report, moment + wait)
                abandoned = False
        log.warning(
            "mmsc.report_failed",
            message_id=report.message_id,
            attempt=report.attempt,
            abandoned=abandoned,
            reason=why,
        )
        return 0

    def _report_body(self, report: _Report, tid: str) -> bytes:
        status_text = _STATUS_TEXTS.get(report.mm_status, f"Status {report.mm_status}")
        body: bytes = build_delivery_report_req(
            transaction_id=tid,
            namespace=report.namespace,
            mm7_version=self.config.mm7_version,
            relay_server_id=self.config.relay_server_id,
            message_id=report.message_id,
            recipient=report.recipient,
            sender=report.sender,
            sender_kind=report.sender_kind,
            date=self._iso(report.done_ts),
            mm_status=report.mm_status,
            status_text=status_text,
        )
        if report.malformed == "truncated":
            return body[: len(body) // 2]
        if report.malformed == "no_mmstatus":
            start = body.index(b"<MMStatus>")
            end = body.index(b"</MMStatus>") + len(b"</MMStatus>")
            return body[:start] + body[end:]
        if report.malformed == "doctype":
            decl, _, rest = body.partition(b"\n")
            return decl + b'\n<!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n' + rest
        return body

    def _iso(self, ts: float) -> str:
        return datetime.fromtimestamp(int(ts), self._tz).isoformat()

    # -- CDR export -------------------------------------------------------------------------

    def export_cdr(
        self, day: date, path: Path, gzip: bool = False, *, as_of: datetime | None = None
    ) -> CdrExport:
        """Write the nightly CDR export of the MMs submitted on ``day`` (operator time zone).

        A record whose outcome is not reached by ``as_of`` (default: the clock) is written as
        pending: ``mm7``/``1000`` with an empty ``done_at``. ``malformed_cdr_share`` of the rows
        are broken on purpose (the same rows for the same seed and day).
        """
        cutoff = (as_of or self.now()).timestamp()
        with self._lock:
            records = list(self._days.get(day, ()))
        share = self._faults.malformed_cdr_share
        rng = random.Random(f"{self.config.seed}:{day.isoformat()}")  # noqa: S311 - simulation
        n_bad = round(len(records) * share) if share > 0 else 0
        broken = dict.fromkeys(rng.sample(range(len(records)), n_bad)) if n_bad else {}
        iso_cache: dict[int, str] = {}
        tz = self._tz

        def iso(ts: float) -> str:
            key = int(ts)
            text = iso_cache.get(key)
            if text is None:
                text = datetime.fromtimestamp(key, tz).isoformat()
                iso_cache[key] = text
            return text

        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(CDR_HEADER)
        pending = 0
        message_id = self.message_id
        for index, (msisdn, seq, edition, ts, outcome, imei, region) in enumerate(records):
            done_ts = ts + outcome.delay_s
            if done_ts <= cutoff:
                done = iso(done_ts)
                source, code, notify = (
                    outcome.status_source,
                    outcome.status_code,
                    outcome.notify_status,
                )
            else:
                pending += 1
                done = ""
                source, code, notify = _PENDING
            row = [
                msisdn,
                message_id(seq),
                edition,
                iso(ts),
                done,
                source,
                code,
                notify,
                imei,
                region,
            ]
            if index in broken:
                row = self._malform(row, rng.choice(_MALFORMED_ROWS))
            writer.writerow(row)
        data = buffer.getvalue().encode("utf-8")
        path.parent.mkdir(parents=True, exist_ok=True)
        if gzip:
            with gzip_module.open(path, "wb", compresslevel=1) as fh:
                fh.write(data)
        else:
            path.write_bytes(data)
        return CdrExport(path, len(records), n_bad, pending)

    @staticmethod
    def _malform(row: list[str], kind: str) -> list[str]:
        row = list(row)
        if kind == "missing":
            row[1] = ""
        elif kind == "time":
            row[3] = "22/11/2026 7am"
        elif kind == "msisdn":
            row[0] = "12345"
        else:
            row = row[:5]
        return row

    def records_on(self, day: date) -> int:
        """How many MMs (one per recipient) were submitted on ``day``."""
        with self._lock:
            return len(self._days.get(day, ()))

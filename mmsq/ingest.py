"""Ingest: raw delivery reports -> validated, classified, stored events and daily aggregates.

All per-row work is vectorised with pandas; Python-level work is done once per distinct
(namespace, code) combination, never once per row.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from queue import Empty, Full, Queue
from typing import Any, TypeVar
from uuid import uuid4
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pandas as pd
import structlog

from mmsq.classify import Classifier
from mmsq.domain import CAUSE_CLASSES, CauseClass, DeliveryReport, QuarantinedRecord
from mmsq.msisdn import MsisdnNormaliser
from mmsq.ports import Clock, EventStore, IngestWriter, RawChunk, ReportReader, StoredChunk
from mmsq.text_columns import epoch_seconds as _epoch_seconds
from mmsq.text_columns import parse_times as _parse_times
from mmsq.text_hash import hash_text

__all__ = [
    "AGGREGATE_COUNTS",
    "EVENT_COLUMNS",
    "INPUT_COLUMNS",
    "REQUIRED_COLUMNS",
    "IngestService",
    "IngestSummary",
    "ReportOutcome",
    "reports_to_frame",
]

log = structlog.get_logger(__name__)

INPUT_COLUMNS: tuple[str, ...] = (
    "msisdn",
    "message_id",
    "edition",
    "submitted_at",
    "done_at",
    "status_source",
    "status_code",
    "notify_status",
    "imei",
    "region",
    "error_code",
)
REQUIRED_COLUMNS: tuple[str, ...] = (
    "msisdn",
    "message_id",
    "edition",
    "submitted_at",
    "status_source",
    "status_code",
)
#: Columns of the events frame handed to the store, in order.
EVENT_COLUMNS: tuple[str, ...] = (
    "event_key",
    "msisdn",
    "message_id",
    "edition",
    "status_source",
    "status_code",
    "error_code",
    "cause",
    "final",
    "notify_ok",
    "imei",
    "region",
    "submitted_ts",
    "done_ts",
    "day",
)
#: Counters kept per (msisdn, day); each is summed on upsert.
AGGREGATE_COUNTS: tuple[str, ...] = (
    "attempts",
    "final",
    "delivered",
    "notified_not_fetched",
    *(f"c_{c}" for c in CAUSE_CLASSES),
)


@dataclass(frozen=True, slots=True)
class ReportOutcome:
    """What became of one pushed report: ``stored``, ``duplicate`` or ``quarantined``."""

    status: str
    cause: str | None = None
    reason: str | None = None


@dataclass
class IngestSummary:
    """What one ingest run did; rendered as the CLI's table or its ``--json`` document."""

    batch_id: str
    sources: list[str] = field(default_factory=list)
    records: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    by_cause: Counter[str] = field(default_factory=Counter)
    unknown_codes: Counter[str] = field(default_factory=Counter)
    failed_sources: dict[str, str] = field(default_factory=dict)
    #: Seconds per stage, summed over sources: ``read`` (file to text columns, and their
    #: checks) and ``prepare`` (quarantine, classify, keys) run in two worker threads,
    #: overlapping ``store`` (keys, segments) and ``wait`` (the store waiting for the
    #: workers); ``fold`` is the end of each source (aggregates, devices, editions, commit).
    seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))

    def as_dict(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "sources": self.sources,
            "records": self.records,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "quarantined": self.quarantined,
            "by_cause": dict(sorted(self.by_cause.items())),
            "unknown_codes": dict(self.unknown_codes.most_common()),
            "failed_sources": self.failed_sources,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }

    @property
    def nothing_read(self) -> bool:
        return self.records == 0 and self.quarantined == 0


def reports_to_frame(reports: Iterable[DeliveryReport], first_line: int = 1) -> pd.DataFrame:
    """Single reports (MM7 DeliveryReportReq, SMPP receipts) in the shape of a CDR chunk."""
    rows = []
    for i, r in enumerate(reports):
        when = r.submitted_at or r.done_at
        rows.append(
            {
                "msisdn": r.msisdn,
                "message_id": r.message_id,
                "edition": r.edition or "",
                "submitted_at": when.isoformat() if when else "",
                "done_at": r.done_at.isoformat() if r.done_at else "",
                "status_source": r.status_source,
                "status_code": r.status_code,
                "notify_status": r.notify_status or "",
                "imei": r.imei or "",
                "region": r.region or "",
                "error_code": r.error_code or "",
                "_line": first_line + i,
            }
        )
    frame = pd.DataFrame(rows, columns=[*INPUT_COLUMNS, "_line"])
    for col in INPUT_COLUMNS:
        frame[col] = frame[col].astype("string")
    return frame


_T = TypeVar("_T")


def _run_ahead(
    items: Iterable[_T], name: str, spent: defaultdict[str, float], stage: str
) -> Iterator[_T]:
    """Iterate ``items`` in a worker thread, one item ahead of the consumer.

    Exceptions of the worker are re-raised in the consumer; when the consumer stops early
    (or fails), the worker is told to stop and joined, never left running. The time the
    worker spends producing items is added to ``spent[stage]``.
    """
    end = object()
    queue: Queue[object] = Queue(maxsize=1)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                queue.put(item, timeout=0.1)
                return True
            except Full:
                continue
        return False

    def work() -> None:
        try:
            it = iter(items)
            while True:
                t0 = time.perf_counter()
                item = next(it, end)
                spent[stage] += time.perf_counter() - t0
                if not put(item) or item is end:
                    return
        except BaseException as exc:  # handed to the consumer, re-raised there
            put(exc)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=work, name=name, daemon=True)
    worker.start()
    try:
        while True:
            item = queue.get()
            if item is end:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        while worker.is_alive():
            with contextlib.suppress(Empty):
                queue.get(timeout=0.1)
        worker.join()


@dataclass
class _Prepared:
    """A chunk validated and classified, ready to store."""

    chunk: RawChunk
    quarantine: list[QuarantinedRecord]
    events: pd.DataFrame
    records: int
    by_cause: dict[str, int]
    unknown_counts: dict[tuple[str, str], int]
    duplicates: int


class _Checked:
    """A chunk whose fields are checked: why each row is rejected (an index into
    ``reasons``, -1 if it is not), its normalised MSISDNs and parsed times, and its text
    columns stripped so far (each is stripped once, for the checks and the output alike)."""

    def __init__(self, chunk: RawChunk, df: pd.DataFrame) -> None:
        self.chunk = chunk
        self.df = df
        self.reasons: list[str] = []
        self.reason = np.full(len(df), -1, dtype=np.int16)
        self.stripped: dict[str, pd.Series] = {}
        self.msisdn = pd.Series(dtype="string")
        self.submitted = pd.Series(dtype="datetime64[ns, UTC]")
        self.done = pd.Series(dtype="datetime64[ns, UTC]")

    def strip(self, col: str) -> pd.Series:
        if col not in self.stripped:
            self.stripped[col] = self.df[col].str.strip()
        return self.stripped[col]

    def blank(self, col: str) -> npt.NDArray[np.bool_]:
        text = self.strip(col)
        return (text.isna() | (text == "")).to_numpy(dtype=bool, na_value=True)

    def reject(self, mask: pd.Series | npt.NDArray[np.bool_], why: str) -> None:
        fresh = np.asarray(mask, dtype=bool) & (self.reason < 0)
        if fresh.any():
            self.reason[fresh] = len(self.reasons)
            self.reasons.append(why)


class IngestService:
    """Turns raw chunks into stored events; bad rows go to quarantine, never abort the batch."""

    def __init__(
        self,
        store: EventStore,
        classifier: Classifier,
        normaliser: MsisdnNormaliser,
        clock: Clock,
        timezone: str,
        notify_status_source: str = "cmpp",
    ) -> None:
        self._store = store
        self._classifier = classifier
        self._normaliser = normaliser
        self._clock = clock
        self._tz = ZoneInfo(timezone)
        self._notify_ns = notify_status_source
        self._unknown_logged: set[tuple[str, str]] = set()

    def ingest(
        self,
        readers: Iterable[ReportReader],
        progress: Callable[[str, int], None] | None = None,
        on_source_error: Callable[[str, Exception], None] | None = None,
    ) -> IngestSummary:
        """Ingest every reader; a reader that cannot be read at all is reported, not fatal."""
        summary = IngestSummary(batch_id=uuid4().hex)
        self._store.start_batch(summary.batch_id, "ingest", self._clock.now())
        for reader in readers:
            summary.sources.append(reader.source)
            # One transaction per source: its aggregates are folded in once, at the end.
            with self._store.ingest_session() as writer:
                try:
                    waited = time.perf_counter()
                    for prepared in self._prepared_chunks(reader, summary.seconds):
                        started = time.perf_counter()
                        summary.seconds["wait"] += started - waited
                        self._store_prepared(prepared, summary, writer)
                        if progress is not None:
                            progress(reader.source, prepared.chunk.bytes_read)
                        waited = time.perf_counter()
                        summary.seconds["store"] += waited - started
                except (OSError, ValueError) as exc:
                    summary.failed_sources[reader.source] = str(exc)
                    log.error("ingest.source_failed", source=reader.source, error=str(exc))
                    if on_source_error is not None:
                        on_source_error(reader.source, exc)
                folding = time.perf_counter()
            summary.seconds["fold"] += time.perf_counter() - folding
        self._store.finish_batch(summary.batch_id, self._clock.now(), summary.as_dict())
        log.info(
            "ingest.summary",
            batch_id=summary.batch_id,
            records=summary.records,
            stored=summary.stored,
            duplicates=summary.duplicates,
            quarantined=summary.quarantined,
            unknown_codes=len(summary.unknown_codes),
            seconds=summary.as_dict()["seconds"],
        )
        return summary

    def ingest_reports(self, source: str, reports: Sequence[DeliveryReport]) -> IngestSummary:
        """Ingest single reports (an MM7 DeliveryReportReq, SMPP receipts) like CDR rows."""
        return self.ingest_report_batch(source, reports)[0]

    def ingest_report_batch(
        self, source: str, reports: Sequence[DeliveryReport]
    ) -> tuple[IngestSummary, list[ReportOutcome]]:
        """Single reports in one transaction, with what happened to each (stored, a
        duplicate of an event stored before or earlier in the batch, or quarantined)."""
        summary = IngestSummary(batch_id=uuid4().hex, sources=[source])
        if not reports:
            return summary, []
        # A receipt need not name the edition: correlation with what was sent supplies it.
        required = tuple(c for c in REQUIRED_COLUMNS if c != "edition")
        chunk = RawChunk(source=source, frame=reports_to_frame(reports), required=required)
        prepared = self._prepare_chunk(chunk)
        with self._store.ingest_session() as writer:
            stored = self._store_prepared(prepared, summary, writer)
        reasons = {q.line - 1: q.reason for q in prepared.quarantine}
        events = prepared.events
        key_of = dict(zip(events.index.tolist(), events["event_key"].tolist(), strict=True))
        cause_of = dict(zip(events.index.tolist(), events["cause"].astype(str), strict=True))
        new_keys = set(stored.new_keys.tolist()) if stored is not None else set()
        outcomes: list[ReportOutcome] = []
        for i in range(len(reports)):
            if i in reasons:
                outcomes.append(ReportOutcome("quarantined", None, reasons[i]))
            elif i not in key_of:  # the same report twice in the batch
                outcomes.append(ReportOutcome("duplicate", None))
            else:
                new = key_of[i] in new_keys
                outcomes.append(ReportOutcome("stored" if new else "duplicate", cause_of[i]))
        return summary, outcomes

    def ingest_chunk(self, chunk: RawChunk, summary: IngestSummary, writer: IngestWriter) -> None:
        """Validate, classify and store one chunk."""
        self._store_prepared(self._prepare_chunk(chunk), summary, writer)

    def _prepare_chunk(self, chunk: RawChunk | _Checked) -> _Prepared:
        """The CPU half of a chunk (no store access): safe to run ahead in another thread.
        ``chunk`` may have been checked already (``_check``, in the reading thread)."""
        checked = chunk if isinstance(chunk, _Checked) else self._check(chunk)
        chunk = checked.chunk
        quarantine = list(chunk.quarantined)
        events = self._prepare(checked, quarantine)
        unknown_counts: dict[tuple[str, str], int] = {}
        by_cause: dict[str, int] = {}
        duplicates = 0
        if not events.empty:
            by_cause = {str(k): int(v) for k, v in events["cause"].value_counts().items() if v}
            unknown = events.loc[~events["_known"], ["status_source", "status_code"]]
            if not unknown.empty:
                unknown_counts = {
                    (str(key[0]), str(key[1])): int(n)  # type: ignore[index]
                    for key, n in unknown.value_counts().items()
                }
            records = len(events)
            repeated = events["event_key"].duplicated().to_numpy()
            duplicates = int(repeated.sum())
            if duplicates:
                events = events.loc[~repeated]
            events = events.loc[:, list(EVENT_COLUMNS)]
        else:
            records = 0
        return _Prepared(chunk, quarantine, events, records, by_cause, unknown_counts, duplicates)

    def _store_prepared(
        self, prepared: _Prepared, summary: IngestSummary, writer: IngestWriter
    ) -> StoredChunk | None:
        if prepared.quarantine:
            writer.add_quarantine(summary.batch_id, prepared.quarantine)
        summary.quarantined += len(prepared.quarantine)
        summary.records += prepared.records
        if prepared.events.empty:
            return None
        summary.by_cause.update(prepared.by_cause)
        if prepared.unknown_counts:
            for (ns, code), n in prepared.unknown_counts.items():
                summary.unknown_codes[f"{ns}:{code}"] += n
                if (ns, code) not in self._unknown_logged:
                    self._unknown_logged.add((ns, code))
                    log.warning("ingest.unknown_code", namespace=ns, code=code)
            writer.record_unknown_codes(prepared.unknown_counts, self._clock.now())
        summary.duplicates += prepared.duplicates
        result = writer.add_events(prepared.events)
        summary.stored += result.stored
        summary.duplicates += result.duplicates
        return result

    def _prepared_chunks(
        self, reader: ReportReader, seconds: defaultdict[str, float] | None = None
    ) -> Iterator[_Prepared]:
        """A three-stage pipeline: one thread reads and parses chunks and checks their fields
        (required values, MSISDNs, times), another classifies them and makes their keys, the
        caller stores them. Arrow parsing, pandas kernels and SQLite release the GIL, so on two
        cores the stages overlap. Each hand-over holds at most one chunk, so at most five
        chunks are in memory at a time. (The checks run in the reading thread because the
        preparing one was the slowest of the three: the pipeline went at its pace while the
        reading thread waited for it about half the time.)"""
        spent: defaultdict[str, float] = defaultdict(float)
        try:
            raw = _run_ahead(
                (self._check(c) for c in reader.chunks()), "ingest-read", spent, "read"
            )
            yield from _run_ahead(
                (self._prepare_chunk(c) for c in raw), "ingest-prepare", spent, "prepare"
            )
        finally:
            if seconds is not None:
                for stage, secs in spent.items():
                    seconds[stage] += secs

    # -- preparation -------------------------------------------------------------------

    def _check(self, chunk: RawChunk) -> _Checked:
        """The first half of preparing a chunk: which rows are rejected and why (required
        values, MSISDNs, times), with the normalised MSISDNs and parsed times."""
        df = chunk.frame
        for col in INPUT_COLUMNS:
            if col not in df.columns:
                df[col] = pd.Series(pd.NA, index=df.index, dtype="string")
        checked = _Checked(chunk, df)
        for col in chunk.required or REQUIRED_COLUMNS:
            checked.reject(checked.blank(col), f"missing required field {col}")
        checked.msisdn = self._normaliser.normalise_series(df["msisdn"])
        checked.reject(checked.msisdn.isna(), "invalid MSISDN")
        checked.submitted = _parse_times(df["submitted_at"], self._tz)
        checked.reject(checked.submitted.isna(), "unparsable submitted_at (ISO 8601 expected)")
        checked.done = _parse_times(df["done_at"], self._tz)
        checked.reject(
            checked.done.isna().to_numpy() & ~checked.blank("done_at"),
            "unparsable done_at (ISO 8601 expected)",
        )
        return checked

    def _prepare(self, checked: _Checked, quarantine: list[QuarantinedRecord]) -> pd.DataFrame:
        """The second half: rejected rows quarantined, the others classified and keyed."""
        chunk, df = checked.chunk, checked.df
        reason, reasons, strip = checked.reason, checked.reasons, checked.strip
        msisdn, submitted, done = checked.msisdn, checked.submitted, checked.done

        def none_if_blank(col: str) -> pd.Series:
            text = strip(col)[ok]
            return text.where(text != "")

        bad = reason >= 0
        if bad.any():
            raw = df.loc[bad].drop(columns=["_line"]).fillna("").astype("string")
            cols = list(raw.columns)
            others: list[pd.Series] = [raw[c] for c in cols[1:]]
            texts = raw[cols[0]].str.cat(others, sep=",")  # type: ignore[arg-type]
            quarantine.extend(
                QuarantinedRecord(chunk.source, int(line), reasons[why], str(text))
                for line, why, text in zip(
                    df.loc[bad, "_line"], reason[bad].tolist(), texts, strict=True
                )
            )
        ok = ~bad
        if not ok.any():
            return pd.DataFrame(columns=[*EVENT_COLUMNS, "_known"])
        out = pd.DataFrame(
            {
                "msisdn": msisdn[ok],
                "message_id": strip("message_id")[ok],
                "edition": none_if_blank("edition"),
                "status_source": strip("status_source")[ok].str.lower(),
                "status_code": strip("status_code")[ok],
                "error_code": none_if_blank("error_code"),
                "region": none_if_blank("region"),
            }
        )
        imei = strip("imei")[ok]
        out["imei"] = imei.where(imei.str.fullmatch(r"\d{14,16}", na=False))
        self._classify(out)
        out["notify_ok"] = self._notify_ok(strip("notify_status")[ok])
        sub = submitted[ok]
        out["submitted_ts"] = _epoch_seconds(sub)
        out["done_ts"] = _epoch_seconds(done[ok])
        local_days = (
            sub.dt.tz_convert(self._tz)
            .dt.tz_localize(None)
            .to_numpy(dtype="datetime64[ns]")
            .astype("datetime64[D]")
        )
        days = pd.Categorical(local_days)
        categories = np.asarray(days.categories, dtype="datetime64[D]").astype(str)
        # Categorical: the few day texts are not made once per row, nor hashed again.
        out["day"] = pd.Categorical.from_codes(days.codes, categories=pd.Index(categories))
        out["event_key"] = _event_keys(
            out["msisdn"],
            out["message_id"],
            out["status_source"],
            _casefold(out["status_code"]),
            out["done_ts"].fillna(-1),
            distinct=(0, 1),
        )
        return out

    def _classify(self, out: pd.DataFrame) -> None:
        """Classify once per distinct (namespace, code, secondary code), spread by codes."""
        src_codes, sources = pd.factorize(out["status_source"], use_na_sentinel=False)
        code_codes, status_codes = pd.factorize(out["status_code"], use_na_sentinel=False)
        err_codes, errors = pd.factorize(out["error_code"], use_na_sentinel=False)
        n_codes, n_errors = len(status_codes), len(errors)
        combo = (src_codes.astype(np.int64) * n_codes + code_codes) * n_errors + err_codes
        codes, uniques = pd.factorize(combo)
        causes: list[int] = []
        finals: list[bool] = []
        known: list[bool] = []
        for g in uniques.tolist():
            rest, e = divmod(g, n_errors)
            s, c = divmod(rest, n_codes)
            ns, code, err = sources[s], status_codes[c], errors[e]
            found = self._classifier.lookup(
                "" if pd.isna(ns) else str(ns),
                "" if pd.isna(code) else str(code),
                None if pd.isna(err) else str(err),
            )
            causes.append(CAUSE_CLASSES.index(found.cause.value))
            finals.append(found.final)
            known.append(found.known)
        out["cause"] = pd.Categorical.from_codes(
            np.asarray(causes, dtype=np.int64)[codes], categories=pd.Index(CAUSE_CLASSES)
        )
        out["final"] = np.asarray(finals, dtype=bool)[codes]
        out["_known"] = np.asarray(known, dtype=bool)[codes]

    def _notify_ok(self, notify: pd.Series) -> pd.Series:
        """1 where the notification push was delivered, 0 where not, <NA> where not reported
        (``notify`` is stripped); each distinct code is classified once."""
        codes, uniques = pd.factorize(notify)
        ok = np.asarray(
            [
                -1
                if not str(c)
                else int(
                    self._classifier.lookup(self._notify_ns, str(c)).cause is CauseClass.DELIVERED
                )
                for c in uniques
            ]
            + [-1],
            dtype=np.int8,
        )
        values = ok[codes]  # code -1 (missing) takes the -1 appended last
        return pd.Series(pd.arrays.IntegerArray(values, values < 0), index=notify.index)


def _event_keys(*columns: pd.Series, distinct: Collection[int]) -> npt.NDArray[np.int64]:
    """The identity of each row: ``pd.util.hash_pandas_object`` of a frame of ``columns``
    (without the index), as int64, as event keys have always been made.

    Computed column by column. pandas hashes a text column by its distinct values, each
    made a Python string first: right for the few codes of a status column, wasted work for
    the columns at positions ``distinct`` (MSISDNs, message ids: nearly all different), which
    are hashed row by row from Arrow's bytes instead (``hash_text``, the same hashes). The
    per-column hashes are folded as pandas folds them (CPython's tuple hash); a unit test
    holds the result to pandas' own."""
    hashes: list[npt.NDArray[np.uint64]] = []
    for i, col in enumerate(columns):
        if i in distinct and isinstance(col.dtype, pd.StringDtype):
            hashes.append(hash_text(col))
        else:
            hashes.append(pd.util.hash_array(col.array))
    mult = np.uint64(1000003)
    out = np.full(len(hashes[0]), 0x345678, dtype=np.uint64)
    for i, h in enumerate(hashes):
        inverse_i = len(hashes) - i
        out ^= h
        out *= mult
        mult += np.uint64(82520 + inverse_i + inverse_i)
    out += np.uint64(97531)
    return out.view(np.int64)


def _casefold(s: pd.Series) -> pd.Series:
    """``str.casefold`` of each distinct value (a status code column holds a few dozen)."""
    codes, uniques = pd.factorize(s)
    folded = pd.array([str(u).casefold() for u in uniques], dtype="string")
    return pd.Series(folded.take(codes, allow_fill=True), index=s.index)


def retention_cutoff(now: datetime, days: int) -> datetime:
    """Events submitted before this instant are past retention."""
    return now - timedelta(days=days)

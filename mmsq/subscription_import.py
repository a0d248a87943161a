"""Snapshot import: one source's full subscription list for a date -> the subscription store.

Vectorised like the CDR ingest: every check runs over whole columns; a bad row is quarantined
with its line number and reason and the batch goes on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import pandas as pd
import structlog

from mmsq.domain import QuarantinedRecord
from mmsq.msisdn import MsisdnNormaliser
from mmsq.ports import Clock, RawChunk, ReportReader
from mmsq.subscription_ports import SNAPSHOT_COLUMNS, SnapshotRecord, SubscriptionStore
from mmsq.subscriptions import Source, SubscriptionStatus
from mmsq.text_columns import blank, epoch_seconds, parse_times

__all__ = [
    "SNAPSHOT_INPUT_COLUMNS",
    "SNAPSHOT_REQUIRED_COLUMNS",
    "SnapshotImportService",
    "SnapshotImportSummary",
    "snapshot_instant",
]

log = structlog.get_logger(__name__)

SNAPSHOT_INPUT_COLUMNS: tuple[str, ...] = ("msisdn", "product", "status", "since", "channel")
SNAPSHOT_REQUIRED_COLUMNS: tuple[str, ...] = ("msisdn", "product", "status")
_STATUSES = [s.value for s in SubscriptionStatus]
_CONTROL = r"[\x00-\x1f\x7f]"


def snapshot_instant(as_of: date, tz: ZoneInfo) -> int:
    """A snapshot of ``as_of`` is the nightly extract: the state at 00:00 of that day, local."""
    return int(datetime(as_of.year, as_of.month, as_of.day, tzinfo=tz).timestamp())


@dataclass
class SnapshotImportSummary:
    """What one import did; rendered as the CLI's table or its ``--json`` document."""

    batch_id: str
    source: Source
    as_of: date
    files: list[str] = field(default_factory=list)
    records: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    by_product: Counter[str] = field(default_factory=Counter)
    failed_sources: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "source": self.source.value,
            "as_of": self.as_of.isoformat(),
            "files": self.files,
            "records": self.records,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "quarantined": self.quarantined,
            "by_status": dict(sorted(self.by_status.items())),
            "by_product": dict(self.by_product.most_common()),
            "failed_sources": self.failed_sources,
        }


class SnapshotImportService:
    """Validates snapshot rows and hands them to the store, chunk by chunk."""

    def __init__(
        self,
        store: SubscriptionStore,
        normaliser: MsisdnNormaliser,
        clock: Clock,
        timezone: str,
    ) -> None:
        self._store = store
        self._normaliser = normaliser
        self._clock = clock
        self._tz = ZoneInfo(timezone)

    def today(self) -> date:
        """The operator-local date: the default snapshot and reconciliation date."""
        return self._clock.now().astimezone(self._tz).date()

    def import_snapshot(
        self,
        source: Source,
        readers: Iterable[ReportReader],
        as_of: date | None = None,
        progress: Callable[[str, int], None] | None = None,
    ) -> SnapshotImportSummary:
        """Import every reader as ``source``'s snapshot of ``as_of`` (default: today).

        Re-importing the same file changes nothing; a file that cannot be read at all is
        reported in ``failed_sources`` and recorded as no snapshot.
        """
        day = as_of or self.today()
        summary = SnapshotImportSummary(batch_id=uuid4().hex, source=source, as_of=day)
        instant = snapshot_instant(day, self._tz)
        for reader in readers:
            summary.files.append(reader.source)
            before = summary.records
            quarantined_before = summary.quarantined
            try:
                for chunk in reader.chunks():
                    self._import_chunk(chunk, source, day, instant, summary)
                    if progress is not None:
                        progress(reader.source, chunk.bytes_read)
            except (OSError, ValueError) as exc:
                summary.failed_sources[reader.source] = str(exc)
                log.error("subscriptions.import_failed", source=reader.source, error=str(exc))
                continue
            if summary.records == before:
                # Not one readable row: recording it as the source's newest snapshot would make
                # every subscription look absent from the source.
                summary.failed_sources[reader.source] = "no readable rows; not recorded"
                log.error("subscriptions.import_empty", source=reader.source)
                continue
            self._store.record_snapshot(
                SnapshotRecord(
                    batch_id=summary.batch_id,
                    source=source,
                    as_of=day,
                    file=reader.source,
                    rows=summary.records - before,
                    quarantined=summary.quarantined - quarantined_before,
                    imported_at=self._clock.now(),
                )
            )
        log.info(
            "subscriptions.import_summary",
            batch_id=summary.batch_id,
            source=source.value,
            as_of=day.isoformat(),
            records=summary.records,
            stored=summary.stored,
            quarantined=summary.quarantined,
        )
        return summary

    def _import_chunk(
        self,
        chunk: RawChunk,
        source: Source,
        day: date,
        instant: int,
        summary: SnapshotImportSummary,
    ) -> None:
        quarantine = list(chunk.quarantined)
        rows = self.prepare(chunk, quarantine)
        if quarantine:
            self._store.add_quarantine(summary.batch_id, quarantine)
        summary.quarantined += len(quarantine)
        summary.records += len(rows)
        if rows.empty:
            return
        unique = rows.drop_duplicates(["msisdn", "product"], keep="last")
        summary.duplicates += len(rows) - len(unique)
        summary.by_status.update(
            {str(k): int(v) for k, v in unique["status"].value_counts().items()}
        )
        summary.by_product.update(
            {str(k): int(v) for k, v in unique["product"].value_counts().items()}
        )
        summary.stored += self._store.upsert_snapshot(
            source, day, instant, unique.loc[:, list(SNAPSHOT_COLUMNS)]
        )

    def prepare(self, chunk: RawChunk, quarantine: list[QuarantinedRecord]) -> pd.DataFrame:
        """Validated rows as ``SNAPSHOT_COLUMNS``; rejected rows appended to ``quarantine``."""
        df = chunk.frame
        for col in SNAPSHOT_INPUT_COLUMNS:
            if col not in df.columns:
                df[col] = pd.Series(pd.NA, index=df.index, dtype="string")
        reason = pd.Series(pd.NA, index=df.index, dtype="string")

        def reject(mask: pd.Series, why: str) -> None:
            fresh = mask & reason.isna()
            if fresh.any():
                reason[fresh] = why

        for col in SNAPSHOT_REQUIRED_COLUMNS:
            reject(blank(df[col]), f"missing required field {col}")
        msisdn = self._normaliser.normalise_series(df["msisdn"])
        reject(msisdn.isna(), "invalid MSISDN")
        product = df["product"].str.strip()
        reject(product.str.len() > 64, "product longer than 64 characters")
        reject(product.str.contains(_CONTROL, regex=True, na=False), "control character in product")
        status = df["status"].str.strip().str.lower()
        reject(
            ~status.isin(_STATUSES), "unknown status (active, suspended, unsubscribed, cancelled)"
        )
        since = parse_times(df["since"], self._tz)
        reject(since.isna() & ~blank(df["since"]), "unparsable since (ISO 8601 date or time)")

        bad = reason.notna()
        if bad.any():
            raw = df.loc[bad, list(SNAPSHOT_INPUT_COLUMNS)].fillna("")
            texts = raw.astype(str).agg(",".join, axis=1)
            quarantine.extend(
                QuarantinedRecord(chunk.source, int(line), str(why), str(text))
                for line, why, text in zip(df.loc[bad, "_line"], reason[bad], texts, strict=True)
            )
        ok = ~bad
        channel = df.loc[ok, "channel"].str.strip().str.slice(0, 32)
        return pd.DataFrame(
            {
                "msisdn": msisdn[ok],
                "product": product[ok],
                "status": status[ok],
                "since_ts": epoch_seconds(since[ok]),
                "channel": channel.where(channel != ""),
            }
        )

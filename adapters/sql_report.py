"""The ``ReportSource`` port over the SQL store, read only through ``SqlStore``'s methods.

Where each figure comes from, for a province-week (about 21 million events):

- per (day, edition) and latency percentiles: ``edition_stats`` (counters and a latency
  histogram kept at ingest; percentiles interpolated from it, see
  ``mmsq.latency_histogram`` for the resolution);
- by device: ``daily_aggregates`` of the week (attempts, final, delivered per subscriber-day)
  joined with ``devices()``;
- by region, by cause and unknown codes: one pass over the week's event segments
  (``scan_events``, six of the fifteen columns decoded), each segment grouped as it is read,
  so memory holds one segment and the running groups (by cause, the distinct subscribers of
  each cause);
- the recovery cycle and the remedy funnel: the recovery state machine's transition log
  (``RecoveryService.funnel`` and who was suspended when the week began);
- reconciliation: the counts of the ``reconcile_runs`` that finished in the week.

- complaints: the agent API's resends recorded in the week (a resend is an agent's answer to a
  complaint) over the subscribers with an active subscription (``subscriptions``), or, where
  no subscription status is known, the subscribers with a delivery in the week; not available
  while the agent API has recorded no resend at all;
- the funnel's holdout group: subscribers flagged in the week (``recovery_transitions``) whom
  outreach put in the holdout (``outreach_decisions``), and how many of them reached
  ``recovered`` after being flagged and before the week ended; no holdout figures while
  outreach has recorded no holdout decision.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from mmsq.adapters.sql_api_schema import api_resends
from mmsq.adapters.sql_outreach_schema import outreach_decisions
from mmsq.adapters.sql_schema import unknown_codes
from mmsq.adapters.sql_scoring_schema import recovery_transitions
from mmsq.adapters.sql_store import SqlStore
from mmsq.adapters.sql_subscriptions_schema import reconcile_runs, subscriptions
from mmsq.aggregates import LATENCY_EDGES_S
from mmsq.domain import CAUSE_CLASSES, CauseClass
from mmsq.latency_histogram import histogram_percentiles
from mmsq.report_data import (
    COLUMNS,
    ComplaintCounts,
    FunnelCounts,
    NotAvailable,
    RecoveryCounts,
)

__all__ = ["PERCENTILES", "RecoveryFunnel", "SqlReportSource"]

PERCENTILES = (0.5, 0.9, 0.99)

_SCAN_COLUMNS = ("msisdn", "region", "cause", "final", "status_source", "status_code")
_KEYS = ["region", "cause", "ns", "code"]
#: Cause index above the MSISDN digits (E.164 has at most 15 digits: < 2**50).
_CAUSE_SHIFT = 50
_CAUSE_INDEX = {c: i for i, c in enumerate(CAUSE_CLASSES)}
_UNKNOWN_CAUSE = _CAUSE_INDEX[CauseClass.UNKNOWN.value]
_SUSPENDED = ("suspended", "probing")
_REDUCE_EVERY = 256


class RecoveryFunnel(Protocol):
    """What the report needs of ``mmsq.recovery.RecoveryService``."""

    def funnel(self, first_day: date, last_day: date) -> dict[str, int]: ...


_COUNTS = {"attempts", "final", "delivered", "subscribers", "events", "total", "count"}
_SECONDS = {"p50_s", "p90_s", "p99_s"}


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Counts as int64, seconds as float; keys stay objects, so a missing key is None."""
    for col in frame.columns:
        if col in _COUNTS:
            frame[col] = frame[col].astype("int64")
        elif col in _SECONDS:
            frame[col] = frame[col].astype("float64")
        else:
            frame[col] = frame[col].astype(object)
    return frame


def _frame(name: str, rows: Iterable[tuple[object, ...]]) -> pd.DataFrame:
    return _typed(pd.DataFrame(list(rows), columns=list(COLUMNS[name]), dtype=object))


def _key(value: object) -> object:
    """A group key as the port has it: text, or None where pandas says missing."""
    return None if value is None or pd.isna(value) else str(value)  # type: ignore[call-overload]


@dataclass(frozen=True)
class _WeekScan:
    """What one pass over a week's events yields."""

    groups: pd.DataFrame  # region, cause, ns, code, attempts, final, delivered
    final_subscribers: dict[str, int]  # cause -> distinct subscribers with a final outcome


def _cause_indices(cause: pa.Array) -> npt.NDArray[np.int64]:
    """Each event's index in ``CAUSE_CLASSES`` (unknown names: ``unknown``)."""
    if not pa.types.is_dictionary(cause.type):
        cause = cause.dictionary_encode()
    lookup = np.asarray(
        [_CAUSE_INDEX.get(str(v), _UNKNOWN_CAUSE) for v in cause.dictionary.to_pylist()],
        dtype=np.int64,
    )
    out: npt.NDArray[np.int64] = lookup[cause.indices.to_numpy(zero_copy_only=False)]
    return out


def _scan_week(store: SqlStore, start: date, end: date) -> _WeekScan:
    partial: list[pd.DataFrame] = []
    pairs: list[npt.NDArray[np.int64]] = []
    seen = 0
    for segment in store.scan_events(start, end - timedelta(days=1), _SCAN_COLUMNS):
        if not segment.num_rows:
            continue
        table = segment.combine_chunks()
        cause = table["cause"].chunk(0) if table["cause"].num_chunks else table["cause"]
        final = table["final"]
        is_delivered = pc.equal(pc.cast(cause, pa.string()), CauseClass.DELIVERED.value)
        delivered = pc.and_(final, is_delivered)
        grouped = (
            pa.table(
                {
                    "region": pc.cast(table["region"], pa.string()),
                    "cause": pc.cast(cause, pa.string()),
                    "ns": pc.cast(table["status_source"], pa.string()),
                    "code": pc.cast(table["status_code"], pa.string()),
                    "f": pc.cast(final, pa.int64()),
                    "d": pc.cast(delivered, pa.int64()),
                }
            )
            .group_by(_KEYS, use_threads=False)
            .aggregate([("f", "count"), ("f", "sum"), ("d", "sum")])
        )
        partial.append(grouped.to_pandas())
        fin = final.to_numpy(zero_copy_only=False)
        keys = (_cause_indices(cause)[fin] << _CAUSE_SHIFT) | table["msisdn"].to_numpy()[fin]
        pairs.append(np.unique(keys))
        seen += 1
        if seen % _REDUCE_EVERY == 0:
            partial = [_reduce(partial)]
            pairs = [np.unique(np.concatenate(pairs))]
    groups = _reduce(partial)
    distinct = np.unique(np.concatenate(pairs)) if pairs else np.zeros(0, dtype=np.int64)
    per_cause = np.bincount(distinct >> _CAUSE_SHIFT, minlength=len(CAUSE_CLASSES))
    return _WeekScan(groups, {c: int(per_cause[i]) for i, c in enumerate(CAUSE_CLASSES)})


def _reduce(parts: list[pd.DataFrame]) -> pd.DataFrame:
    if not parts:
        return pd.DataFrame(columns=[*_KEYS, "attempts", "final", "delivered"])
    frame = pd.concat(parts, ignore_index=True).rename(
        columns={"f_count": "attempts", "f_sum": "final", "d_sum": "delivered"}
    )
    return frame.groupby(_KEYS, dropna=False, sort=False, as_index=False)[
        ["attempts", "final", "delivered"]
    ].sum()


class SqlReportSource:
    """Implements ``mmsq.report_data.ReportSource`` on the SQL store."""

    def __init__(
        self,
        store: SqlStore,
        *,
        recovery: RecoveryFunnel | None = None,
        timezone: str = "UTC",
    ) -> None:
        self.store = store
        self.recovery_funnel = recovery
        self.tz = ZoneInfo(timezone)
        self._scans: dict[tuple[date, date], _WeekScan] = {}

    def _scan(self, start: date, end: date) -> _WeekScan:
        if (start, end) not in self._scans:
            self._scans[(start, end)] = _scan_week(self.store, start, end)
        return self._scans[(start, end)]

    def _midnight(self, day: date) -> datetime:
        return datetime(day.year, day.month, day.day, tzinfo=self.tz)

    # -- from the per-edition counters ---------------------------------------------------

    def edition_days(self, start: date, end: date) -> pd.DataFrame:
        stats = self.store.edition_stats(start, end - timedelta(days=1))
        return _frame(
            "edition_days",
            (
                (r.day, r.edition or None, r.attempts, r.final, r.delivered)
                for r in stats.itertuples(index=False)
            ),
        )

    def latency(self, start: date, end: date) -> pd.DataFrame:
        stats = self.store.edition_stats(start, end - timedelta(days=1))
        bins = [f"lat_{b}" for b in range(len(LATENCY_EDGES_S) + 1)]
        rows = []
        if not stats.empty:
            stats["edition"] = stats["edition"].replace("", None)
            summed = stats.groupby("edition", dropna=False, sort=True)[["latency_n", *bins]].sum()
            for edition, r in summed.iterrows():
                n = int(r["latency_n"])
                if n:
                    counts = r[bins].to_numpy(dtype=np.int64)
                    rows.append(
                        (
                            _key(edition),
                            n,
                            *histogram_percentiles(counts, LATENCY_EDGES_S, PERCENTILES),
                        )
                    )
        return _frame("latency", rows)

    # -- from the per-subscriber aggregates and the devices ------------------------------

    def by_device(self, start: date, end: date) -> pd.DataFrame:
        daily = self.store.daily_aggregates(
            start, end - timedelta(days=1), columns=["attempts", "final", "delivered"]
        )
        if daily.empty:
            return _frame("by_device", [])
        week = daily.groupby("msisdn", observed=True, sort=False)[
            ["attempts", "final", "delivered"]
        ].sum()
        week = week[week["attempts"] > 0]
        devices = self.store.devices()
        tac = pd.Series(devices["tac"].to_numpy(), index=devices["msisdn"].to_numpy())
        week["tac"] = tac.reindex(week.index.astype(str)).to_numpy()
        week["subscribers"] = 1
        out = week.groupby("tac", dropna=False, sort=False)[
            ["subscribers", "attempts", "final", "delivered"]
        ].sum()
        return _frame(
            "by_device",
            ((_key(t), r.subscribers, r.attempts, r.final, r.delivered) for t, r in out.iterrows()),
        )

    # -- from one pass over the week's events --------------------------------------------

    def by_region(self, start: date, end: date) -> pd.DataFrame:
        g = self._scan(start, end).groups
        out = g.groupby("region", dropna=False, sort=False)[
            ["attempts", "final", "delivered"]
        ].sum()
        return _frame(
            "by_region",
            ((_key(k), r.attempts, r.final, r.delivered) for k, r in out.iterrows()),
        )

    def by_cause(self, start: date, end: date) -> pd.DataFrame:
        scan = self._scan(start, end)
        out = scan.groups.groupby("cause", sort=False)[["attempts", "final"]].sum()
        return _frame(
            "by_cause",
            (
                (str(k), r.attempts, r.final, scan.final_subscribers.get(str(k), 0))
                for k, r in out.iterrows()
            ),
        )

    def unknown_codes(self, start: date, end: date) -> pd.DataFrame:
        g = self._scan(start, end).groups
        seen = g.groupby(["ns", "code"], sort=False)["attempts"].sum()
        if seen.empty:
            return _frame("unknown_codes", [])
        u = unknown_codes
        with self.store.engine.connect() as conn:
            known = conn.execute(sa.select(u.c.namespace, u.c.code, u.c.count, u.c.first_seen))
            rows = [
                (ns, code, int(seen[(ns, code)]), total, first)
                for ns, code, total, first in known
                if (ns, code) in seen.index
            ]
        return _frame("unknown_codes", rows)

    # -- recovery, funnel, reconciliation ------------------------------------------------

    def complaints(self, start: date, end: date) -> ComplaintCounts | NotAvailable:
        r, sub = api_resends, subscriptions
        since, until = (self._midnight(d).astimezone(UTC) for d in (start, end))
        with self.store.engine.connect() as conn:
            if conn.execute(sa.select(r.c.id).limit(1)).first() is None:
                return NotAvailable("the agent API has recorded no resend (complaint) yet")
            complaints = conn.execute(
                sa.select(sa.func.count())
                .select_from(r)
                .where(r.c.created_at >= since, r.c.created_at < until)
            ).scalar_one()
            active = conn.execute(
                sa.select(sa.func.count(sa.distinct(sub.c.msisdn))).where(sub.c.status == "active")
            ).scalar_one()
        if active:
            return ComplaintCounts(int(complaints), int(active), "active subscriptions")
        delivered = self._scan(start, end).final_subscribers.get(CauseClass.DELIVERED.value, 0)
        return ComplaintCounts(int(complaints), delivered, "subscribers with a delivery")

    def recovery(self, start: date, end: date) -> RecoveryCounts | NotAvailable:
        if self.recovery_funnel is None:
            return NotAvailable("the recovery state machine is not wired to the report")
        stages = self.recovery_funnel.funnel(start, end - timedelta(days=1))
        return RecoveryCounts(
            under_suspension=self._under_suspension(start, end),
            newly_suspended=stages.get("suspended", 0),
            probed=stages.get("probed", 0),
            recovered=stages.get("resumed", 0),
        )

    def _under_suspension(self, start: date, end: date) -> int:
        """Subscribers suspended (or being probed) at any moment of the week: those whose
        last transition before it left them so, and those suspended during it."""
        t = recovery_transitions
        since, until = (int(self._midnight(d).timestamp()) for d in (start, end))
        last = (
            sa.select(
                t.c.msisdn,
                t.c.to_state,
                sa.func.row_number()
                .over(partition_by=t.c.msisdn, order_by=(t.c.at_ts.desc(), t.c.id.desc()))
                .label("rn"),
            )
            .where(t.c.at_ts < since)
            .subquery()
        )
        before = sa.select(last.c.msisdn).where(last.c.rn == 1, last.c.to_state.in_(_SUSPENDED))
        during = sa.select(t.c.msisdn).where(
            t.c.at_ts >= since, t.c.at_ts < until, t.c.to_state.in_(_SUSPENDED)
        )
        both = sa.union(before, during).subquery()
        with self.store.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(both)).scalar_one())

    def funnel(self, start: date, end: date) -> FunnelCounts | NotAvailable:
        if self.recovery_funnel is None:
            return NotAvailable("the recovery state machine is not wired to the report")
        stages = self.recovery_funnel.funnel(start, end - timedelta(days=1))
        holdout = self._holdout(start, end)
        return FunnelCounts(
            flagged=stages.get("flagged", 0),
            remedied=stages.get("remedied", 0),
            recovered=stages.get("recovered", 0),
            holdout_flagged=None if holdout is None else holdout[0],
            holdout_recovered=None if holdout is None else holdout[1],
            holdout_reason="outreach has recorded no holdout decision yet",
        )

    def _holdout(self, start: date, end: date) -> tuple[int, int] | None:
        """(flagged in the week and held out, of them recovered after being flagged and
        before the week ended); None while outreach has recorded no holdout decision."""
        t, d = recovery_transitions, outreach_decisions
        since, until = (int(self._midnight(day).timestamp()) for day in (start, end))
        flagged = (
            sa.select(t.c.msisdn, sa.func.min(t.c.at_ts).label("flagged_at"))
            .where(t.c.to_state == "flagged", t.c.at_ts >= since, t.c.at_ts < until)
            .group_by(t.c.msisdn)
            .subquery()
        )
        held = (
            sa.select(d.c.msisdn)
            .where(d.c.decision == "holdout", d.c.day < end.isoformat())
            .group_by(d.c.msisdn)
            .subquery()
        )
        recovered = (
            sa.select(t.c.msisdn, sa.func.max(t.c.at_ts).label("recovered_at"))
            .where(t.c.to_state == "recovered", t.c.at_ts < until)
            .group_by(t.c.msisdn)
            .subquery()
        )
        is_recovered = sa.case((recovered.c.recovered_at >= flagged.c.flagged_at, 1), else_=0)
        query = (
            sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(is_recovered), 0))
            .select_from(flagged)
            .join(held, held.c.msisdn == flagged.c.msisdn)
            .outerjoin(recovered, recovered.c.msisdn == flagged.c.msisdn)
        )
        with self.store.engine.connect() as conn:
            if (
                conn.execute(sa.select(d.c.id).where(d.c.decision == "holdout").limit(1)).first()
                is None
            ):
                return None
            n, rec = conn.execute(query).one()
        return int(n), int(rec)

    def reconciliation(self, start: date, end: date) -> pd.DataFrame | NotAvailable:
        r = reconcile_runs
        # UTC: SQLite keeps the wall time of the (UTC) datetimes it was given.
        since, until = (self._midnight(d).astimezone(UTC) for d in (start, end))
        with self.store.engine.connect() as conn:
            runs = conn.execute(
                sa.select(r.c.finished_at, r.c.counts)
                .where(r.c.finished_at >= since, r.c.finished_at < until)
                .order_by(r.c.finished_at)
            ).all()
        rows = [
            (pd.Timestamp(finished), str(cls), int(n))
            for finished, counts in runs
            for cls, n in sorted((counts or {}).items())
            if n is not None
        ]
        frame = pd.DataFrame(rows, columns=list(COLUMNS["reconciliation"]))
        frame["count"] = frame["count"].astype("int64")
        return frame

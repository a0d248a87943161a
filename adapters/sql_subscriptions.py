"""The SQL subscription store: implements ``SubscriptionStore`` on the same engine as SqlStore.

Snapshots are bulk-loaded into a staging table (COPY on PostgreSQL, executemany on SQLite) and
folded into ``subscriptions`` with one upsert. The reconciliation read packs each row's three
source statuses into one integer in SQL, so a million rows cross the driver as two numbers and a
short string each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from mmsq.adapters.sql_bulk import SqlBulkLoad
from mmsq.adapters.sql_bulk import frame_rows as _rows
from mmsq.adapters.sql_read_scope import read_connection, read_rows
from mmsq.adapters.sql_store import SqlStore
from mmsq.adapters.sql_subscriptions_schema import (
    reconcile_runs,
    subscription_events,
    subscription_repairs,
    subscription_snapshots,
    subscriptions,
)
from mmsq.subscription_ports import (
    SNAPSHOT_COLUMNS,
    SOURCE_STATE_COLUMNS,
    ReconcileRun,
    SnapshotRecord,
)
from mmsq.subscriptions import (
    REFERENCE_SOURCE,
    STATUS_CODES,
    EventOutcome,
    EventResult,
    Source,
    SourceView,
    Subscription,
    SubscriptionEvent,
    SubscriptionState,
    SubscriptionStatus,
    Transition,
)

__all__ = ["SqlSubscriptionStore"]


#: Field separator of the text the database renders for a reconciliation (ASCII unit separator;
#: never in an MSISDN, and refused in product names at import).
_SEP = "\x1f"
_STAGE = "_stage_subscriptions"
#: Up to this many MSISDNs a status look-up filters in SQL; beyond, it reads every row.
_STATUS_IN_LIMIT = 500


def _status(value: str | None) -> SubscriptionStatus | None:
    return SubscriptionStatus(value) if value else None


# Subclassed for the engine, the bulk loaders and quarantine; mypy sees mmsq.adapters as Any.
#: Built once: a diagnosis reads this per request, and building the expression costs more
#: than running it.
_SUBSCRIPTIONS_OF = (
    sa.select(subscriptions)
    .where(subscriptions.c.msisdn == sa.bindparam("msisdn"))
    .order_by(subscriptions.c.product)
)


class SqlSubscriptionStore(SqlBulkLoad, SqlStore):  # type: ignore[misc]
    """Subscriptions, their events, snapshots, repairs and reconcile runs in SQL."""

    # -- helpers -------------------------------------------------------------------------

    def _day(self, day: date) -> Any:
        # SQLite keeps dates as ISO text; passing text avoids the sqlite3 date adapter.
        return day if self.dialect == "postgresql" else day.isoformat()

    def _day_expr(self, name: str) -> str:
        return f"CAST(:{name} AS DATE)" if self.dialect == "postgresql" else f":{name}"

    def _raw_day_expr(self, name: str) -> str:
        """The same, in the driver's own parameter style (for cursor-level reads)."""
        return f"CAST(%({name})s AS DATE)" if self.dialect == "postgresql" else f":{name}"

    def _insert(self) -> Any:
        return postgresql.insert if self.dialect == "postgresql" else sqlite.insert

    # -- snapshots -----------------------------------------------------------------------

    def upsert_snapshot(
        self, source: Source, as_of: date, snapshot_ts: int, rows: pd.DataFrame
    ) -> int:
        if rows.empty:
            return 0
        s = source.value
        newer = (
            f"(subscriptions.{s}_as_of IS NULL OR subscriptions.{s}_as_of <= excluded.{s}_as_of)"
        )
        sets = [
            f"{s}_status = CASE WHEN {newer} THEN excluded.{s}_status "
            f"ELSE subscriptions.{s}_status END",
            f"{s}_as_of = CASE WHEN {newer} THEN excluded.{s}_as_of "
            f"ELSE subscriptions.{s}_as_of END",
        ]
        cols = ["msisdn", "product", f"{s}_status", f"{s}_as_of"]
        values = ["msisdn", "product", "status", self._day_expr("as_of")]
        if source is REFERENCE_SOURCE:
            # Billing's snapshot sets mmsq's own status, unless a later change is stored.
            later = (
                "(subscriptions.status_ts IS NULL OR subscriptions.status_ts <= excluded.status_ts)"
            )
            cols += ["status", "status_ts", "since_ts", "channel"]
            values += ["status", ":ts", "since_ts", "channel"]
            sets += [
                f"status = CASE WHEN {later} THEN excluded.status ELSE subscriptions.status END",
                f"status_ts = CASE WHEN {later} THEN excluded.status_ts "
                "ELSE subscriptions.status_ts END",
                f"since_ts = CASE WHEN {later} THEN COALESCE(excluded.since_ts, "
                "CASE WHEN subscriptions.status = excluded.status THEN subscriptions.since_ts "
                "ELSE excluded.status_ts END) ELSE subscriptions.since_ts END",
                f"channel = CASE WHEN {later} THEN "
                "COALESCE(excluded.channel, subscriptions.channel) ELSE subscriptions.channel END",
            ]
        sql = (
            f"INSERT INTO subscriptions ({', '.join(cols)}) "
            f"SELECT {', '.join(values)} FROM {_STAGE} WHERE true "
            f"ON CONFLICT (msisdn, product) DO UPDATE SET {', '.join(sets)}"
        )
        with self.engine.begin() as conn:
            self._temp_table(conn, _STAGE, "subscriptions", SNAPSHOT_COLUMNS)
            self._load(conn, _STAGE, SNAPSHOT_COLUMNS, _rows(rows, SNAPSHOT_COLUMNS))
            conn.execute(sa.text(sql), {"as_of": self._day(as_of), "ts": snapshot_ts})
        return len(rows)

    def record_snapshot(self, record: SnapshotRecord) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                subscription_snapshots.insert().values(
                    batch_id=record.batch_id,
                    source=record.source.value,
                    as_of=record.as_of,
                    file=record.file,
                    rows=record.rows,
                    quarantined=record.quarantined,
                    imported_at=record.imported_at,
                )
            )

    def latest_snapshots(self) -> dict[Source, date]:
        t = subscription_snapshots
        q = sa.select(t.c.source, sa.func.max(t.c.as_of)).group_by(t.c.source)
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        known = {s.value for s in Source}
        return {Source(src): day for src, day in rows if src in known}

    # -- single subscriptions and events -------------------------------------------------

    def _state(self, conn: Connection, msisdn: str, product: str, lock: bool) -> Any:
        q = sa.select(subscriptions).where(
            subscriptions.c.msisdn == msisdn, subscriptions.c.product == product
        )
        if lock and self.dialect == "postgresql":
            q = q.with_for_update()
        return conn.execute(q).first()

    def get(self, msisdn: str, product: str) -> Subscription | None:
        with self.engine.connect() as conn:
            row = self._state(conn, msisdn, product, lock=False)
        if row is None:
            return None
        r = row._mapping
        return Subscription(
            msisdn=r["msisdn"],
            product=r["product"],
            state=SubscriptionState(
                _status(r["status"]), r["status_ts"], r["since_ts"], r["channel"]
            ),
            sources={
                s: SourceView(_status(r[f"{s.value}_status"]), r[f"{s.value}_as_of"])
                for s in Source
            },
        )

    def subscriptions_of(self, msisdn: str) -> list[Subscription]:
        """Every stored (MSISDN, product) of one E.164 MSISDN, by product (one indexed read:
        the key starts with the MSISDN)."""
        with read_connection(self.engine) as conn:
            rows = read_rows(conn, _SUBSCRIPTIONS_OF, {"msisdn": msisdn})
        out = []
        for row in rows:
            r = row._mapping
            out.append(
                Subscription(
                    msisdn=r["msisdn"],
                    product=r["product"],
                    state=SubscriptionState(
                        _status(r["status"]), r["status_ts"], r["since_ts"], r["channel"]
                    ),
                    sources={
                        s: SourceView(_status(r[f"{s.value}_status"]), r[f"{s.value}_as_of"])
                        for s in Source
                    },
                )
            )
        return out

    def apply_event(
        self,
        event: SubscriptionEvent,
        event_ts: int,
        received_at: datetime,
        decide: Callable[[SubscriptionState | None], Transition],
    ) -> EventResult:
        try:
            with self.engine.begin() as conn:
                seen = self._seen_event(conn, event.event_id, event.msisdn, event.product)
                if seen is not None:
                    return seen
                row = self._state(conn, event.msisdn, event.product, lock=True)
                state = (
                    SubscriptionState(_status(row.status), row.status_ts, row.since_ts, row.channel)
                    if row is not None
                    else None
                )
                t = decide(state)
                conn.execute(
                    subscription_events.insert().values(
                        event_id=event.event_id,
                        msisdn=event.msisdn,
                        product=event.product,
                        kind=event.kind.value,
                        event_ts=event_ts,
                        source=event.source.value,
                        channel=event.channel,
                        received_at=received_at,
                        outcome=t.outcome.value,
                        reason=t.reason,
                    )
                )
                if t.outcome is EventOutcome.APPLIED and t.status is not None:
                    self._set_state(conn, event, event_ts, t.status)
        except IntegrityError:
            # The same event id arrived concurrently and was stored first.
            with self.engine.connect() as conn:
                seen = self._seen_event(conn, event.event_id, event.msisdn, event.product)
            if seen is None:
                raise
            return seen
        previous = state.status if state else None
        return EventResult(event.event_id, t.outcome, t.status, previous, t.reason)

    def _seen_event(
        self, conn: Connection, event_id: str, msisdn: str, product: str
    ) -> EventResult | None:
        e = subscription_events
        first = conn.execute(
            sa.select(e.c.outcome).where(e.c.event_id == event_id)
        ).scalar_one_or_none()
        if first is None:
            return None
        current = conn.execute(
            sa.select(subscriptions.c.status).where(
                subscriptions.c.msisdn == msisdn, subscriptions.c.product == product
            )
        ).scalar_one_or_none()
        status = _status(current)
        return EventResult(event_id, EventOutcome.DUPLICATE, status, status, f"first seen: {first}")

    def _set_state(
        self, conn: Connection, event: SubscriptionEvent, event_ts: int, status: SubscriptionStatus
    ) -> None:
        stmt = self._insert()(subscriptions).values(
            msisdn=event.msisdn,
            product=event.product,
            status=status.value,
            status_ts=event_ts,
            since_ts=event_ts,
            channel=event.channel,
        )
        t = subscriptions
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.c.msisdn, t.c.product],
            set_={
                "status": stmt.excluded.status,
                "status_ts": stmt.excluded.status_ts,
                "since_ts": stmt.excluded.since_ts,
                "channel": sa.func.coalesce(stmt.excluded.channel, t.c.channel),
            },
            # Never roll back: a concurrent newer change wins.
            where=sa.or_(t.c.status_ts.is_(None), t.c.status_ts <= stmt.excluded.status_ts),
        )
        conn.execute(stmt)

    # -- reconciliation ------------------------------------------------------------------

    def source_states(self, present: Mapping[Source, date | None]) -> pd.DataFrame:
        code = " ".join(f"WHEN '{s.value}' THEN {c}" for s, c in STATUS_CODES.items())
        terms = []
        for shift, source in enumerate(Source):
            day = present.get(source)
            if day is None:
                continue
            s = source.value
            # A date object's ISO form: safe to inline (COPY takes no parameters).
            literal = f"DATE '{day.isoformat()}'" if self.dialect == "postgresql" else f"'{day}'"
            terms.append(
                f"(CASE WHEN {s}_as_of = {literal} "
                f"THEN (CASE {s}_status {code} ELSE 0 END) ELSE 0 END) * {8**shift}"
            )
        packed = " + ".join(terms) if terms else "0"
        # The database renders the rows as delimited text and pyarrow parses it: a million rows
        # never become a million Python tuples.
        pages = self._pg_text(packed) if self.dialect == "postgresql" else self._sqlite_text(packed)
        tables = [
            pacsv.read_csv(
                pa.py_buffer(page),
                read_options=pacsv.ReadOptions(column_names=["msisdn", "product", "packed"]),
                parse_options=pacsv.ParseOptions(delimiter=_SEP, quote_char=False),
                convert_options=pacsv.ConvertOptions(
                    column_types={
                        "msisdn": pa.int64(),
                        "product": pa.dictionary(pa.int32(), pa.string()),
                        "packed": pa.int16(),
                    }
                ),
            )
            for page in pages
            if page
        ]
        if not tables:
            return pd.DataFrame(
                {
                    "msisdn_num": np.empty(0, np.int64),
                    "product": pd.Categorical([]),
                    **{s.value: np.empty(0, np.int8) for s in Source},
                }
            ).loc[:, list(SOURCE_STATE_COLUMNS)]
        table = pa.concat_tables(tables).unify_dictionaries().combine_chunks()
        table = table.filter(pc.greater(table["packed"], 0))
        pack = table["packed"].to_numpy()
        frame = pd.DataFrame(
            {
                "msisdn_num": table["msisdn"].to_numpy(),
                "product": table["product"]
                .to_pandas()
                .cat.reorder_categories(
                    sorted(table["product"].combine_chunks().dictionary.to_pylist())
                ),
                **{s.value: ((pack >> (3 * i)) & 7).astype(np.int8) for i, s in enumerate(Source)},
            }
        )
        return frame.loc[:, list(SOURCE_STATE_COLUMNS)]

    def _sqlite_text(self, packed: str) -> Iterator[bytes]:
        """``digits<US>product<US>packed`` lines from one pass over the table.

        One string holds them all (about 30 bytes a subscription): SQLite's 1 GB string limit
        allows some 30 million subscriptions, far beyond a province's list.
        """
        sql = (
            "SELECT group_concat(substr(msisdn, 2) || char(31) || product || char(31) || "
            f"({packed}), char(10)) FROM subscriptions"
        )
        with self.engine.connect() as conn:
            raw = conn.connection.driver_connection
            (text,) = raw.execute(sql).fetchone()
        if text:
            yield text.encode("utf-8") + b"\n"

    def _pg_text(self, packed: str) -> Iterator[bytes]:
        """COPY's text output with the unit separator as delimiter."""
        sql = (
            f"COPY (SELECT substr(msisdn, 2), product, {packed} FROM subscriptions) TO STDOUT "
            "WITH (FORMAT text, DELIMITER E'\\x1f')"
        )
        with self.engine.connect() as conn:
            raw = conn.connection.driver_connection
            with raw.cursor() as cur, cur.copy(sql) as copy:
                yield b"".join(bytes(block) for block in copy)

    def applied_repairs(self, platform_as_of: date) -> pd.DataFrame:
        t = subscription_repairs
        q = sa.select(t.c.msisdn, t.c.product, t.c.action).where(
            t.c.platform_as_of == platform_as_of
        )
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        return pd.DataFrame([tuple(r) for r in rows], columns=["msisdn", "product", "action"])

    def add_repairs(
        self, run_id: str, at: datetime, platform_as_of: date, repairs: pd.DataFrame
    ) -> None:
        if repairs.empty:
            return
        rows = [
            {
                "run_id": run_id,
                "at": at,
                "class": cls,
                "action": action,
                "msisdn": msisdn,
                "product": product,
                "reason": reason,
                "platform_as_of": platform_as_of,
            }
            for action, msisdn, product, cls, reason in repairs.loc[
                :, ["action", "msisdn", "product", "class", "reason"]
            ].itertuples(index=False, name=None)
        ]
        with self.engine.begin() as conn:
            conn.execute(subscription_repairs.insert(), rows)

    def repair_rows(self) -> list[dict[str, Any]]:
        """The repair audit, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(subscription_repairs).order_by(subscription_repairs.c.id))
            return [dict(r._mapping) for r in rows]

    def event_rows(self) -> list[dict[str, Any]]:
        """Every stored subscription event, in arrival order."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(subscription_events).order_by(subscription_events.c.id))
            return [dict(r._mapping) for r in rows]

    def record_reconcile_run(self, run: ReconcileRun) -> None:
        with self.engine.begin() as conn:
            conn.execute(reconcile_runs.delete().where(reconcile_runs.c.as_of == run.as_of))
            conn.execute(
                reconcile_runs.insert().values(
                    run_id=run.run_id,
                    as_of=run.as_of,
                    started_at=run.started_at,
                    finished_at=run.finished_at,
                    compared=run.compared,
                    counts=run.counts,
                    stale=run.stale,
                    snapshots=run.snapshots,
                    repairs_proposed=run.repairs_proposed,
                    repairs_applied=run.repairs_applied,
                )
            )

    def reconcile_runs(self, limit: int = 30) -> list[ReconcileRun]:
        q = sa.select(reconcile_runs).order_by(reconcile_runs.c.as_of.desc()).limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        return [
            ReconcileRun(
                run_id=r.run_id,
                as_of=r.as_of,
                started_at=r.started_at,
                finished_at=r.finished_at,
                compared=r.compared,
                counts=dict(r.counts),
                stale=list(r.stale),
                snapshots=dict(r.snapshots),
                repairs_proposed=r.repairs_proposed,
                repairs_applied=r.repairs_applied,
            )
            for r in rows
        ]

    # -- scoring: mmsq's status per MSISDN (SubscriptionStatusLookup) -----------------------

    def statuses(self, msisdns: pd.Series) -> pd.Series:
        """mmsq's own status per MSISDN for scoring, aligned with ``msisdns``: ``active``,
        ``suspended``, ``cancelled`` or ``unknown``, folded over the subscriber's products
        in SQL (one row per MSISDN crosses the driver).

        Any active product makes the subscriber active; otherwise a suspension or an opt-out
        (``unsubscribed``: the number is still valid, only not to be sent to) reads
        ``suspended``; otherwise ``cancelled``; no status at all is ``unknown``.
        """
        rank = (
            "MIN(CASE status WHEN 'active' THEN 1 WHEN 'suspended' THEN 2 "
            "WHEN 'unsubscribed' THEN 2 WHEN 'cancelled' THEN 3 ELSE 9 END)"
        )
        sql = f"SELECT msisdn, {rank} FROM subscriptions"
        params: dict[str, Any] = {}
        wanted = pd.Index(msisdns.astype(object).to_numpy())
        if len(wanted) <= _STATUS_IN_LIMIT:
            if not len(wanted):
                return pd.Series([], index=msisdns.index, dtype=object)
            names = {f"m{i}": m for i, m in enumerate(wanted.unique())}
            sql += f" WHERE msisdn IN ({', '.join(':' + k for k in names)})"
            params = names
        sql += " GROUP BY msisdn"
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text(sql), params).all()
        labels = np.array(["unknown", "active", "suspended", "cancelled"] + ["unknown"] * 6)
        if not rows:
            return pd.Series("unknown", index=msisdns.index, dtype=object)
        known = pd.Index(np.fromiter((r[0] for r in rows), dtype=object, count=len(rows)))
        rank_of = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
        pos = known.get_indexer(wanted)
        out = np.where(pos >= 0, labels[rank_of[pos]], "unknown").astype(object)
        return pd.Series(out, index=msisdns.index, dtype=object)

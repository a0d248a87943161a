"""SQL adapter of scoring and recovery: window summaries computed in SQL, devices, the
do-not-contact list, recovery states and the append-only transition log.

The window summary is one ``GROUP BY msisdn`` over the daily aggregates (clustered on
msisdn, day), so tens of millions of daily rows are folded inside the database and only one row
per subscriber crosses into Python. It must equal ``mmsq.features.summarise_window`` on the same
rows; a contract test checks it on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from operator import itemgetter
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from mmsq.adapters.sql_scoring_schema import (
    blacklist,
    recovery_states,
    recovery_transitions,
    scoring_runs,
)
from mmsq.features import MASKS, SUMMARY_COLUMNS, SUMS
from mmsq.recovery import STATE_COLUMNS

__all__ = ["SqlRecoveryStore"]

_IN_CHUNK = 500


def _iso_list(values: pd.Series) -> list[str | None]:
    """Dates as ISO text (the driver may give str or date); missing ones as None."""
    return [None if v is None or pd.isna(v) else str(v)[:10] for v in values]


def _iso(values: pd.Series) -> pd.Series:
    return pd.Series(_iso_list(values), index=values.index, dtype=object)


def _epoch(values: pd.Series) -> list[int | None]:
    out: list[int | None] = []
    for v in values:
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NaT:
            out.append(None)
        else:
            out.append(int(pd.Timestamp(v).timestamp()))
    return out


def _from_epoch(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values.astype("Int64"), unit="s", utc=True)


def _columns(
    rows: list[tuple[Any, ...]], names: Sequence[str], *, ints: bool = True
) -> pd.DataFrame:
    """Rows -> a frame, column by column: text first column, the rest int64 (or text)."""
    if not rows:
        return pd.DataFrame(
            {
                n: pd.Series(dtype=object if i == 0 or not ints else np.int64)
                for i, n in enumerate(names)
            }
        )
    n = len(rows)
    data: dict[str, Any] = {names[0]: np.fromiter(map(itemgetter(0), rows), dtype=object, count=n)}
    for j, name in enumerate(names[1:], start=1):
        values = map(itemgetter(j), rows)
        if ints:
            # SUMs over NOT NULL columns: never NULL
            data[name] = np.fromiter(values, dtype=np.int64, count=n)
        else:
            data[name] = np.fromiter(values, dtype=object, count=n)
    return pd.DataFrame(data)


class SqlRecoveryStore:
    """Implements ScoringSource, BlacklistStore and RecoveryStore on a SQLAlchemy engine."""

    def __init__(self, engine: Engine, *, workers: int = 1) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        #: SQLite folds the window in this many threads over MSISDN ranges (the driver
        #: releases the GIL while a statement runs).
        self.workers = max(1, workers)

    # -- bulk helpers --------------------------------------------------------------------

    def _load(
        self, conn: Connection, table: str, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]
    ) -> None:
        raw = conn.connection.driver_connection
        cols = ", ".join(columns)
        if self.dialect == "postgresql":
            with raw.cursor() as cur, cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:  # type: ignore[union-attr]
                for row in rows:
                    copy.write_row(row)
            return
        marks = ", ".join("?" * len(columns))
        cur = raw.cursor()  # type: ignore[union-attr]
        try:
            cur.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows)
        finally:
            cur.close()

    def _stage(self, conn: Connection, name: str, like: str, columns: Sequence[str]) -> None:
        cols = ", ".join(columns)
        tail = "WITH NO DATA" if self.dialect == "postgresql" else "WHERE 0"
        conn.exec_driver_sql(
            f"CREATE TEMP TABLE IF NOT EXISTS {name} AS SELECT {cols} FROM {like} {tail}"
        )
        conn.exec_driver_sql(f"DELETE FROM {name}")

    # -- ScoringSource -------------------------------------------------------------------

    def _summary_sql(self, where: str) -> str:
        if self.dialect == "postgresql":
            bit = "(CAST(1 AS BIGINT) << (day - CAST(:first AS DATE)))"
        else:
            bit = "(1 << CAST(julianday(day) - julianday(:first) AS INTEGER))"
        sums = [f"SUM({c}) AS {c}" for c in SUMS]
        masks = [
            f"SUM(CASE WHEN {' OR '.join(f'{c} > 0' for c in cols)} THEN bit ELSE 0 END) AS {name}"
            for name, cols in MASKS.items()
        ]
        needed = sorted({*SUMS, *(c for cols in MASKS.values() for c in cols)})
        return (
            f"SELECT msisdn, {', '.join(sums + masks)} FROM ("
            f"SELECT msisdn, {', '.join(needed)}, {bit} AS bit FROM daily_aggregates "
            f"WHERE day >= :first AND day <= :last{where}) AS w GROUP BY msisdn"
        )

    def _fetch_summary(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        with self.engine.connect() as conn:
            if self.dialect == "sqlite":  # the raw cursor: no per-row result processing
                cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
                # One sequential pass: a large page cache only costs memory here.
                cache = cur.execute("PRAGMA cache_size").fetchone()[0]
                cur.execute("PRAGMA cache_size=-16384")
                try:
                    return list(cur.execute(sql, params).fetchall())
                finally:
                    cur.execute(f"PRAGMA cache_size={int(cache)}")
                    cur.close()
            return [tuple(r) for r in conn.execute(sa.text(sql), params)]

    def window_summary(
        self, first_day: date, last_day: date, msisdns: list[str] | None = None
    ) -> pd.DataFrame:
        base = {"first": first_day.isoformat(), "last": last_day.isoformat()}
        if self.dialect == "postgresql":
            base = {"first": first_day, "last": last_day}  # type: ignore[dict-item]
        rows: list[tuple[Any, ...]] = []
        if msisdns is not None:
            for i in range(0, len(msisdns), _IN_CHUNK):
                part = msisdns[i : i + _IN_CHUNK]
                names = {f"m{j}": m for j, m in enumerate(part)}
                where = f" AND msisdn IN ({', '.join(':' + k for k in names)})"
                rows += self._fetch_summary(self._summary_sql(where), {**base, **names})
        elif self.workers > 1 and self.dialect == "sqlite":
            bounds = self._msisdn_bounds(self.workers)
            jobs = []
            for lo, hi in zip([None, *bounds], [*bounds, None], strict=True):
                where, params = "", dict(base)
                if lo is not None:
                    where += " AND msisdn >= :lo"
                    params["lo"] = lo
                if hi is not None:
                    where += " AND msisdn < :hi"
                    params["hi"] = hi
                jobs.append((self._summary_sql(where), params))
            with ThreadPoolExecutor(max_workers=self.workers) as pool:
                for part_rows in pool.map(lambda j: self._fetch_summary(*j), jobs):
                    rows += part_rows
        else:
            rows = self._fetch_summary(self._summary_sql(""), base)
        return _columns(rows, SUMMARY_COLUMNS).sort_values("msisdn", ignore_index=True)

    def _msisdn_bounds(self, parts: int) -> list[str]:
        """MSISDNs splitting subscriber_devices/daily_aggregates into ``parts`` ranges."""
        with self.engine.connect() as conn:
            n = conn.exec_driver_sql("SELECT COUNT(*) FROM subscriber_devices").scalar_one()
            if not n:
                return []
            out = []
            for k in range(1, parts):
                v = conn.exec_driver_sql(
                    "SELECT msisdn FROM subscriber_devices ORDER BY msisdn LIMIT 1 OFFSET ?",
                    (int(n * k / parts),),
                ).scalar()
                if v is not None:
                    out.append(str(v))
            return sorted(set(out))

    def subscriber_devices(self, msisdns: list[str] | None = None) -> pd.DataFrame:
        q = "SELECT msisdn, tac FROM subscriber_devices"
        with self.engine.connect() as conn:
            if msisdns is None:
                cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
                try:
                    cur.execute(q)
                    rows = cur.fetchall()
                finally:
                    cur.close()
            else:
                rows = []
                for i in range(0, len(msisdns), _IN_CHUNK):
                    part = msisdns[i : i + _IN_CHUNK]
                    rows += conn.execute(
                        sa.text(q + " WHERE msisdn IN :m").bindparams(
                            sa.bindparam("m", expanding=True)
                        ),
                        {"m": part},
                    ).fetchall()
        return _columns([tuple(r) for r in rows], ("msisdn", "tac"), ints=False)

    # -- BlacklistStore ------------------------------------------------------------------

    def upsert_blacklist(self, entries: pd.DataFrame, added_at: datetime) -> int:
        if entries.empty:
            return 0
        ts = int(added_at.timestamp())
        cols = ("msisdn", "reason", "until", "added_ts")
        rows = [
            (m, r, None if u is None or pd.isna(u) else str(u)[:10], ts)
            for m, r, u in zip(entries["msisdn"], entries["reason"], entries["until"], strict=True)
        ]
        with self.engine.begin() as conn:
            self._stage(conn, "_stage_blacklist", "blacklist", cols)
            self._load(conn, "_stage_blacklist", cols, rows)
            conn.exec_driver_sql(
                "INSERT INTO blacklist (msisdn, reason, until, added_ts) "
                "SELECT msisdn, reason, until, added_ts FROM _stage_blacklist WHERE true "
                "ON CONFLICT (msisdn) DO UPDATE SET reason = excluded.reason, "
                "until = excluded.until, added_ts = excluded.added_ts"
            )
        return len(rows)

    def remove_blacklist(self, msisdn: str) -> bool:
        with self.engine.begin() as conn:
            return bool(
                conn.execute(blacklist.delete().where(blacklist.c.msisdn == msisdn)).rowcount
            )

    def blacklist_active(self, on: date) -> pd.DataFrame:
        q = sa.select(blacklist.c.msisdn, blacklist.c.reason).where(
            sa.or_(blacklist.c.until.is_(None), blacklist.c.until >= on)
        )
        with self.engine.connect() as conn:
            rows = [tuple(r) for r in conn.execute(q)]
        return pd.DataFrame.from_records(rows, columns=["msisdn", "reason"])

    def blacklist_rows(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [
                dict(r._mapping)
                for r in conn.execute(sa.select(blacklist).order_by(blacklist.c.msisdn))
            ]

    # -- RecoveryStore -------------------------------------------------------------------

    def load_states(self, msisdns: list[str] | None = None) -> pd.DataFrame:
        t = recovery_states
        q = sa.select(
            t.c.msisdn,
            t.c.state,
            t.c.verdict,
            t.c.reason,
            t.c.since_ts,
            sa.cast(t.c.since_day, sa.String).label("since_day"),
            sa.cast(t.c.suspended_day, sa.String).label("suspended_day"),
            t.c.probes_sent,
            t.c.last_probe_ts,
        )
        rows: list[tuple[Any, ...]] = []
        with self.engine.connect() as conn:
            if msisdns is None:
                rows = [tuple(r) for r in conn.execute(q)]
            else:
                for i in range(0, len(msisdns), _IN_CHUNK):
                    rows += [
                        tuple(r)
                        for r in conn.execute(q.where(t.c.msisdn.in_(msisdns[i : i + _IN_CHUNK])))
                    ]
        frame = pd.DataFrame.from_records(
            rows,
            columns=[
                "msisdn",
                "state",
                "verdict",
                "reason",
                "since_ts",
                "since_day",
                "suspended_day",
                "probes_sent",
                "last_probe_ts",
            ],
        )
        frame["since"] = _from_epoch(frame["since_ts"])
        frame["last_probe_at"] = _from_epoch(frame["last_probe_ts"])
        frame["since_day"] = _iso(frame["since_day"].astype(object))
        frame["suspended_day"] = _iso(frame["suspended_day"].astype(object))
        frame["probes_sent"] = frame["probes_sent"].fillna(0).astype(np.int64)
        return frame[list(STATE_COLUMNS)]

    def apply_transitions(self, transitions: pd.DataFrame, states: pd.DataFrame) -> None:
        if transitions.empty and states.empty:
            return
        t_cols = (
            "msisdn",
            "at_ts",
            "from_state",
            "to_state",
            "event",
            "cause",
            "evidence",
            "run_id",
        )
        t_rows = zip(
            transitions["msisdn"].astype(str),
            _epoch(transitions["at"]),
            transitions["from_state"].astype(str),
            transitions["to_state"].astype(str),
            transitions["event"].astype(str),
            transitions["cause"].astype(str),
            transitions["evidence"].fillna("").astype(str),
            transitions["run_id"].astype(object).where(transitions["run_id"].notna(), None),
            strict=True,
        )
        s_cols = (
            "msisdn",
            "state",
            "verdict",
            "reason",
            "since_ts",
            "since_day",
            "suspended_day",
            "probes_sent",
            "last_probe_ts",
        )
        s = states
        s_rows = zip(
            s["msisdn"].astype(str),
            s["state"].astype(str),
            s["verdict"].astype(object).where(s["verdict"].notna(), None),
            s["reason"].astype(object).where(s["reason"].notna(), None),
            _epoch(s["since"]),
            _iso_list(s["since_day"]),
            _iso_list(s["suspended_day"]),
            s["probes_sent"].fillna(0).astype(int),
            _epoch(s["last_probe_at"]),
            strict=True,
        )
        updates = ", ".join(f"{c} = excluded.{c}" for c in s_cols[1:])
        with self.engine.begin() as conn:
            if not transitions.empty:
                self._load(conn, "recovery_transitions", t_cols, t_rows)
            if not states.empty:
                self._stage(conn, "_stage_states", "recovery_states", s_cols)
                self._load(conn, "_stage_states", s_cols, s_rows)
                cols = ", ".join(s_cols)
                conn.exec_driver_sql(
                    f"INSERT INTO recovery_states ({cols}) SELECT {cols} FROM _stage_states "
                    f"WHERE true ON CONFLICT (msisdn) DO UPDATE SET {updates}"
                )

    def transitions_for(self, msisdn: str) -> list[dict[str, Any]]:
        t = recovery_transitions
        q = sa.select(t).where(t.c.msisdn == msisdn).order_by(t.c.at_ts, t.c.id)
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(q)]
        for r in rows:
            r["at"] = datetime.fromtimestamp(r.pop("at_ts"), tz=pd.Timestamp(0, tz="UTC").tzinfo)
            r.pop("id", None)
        return rows

    def transition_counts(self, start: datetime, end: datetime) -> pd.DataFrame:
        t = recovery_transitions
        q = (
            sa.select(
                t.c.event,
                t.c.to_state,
                t.c.cause,
                sa.func.count(sa.distinct(t.c.msisdn)).label("subscribers"),
            )
            .where(t.c.at_ts >= int(start.timestamp()), t.c.at_ts < int(end.timestamp()))
            .group_by(t.c.event, t.c.to_state, t.c.cause)
        )
        with self.engine.connect() as conn:
            rows = [tuple(r) for r in conn.execute(q)]
        return pd.DataFrame.from_records(
            rows, columns=["event", "to_state", "cause", "subscribers"]
        )

    def record_run(
        self,
        run_id: str,
        as_of: date,
        started_at: datetime,
        finished_at: datetime,
        summary: dict[str, Any],
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                scoring_runs.insert().values(
                    run_id=run_id,
                    as_of=as_of,
                    started_ts=int(started_at.timestamp()),
                    finished_ts=int(finished_at.timestamp()),
                    summary=summary,
                )
            )

    # -- one subscriber (diagnosis) ------------------------------------------------------

    def state_for(self, msisdn: str) -> dict[str, Any] | None:
        """One subscriber's state row as plain values (no frame: an agent's diagnosis reads
        this per request), or None while the subscriber is ``active``."""
        t = recovery_states
        q = sa.select(
            t.c.state,
            t.c.verdict,
            t.c.reason,
            t.c.since_ts,
            sa.cast(t.c.suspended_day, sa.String).label("suspended_day"),
            t.c.probes_sent,
            t.c.last_probe_ts,
        ).where(t.c.msisdn == msisdn)
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return None if row is None else {"msisdn": msisdn, **row._mapping}

    def recent_transitions(self, msisdn: str, limit: int) -> list[dict[str, Any]]:
        """One subscriber's latest transitions, newest first (``at_ts`` in UTC seconds)."""
        t = recovery_transitions
        q = (
            sa.select(t.c.at_ts, t.c.from_state, t.c.to_state, t.c.event, t.c.cause, t.c.evidence)
            .where(t.c.msisdn == msisdn)
            .order_by(t.c.at_ts.desc(), t.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

"""SQL adapter of scoring and recovery: the window summary folded from the stored daily
aggregates, devices, the do-not-contact list, recovery states and the append-only transition
log.

The window summary reads the daily aggregates only through ``SqlStore.daily_aggregates``, a
few days at a time and only the counters the summary needs, and folds each slice into
per-subscriber arrays (``mmsq.window_fold.WindowFold``) while the next slice is being read, so
a province's month (45 million daily rows) never sits in memory at once. It equals
``mmsq.features.summarise_window`` on the same rows; a contract test checks it on SQLite and
PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

from mmsq.adapters.sql_read_scope import read_connection, read_rows
from mmsq.adapters.sql_scoring_schema import (
    blacklist,
    recovery_states,
    recovery_transitions,
    scoring_runs,
)
from mmsq.adapters.sql_store import SqlStore
from mmsq.recovery import STATE_COLUMNS
from mmsq.window_fold import FOLD_COLUMNS, WindowFold

__all__ = ["SqlRecoveryStore"]

_IN_CHUNK = 500


def _iso_list(values: pd.Series) -> list[str | None]:
    """Dates as ISO text (the driver may give str or date); missing ones as None."""
    if not len(values):
        return []
    text = pd.Series(values.to_numpy(dtype=object)).astype(str).str.slice(0, 10).astype(object)
    out: list[str | None] = text.where(values.notna().to_numpy(), None).tolist()
    return out


def _iso(values: pd.Series) -> pd.Series:
    return pd.Series(_iso_list(values), index=values.index, dtype=object)


def _epoch(values: pd.Series) -> list[int | None]:
    """Times (datetime, Timestamp, NaT or None) as UTC epoch seconds, vectorised."""
    if not len(values):
        return []
    ts = pd.to_datetime(values.reset_index(drop=True), utc=True)
    secs = (ts - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    out: list[int | None] = np.trunc(secs.fillna(0).to_numpy()).astype(np.int64).tolist()
    for i in np.flatnonzero(secs.isna().to_numpy()).tolist():
        out[i] = None
    return out


def _texts(values: pd.Series) -> list[str]:
    """Text column as a list of str (cheaper than iterating an Arrow-backed column)."""
    return values.astype(object).astype(str).tolist()


def _from_epoch(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values.astype("Int64"), unit="s", utc=True)


def _reader(engine: Engine) -> Engine:
    """The engine the window is read through. On an SQLite file: its own engine without a
    connection pool and with a small page cache, since a one-pass read of a month of blocks
    gains nothing from the 256 MiB cache of mmsq's connections, and a pooled connection
    would keep that cache filled (per connection, for the life of the process)."""
    url = engine.url
    if engine.dialect.name != "sqlite" or url.database in (None, "", ":memory:"):
        return engine
    reader = sa.create_engine(url, poolclass=NullPool)

    @sa.event.listens_for(reader, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA cache_size=-8192")
        cur.close()

    return reader


def _slices(first_day: date, last_day: date, days: int) -> list[tuple[date, date]]:
    """[first_day, last_day] cut into consecutive slices of at most ``days`` days."""
    out = []
    a = first_day
    while a <= last_day:
        b = min(a + timedelta(days=days - 1), last_day)
        out.append((a, b))
        a = b + timedelta(days=1)
    return out


# Built once: an agent's diagnosis runs these per request.
_STATE_FOR = sa.select(
    recovery_states.c.state,
    recovery_states.c.verdict,
    recovery_states.c.reason,
    recovery_states.c.since_ts,
    sa.cast(recovery_states.c.suspended_day, sa.String).label("suspended_day"),
    recovery_states.c.probes_sent,
    recovery_states.c.last_probe_ts,
).where(recovery_states.c.msisdn == sa.bindparam("msisdn"))
_RECENT_TRANSITIONS = (
    sa.select(
        recovery_transitions.c.at_ts,
        recovery_transitions.c.from_state,
        recovery_transitions.c.to_state,
        recovery_transitions.c.event,
        recovery_transitions.c.cause,
        recovery_transitions.c.evidence,
    )
    .where(recovery_transitions.c.msisdn == sa.bindparam("msisdn"))
    .order_by(recovery_transitions.c.at_ts.desc(), recovery_transitions.c.id.desc())
    .limit(sa.bindparam("limit"))
)


class SqlRecoveryStore:
    """Implements ScoringSource, BlacklistStore and RecoveryStore on a SQLAlchemy engine."""

    def __init__(self, engine: Engine, *, workers: int = 2, days_per_read: int = 4) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.events = SqlStore(_reader(engine))
        #: With two workers the next slice of days is read while the current one is folded
        #: (decoding and the driver release the GIL); one worker reads and folds in turn.
        self.workers = max(1, workers)
        #: Days of aggregates read at once: bounds the peak memory (a province-day is about
        #: 1.5M rows, 56 bytes each with the counters the summary needs).
        self.days_per_read = max(1, days_per_read)

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

    def _read(self, first_day: date, last_day: date) -> pd.DataFrame:
        frame: pd.DataFrame = self.events.daily_aggregates(
            first_day, last_day, columns=FOLD_COLUMNS
        )
        return frame

    def _frames(self, first_day: date, last_day: date) -> Iterator[pd.DataFrame]:
        """The window's aggregates slice by slice; the next slice is read ahead."""
        parts = _slices(first_day, last_day, self.days_per_read)
        if self.workers == 1 or len(parts) == 1:
            for a, b in parts:
                yield self._read(a, b)
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mmsq-score-read") as pool:
            ahead: Future[pd.DataFrame] = pool.submit(self._read, *parts[0])
            for a, b in parts[1:]:
                frame = ahead.result()
                ahead = pool.submit(self._read, a, b)
                yield frame
                del frame
            yield ahead.result()

    def window_summary(
        self, first_day: date, last_day: date, msisdns: list[str] | None = None
    ) -> pd.DataFrame:
        fold = WindowFold(first_day, last_day)
        if msisdns is not None:
            fold.add(
                self.events.daily_aggregates(
                    first_day, last_day, columns=FOLD_COLUMNS, msisdns=msisdns
                )
            )
        else:
            for frame in self._frames(first_day, last_day):
                fold.add(frame)
                del frame
        return fold.summary()

    def subscriber_devices(self, msisdns: list[str] | None = None) -> pd.DataFrame:
        if msisdns is None:
            devices = self.events.devices()
            return pd.DataFrame(
                {
                    "msisdn": devices["msisdn"].to_numpy(dtype=object),
                    "tac": devices["tac"].to_numpy(dtype=object),
                }
            )
        rows = [row for m in msisdns if (row := self.events.device(m)) is not None]
        return pd.DataFrame(
            {
                "msisdn": pd.Series([r["msisdn"] for r in rows], dtype=object),
                "tac": pd.Series([r["tac"] for r in rows], dtype=object),
            }
        )

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
            _texts(transitions["msisdn"]),
            _epoch(transitions["at"]),
            _texts(transitions["from_state"]),
            _texts(transitions["to_state"]),
            _texts(transitions["event"]),
            _texts(transitions["cause"]),
            _texts(transitions["evidence"].fillna("")),
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
            _texts(s["msisdn"]),
            _texts(s["state"]),
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
        with read_connection(self.engine) as conn:
            rows = read_rows(conn, _STATE_FOR, {"msisdn": msisdn})
        return {"msisdn": msisdn, **rows[0]._mapping} if rows else None

    def recent_transitions(self, msisdn: str, limit: int) -> list[dict[str, Any]]:
        """One subscriber's latest transitions, newest first (``at_ts`` in UTC seconds)."""
        with read_connection(self.engine) as conn:
            rows = read_rows(conn, _RECENT_TRANSITIONS, {"msisdn": msisdn, "limit": limit})
        return [dict(r._mapping) for r in rows]

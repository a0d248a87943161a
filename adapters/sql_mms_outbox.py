"""The MM7 outbox on SQL (SQLAlchemy Core): the ``MmsOutboxStore`` port, SQLite and PostgreSQL.

Each method is one short transaction that commits before it returns. Claims are optimistic:
read a few due ids in priority order, then ``UPDATE ... WHERE id = :id AND state = 'queued'``;
the row count says who won, so concurrent senders (threads or processes) never share an item.
Every other write is a compare-and-set on ``version``. Times are stored in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, RowMapping
from sqlalchemy.exc import IntegrityError

from mmsq.adapters.sql_mms_outbox_schema import mms_outbox, mms_outbox_unmatched
from mmsq.adapters.sql_read_scope import read_connection
from mmsq.mms_outbox_model import (
    NewOutboxItem,
    OutboxItem,
    OutboxKind,
    OutboxState,
    ReceivedReport,
    UnmatchedReport,
)

__all__ = ["SqlMmsOutboxStore"]

_CANDIDATES = 8  # due ids read per claim attempt; losing all of them to others is rare
_MUTABLE = (
    "state",
    "version",
    "attempts",
    "in_doubt",
    "updated_at",
    "next_attempt_at",
    "claim_token",
    "lease_until",
    "message_id",
    "message_key",
    "submitted_at",
    "final_at",
    "status_code",
    "status_text",
    "mm_status",
    "cause",
    "reason",
)
_TIMES = frozenset(
    {
        "created_at",
        "updated_at",
        "next_attempt_at",
        "expires_at",
        "lease_until",
        "submitted_at",
        "final_at",
    }
)


def _utc(value: datetime | None) -> datetime | None:
    """Stored form: UTC (SQLite keeps no offset, so every value must be in the same zone)."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("outbox times must be timezone-aware")
    return value.astimezone(UTC)


def _read_time(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _item(row: RowMapping) -> OutboxItem:
    values: dict[str, Any] = {k: (_read_time(v) if k in _TIMES else v) for k, v in row.items()}
    values["kind"] = OutboxKind(values["kind"])
    values["state"] = OutboxState(values["state"])
    return OutboxItem(**values)


class SqlMmsOutboxStore:
    """Implements ``MmsOutboxStore`` on a SQLAlchemy engine (shared with ``SqlStore``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- items --------------------------------------------------------------------------

    def add(self, item: NewOutboxItem) -> tuple[OutboxItem, bool]:
        values = {
            "kind": item.kind.value,
            "reference": item.reference,
            "msisdn": item.msisdn,
            "edition": item.edition,
            "priority": item.priority,
            "content_ref": item.content_ref,
            "state": OutboxState.QUEUED.value,
            "version": 1,
            "attempts": 0,
            "in_doubt": 0,
            "created_at": _utc(item.created_at),
            "updated_at": _utc(item.created_at),
            "next_attempt_at": _utc(item.created_at),
            "expires_at": _utc(item.expires_at),
        }
        try:
            with self.engine.begin() as conn:
                new_id = conn.execute(
                    sa.insert(mms_outbox).values(**values).returning(mms_outbox.c.id)
                ).scalar_one()
        except IntegrityError:
            existing = self.find(item.reference, item.kind)
            if not existing:
                raise
            return existing[0], False
        stored = self.get(int(new_id))
        assert stored is not None
        return stored, True

    def get(self, item_id: int) -> OutboxItem | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(sa.select(mms_outbox).where(mms_outbox.c.id == item_id))
                .mappings()
                .first()
            )
        return _item(row) if row is not None else None

    def find(self, reference: str, kind: OutboxKind | None = None) -> list[OutboxItem]:
        query = sa.select(mms_outbox).where(mms_outbox.c.reference == reference)
        if kind is not None:
            query = query.where(mms_outbox.c.kind == kind.value)
        with read_connection(self.engine) as conn:  # in a diagnosis, its connection
            rows = conn.execute(query.order_by(mms_outbox.c.id)).mappings().all()
        return [_item(r) for r in rows]

    def find_by_message_key(self, key: str) -> OutboxItem | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(sa.select(mms_outbox).where(mms_outbox.c.message_key == key))
                .mappings()
                .first()
            )
        return _item(row) if row is not None else None

    def all_items(self) -> list[OutboxItem]:
        """Every item, oldest first (inspection and tests)."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(mms_outbox).order_by(mms_outbox.c.id)).mappings().all()
        return [_item(r) for r in rows]

    def claim_next(
        self, now: datetime, token: str, lease_until: datetime, item_id: int | None = None
    ) -> OutboxItem | None:
        at = _utc(now)
        t = mms_outbox.c
        due = (
            sa.select(t.id)
            .where(t.state == OutboxState.QUEUED.value, t.next_attempt_at <= at, t.expires_at > at)
            .order_by(t.priority.desc(), t.created_at, t.id)
            .limit(_CANDIDATES)
        )
        if item_id is not None:
            due = due.where(t.id == item_id)
        while True:
            with self.engine.connect() as conn:
                ids = [int(i) for i in conn.execute(due).scalars()]
            if not ids:
                return None
            for candidate in ids:
                with self.engine.begin() as conn:
                    won = conn.execute(
                        sa.update(mms_outbox)
                        .where(t.id == candidate, t.state == OutboxState.QUEUED.value)
                        .values(
                            state=OutboxState.SUBMITTING.value,
                            claim_token=token,
                            lease_until=_utc(lease_until),
                            attempts=t.attempts + 1,
                            version=t.version + 1,
                            updated_at=at,
                        )
                    ).rowcount
                if won:
                    return self.get(candidate)
            # Every candidate went to another sender: read the next ones.

    def update(self, old: OutboxItem, new: OutboxItem) -> bool:
        if new.id != old.id or new.version != old.version + 1:
            raise ValueError("update() writes the same item at the next version")
        values = {
            name: (_utc(getattr(new, name)) if name in _TIMES else getattr(new, name))
            for name in _MUTABLE
        }
        values["state"] = new.state.value
        with self.engine.begin() as conn:
            changed = conn.execute(
                sa.update(mms_outbox)
                .where(mms_outbox.c.id == old.id, mms_outbox.c.version == old.version)
                .values(**values)
            ).rowcount
        return bool(changed)

    def queued_expired(self, now: datetime, limit: int) -> list[OutboxItem]:
        t = mms_outbox.c
        query = (
            sa.select(mms_outbox)
            .where(t.state == OutboxState.QUEUED.value, t.expires_at <= _utc(now))
            .order_by(t.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_item(r) for r in conn.execute(query).mappings()]

    def stale_claims(self, now: datetime, limit: int) -> list[OutboxItem]:
        t = mms_outbox.c
        query = (
            sa.select(mms_outbox)
            .where(t.state == OutboxState.SUBMITTING.value, t.lease_until <= _utc(now))
            .order_by(t.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_item(r) for r in conn.execute(query).mappings()]

    def next_wakeup(self) -> datetime | None:
        t = mms_outbox.c
        with self.engine.connect() as conn:
            due = conn.execute(
                sa.select(sa.func.min(t.next_attempt_at)).where(t.state == OutboxState.QUEUED.value)
            ).scalar()
            lease = conn.execute(
                sa.select(sa.func.min(t.lease_until)).where(t.state == OutboxState.SUBMITTING.value)
            ).scalar()
        times = [x for x in (_read_time(due), _read_time(lease)) if x is not None]
        return min(times) if times else None

    def counts(self) -> dict[str, int]:
        t = mms_outbox.c
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.state, sa.func.count()).group_by(t.state)).all()
        return {str(state): int(n) for state, n in rows}

    # -- unmatched reports ----------------------------------------------------------------

    def add_unmatched(self, report: ReceivedReport, key: str, received_at: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.insert(mms_outbox_unmatched).values(
                    message_key=key,
                    message_id=report.message_id[:80],
                    recipient=report.recipient[:40],
                    mm_status=report.mm_status[:40],
                    status_text=report.status_text,
                    done_at=_utc(report.date),
                    received_at=_utc(received_at),
                )
            )

    def take_unmatched(self, key: str, item_id: int, matched_at: datetime) -> list[ReceivedReport]:
        u = mms_outbox_unmatched.c
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    sa.select(mms_outbox_unmatched)
                    .where(u.message_key == key, u.matched_item_id.is_(None))
                    .order_by(u.id)
                )
                .mappings()
                .all()
            )
        taken: list[ReceivedReport] = []
        for row in rows:
            with self.engine.begin() as conn:
                won = conn.execute(
                    sa.update(mms_outbox_unmatched)
                    .where(u.id == row["id"], u.matched_item_id.is_(None))
                    .values(matched_item_id=item_id, matched_at=_utc(matched_at))
                ).rowcount
            if won:
                taken.append(_report(row))
        return taken

    def unmatched(self, limit: int = 100, include_matched: bool = False) -> list[UnmatchedReport]:
        u = mms_outbox_unmatched.c
        query = sa.select(mms_outbox_unmatched).order_by(u.id.desc()).limit(limit)
        if not include_matched:
            query = query.where(u.matched_item_id.is_(None))
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            UnmatchedReport(
                id=int(r["id"]),
                report=_report(r),
                received_at=_read_time(r["received_at"]) or datetime.min.replace(tzinfo=UTC),
                matched_item_id=r["matched_item_id"],
                matched_at=_read_time(r["matched_at"]),
            )
            for r in rows
        ]

    def unmatched_count(self) -> int:
        u = mms_outbox_unmatched.c
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count()).where(u.matched_item_id.is_(None))
                ).scalar_one()
            )


def _report(row: RowMapping) -> ReceivedReport:
    return ReceivedReport(
        message_id=row["message_id"],
        recipient=row["recipient"],
        mm_status=row["mm_status"],
        date=_read_time(row["done_at"]),
        status_text=row["status_text"],
    )

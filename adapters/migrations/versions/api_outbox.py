"""Agent API resends go through the MM7 outbox: their sending state lives on the outbox item.

Drops the status, cause, message id and time columns of ``api_resends`` and its queue index
(the outbox item, kind ``resend`` with the resend id as reference, holds all of that now).
Resends still queued under the old columns are handed to the outbox first, so none is lost;
resends already submitted or finished keep their record but show no sending state.

Revision ID: api_outbox
Revises: recent_index
Create Date: 2026-11-26
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "api_outbox"
down_revision = "recent_index"
branch_labels = None
depends_on = None

_DROPPED = ("status", "cause", "message_id", "submitted_at", "done_at")


def upgrade() -> None:
    # Queued resends become queued outbox items (priority 100: resends go before probes).
    bind = op.get_bind()
    queued = bind.execute(
        sa.text(
            "SELECT id, msisdn, edition, created_at FROM api_resends r WHERE status = 'queued' "
            "AND NOT EXISTS (SELECT 1 FROM mms_outbox o "
            "WHERE o.kind = 'resend' AND o.reference = r.id)"
        )
    ).all()
    if queued:
        now = datetime.now(UTC)
        ts = sa.DateTime(timezone=True)
        outbox = sa.table(
            "mms_outbox",
            *(sa.column(c) for c in ("kind", "reference", "msisdn", "edition", "priority")),
            *(sa.column(c) for c in ("state", "version", "attempts", "in_doubt")),
            *(sa.column(c, ts) for c in ("created_at", "updated_at", "next_attempt_at")),
            sa.column("expires_at", ts),
        )
        op.bulk_insert(
            outbox,
            [
                {
                    "kind": "resend",
                    "reference": r.id,
                    "msisdn": r.msisdn,
                    "edition": r.edition,
                    "priority": 100,
                    "state": "queued",
                    "version": 0,
                    "attempts": 0,
                    "in_doubt": 0,
                    "created_at": now,
                    "updated_at": now,
                    "next_attempt_at": now,
                    "expires_at": now + timedelta(hours=24),
                }
                for r in queued
            ],
        )
    op.drop_index("ix_api_resends_queue", table_name="api_resends")
    with op.batch_alter_table("api_resends") as batch:
        for name in _DROPPED:
            batch.drop_column(name)
        batch.alter_column(
            "priority",
            existing_type=sa.SmallInteger,
            existing_nullable=False,
            comment="MM7 outbox priority; higher is sooner",
            existing_comment="lower is sooner; bulk is 100",
        )


def downgrade() -> None:
    with op.batch_alter_table("api_resends") as batch:
        batch.add_column(
            sa.Column("status", sa.String(12), nullable=False, server_default="queued")
        )
        batch.add_column(sa.Column("cause", sa.String(64)))
        batch.add_column(sa.Column("message_id", sa.String(80)))
        batch.add_column(sa.Column("submitted_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("done_at", sa.DateTime(timezone=True)))
        batch.alter_column(
            "priority",
            existing_type=sa.SmallInteger,
            existing_nullable=False,
            comment="lower is sooner; bulk is 100",
            existing_comment="MM7 outbox priority; higher is sooner",
        )
    op.create_index("ix_api_resends_queue", "api_resends", ["status", "priority", "created_at"])

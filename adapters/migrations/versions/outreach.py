"""Outreach: the outbox (contacts and segments), decisions not to contact, receipts.

Frozen: the tables are spelled out here rather than imported from ``sql_outreach_schema.py``.

Revision ID: outreach
Revises: api
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "outreach"
down_revision = "api"
branch_labels = None
depends_on = None


def _id() -> sa.Column[int]:
    return sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), sa.Identity(), primary_key=True
    )


def upgrade() -> None:
    op.create_table(
        "outreach_contacts",
        _id(),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("msisdn", sa.String(20), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("template", sa.String(40)),
        sa.Column("step", sa.SmallInteger, nullable=False),
        sa.Column("text", sa.Text),
        sa.Column("region", sa.String(64)),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("segments", sa.SmallInteger, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False, comment="UTC epoch milliseconds"),
        sa.Column("not_before_ms", sa.BigInteger, nullable=False, comment="quiet hours, blackouts"),
        sa.Column("expires_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
        sa.Column(
            "cause", sa.String(32), comment="why it failed or expired (cause class or reason)"
        ),
        sa.Column(
            "status_code", sa.String(16), comment="command_status or receipt stat that decided"
        ),
        sa.Column("detail", sa.Text),
    )
    op.create_index(
        "ux_outreach_contacts_key", "outreach_contacts", ["idempotency_key"], unique=True
    )
    op.create_index("ix_outreach_contacts_msisdn", "outreach_contacts", ["msisdn", "created_ms"])
    op.create_index("ix_outreach_contacts_state", "outreach_contacts", ["state", "not_before_ms"])

    op.create_table(
        "outreach_segments",
        sa.Column("contact_id", sa.BigInteger, primary_key=True),
        sa.Column("seq", sa.SmallInteger, primary_key=True),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("short_message", sa.LargeBinary, nullable=False),
        sa.Column("esm_class", sa.SmallInteger, nullable=False),
        sa.Column("data_coding", sa.SmallInteger, nullable=False),
        sa.Column("attempts", sa.SmallInteger, nullable=False),
        sa.Column("submitted_ms", sa.BigInteger),
        sa.Column("response_ms", sa.BigInteger),
        sa.Column("command_status", sa.Integer),
        sa.Column("message_id", sa.String(80), comment="normalised SMSC message id"),
        sa.Column("message_id_raw", sa.String(80)),
        sa.Column("receipt_stat", sa.String(16)),
        sa.Column("receipt_err", sa.String(16)),
        sa.Column("receipt_ms", sa.BigInteger),
    )
    op.create_index("ix_outreach_segments_message_id", "outreach_segments", ["message_id"])
    op.create_index(
        "ix_outreach_segments_state", "outreach_segments", ["state", "contact_id", "seq"]
    )

    op.create_table(
        "outreach_decisions",
        _id(),
        sa.Column("msisdn", sa.String(20), nullable=False),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("decision", sa.String(24), nullable=False),
        sa.Column("detail", sa.Text),
        sa.Column("day", sa.String(10), nullable=False, comment="planning day, YYYY-MM-DD"),
        sa.Column("decided_ms", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ux_outreach_decisions",
        "outreach_decisions",
        ["msisdn", "reason", "decision", "day"],
        unique=True,
    )

    op.create_table(
        "outreach_receipts",
        _id(),
        sa.Column("message_id", sa.String(80), nullable=False, comment="normalised"),
        sa.Column("message_id_raw", sa.String(80), nullable=False),
        sa.Column("stat", sa.String(16)),
        sa.Column("err", sa.String(16)),
        sa.Column("source_addr", sa.String(24)),
        sa.Column("text", sa.Text),
        sa.Column("received_ms", sa.BigInteger, nullable=False),
        sa.Column(
            "state",
            sa.String(10),
            nullable=False,
            comment="waiting (for a response) or unmatched",
        ),
    )
    op.create_index("ix_outreach_receipts_message_id", "outreach_receipts", ["message_id"])
    op.create_index("ix_outreach_receipts_state", "outreach_receipts", ["state", "received_ms"])


def downgrade() -> None:
    for table in (
        "outreach_receipts",
        "outreach_decisions",
        "outreach_segments",
        "outreach_contacts",
    ):
        op.drop_table(table)

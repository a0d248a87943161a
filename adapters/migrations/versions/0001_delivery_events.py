"""Delivery events, daily aggregates, devices, quarantine, unknown codes, ingest batches.

Frozen: this revision spells its tables out rather than importing the schema module, so later
changes to ``sql_schema.py`` go into new revisions and never rewrite history.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_COUNTS = (
    "attempts",
    "final",
    "delivered",
    "notified_not_fetched",
    "c_delivered",
    "c_pending",
    "c_not_fetched",
    "c_terminal_capacity",
    "c_terminal_incapable",
    "c_unreachable",
    "c_subscriber_invalid",
    "c_subscriber_suspended",
    "c_policy_blocked",
    "c_content_rejected",
    "c_network_transient",
    "c_platform_error",
    "c_unknown",
)


def upgrade() -> None:
    op.create_table(
        "delivery_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            sa.Identity(),
            primary_key=True,
        ),
        sa.Column(
            "event_key", sa.BigInteger, nullable=False, comment="hash of the report identity"
        ),
        sa.Column("msisdn", sa.String(20), nullable=False),
        sa.Column("message_id", sa.String(80), nullable=False),
        sa.Column("edition", sa.String(80)),
        sa.Column("status_source", sa.String(16), nullable=False),
        sa.Column("status_code", sa.String(40), nullable=False),
        sa.Column("error_code", sa.String(40)),
        sa.Column("cause", sa.String(24), nullable=False),
        sa.Column("final", sa.Boolean, nullable=False),
        sa.Column("notify_ok", sa.SmallInteger),
        sa.Column("imei", sa.String(16)),
        sa.Column("region", sa.String(64)),
        sa.Column("submitted_ts", sa.BigInteger, nullable=False, comment="UTC epoch seconds"),
        sa.Column("done_ts", sa.BigInteger, comment="UTC epoch seconds"),
        sa.Column("day", sa.Date, nullable=False, comment="operator-local date of submission"),
    )
    op.create_index("ux_delivery_events_event_key", "delivery_events", ["event_key"], unique=True)
    op.create_index("ix_delivery_events_msisdn_ts", "delivery_events", ["msisdn", "submitted_ts"])
    op.create_table(
        "daily_aggregates",
        sa.Column("msisdn", sa.String(20), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        *(sa.Column(n, sa.Integer, nullable=False, server_default="0") for n in _COUNTS),
        sa.Column("last_ts", sa.BigInteger, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "subscriber_devices",
        sa.Column("msisdn", sa.String(20), primary_key=True),
        sa.Column("imei", sa.String(16), nullable=False),
        sa.Column("tac", sa.String(8), nullable=False),
        sa.Column(
            "seen_ts", sa.BigInteger, nullable=False, comment="when this IMEI was first seen"
        ),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "quarantine",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("batch_id", sa.String(32), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("line", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("raw", sa.Text, nullable=False),
    )
    op.create_index("ix_quarantine_batch_id", "quarantine", ["batch_id"])
    op.create_table(
        "unknown_codes",
        sa.Column("namespace", sa.String(32), primary_key=True),
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "ingest_batches",
        sa.Column("batch_id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("summary", sa.JSON),
    )


def downgrade() -> None:
    for name in (
        "ingest_batches",
        "unknown_codes",
        "quarantine",
        "subscriber_devices",
        "daily_aggregates",
        "delivery_events",
    ):
        op.drop_table(name)

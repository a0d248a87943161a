"""Subscriptions, their events and snapshots, platform repairs and reconcile runs.

Frozen: the tables are spelt out here rather than imported from the schema module.

Revision ID: subscriptions
Revises: daemon
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "subscriptions"
down_revision = "daemon"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscriptions",
        sa.Column("msisdn", sa.String(20), primary_key=True, comment="E.164"),
        sa.Column("product", sa.String(64), primary_key=True),
        sa.Column(
            "status",
            sa.String(16),
            comment="mmsq's status; empty until billing or an event sets it",
        ),
        sa.Column("status_ts", sa.BigInteger, comment="UTC epoch seconds the status was set as of"),
        sa.Column("since_ts", sa.BigInteger, comment="UTC epoch seconds the status began"),
        sa.Column("channel", sa.String(32)),
        sa.Column("boss_status", sa.String(16)),
        sa.Column("boss_as_of", sa.Date),
        sa.Column("misc_status", sa.String(16)),
        sa.Column("misc_as_of", sa.Date),
        sa.Column("platform_status", sa.String(16)),
        sa.Column("platform_as_of", sa.Date),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "subscription_snapshots",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("batch_id", sa.String(32), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("file", sa.Text, nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("quarantined", sa.BigInteger, nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_subscription_snapshots_source_as_of", "subscription_snapshots", ["source", "as_of"]
    )
    op.create_table(
        "subscription_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("msisdn", sa.String(20), nullable=False),
        sa.Column("product", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("event_ts", sa.BigInteger, nullable=False, comment="UTC epoch seconds"),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(32)),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_index(
        "ux_subscription_events_event_id", "subscription_events", ["event_id"], unique=True
    )
    op.create_index("ix_subscription_events_msisdn", "subscription_events", ["msisdn", "product"])
    op.create_table(
        "subscription_repairs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("class", sa.String(32), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("msisdn", sa.String(20), nullable=False),
        sa.Column("product", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column(
            "platform_as_of", sa.Date, nullable=False, comment="platform snapshot it repaired"
        ),
    )
    op.create_index(
        "ix_subscription_repairs_platform_as_of", "subscription_repairs", ["platform_as_of"]
    )
    op.create_table(
        "reconcile_runs",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("compared", sa.BigInteger, nullable=False),
        sa.Column("counts", sa.JSON, nullable=False),
        sa.Column("stale", sa.JSON, nullable=False),
        sa.Column("snapshots", sa.JSON, nullable=False),
        sa.Column("repairs_proposed", sa.Integer, nullable=False),
        sa.Column("repairs_applied", sa.Integer, nullable=False),
    )
    op.create_index("ux_reconcile_runs_as_of", "reconcile_runs", ["as_of"], unique=True)


def downgrade() -> None:
    for name in (
        "reconcile_runs",
        "subscription_repairs",
        "subscription_events",
        "subscription_snapshots",
        "subscriptions",
    ):
        op.drop_table(name)

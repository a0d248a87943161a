"""Delivery events, daily aggregates, devices, quarantine, unknown codes, ingest batches.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

from mmsq.adapters.sql_schema import (
    daily_aggregates,
    delivery_events,
    ingest_batches,
    quarantine,
    subscriber_devices,
    unknown_codes,
)

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TABLES = (
    delivery_events,
    daily_aggregates,
    subscriber_devices,
    quarantine,
    unknown_codes,
    ingest_batches,
)


def upgrade() -> None:
    bind = op.get_bind()
    for table in _TABLES:
        table.create(bind)


def downgrade() -> None:
    bind = op.get_bind()
    for table in reversed(_TABLES):
        table.drop(bind)

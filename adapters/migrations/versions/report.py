"""Index delivery events by day, for the weekly report.

Revision ID: report
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision = "report"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_delivery_events_day", "delivery_events", ["day"])


def downgrade() -> None:
    op.drop_index("ix_delivery_events_day", table_name="delivery_events")

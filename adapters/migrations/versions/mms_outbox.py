"""The MM7 outbox: probes and resends with their states, and unmatched delivery reports.

Revision ID: mms_outbox
Revises: scoring
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "mms_outbox"
down_revision = "scoring"
branch_labels = None
depends_on = None


def _id() -> sa.Column[int]:
    return sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), sa.Identity(), primary_key=True
    )


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "mms_outbox",
        _id(),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("reference", sa.String(128), nullable=False),
        sa.Column("msisdn", sa.String(20), nullable=False),
        sa.Column("edition", sa.String(80), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("content_ref", sa.String(255)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("in_doubt", sa.Integer, nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("updated_at", ts, nullable=False),
        sa.Column("next_attempt_at", ts, nullable=False),
        sa.Column("expires_at", ts, nullable=False),
        sa.Column("claim_token", sa.String(32)),
        sa.Column("lease_until", ts),
        sa.Column("message_id", sa.String(80)),
        sa.Column("message_key", sa.String(80)),
        sa.Column("submitted_at", ts),
        sa.Column("final_at", ts),
        sa.Column("status_code", sa.Integer),
        sa.Column("status_text", sa.Text),
        sa.Column("mm_status", sa.String(40)),
        sa.Column("cause", sa.String(24)),
        sa.Column("reason", sa.Text),
    )
    op.create_index(
        "ux_mms_outbox_kind_reference", "mms_outbox", ["kind", "reference"], unique=True
    )
    op.create_index("ux_mms_outbox_message_key", "mms_outbox", ["message_key"], unique=True)
    op.create_index("ix_mms_outbox_reference", "mms_outbox", ["reference"])
    op.create_index("ix_mms_outbox_due", "mms_outbox", ["state", "next_attempt_at"])
    op.create_table(
        "mms_outbox_unmatched",
        _id(),
        sa.Column("message_key", sa.String(80), nullable=False),
        sa.Column("message_id", sa.String(80), nullable=False),
        sa.Column("recipient", sa.String(40), nullable=False),
        sa.Column("mm_status", sa.String(40), nullable=False),
        sa.Column("status_text", sa.Text),
        sa.Column("done_at", ts),
        sa.Column("received_at", ts, nullable=False),
        sa.Column("matched_item_id", sa.BigInteger),
        sa.Column("matched_at", ts),
    )
    op.create_index("ix_mms_outbox_unmatched_key", "mms_outbox_unmatched", ["message_key"])


def downgrade() -> None:
    op.drop_table("mms_outbox_unmatched")
    op.drop_table("mms_outbox")

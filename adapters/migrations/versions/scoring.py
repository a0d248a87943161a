"""Scoring and recovery: blacklist, recovery_states, recovery_transitions, scoring_runs.

Frozen: the tables are spelled out here, not imported from ``sql_scoring_schema.py``.

Revision ID: scoring
Revises: subscriptions
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "scoring"
down_revision = "subscriptions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "blacklist",
        sa.Column("msisdn", sa.String(20), primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("until", sa.Date, comment="last day the entry holds; NULL: no end"),
        sa.Column("added_ts", sa.BigInteger, nullable=False, comment="UTC epoch seconds"),
    )
    op.create_table(
        "recovery_states",
        sa.Column("msisdn", sa.String(20), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("verdict", sa.String(32)),
        sa.Column("reason", sa.Text),
        sa.Column("since_ts", sa.BigInteger, nullable=False, comment="UTC epoch seconds"),
        sa.Column(
            "since_day", sa.Date, nullable=False, comment="operator-local day the state began"
        ),
        sa.Column("suspended_day", sa.Date),
        sa.Column("probes_sent", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_probe_ts", sa.BigInteger),
    )
    op.create_index("ix_recovery_states_state", "recovery_states", ["state"])
    op.create_table(
        "recovery_transitions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            sa.Identity(),
            primary_key=True,
        ),
        sa.Column("msisdn", sa.String(20), nullable=False),
        sa.Column("at_ts", sa.BigInteger, nullable=False, comment="UTC epoch seconds"),
        sa.Column("from_state", sa.String(16), nullable=False),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("cause", sa.String(64), nullable=False),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.Column("run_id", sa.String(32)),
    )
    op.create_index(
        "ix_recovery_transitions_msisdn_at", "recovery_transitions", ["msisdn", "at_ts"]
    )
    op.create_index("ix_recovery_transitions_at", "recovery_transitions", ["at_ts"])
    op.create_table(
        "scoring_runs",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("started_ts", sa.BigInteger, nullable=False),
        sa.Column("finished_ts", sa.BigInteger, nullable=False),
        sa.Column("summary", sa.JSON),
    )


def downgrade() -> None:
    for name in ("scoring_runs", "recovery_transitions", "recovery_states", "blacklist"):
        op.drop_table(name)

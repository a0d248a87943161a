"""Agent API: agents (token digests), the append-only audit trail, resends.

Frozen: the tables are spelled out here rather than imported from ``sql_api_schema.py``.
The audit trail refuses UPDATE and DELETE with triggers (and TRUNCATE on PostgreSQL), so the
application, or anybody with its database role, cannot rewrite it.

Revision ID: api
Revises: mms_outbox
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "api"
down_revision = "mms_outbox"
branch_labels = None
depends_on = None

_PG_APPEND_ONLY = """
CREATE FUNCTION api_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'api_audit is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "api_agents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column(
            "token_hash", sa.String(64), nullable=False, comment="hex SHA-256 of the bearer token"
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ux_api_agents_token_hash", "api_agents", ["token_hash"], unique=True)
    op.create_index(
        "ux_api_agents_active_name",
        "api_agents",
        ["name"],
        unique=True,
        postgresql_where=sa.text("revoked_at IS NULL"),
        sqlite_where=sa.text("revoked_at IS NULL"),
    )
    op.create_table(
        "api_audit",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            sa.Identity(),
            primary_key=True,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(64), comment="agent name; empty when not authenticated"),
        sa.Column("role", sa.String(16)),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column(
            "route", sa.String(200), nullable=False, comment="route template, never the raw path"
        ),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("status", sa.SmallInteger, nullable=False),
        sa.Column("request_id", sa.String(40), nullable=False),
        sa.Column("subject", sa.String(24), comment="MSISDN: full for resends, masked otherwise"),
        sa.Column("detail", sa.Text),
        sa.Column("client", sa.String(64)),
    )
    op.create_index("ix_api_audit_at", "api_audit", ["at"])
    op.create_index("ix_api_audit_actor_at", "api_audit", ["actor", "at"])
    op.create_table(
        "api_resends",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("agent_id", sa.Integer, sa.ForeignKey("api_agents.id"), nullable=False),
        sa.Column("agent_name", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("msisdn", sa.String(20), nullable=False),
        sa.Column("product", sa.String(64), nullable=False),
        sa.Column("edition", sa.String(80), nullable=False),
        sa.Column("edition_requested", sa.String(80)),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("complaint_id", sa.String(64)),
        sa.Column(
            "priority", sa.SmallInteger, nullable=False, comment="lower is sooner; bulk is 100"
        ),
        sa.Column("resume_on_delivery", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("cause", sa.String(64)),
        sa.Column("message_id", sa.String(80)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True)),
        sa.Column("done_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("agent_id", "idempotency_key", name="uq_api_resends_agent_key"),
    )
    op.create_index("ix_api_resends_msisdn_created", "api_resends", ["msisdn", "created_at"])
    op.create_index("ix_api_resends_queue", "api_resends", ["status", "priority", "created_at"])

    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_APPEND_ONLY)
        op.execute(
            "CREATE TRIGGER api_audit_no_update_delete BEFORE UPDATE OR DELETE ON api_audit "
            "FOR EACH ROW EXECUTE FUNCTION api_audit_append_only()"
        )
        op.execute(
            "CREATE TRIGGER api_audit_no_truncate BEFORE TRUNCATE ON api_audit "
            "FOR EACH STATEMENT EXECUTE FUNCTION api_audit_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER api_audit_no_{verb.lower()} BEFORE {verb} ON api_audit "
                f"BEGIN SELECT RAISE(ABORT, 'api_audit is append-only: {verb} refused'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS api_audit_no_truncate ON api_audit")
        op.execute("DROP TRIGGER IF EXISTS api_audit_no_update_delete ON api_audit")
        op.execute("DROP FUNCTION IF EXISTS api_audit_append_only()")
    op.drop_table("api_resends")
    op.drop_table("api_audit")
    op.drop_table("api_agents")

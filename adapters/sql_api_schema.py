"""Tables of the agent API: agents and their token digests, the audit trail, resends.

The audit trail is append-only: migration ``api`` adds triggers refusing UPDATE and DELETE
(and TRUNCATE on PostgreSQL). Idempotency keys live on the resends themselves, unique per agent.
A resend's sending state is its MM7 outbox item's (``mms_outbox``, kind ``resend``, reference =
the resend id); migration ``api_outbox`` dropped the columns that held it before.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from mmsq.adapters.sql_schema import metadata

__all__ = ["api_agents", "api_audit", "api_resends"]

api_agents = Table(
    "api_agents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("token_hash", String(64), nullable=False, comment="hex SHA-256 of the bearer token"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Index("ux_api_agents_token_hash", "token_hash", unique=True),
    # One active agent per name; a revoked name can be given to a new agent (token rotation).
    Index(
        "ux_api_agents_active_name",
        "name",
        unique=True,
        postgresql_where=text("revoked_at IS NULL"),
        sqlite_where=text("revoked_at IS NULL"),
    ),
)

api_audit = Table(
    "api_audit",
    metadata,
    Column(
        "id",
        BigInteger().with_variant(Integer, "sqlite"),
        Identity(),
        primary_key=True,
    ),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(64), comment="agent name; empty when not authenticated"),
    Column("role", String(16)),
    Column("method", String(8), nullable=False),
    Column("route", String(200), nullable=False, comment="route template, never the raw path"),
    Column("action", String(40), nullable=False),
    Column("status", SmallInteger, nullable=False),
    Column("request_id", String(40), nullable=False),
    Column("subject", String(24), comment="MSISDN: full for resends, masked otherwise"),
    Column("detail", Text),
    Column("client", String(64)),
    Index("ix_api_audit_at", "at"),
    Index("ix_api_audit_actor_at", "actor", "at"),
)

api_resends = Table(
    "api_resends",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("agent_id", Integer, ForeignKey("api_agents.id"), nullable=False),
    Column("agent_name", String(64), nullable=False),
    Column("idempotency_key", String(255), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("msisdn", String(20), nullable=False),
    Column("product", String(64), nullable=False),
    Column("edition", String(80), nullable=False),
    Column("edition_requested", String(80)),
    Column("reason", Text, nullable=False),
    Column("complaint_id", String(64)),
    Column(
        "priority", SmallInteger, nullable=False, comment="MM7 outbox priority; higher is sooner"
    ),
    Column("resume_on_delivery", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("agent_id", "idempotency_key", name="uq_api_resends_agent_key"),
    Index("ix_api_resends_msisdn_created", "msisdn", "created_at"),
)

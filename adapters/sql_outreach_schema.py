"""Outreach tables: the outbox of planned contacts and their segments, the decisions not to
contact, and delivery receipts that matched nothing (yet). Created by the ``outreach``
migration."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Identity,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Table,
    Text,
)

from mmsq.adapters.sql_schema import metadata

__all__ = [
    "outreach_contacts",
    "outreach_decisions",
    "outreach_receipts",
    "outreach_segments",
]

outreach_contacts = Table(
    "outreach_contacts",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), Identity(), primary_key=True),
    Column("idempotency_key", String(200), nullable=False),
    Column("msisdn", String(20), nullable=False),
    Column("action", String(16), nullable=False),
    Column("reason", String(40), nullable=False),
    Column("template", String(40)),
    Column("step", SmallInteger, nullable=False),
    Column("text", Text),
    Column("region", String(64)),
    Column("state", String(12), nullable=False),
    Column("segments", SmallInteger, nullable=False),
    Column("created_ms", BigInteger, nullable=False, comment="UTC epoch milliseconds"),
    Column("not_before_ms", BigInteger, nullable=False, comment="quiet hours, blackouts"),
    Column("expires_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("cause", String(32), comment="why it failed or expired (cause class or reason)"),
    Column("status_code", String(16), comment="command_status or receipt stat that decided"),
    Column("detail", Text),
    Index("ux_outreach_contacts_key", "idempotency_key", unique=True),
    Index("ix_outreach_contacts_msisdn", "msisdn", "created_ms"),
    Index("ix_outreach_contacts_state", "state", "not_before_ms"),
)

outreach_segments = Table(
    "outreach_segments",
    metadata,
    Column("contact_id", BigInteger, primary_key=True),
    Column("seq", SmallInteger, primary_key=True),
    Column("state", String(12), nullable=False),
    Column("short_message", LargeBinary, nullable=False),
    Column("esm_class", SmallInteger, nullable=False),
    Column("data_coding", SmallInteger, nullable=False),
    Column("attempts", SmallInteger, nullable=False),
    Column("submitted_ms", BigInteger),
    Column("response_ms", BigInteger),
    Column("command_status", Integer),
    Column("message_id", String(80), comment="normalised SMSC message id"),
    Column("message_id_raw", String(80)),
    Column("receipt_stat", String(16)),
    Column("receipt_err", String(16)),
    Column("receipt_ms", BigInteger),
    Index("ix_outreach_segments_message_id", "message_id"),
    Index("ix_outreach_segments_state", "state", "contact_id", "seq"),
)

outreach_decisions = Table(
    "outreach_decisions",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), Identity(), primary_key=True),
    Column("msisdn", String(20), nullable=False),
    Column("reason", String(40), nullable=False),
    Column("decision", String(24), nullable=False),
    Column("detail", Text),
    Column("day", String(10), nullable=False, comment="planning day, YYYY-MM-DD"),
    Column("decided_ms", BigInteger, nullable=False),
    Index("ux_outreach_decisions", "msisdn", "reason", "decision", "day", unique=True),
)

outreach_receipts = Table(
    "outreach_receipts",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), Identity(), primary_key=True),
    Column("message_id", String(80), nullable=False, comment="normalised"),
    Column("message_id_raw", String(80), nullable=False),
    Column("stat", String(16)),
    Column("err", String(16)),
    Column("source_addr", String(24)),
    Column("text", Text),
    Column("received_ms", BigInteger, nullable=False),
    Column("state", String(10), nullable=False, comment="waiting (for a response) or unmatched"),
    Index("ix_outreach_receipts_message_id", "message_id"),
    Index("ix_outreach_receipts_state", "state", "received_ms"),
)

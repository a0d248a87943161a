"""Tables of the MM7 outbox: the probes and resends mmsq sends, and reports that matched none."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from mmsq.adapters.sql_schema import metadata

__all__ = ["mms_outbox", "mms_outbox_unmatched"]

mms_outbox = Table(
    "mms_outbox",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), Identity(), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("reference", String(128), nullable=False),
    Column("msisdn", String(20), nullable=False),
    Column("edition", String(80), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("content_ref", String(255)),
    Column("state", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("in_doubt", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("claim_token", String(32)),
    Column("lease_until", DateTime(timezone=True)),
    Column("message_id", String(80)),
    Column("message_key", String(80)),
    Column("submitted_at", DateTime(timezone=True)),
    Column("final_at", DateTime(timezone=True)),
    Column("status_code", Integer),
    Column("status_text", Text),
    Column("mm_status", String(40)),
    Column("cause", String(24)),
    Column("reason", Text),
    Index("ux_mms_outbox_kind_reference", "kind", "reference", unique=True),
    Index("ux_mms_outbox_message_key", "message_key", unique=True),
    Index("ix_mms_outbox_reference", "reference"),
    Index("ix_mms_outbox_due", "state", "next_attempt_at"),
)

mms_outbox_unmatched = Table(
    "mms_outbox_unmatched",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), Identity(), primary_key=True),
    Column("message_key", String(80), nullable=False),
    Column("message_id", String(80), nullable=False),
    Column("recipient", String(40), nullable=False),
    Column("mm_status", String(40), nullable=False),
    Column("status_text", Text),
    Column("done_at", DateTime(timezone=True)),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("matched_item_id", BigInteger),
    Column("matched_at", DateTime(timezone=True)),
    Index("ix_mms_outbox_unmatched_key", "message_key"),
)

"""Tables of scoring and recovery: do-not-contact list, recovery states, transition log, runs.

Times are UTC epoch seconds (``*_ts``) and operator-local dates (``*_day``), as in the ingest
tables, so bulk loads need no driver date adapters.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Date, Identity, Index, Integer, String, Table, Text

from mmsq.adapters.sql_schema import metadata

__all__ = ["blacklist", "recovery_states", "recovery_transitions", "scoring_runs"]

blacklist = Table(
    "blacklist",
    metadata,
    Column("msisdn", String(20), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("until", Date, comment="last day the entry holds; NULL: no end"),
    Column("added_ts", BigInteger, nullable=False, comment="UTC epoch seconds"),
)

recovery_states = Table(
    "recovery_states",
    metadata,
    Column("msisdn", String(20), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("verdict", String(32)),
    Column("reason", Text),
    Column("since_ts", BigInteger, nullable=False, comment="UTC epoch seconds"),
    Column("since_day", Date, nullable=False, comment="operator-local day the state began"),
    Column("suspended_day", Date),
    Column("probes_sent", Integer, nullable=False, server_default="0"),
    Column("last_probe_ts", BigInteger),
    Index("ix_recovery_states_state", "state"),
)

recovery_transitions = Table(
    "recovery_transitions",
    metadata,
    Column(
        "id",
        BigInteger().with_variant(Integer, "sqlite"),
        Identity(),
        primary_key=True,
    ),
    Column("msisdn", String(20), nullable=False),
    Column("at_ts", BigInteger, nullable=False, comment="UTC epoch seconds"),
    Column("from_state", String(16), nullable=False),
    Column("to_state", String(16), nullable=False),
    Column("event", String(32), nullable=False),
    Column("cause", String(64), nullable=False),
    Column("evidence", Text, nullable=False),
    Column("run_id", String(32)),
    Index("ix_recovery_transitions_msisdn_at", "msisdn", "at_ts"),
    Index("ix_recovery_transitions_at", "at_ts"),
)

scoring_runs = Table(
    "scoring_runs",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("as_of", Date, nullable=False),
    Column("started_ts", BigInteger, nullable=False),
    Column("finished_ts", BigInteger, nullable=False),
    Column("summary", JSON),
)

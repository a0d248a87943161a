"""The database harness itself: every `db_url` backend accepts DDL, writes and reads."""

from __future__ import annotations

import sqlalchemy as sa


def test_db_url_gives_a_working_empty_database(db_url: str) -> None:
    meta = sa.MetaData()
    probe = sa.Table(
        "harness_probe",
        meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("label", sa.String(50), nullable=False),
    )
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            assert not sa.inspect(conn).get_table_names(), "the database should start empty"
        with engine.begin() as conn:
            meta.create_all(conn)
            conn.execute(probe.insert(), [{"id": 1, "label": "héllo ✓"}])
        with engine.connect() as conn:
            rows = conn.execute(sa.select(probe.c.id, probe.c.label)).all()
            assert [tuple(r) for r in rows] == [(1, "héllo ✓")]
            assert conn.dialect.name == db_url.split(":", 1)[0].split("+", 1)[0]
    finally:
        engine.dispose()

"""The migration chain builds exactly the schema the code declares, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from mmsq.adapters.sql_schema import metadata
from mmsq.adapters.sql_store import SqlStore


def test_migrations_match_declared_schema(db_url: str) -> None:
    store = SqlStore.from_url(db_url)
    try:
        store.upgrade()
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        store.close()
    # Comments are not compared on SQLite; anything else is drift between code and migrations.
    assert diff == []


def test_upgrade_is_repeatable(db_url: str) -> None:
    store = SqlStore.from_url(db_url)
    try:
        first = store.upgrade()
        second = store.upgrade()
    finally:
        store.close()
    assert first[1] == second[0] == second[1]


def test_device_blocks_are_recut_into_small_partitions(db_url: str) -> None:
    """Revision device_parts re-cuts device blocks stored in 64 partitions into 4,096, and
    every subscriber's device is still found (and sorted within its block)."""
    import numpy as np
    import pyarrow as pa
    from alembic import command

    from mmsq.adapters.event_blocks import DEVICE_PARTS, DEVICE_SCHEMA, encode
    from mmsq.adapters.sql_event_schema import device_blocks

    store = SqlStore.from_url(db_url)
    try:
        with store.engine.begin() as conn:
            command.upgrade(store._alembic(conn), "api_outbox")
        m = np.arange(8613800000000, 8613800000000 + 9000 * 7, 7, dtype=np.int64)
        imei = pa.array([f"86171203{x % 10**8:08d}" for x in m.tolist()])
        table = pa.table(
            {"msisdn": m, "imei": imei, "tac": pa.array(["86171203"] * len(m)), "seen_ts": m % 1000}
        ).cast(DEVICE_SCHEMA)
        rows = []
        for p in range(64):
            part = table.filter(pa.array(m % 64 == p))
            rows.append({"part": p, "rows": part.num_rows, "data": encode(part)})
        with store.engine.begin() as conn:
            conn.execute(device_blocks.insert(), rows)
        store.upgrade()
        with store.engine.connect() as conn:
            parts = conn.execute(sa.select(device_blocks.c.part, device_blocks.c.rows)).all()
        assert len(parts) == min(DEVICE_PARTS, len(m))
        with store.engine.connect() as conn:
            data = conn.execute(sa.select(device_blocks.c.data).limit(1)).scalar_one()
        assert data[:4] == b"\x04\x22\x4d\x18"  # one LZ4 frame (encode_framed)
        assert sum(r for _, r in parts) == len(m)
        for x in m[::97].tolist():
            found = store.device(f"+{x}")
            assert found is not None
            assert found["imei"] == f"86171203{x % 10**8:08d}"
            assert found["seen_ts"] == x % 1000
        assert store.device("+8613800000001") is None  # between two stored numbers
        assert len(store.devices()) == len(m)
    finally:
        store.close()

"""Alembic environment: runs migrations on the connection mmsq hands it."""

from __future__ import annotations

from alembic import context

from mmsq.adapters.sql_schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()

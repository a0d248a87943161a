"""Tables of ``mmsq daemon``: the scheduler's persistent job store.

The columns are the ones APScheduler 3's SQLAlchemyJobStore declares, so the store finds the
table the ``daemon`` migration created and never creates one itself.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, LargeBinary, Table, Unicode

from mmsq.adapters.sql_schema import metadata

__all__ = ["scheduler_jobs"]

scheduler_jobs = Table(
    "scheduler_jobs",
    metadata,
    Column("id", Unicode(191), primary_key=True),
    Column("next_run_time", Float(25), index=True),
    Column("job_state", LargeBinary, nullable=False),
)

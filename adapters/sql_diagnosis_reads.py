"""The statements a diagnosis reads, sent ahead together (``SqlReadScope``'s prefetch).

A diagnosis of one MSISDN reads, through its ports: the subscriptions, the newest
recent-index blocks of its partition, its device block, its recovery state and latest
transitions, and its latest resends. Each adapter still runs its own look-up (and does, when
a read was not foreseen here); on PostgreSQL the scope built here sends these six statements
in one round trip first, so that each look-up finds its rows already read.

The parameters are those the adapters pass (the blocks' and the device block's come from the
functions the adapters use): a statement whose parameters differ is read again by its adapter
(correct, one round trip more). The integration tests check that a
diagnosis on PostgreSQL runs no statement of its own beyond these.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine

from mmsq.adapters.recent_blocks import _NEWEST_BLOCKS, newest_blocks_params
from mmsq.adapters.sql_api import _RESENDS_FOR
from mmsq.adapters.sql_read_scope import Prefetch, SqlReadScope
from mmsq.adapters.sql_recovery import _RECENT_TRANSITIONS, _STATE_FOR
from mmsq.adapters.sql_store import _DEVICE_BLOCK, device_block_params
from mmsq.adapters.sql_subscriptions import _SUBSCRIPTIONS_OF

__all__ = ["diagnosis_read_scope"]


def _digits(msisdn: str) -> int:
    digits = msisdn.strip().lstrip("+")
    return int(digits) if digits.isdigit() else -1  # -1: in no partition, reads nothing


def diagnosis_read_scope(engine: Engine, *, transitions: int, resends: int) -> SqlReadScope:
    """The read scope of ``DiagnosisService`` on ``engine``: ``transitions`` and ``resends``
    are the numbers the service asks for."""

    def msisdn(m: str) -> dict[str, Any]:
        return {"msisdn": m}

    return SqlReadScope(
        engine,
        prefetch=[
            Prefetch(_SUBSCRIPTIONS_OF, msisdn),
            Prefetch(_NEWEST_BLOCKS, lambda m: newest_blocks_params(_digits(m))),
            Prefetch(_DEVICE_BLOCK, lambda m: device_block_params(_digits(m))),
            Prefetch(_STATE_FOR, msisdn),
            Prefetch(_RECENT_TRANSITIONS, lambda m: {"msisdn": m, "limit": transitions}),
            Prefetch(_RESENDS_FOR, lambda m: {"msisdn": m, "limit": resends}),
        ],
    )

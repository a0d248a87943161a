"""The append-only audit trail of every API call: who, when, what, outcome.

MSISDN policy: a resend is recorded with the subscriber's full MSISDN, because a resend sends
content to a number and must be traceable to it (a disputed charge, a complaint about an unwanted
message). Every other call (a diagnosis lookup, reading a resend) records the MSISDN masked: the
audit reader needs to see that an agent looked somebody up, and when, not a number to dial.
Paths are recorded as route templates (``/v1/subscribers/{msisdn}/diagnosis``), never raw, so no
number reaches the trail through the URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from mmsq.msisdn import mask_msisdn

__all__ = [
    "FULL_MSISDN_ACTIONS",
    "AuditEntry",
    "AuditLog",
    "AuditPage",
    "AuditQuery",
    "subject_for_audit",
]

#: Actions whose audit entry keeps the full MSISDN (see the module docstring).
FULL_MSISDN_ACTIONS = frozenset({"resend.create"})


def subject_for_audit(action: str, msisdn: str | None) -> str | None:
    """The MSISDN as the audit trail keeps it for ``action``: full or masked."""
    if msisdn is None:
        return None
    return msisdn if action in FULL_MSISDN_ACTIONS else mask_msisdn(msisdn)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One call. ``actor`` is the agent name (None when the caller was not authenticated)."""

    at: datetime
    actor: str | None
    role: str | None
    method: str
    route: str
    action: str
    status: int
    request_id: str
    subject: str | None = None
    detail: str | None = None
    client: str | None = None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class AuditQuery:
    since: datetime | None = None
    until: datetime | None = None
    actor: str | None = None
    after_id: int | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class AuditPage:
    entries: Sequence[AuditEntry]
    next_after_id: int | None


class AuditLog(Protocol):
    """Append-only: the adapter inserts and reads, never updates or deletes."""

    def append(self, entry: AuditEntry) -> None: ...

    def append_many(self, entries: Sequence[AuditEntry]) -> None:
        """Insert all of ``entries`` in one statement (one transaction)."""
        ...

    def query(self, q: AuditQuery) -> AuditPage: ...

"""Per-request facts the audit middleware records, filled in by dependencies and endpoints."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["AUDIT_KEY", "AuditContext", "audit_context"]

AUDIT_KEY = "mmsq.audit"


@dataclass
class AuditContext:
    actor: str | None = None
    role: str | None = None
    msisdn: str | None = None  # E.164; the trail masks it unless the action needs it in full
    detail: str | None = None


def audit_context(scope: Any) -> AuditContext:
    """The request's audit context (created by the middleware; a fresh one outside it)."""
    ctx = scope.get(AUDIT_KEY)
    if ctx is None:
        ctx = scope[AUDIT_KEY] = AuditContext()
    return ctx  # type: ignore[no-any-return]

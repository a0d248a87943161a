"""In-memory implementations of the API's ports, for unit tests (no I/O)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from mmsq.agents import Agent, Role
from mmsq.diagnosis import DeliveryRecord
from mmsq.resend import DuplicateResendKeyError, Resend, ResendStatus

__all__ = ["FakeHistory", "FixedClock", "MemoryResendStore", "StaticEditions", "agent"]


@dataclass
class FixedClock:
    at: datetime = field(default_factory=lambda: datetime(2026, 11, 23, 8, 0, tzinfo=UTC))

    def now(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


def agent(id_: int = 1, name: str = "li.wei", role: Role = Role.AGENT) -> Agent:
    return Agent(id_, name, role, "0" * 64, datetime(2026, 1, 1, tzinfo=UTC))


class MemoryResendStore:
    def __init__(self) -> None:
        self.rows: dict[str, Resend] = {}
        self._lock = threading.Lock()

    def resend_by_key(self, agent_id: int, key: str) -> Resend | None:
        return next(
            (r for r in self.rows.values() if (r.agent_id, r.idempotency_key) == (agent_id, key)),
            None,
        )

    def insert_resend(self, resend: Resend) -> None:
        with self._lock:
            if self.resend_by_key(resend.agent_id, resend.idempotency_key):
                raise DuplicateResendKeyError(resend.idempotency_key)
            self.rows[resend.id] = resend

    def resend_by_id(self, resend_id: str) -> Resend | None:
        return self.rows.get(resend_id)

    def resends_for(self, msisdn: str, limit: int) -> Sequence[Resend]:
        mine = [r for r in self.rows.values() if r.msisdn == msisdn]
        return sorted(mine, key=lambda r: r.created_at, reverse=True)[:limit]

    def queued_resends(self, limit: int) -> Sequence[Resend]:
        q = [r for r in self.rows.values() if r.status is ResendStatus.QUEUED]
        return sorted(q, key=lambda r: (r.priority, r.created_at))[:limit]

    def update_resend(self, resend: Resend) -> None:
        self.rows[resend.id] = resend


@dataclass
class StaticEditions:
    latest: dict[str, str] = field(default_factory=dict)

    def latest_edition(self, product: str, msisdn: str) -> str | None:
        return self.latest.get(product)


@dataclass
class FakeHistory:
    records: list[DeliveryRecord] = field(default_factory=list)

    def last_deliveries(self, msisdn: str, limit: int) -> Sequence[DeliveryRecord]:
        mine = [r for r in self.records if r.msisdn == msisdn]
        return sorted(mine, key=lambda r: r.submitted_at, reverse=True)[:limit]

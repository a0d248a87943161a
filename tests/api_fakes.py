"""In-memory implementations of the API's ports, for unit tests (no I/O)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from mmsq.agents import Agent, Role
from mmsq.diagnosis import DeliveryRecord, DeviceInfo
from mmsq.mms_outbox_model import OutboxItem, OutboxKind, OutboxState
from mmsq.recovery import SubscriberRecovery
from mmsq.resend import DuplicateResendKeyError, Resend

__all__ = [
    "FakeHistory",
    "FakeRecovery",
    "FixedClock",
    "MemoryOutbox",
    "MemoryResendStore",
    "NoDevices",
    "StaticEditions",
    "agent",
]


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

    def recent_for(self, msisdn: str, limit: int = 5) -> Sequence[Resend]:
        return self.resends_for(msisdn, limit)


class MemoryOutbox:
    """The outbox's enqueue/status, in memory; ``items`` by (kind, reference)."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], OutboxItem] = {}
        self._lock = threading.Lock()

    def enqueue(
        self,
        kind: OutboxKind | str,
        msisdn: str,
        edition: str,
        reference: str,
        priority: int | None = None,
        content_ref: str | None = None,
        expires_at: datetime | None = None,
    ) -> OutboxItem:
        at = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
        with self._lock:
            key = (str(kind), reference)
            if key not in self.items:
                self.items[key] = OutboxItem(
                    id=len(self.items) + 1,
                    kind=OutboxKind(kind),
                    reference=reference,
                    msisdn=msisdn,
                    edition=edition,
                    priority=priority or 0,
                    content_ref=content_ref,
                    state=OutboxState.QUEUED,
                    version=0,
                    attempts=0,
                    in_doubt=0,
                    created_at=at,
                    updated_at=at,
                    next_attempt_at=at,
                    expires_at=expires_at or at + timedelta(days=1),
                )
            return self.items[key]

    def status(self, reference: str, kind: OutboxKind | None = None) -> list[OutboxItem]:
        return [
            i
            for (k, ref), i in self.items.items()
            if ref == reference and (kind is None or k == kind)
        ]


@dataclass
class FakeRecovery:
    states: dict[str, SubscriberRecovery] = field(default_factory=dict)

    def subscriber(self, msisdn: str, transitions: int = 20) -> SubscriberRecovery | None:
        return self.states.get(msisdn)


class NoDevices:
    def device(self, msisdn: str) -> DeviceInfo | None:
        return None


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

"""Domain values shared by every service: delivery reports, cause classes, classifications."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

__all__ = [
    "CAUSE_CLASSES",
    "CauseClass",
    "Classification",
    "DeliveryReport",
    "QuarantinedRecord",
]


class CauseClass(StrEnum):
    """Why a delivery attempt ended the way it did (see docs/cause-classes.md)."""

    DELIVERED = "delivered"
    PENDING = "pending"
    NOT_FETCHED = "not_fetched"
    TERMINAL_CAPACITY = "terminal_capacity"
    TERMINAL_INCAPABLE = "terminal_incapable"
    UNREACHABLE = "unreachable"
    SUBSCRIBER_INVALID = "subscriber_invalid"
    SUBSCRIBER_SUSPENDED = "subscriber_suspended"
    POLICY_BLOCKED = "policy_blocked"
    CONTENT_REJECTED = "content_rejected"
    NETWORK_TRANSIENT = "network_transient"
    PLATFORM_ERROR = "platform_error"
    UNKNOWN = "unknown"


CAUSE_CLASSES: tuple[str, ...] = tuple(c.value for c in CauseClass)


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """One delivery outcome as reported by a peer, before normalisation and classification.

    ``msisdn`` is as received (national or E.164); ``status_source`` is the namespace of
    ``status_code`` (``mm7``, ``mms``, ``smpp``, ``cmpp``, ...). ``error_code`` carries a
    secondary code that refines the primary one (the SMPP receipt ``err:`` field, for example),
    in the namespace the rules name for it.
    """

    msisdn: str
    message_id: str
    status_source: str
    status_code: str
    submitted_at: datetime | None = None
    done_at: datetime | None = None
    edition: str | None = None
    notify_status: str | None = None
    imei: str | None = None
    region: str | None = None
    error_code: str | None = None


@dataclass(frozen=True, slots=True)
class Classification:
    """What a (namespace, code) means: its cause class, finality and retry advice."""

    cause: CauseClass
    final: bool
    retry: bool
    known: bool
    provenance: str = ""


@dataclass(frozen=True, slots=True)
class QuarantinedRecord:
    """A record that could not be read, kept with where it came from and why."""

    source: str
    line: int
    reason: str
    raw: str

"""What a delivered probe or resend tells the recovery process: the handset works again.

The MM7 outbox reports each item that reaches ``delivered`` (its delivery report was
correlated by MessageID); a delivered recovery probe or resend is recorded with
``RecoveryService.record_delivery``, which resumes a subscriber whose bulk delivery mmsq had
suspended (``suspended``/``probing`` -> ``resumed``) and recovers one that was flagged. For a
subscriber who was not waiting for a delivery nothing changes.
"""

from __future__ import annotations

from typing import Protocol

from mmsq.mms_outbox import MmsOutbox
from mmsq.mms_outbox_model import OutboxItem, OutboxKind

__all__ = ["DeliveryRecorder", "connect_recovery"]


class DeliveryRecorder(Protocol):
    def record_delivery(
        self, msisdn: str, *, probe: bool = False, evidence: str = ""
    ) -> object: ...


def connect_recovery(outbox: MmsOutbox, recovery: DeliveryRecorder) -> None:
    """Tell ``recovery`` about every probe and resend the outbox sees delivered."""

    def evidence(item: OutboxItem) -> str:
        what = "probe" if item.kind is OutboxKind.PROBE else f"resend of {item.edition}"
        return f"{what} {item.reference} delivered (MessageID {item.message_id})"

    def probe(item: OutboxItem) -> None:
        recovery.record_delivery(item.msisdn, probe=True, evidence=evidence(item))

    def resend(item: OutboxItem) -> None:
        recovery.record_delivery(item.msisdn, evidence=evidence(item))

    outbox.on_delivered(OutboxKind.PROBE, probe)
    outbox.on_delivered(OutboxKind.RESEND, resend)

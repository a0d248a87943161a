"""Diagnosis of one subscriber for a customer-service agent.

Brings together the subscription status, the last deliveries and their causes, the scoring
verdict with its reasons and recovery state, the handset and its OTA eligibility, the remedies
already sent, and the next step from the complaint case library. The pieces come through ports:
``DeliveryHistory`` (the event store), ``DiagnosisSource`` (scoring, recovery and devices) and
``SubscriptionLookup``. ``HistoryDiagnosisSource`` is the default source until scoring exists:
it derives a plain verdict from the delivery history alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from mmsq.complaint_cases import CaseFacts, ComplaintCase, ComplaintCases
from mmsq.domain import CauseClass
from mmsq.resend import Resend, ResendStore
from mmsq.subscription_lookup import SubscriptionLookup, SubscriptionView

__all__ = [
    "Assessment",
    "AssessmentSuspension",
    "DeliveryHistory",
    "DeliveryRecord",
    "DeviceInfo",
    "DeviceLookup",
    "Diagnosis",
    "DiagnosisService",
    "DiagnosisSource",
    "HistoryDiagnosisSource",
    "RemedyRecord",
]

#: Verdicts the history-only source gives, by the dominant cause of recent failures.
_VERDICT_BY_CAUSE = {
    CauseClass.NOT_FETCHED: "handset_misconfigured",
    CauseClass.TERMINAL_CAPACITY: "handset_memory_full",
    CauseClass.TERMINAL_INCAPABLE: "handset_incapable",
    CauseClass.UNREACHABLE: "unreachable",
    CauseClass.SUBSCRIBER_INVALID: "number_invalid",
    CauseClass.SUBSCRIBER_SUSPENDED: "number_suspended",
}
RECOVERY_SUSPENDED = "suspended"


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One delivery attempt as the event store holds it."""

    msisdn: str
    edition: str | None
    message_id: str
    submitted_at: datetime
    done_at: datetime | None
    status_source: str
    status_code: str
    error_code: str | None
    cause: str
    final: bool


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """The subscriber's latest handset: TAC (first 8 IMEI digits), model if known, OTA."""

    tac: str
    seen_at: datetime | None
    model: str | None = None
    ota_eligible: bool | None = None  # None: not known (no device profile for the TAC)


@dataclass(frozen=True, slots=True)
class Assessment:
    """The scoring verdict on a subscriber, why, and where the recovery process stands."""

    verdict: str
    reasons: tuple[str, ...]
    recovery_state: str | None = None
    assessed_at: datetime | None = None
    source: str = "scoring"


@dataclass(frozen=True, slots=True)
class RemedyRecord:
    """A remedy sent to the subscriber: help SMS, OTA push, recovery MMS, probe, resend."""

    kind: str
    sent_at: datetime
    outcome: str | None = None


class DeliveryHistory(Protocol):
    def last_deliveries(self, msisdn: str, limit: int) -> Sequence[DeliveryRecord]:
        """The latest delivery attempts to one subscriber, newest first."""
        ...


class DeviceLookup(Protocol):
    def device(self, msisdn: str) -> DeviceInfo | None: ...


class DiagnosisSource(Protocol):
    """What scoring, recovery and the device profiles know about one subscriber."""

    def assessment(
        self, msisdn: str, deliveries: Sequence[DeliveryRecord]
    ) -> Assessment | None: ...

    def device(self, msisdn: str) -> DeviceInfo | None: ...

    def remedies(self, msisdn: str) -> Sequence[RemedyRecord]: ...


class HistoryDiagnosisSource:
    """The default source: a verdict from the delivery history, the device from the store,
    no recovery state and no remedies (those come with scoring and recovery)."""

    def __init__(self, devices: DeviceLookup) -> None:
        self._devices = devices

    def assessment(self, msisdn: str, deliveries: Sequence[DeliveryRecord]) -> Assessment | None:
        final = [d for d in deliveries if d.final]
        if not final:
            return None
        failures = [d for d in final if d.cause != CauseClass.DELIVERED]
        latest = final[0]
        reasons = [f"{len(failures)} of the last {len(final)} final deliveries failed"]
        if latest.cause == CauseClass.DELIVERED:
            verdict = "receiving"
            reasons.append(f"the latest delivery ({latest.edition or latest.message_id}) arrived")
        else:
            dominant, n = Counter(d.cause for d in failures).most_common(1)[0]
            verdict = _VERDICT_BY_CAUSE.get(CauseClass(dominant), "failing")
            reasons.append(f"most failures are {dominant} ({n} of {len(failures)})")
            reasons.append(
                f"latest failure: {latest.status_source} {latest.status_code} ({latest.cause}) "
                f"at {latest.submitted_at:%Y-%m-%d %H:%M} UTC"
            )
        return Assessment(verdict, tuple(reasons), None, None, source="delivery history")

    def device(self, msisdn: str) -> DeviceInfo | None:
        return self._devices.device(msisdn)

    def remedies(self, msisdn: str) -> Sequence[RemedyRecord]:
        return ()


class AssessmentSuspension:
    """``DeliverySuspension`` from a diagnosis source: suspended when the recovery state says so."""

    def __init__(self, source: DiagnosisSource, history: DeliveryHistory) -> None:
        self._source = source
        self._history = history

    def delivery_suspended(self, msisdn: str) -> bool:
        a = self._source.assessment(msisdn, self._history.last_deliveries(msisdn, 10))
        return a is not None and a.recovery_state == RECOVERY_SUSPENDED


@dataclass(frozen=True, slots=True)
class Diagnosis:
    msisdn: str
    subscription: SubscriptionView | None
    deliveries: Sequence[DeliveryRecord]
    assessment: Assessment | None
    device: DeviceInfo | None
    remedies: Sequence[RemedyRecord]
    resends: Sequence[Resend]
    next_step: ComplaintCase
    suspended_by_mmsq: bool


class DiagnosisService:
    def __init__(
        self,
        *,
        subscriptions: SubscriptionLookup,
        history: DeliveryHistory,
        source: DiagnosisSource,
        resends: ResendStore,
        cases: ComplaintCases,
        deliveries_shown: int = 10,
    ) -> None:
        self._subscriptions = subscriptions
        self._history = history
        self._source = source
        self._resends = resends
        self._cases = cases
        self._limit = deliveries_shown

    def diagnose(self, msisdn: str) -> Diagnosis:
        """Everything an agent needs about one E.164 MSISDN, with the next step."""
        view = self._subscriptions.status(msisdn)
        deliveries = self._history.last_deliveries(msisdn, self._limit)
        assessment = self._source.assessment(msisdn, deliveries)
        suspended = (view is not None and view.suspended_by_mmsq) or (
            assessment is not None and assessment.recovery_state == RECOVERY_SUSPENDED
        )
        last_final = next((d for d in deliveries if d.final), None)
        facts = CaseFacts(
            subscription=view.status.value if view else "unknown",
            suspended_by_mmsq=suspended,
            verdict=assessment.verdict if assessment else None,
            last_cause=last_final.cause if last_final else None,
            has_deliveries=bool(deliveries),
        )
        return Diagnosis(
            msisdn=msisdn,
            subscription=view,
            deliveries=deliveries,
            assessment=assessment,
            device=self._source.device(msisdn),
            remedies=self._source.remedies(msisdn),
            resends=self._resends.resends_for(msisdn, 5),
            next_step=self._cases.next_step(facts),
            suspended_by_mmsq=suspended,
        )

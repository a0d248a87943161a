"""Diagnosis of one subscriber for a customer-service agent.

Brings together the subscriptions, the last deliveries and their causes, the scoring verdict
with its reasons, the recovery state and its history, the handset and its OTA eligibility, the
remedies already sent (help SMS, OTA pushes, probes, resends), and the next step from the
complaint case library. Every piece is a read for one subscriber, through a port:
``DeliveryHistory`` (the event store), ``DeviceLookup`` (the device store plus the device
table), ``RecoveryReader`` (``RecoveryService.subscriber``), ``SubscriptionLookup`` and the
resends. A subscriber who never left ``active`` has no stored verdict: a plain one is derived
from the delivery history instead (``source`` says which).

The do-not-contact list is not consulted: it limits what mmsq sends on its own initiative,
never what an agent may see or resend on the subscriber's request.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from mmsq.complaint_cases import CaseFacts, ComplaintCase, ComplaintCases
from mmsq.devices import DeviceCatalogue
from mmsq.domain import CauseClass
from mmsq.recovery import Event, SubscriberRecovery, Transition
from mmsq.resend import Resend
from mmsq.subscription_lookup import SubscriptionLookup, SubscriptionView, preferred
from mmsq.verdicts import Verdict

__all__ = [
    "RESENDS_SHOWN",
    "TRANSITIONS_SHOWN",
    "Assessment",
    "DeliveryHistory",
    "DeliveryRecord",
    "DeviceInfo",
    "DeviceLookup",
    "DeviceProfiles",
    "Diagnosis",
    "DiagnosisService",
    "ReadScope",
    "RecentResends",
    "RecoveryReader",
    "RemedyRecord",
    "StoredDevice",
    "assess_history",
]

#: The verdict the history-only assessment gives, by the dominant cause of recent failures
#: (scoring's vocabulary, so that both sources speak the same words).
_VERDICT_BY_CAUSE = {
    CauseClass.NOT_FETCHED: Verdict.TERMINAL_MISCONFIGURED,
    CauseClass.TERMINAL_CAPACITY: Verdict.TERMINAL_CAPACITY,
    CauseClass.TERMINAL_INCAPABLE: Verdict.TERMINAL_INCAPABLE,
    CauseClass.UNREACHABLE: Verdict.UNREACHABLE,
    CauseClass.SUBSCRIBER_INVALID: Verdict.SUBSCRIBER_INVALID,
    CauseClass.SUBSCRIBER_SUSPENDED: Verdict.POLICY_BLOCKED,
    CauseClass.POLICY_BLOCKED: Verdict.POLICY_BLOCKED,
}
#: Recovery transitions listed in a diagnosis, newest first.
TRANSITIONS_SHOWN = 20
#: Resends listed in a diagnosis, newest first.
RESENDS_SHOWN = 5
#: Recovery transitions that are remedies sent, and what the diagnosis calls them.
_REMEDY_CAUSES = {"ota": "ota_push", "help_sms": "help_sms"}


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
class StoredDevice:
    """The latest handset the event store saw for a subscriber."""

    tac: str
    seen_at: datetime | None
    imei: str | None = None


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """The subscriber's latest handset: TAC (first 8 IMEI digits), model and abilities if the
    device table knows the TAC (``None``: not known)."""

    tac: str
    seen_at: datetime | None
    brand: str | None = None
    model: str | None = None
    mms_capable: bool | None = None
    ota_eligible: bool | None = None


@dataclass(frozen=True, slots=True)
class Assessment:
    """The verdict on a subscriber, why, and where the recovery process stands."""

    verdict: str
    reasons: tuple[str, ...]
    recovery_state: str | None = None
    assessed_at: datetime | None = None
    source: str = "scoring"


@dataclass(frozen=True, slots=True)
class RemedyRecord:
    """A remedy sent to the subscriber: help SMS, OTA push, probe, resend."""

    kind: str
    sent_at: datetime
    outcome: str | None = None
    detail: str | None = None


class ReadScope(Protocol):
    def __call__(self, subject: str) -> AbstractContextManager[object]:
        """A block in which the look-ups of one diagnosis of ``subject`` (an MSISDN) share
        what they can (a database connection, one round trip for the foreseen reads); each
        reads what it would read alone."""
        ...


def _unscoped(subject: str) -> AbstractContextManager[object]:
    """No read scope: each look-up of ``subject`` on its own."""
    return nullcontext()


class DeliveryHistory(Protocol):
    def last_deliveries(self, msisdn: str, limit: int) -> Sequence[DeliveryRecord]:
        """The latest delivery attempts to one subscriber, newest first."""
        ...


class DeviceStore(Protocol):
    def stored_device(self, msisdn: str) -> StoredDevice | None: ...


class DeviceLookup(Protocol):
    def device(self, msisdn: str) -> DeviceInfo | None: ...


class RecoveryReader(Protocol):
    def subscriber(self, msisdn: str, transitions: int = 20) -> SubscriberRecovery | None: ...


class RecentResends(Protocol):
    def recent_for(self, msisdn: str, limit: int = 5) -> Sequence[Resend]: ...


class DeviceProfiles:
    """``DeviceLookup``: the stored device with its model from the device table (a dictionary
    built once, so a lookup costs nothing beside the store read)."""

    def __init__(self, store: DeviceStore, catalogue: DeviceCatalogue) -> None:
        self._store = store
        self._models: dict[str, tuple[str | None, str | None, bool | None, bool | None]] = {}
        for row in catalogue.table.itertuples(index=False):
            self._models[str(row.tac)] = (
                str(row.brand) or None,
                str(row.model) or None,
                _flag(row.mms_capable),
                _flag(row.ota_cp),
            )

    def device(self, msisdn: str) -> DeviceInfo | None:
        stored = self._store.stored_device(msisdn)
        if stored is None:
            return None
        brand, model, mms, ota = self._models.get(stored.tac, (None, None, None, None))
        return DeviceInfo(stored.tac, stored.seen_at, brand, model, mms, ota)


def _flag(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    return {"true": True, "false": False}.get(text)


def assess_history(deliveries: Sequence[DeliveryRecord]) -> Assessment | None:
    """A plain verdict from the last final deliveries (for subscribers scoring never moved)."""
    final = [d for d in deliveries if d.final]
    if not final:
        return None
    failures = [d for d in final if d.cause != CauseClass.DELIVERED]
    latest = final[0]
    reasons = [f"{len(failures)} of the last {len(final)} final deliveries failed"]
    if latest.cause == CauseClass.DELIVERED:
        verdict = Verdict.HEALTHY.value
        reasons.append(f"the latest delivery ({latest.edition or latest.message_id}) arrived")
    else:
        dominant, n = Counter(d.cause for d in failures).most_common(1)[0]
        known = dominant in CauseClass.__members__.values()
        mapped = _VERDICT_BY_CAUSE.get(CauseClass(dominant)) if known else None
        verdict = (mapped or Verdict.INSUFFICIENT_EVIDENCE).value
        reasons.append(f"most failures are {dominant} ({n} of {len(failures)})")
        reasons.append(
            f"latest failure: {latest.status_source} {latest.status_code} ({latest.cause}) "
            f"at {latest.submitted_at:%Y-%m-%d %H:%M} UTC"
        )
    return Assessment(verdict, tuple(reasons), None, None, source="delivery history")


def _recovery_assessment(r: SubscriberRecovery) -> Assessment | None:
    if r.verdict is None:
        return None
    # The stored reason reads "<verdict> (score s): reason; reason; ...".
    text = r.reason or ""
    head, _, tail = text.partition(": ")
    reasons = tuple(p.strip() for p in tail.split(";") if p.strip()) if tail else ()
    if head:
        reasons = (head.strip(), *reasons)
    return Assessment(r.verdict, reasons, r.state.value, r.since, source="scoring")


def _remedies(transitions: Sequence[Transition]) -> list[RemedyRecord]:
    out = []
    for t in transitions:
        if t.event is Event.REMEDY_SENT:
            out.append(RemedyRecord(_REMEDY_CAUSES.get(t.cause, t.cause), t.at, None, t.evidence))
        elif t.event is Event.PROBE_SENT:
            out.append(RemedyRecord("probe", t.at, None, t.evidence))
    return out


@dataclass(frozen=True, slots=True)
class Diagnosis:
    msisdn: str
    subscription: SubscriptionView | None
    subscriptions: Sequence[SubscriptionView]
    deliveries: Sequence[DeliveryRecord]
    assessment: Assessment | None
    recovery: SubscriberRecovery | None
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
        devices: DeviceLookup,
        recovery: RecoveryReader,
        resends: RecentResends,
        cases: ComplaintCases,
        deliveries_shown: int = 10,
        transitions_shown: int = TRANSITIONS_SHOWN,
        reads: ReadScope = _unscoped,
    ) -> None:
        self._subscriptions = subscriptions
        self._history = history
        self._devices = devices
        self._recovery = recovery
        self._resends = resends
        self._cases = cases
        self._limit = deliveries_shown
        self._transitions = transitions_shown
        self._reads = reads

    def diagnose(self, msisdn: str) -> Diagnosis:
        """Everything an agent needs about one E.164 MSISDN, with the next step."""
        with self._reads(msisdn):
            return self._diagnose(msisdn)

    def _diagnose(self, msisdn: str) -> Diagnosis:
        views = self._subscriptions.subscriptions(msisdn)
        view = preferred(views)
        deliveries = self._history.last_deliveries(msisdn, self._limit)
        recovery = self._recovery.subscriber(msisdn, self._transitions)
        assessment = (_recovery_assessment(recovery) if recovery else None) or assess_history(
            deliveries
        )
        suspended = recovery is not None and recovery.delivery_suspended
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
            subscriptions=views,
            deliveries=deliveries,
            assessment=assessment,
            recovery=recovery,
            device=self._devices.device(msisdn),
            remedies=_remedies(recovery.transitions) if recovery else [],
            resends=self._resends.recent_for(msisdn, RESENDS_SHOWN),
            next_step=self._cases.next_step(facts),
            suspended_by_mmsq=suspended,
        )

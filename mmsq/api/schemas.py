"""Request and response bodies of the agent API (pydantic; they make the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mmsq.agents import Agent, Role
from mmsq.audit import AuditEntry
from mmsq.diagnosis import Diagnosis
from mmsq.resend import Resend, ResendStatus
from mmsq.subscription_lookup import SubscriptionStatus, SubscriptionView
from mmsq.subscriptions import EventOutcome, EventResult

__all__ = [
    "AgentCreate",
    "AgentCreated",
    "AgentOut",
    "AuditEntryOut",
    "AuditPageOut",
    "DiagnosisOut",
    "Problem",
    "ResendCreate",
    "ResendOut",
    "SubscriptionEventOut",
]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class Problem(_Out):
    """An error, as RFC 9457 ``application/problem+json``."""

    type: str = Field(description="URI naming the kind of problem (urn:mmsq:problem:...)")
    title: str = Field(description="short summary of the kind of problem")
    status: int = Field(description="HTTP status code")
    detail: str = Field(description="what went wrong in this occurrence, for a person")
    instance: str = Field(description="URI of this occurrence (the request id)")
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="for validation problems: each invalid field and why"
    )
    resend_id: str | None = Field(default=None, description="the resend a problem refers to")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "urn:mmsq:problem:subscription-inactive",
                    "title": "Subscription is not active",
                    "status": 409,
                    "detail": "the subscription to ah-daily is unsubscribed since 2026-10-02: "
                    "only active subscribers get resends",
                    "instance": "urn:mmsq:request:4f3c2a1b9d8e7f60",
                }
            ]
        }
    )


class ResendCreate(BaseModel):
    """A resend asked for by an agent on a subscriber's complaint."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "msisdn": "138 0013 8000",
                    "reason": "subscriber says this morning's issue never arrived",
                    "complaint_id": "C20261123-0042",
                },
                {
                    "msisdn": "+8613800138000",
                    "edition": "ah-daily-20261123-am",
                    "reason": "issue missing",
                },
            ]
        },
    )

    msisdn: str = Field(
        min_length=3,
        max_length=32,
        description="the subscriber's number in any common format (national, E.164, with "
        "spaces or dashes); read in the configured default region",
    )
    edition: str | None = Field(
        default=None,
        min_length=1,
        max_length=80,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$",
        description="edition to resend; default: the latest edition of the subscriber's product",
    )
    reason: str = Field(min_length=1, max_length=500, description="why, in the agent's words")
    complaint_id: str | None = Field(
        default=None, min_length=1, max_length=64, description="the complaint ticket, if any"
    )
    product: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="the product, when the subscriber has several; default: the active one",
    )


class ResendOut(_Out):
    id: str
    status: ResendStatus = Field(
        description="the MM7 outbox item's state: queued (also while being submitted), "
        "submitted (the MMSC accepted it), delivered (the delivery report said so) or failed"
    )
    msisdn: str = Field(description="E.164")
    product: str
    edition: str
    reason: str
    complaint_id: str | None
    priority: int = Field(description="MM7 outbox priority: higher is sooner; probes are 10")
    resume_on_delivery: bool = Field(
        description="bulk delivery to the subscriber is suspended by mmsq (recovery); a "
        "delivered resend resumes it"
    )
    cause: str | None = Field(description="why it failed, when it failed")
    cause_class: str | None = Field(
        default=None, description="cause class of the failure (docs/cause-classes.md)"
    )
    attempts: int = Field(default=0, description="SubmitReq attempts so far")
    message_id: str | None = Field(description="MMSC message id once submitted")
    agent: str
    created_at: datetime
    submitted_at: datetime | None
    done_at: datetime | None

    @classmethod
    def of(cls, r: Resend) -> ResendOut:
        return cls(
            id=r.id,
            status=r.status,
            msisdn=r.msisdn,
            product=r.product,
            edition=r.edition,
            reason=r.reason,
            complaint_id=r.complaint_id,
            priority=r.priority,
            resume_on_delivery=r.resume_on_delivery,
            cause=r.cause,
            cause_class=r.cause_class,
            attempts=r.attempts,
            message_id=r.message_id,
            agent=r.agent_name,
            created_at=r.created_at,
            submitted_at=r.submitted_at,
            done_at=r.done_at,
        )


class SubscriptionOut(_Out):
    status: SubscriptionStatus | Literal["unknown"] = Field(
        description="mmsq's status (billing is the reference): suspended means by the operator"
    )
    product: str | None = None
    since: datetime | None = None
    channel: str | None = None

    @classmethod
    def of(cls, v: SubscriptionView | None) -> SubscriptionOut:
        if v is None:
            return cls(status="unknown")
        return cls(status=v.status, product=v.product, since=v.since, channel=v.channel)


class DeliveryOut(_Out):
    edition: str | None
    message_id: str
    submitted_at: datetime
    done_at: datetime | None
    status_source: str
    status_code: str
    error_code: str | None
    cause: str = Field(description="cause class (docs/cause-classes.md)")
    final: bool


class AssessmentOut(_Out):
    verdict: str
    reasons: list[str]
    recovery_state: str | None
    assessed_at: datetime | None
    source: str = Field(description="'scoring', or 'delivery history' before scoring runs")


class RecoveryStepOut(_Out):
    at: datetime
    from_state: str
    to_state: str
    event: str
    cause: str
    evidence: str


class RecoveryOut(_Out):
    state: str = Field(
        description="flagged, remedied, recovered, suspended, probing, resumed, invalid, active"
    )
    since: datetime | None
    probes_sent: int
    last_probe_at: datetime | None
    history: list[RecoveryStepOut] = Field(description="latest transitions, newest first")


class DeviceOut(_Out):
    tac: str = Field(description="type allocation code: the first 8 digits of the IMEI")
    brand: str | None = None
    model: str | None
    mms_capable: bool | None = Field(default=None, description="null: TAC not in devices.csv")
    ota_eligible: bool | None = Field(description="accepts OMA CP settings; null: not known")
    seen_at: datetime | None


class RemedyOut(_Out):
    kind: str = Field(description="help_sms, ota_push, probe or resend")
    sent_at: datetime
    outcome: str | None
    detail: str | None = None


class ScriptOut(_Out):
    en: str
    zh: str


class NextStepOut(_Out):
    case: str = Field(description="case id in rules/complaint_cases.toml")
    title: str
    offer_resend: bool
    script: ScriptOut


class DiagnosisOut(_Out):
    msisdn: str = Field(description="E.164")
    subscription: SubscriptionOut = Field(description="the one the next step is about")
    subscriptions: list[SubscriptionOut] = Field(
        default_factory=list, description="every product of the number"
    )
    suspended_by_mmsq: bool = Field(
        description="bulk delivery suspended by mmsq's recovery (suspended or probing)"
    )
    deliveries: list[DeliveryOut] = Field(description="latest first")
    assessment: AssessmentOut | None
    recovery: RecoveryOut | None = Field(
        default=None, description="null: the subscriber never left the active state"
    )
    device: DeviceOut | None
    remedies: list[RemedyOut] = Field(description="help SMS, OTA pushes, resends; latest first")
    next_step: NextStepOut

    @classmethod
    def of(cls, d: Diagnosis) -> DiagnosisOut:
        s = d.subscription
        remedies = [
            RemedyOut(kind=r.kind, sent_at=r.sent_at, outcome=r.outcome, detail=r.detail)
            for r in d.remedies
        ]
        remedies += [
            RemedyOut(
                kind="resend",
                sent_at=r.submitted_at or r.created_at,
                outcome=r.status.value,
                detail=f"{r.id}: {r.edition}" + (f" ({r.cause})" if r.cause else ""),
            )
            for r in d.resends
        ]
        remedies.sort(key=lambda r: r.sent_at, reverse=True)
        a = d.assessment
        case = d.next_step
        rec = d.recovery
        return cls(
            msisdn=d.msisdn,
            subscription=SubscriptionOut.of(s),
            subscriptions=[SubscriptionOut.of(v) for v in d.subscriptions],
            suspended_by_mmsq=d.suspended_by_mmsq,
            deliveries=[
                DeliveryOut(
                    edition=e.edition,
                    message_id=e.message_id,
                    submitted_at=e.submitted_at,
                    done_at=e.done_at,
                    status_source=e.status_source,
                    status_code=e.status_code,
                    error_code=e.error_code,
                    cause=e.cause,
                    final=e.final,
                )
                for e in d.deliveries
            ],
            assessment=AssessmentOut(
                verdict=a.verdict,
                reasons=list(a.reasons),
                recovery_state=a.recovery_state,
                assessed_at=a.assessed_at,
                source=a.source,
            )
            if a
            else None,
            recovery=RecoveryOut(
                state=rec.state.value,
                since=rec.since,
                probes_sent=rec.probes_sent,
                last_probe_at=rec.last_probe_at,
                history=[
                    RecoveryStepOut(
                        at=t.at,
                        from_state=t.from_state.value,
                        to_state=t.to_state.value,
                        event=t.event.value,
                        cause=t.cause,
                        evidence=t.evidence,
                    )
                    for t in rec.transitions
                ],
            )
            if rec
            else None,
            device=DeviceOut(
                tac=d.device.tac,
                brand=d.device.brand,
                model=d.device.model,
                mms_capable=d.device.mms_capable,
                ota_eligible=d.device.ota_eligible,
                seen_at=d.device.seen_at,
            )
            if d.device
            else None,
            remedies=remedies,
            next_step=NextStepOut(
                case=case.id,
                title=case.title,
                offer_resend=case.offer_resend,
                script=ScriptOut(en=case.script.en, zh=case.script.zh),
            ),
        )


class AuditEntryOut(_Out):
    id: int
    at: datetime
    actor: str | None
    role: str | None
    method: str
    route: str = Field(description="route template; numbers never appear in paths here")
    action: str
    status: int
    request_id: str
    subject: str | None = Field(description="MSISDN: full for resend.create, masked otherwise")
    detail: str | None
    client: str | None

    @classmethod
    def of(cls, e: AuditEntry) -> AuditEntryOut:
        return cls(
            id=e.id or 0,
            at=e.at,
            actor=e.actor,
            role=e.role,
            method=e.method,
            route=e.route,
            action=e.action,
            status=e.status,
            request_id=e.request_id,
            subject=e.subject,
            detail=e.detail,
            client=e.client,
        )


class AuditPageOut(_Out):
    entries: list[AuditEntryOut]
    next_after_id: int | None = Field(description="pass as after_id for the next page")


class AgentCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"name": "li.wei", "role": "agent"}]}
    )

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
    role: Role


class AgentOut(_Out):
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, a: Agent) -> AgentOut:
        return cls(name=a.name, role=a.role, created_at=a.created_at, revoked_at=a.revoked_at)


class AgentCreated(AgentOut):
    token: str = Field(description="the bearer token; shown this once, stored only hashed")


class SubscriptionEventOut(_Out):
    """What became of one subscription event (``mmsq.subscriptions.EventOutcome``)."""

    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "event_id": "boss-20261123-000042",
                    "outcome": "applied",
                    "status": "unsubscribed",
                    "previous_status": "active",
                    "reason": "",
                }
            ]
        },
    )

    event_id: str
    outcome: EventOutcome = Field(
        description="applied (status changed), unchanged (already so), rejected (not a valid "
        "transition), stale (older than the current state), duplicate (event id seen before)"
    )
    status: SubscriptionStatus | None = Field(description="mmsq's status after the event")
    previous_status: SubscriptionStatus | None
    reason: str

    @classmethod
    def of(cls, r: EventResult) -> SubscriptionEventOut:
        return cls(
            event_id=r.event_id,
            outcome=r.outcome,
            status=r.status,
            previous_status=r.previous_status,
            reason=r.reason,
        )

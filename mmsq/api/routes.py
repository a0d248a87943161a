"""The /v1 endpoints: parse input, call a service, render output. No logic of their own.

Paths here are relative: the app is always served mounted under ``/v1`` (``serve_app`` for
``mmsq api``, the daemon's HTTP server), so the audit trail and links carry the full path.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response, status

from mmsq.agents import Agent, AgentExistsError, AgentNotFoundError, Permission
from mmsq.api.audit_context import audit_context
from mmsq.api.problems import ProblemError, problem_responses
from mmsq.api.schemas import (
    AgentCreate,
    AgentCreated,
    AgentOut,
    AuditEntryOut,
    AuditPageOut,
    DiagnosisOut,
    ResendCreate,
    ResendOut,
    SubscriptionEventOut,
)
from mmsq.api.security import require, services_of
from mmsq.audit import AuditQuery
from mmsq.resend import IdempotencyConflictError, Refusal, ResendRefusedError, ResendRequest
from mmsq.subscription_events import InvalidEventError
from mmsq.subscriptions import EventOutcome, SubscriptionEvent

__all__ = ["router"]

router = APIRouter()
#: Where the app is mounted; links in answers carry it.
PREFIX = "/v1"

_AUTH = (401, 403, 429)
_REFUSAL_STATUS = {
    Refusal.SUBSCRIPTION_UNKNOWN: (404, "Subscription not found"),
    Refusal.SUBSCRIPTION_INACTIVE: (409, "Subscription is not active"),
    Refusal.SUBSCRIPTION_SUSPENDED: (409, "Subscription is suspended by the operator"),
    Refusal.EDITION_UNKNOWN: (422, "No edition to resend"),
}


def _msisdn(request: Request, raw: str) -> str:
    normalised = services_of(request).normaliser.normalise(raw)
    if normalised is None:
        raise ProblemError(
            422,
            "invalid-msisdn",
            "msisdn is not a valid phone number (national numbers are read in the configured "
            "default region; international ones need a leading + and country code)",
            errors=[{"field": "msisdn", "message": "not a valid phone number"}],
        )
    audit_context(request.scope).msisdn = normalised
    return normalised


IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="unique per intended resend (a UUID, say); retries reuse it",
        examples=["6f1c2a9e-41b7-4d53-9a2e-0b6a7c1d2e3f"],
    ),
]


@router.post(
    "/resends",
    name="resend.create",
    summary="Resend an edition to one subscriber",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ResendOut,
    responses={
        200: {"model": ResendOut, "description": "replay: this key was used for this body before"},
        202: {
            "description": "queued ahead of bulk traffic",
            "headers": {"Location": {"schema": {"type": "string"}, "description": "the resend"}},
        },
        **problem_responses(*_AUTH, 400, 404, 409, 413, 422),
    },
)
def create_resend(
    body: ResendCreate,
    request: Request,
    response: Response,
    idempotency_key: IdempotencyKey,
    agent: Annotated[Agent, Depends(require(Permission.RESEND))],
) -> ResendOut:
    """Queue a resend of an edition (default: the latest sent to the subscriber) in the MM7
    outbox, ahead of recovery probes.

    Allowed when the subscription is active, also when mmsq's recovery has suspended bulk
    delivery to the subscriber (``resume_on_delivery``: a delivered resend resumes it).
    Do-not-contact lists do not apply: the subscriber asked. Refused for unknown,
    unsubscribed, cancelled or operator-suspended subscriptions. The same Idempotency-Key with
    the same body returns the same resend.
    """
    services = services_of(request)
    msisdn = _msisdn(request, body.msisdn)
    req = ResendRequest(
        msisdn=msisdn,
        reason=body.reason,
        edition=body.edition,
        complaint_id=body.complaint_id,
        product=body.product,
    )
    try:
        resend, created = services.resends.create(agent, idempotency_key, req)
    except ResendRefusedError as exc:
        code, title = _REFUSAL_STATUS[exc.refusal]
        audit_context(request.scope).detail = exc.refusal.value
        raise ProblemError(code, exc.refusal.value, exc.detail, title=title) from None
    except IdempotencyConflictError as exc:
        raise ProblemError(
            422,
            "idempotency-key-reused",
            "this Idempotency-Key was used for a different request body; use a new key",
            title="Idempotency key reused",
            resend_id=exc.existing.id,
        ) from None
    audit_context(request.scope).detail = f"resend {resend.id}" + ("" if created else " (replay)")
    response.headers["Location"] = f"{PREFIX}/resends/{resend.id}"
    if not created:
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"
    return ResendOut.of(resend)


@router.get(
    "/resends/{resend_id}",
    name="resend.read",
    summary="Status of a resend",
    response_model=ResendOut,
    responses=problem_responses(*_AUTH, 404, 422),
)
def read_resend(
    request: Request,
    resend_id: Annotated[str, Path(max_length=32, pattern=r"^rs_[0-9a-f]{1,29}$")],
    _agent: Annotated[Agent, Depends(require(Permission.RESEND))],
) -> ResendOut:
    """queued, submitted, delivered or failed (with the cause), and when each happened: the
    state of the resend's MM7 outbox item."""
    resend = services_of(request).resends.get(resend_id)
    if resend is None:
        raise ProblemError(404, "resend-not-found", f"no resend {resend_id}")
    audit_context(request.scope).msisdn = resend.msisdn
    return ResendOut.of(resend)


@router.get(
    "/subscribers/{msisdn}/diagnosis",
    name="diagnosis.read",
    summary="Diagnose one subscriber",
    response_model=DiagnosisOut,
    responses=problem_responses(*_AUTH, 422),
)
def diagnose(
    request: Request,
    msisdn: Annotated[
        str,
        Path(
            min_length=3,
            max_length=32,
            description="any common format; URL-encode '+' and spaces",
            examples=["13800138000", "+8613800138000"],
        ),
    ],
    _agent: Annotated[Agent, Depends(require(Permission.DIAGNOSE))],
) -> Response:
    """Subscriptions, last deliveries and causes, verdict and reasons, recovery state and
    history, device and OTA eligibility, remedies already sent, and the next step to read to
    the subscriber. The do-not-contact list never hides anything here."""
    out = DiagnosisOut.of(services_of(request).diagnosis.diagnose(_msisdn(request, msisdn)))
    # Built and validated once, here: FastAPI would validate the model again (on another
    # worker thread) before writing the same JSON.
    return Response(out.model_dump_json(), media_type="application/json")


@router.get(
    "/audit",
    name="audit.read",
    summary="The audit trail (supervisors and admins)",
    response_model=AuditPageOut,
    responses=problem_responses(*_AUTH, 422),
)
def read_audit(
    request: Request,
    _agent: Annotated[Agent, Depends(require(Permission.READ_AUDIT))],
    since: Annotated[datetime | None, Query(description="from this time (inclusive)")] = None,
    until: Annotated[datetime | None, Query(description="before this time")] = None,
    actor: Annotated[str | None, Query(max_length=64, description="agent name")] = None,
    after_id: Annotated[int | None, Query(ge=0, le=2**62, description="page cursor")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditPageOut:
    """Entries oldest first; follow ``next_after_id`` for the next page."""
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise ProblemError(
                422,
                "validation",
                f"{name} needs a time zone offset (e.g. 2026-11-23T08:00:00+08:00)",
                errors=[{"field": f"query.{name}", "message": "time zone offset missing"}],
            )
    page = services_of(request).audit.query(
        AuditQuery(since=since, until=until, actor=actor, after_id=after_id, limit=limit)
    )
    return AuditPageOut(
        entries=[AuditEntryOut.of(e) for e in page.entries], next_after_id=page.next_after_id
    )


@router.get(
    "/agents",
    name="agents.list",
    summary="List agents (admins)",
    response_model=list[AgentOut],
    responses=problem_responses(*_AUTH),
)
def list_agents(
    request: Request,
    _agent: Annotated[Agent, Depends(require(Permission.MANAGE_AGENTS))],
    include_revoked: bool = False,
) -> list[AgentOut]:
    return [AgentOut.of(a) for a in services_of(request).agents.list(include_revoked)]


@router.post(
    "/agents",
    name="agents.create",
    summary="Add an agent (admins); the token is shown once",
    status_code=status.HTTP_201_CREATED,
    response_model=AgentCreated,
    responses=problem_responses(*_AUTH, 400, 409, 413, 422),
)
def create_agent(
    body: AgentCreate,
    request: Request,
    _agent: Annotated[Agent, Depends(require(Permission.MANAGE_AGENTS))],
) -> AgentCreated:
    try:
        agent, token = services_of(request).agents.add(body.name, body.role)
    except AgentExistsError as exc:
        raise ProblemError(409, "agent-exists", str(exc)) from None
    audit_context(request.scope).detail = f"added {agent.name} as {agent.role.value}"
    return AgentCreated(**AgentOut.of(agent).model_dump(), token=token)


@router.delete(
    "/agents/{name}",
    name="agents.revoke",
    summary="Revoke an agent's token (admins)",
    response_model=AgentOut,
    responses=problem_responses(*_AUTH, 404, 422),
)
def revoke_agent(
    request: Request,
    name: Annotated[str, Path(max_length=64)],
    _agent: Annotated[Agent, Depends(require(Permission.MANAGE_AGENTS))],
) -> AgentOut:
    try:
        agent = services_of(request).agents.revoke(name)
    except AgentNotFoundError as exc:
        raise ProblemError(404, "agent-not-found", str(exc)) from None
    audit_context(request.scope).detail = f"revoked {agent.name}"
    return AgentOut.of(agent)


_EVENT_STATUS = {
    EventOutcome.APPLIED: status.HTTP_201_CREATED,
    EventOutcome.UNCHANGED: status.HTTP_202_ACCEPTED,
    EventOutcome.REJECTED: status.HTTP_202_ACCEPTED,
    EventOutcome.STALE: status.HTTP_202_ACCEPTED,
    EventOutcome.DUPLICATE: status.HTTP_200_OK,
}


@router.post(
    "/subscription-events",
    name="subscription_event.create",
    summary="A real-time subscription change from BOSS, MISC or the platform (feed role)",
    status_code=status.HTTP_201_CREATED,
    response_model=SubscriptionEventOut,
    responses={
        200: {
            "model": SubscriptionEventOut,
            "description": "duplicate: this event id was received before; nothing changed",
        },
        201: {"description": "applied: the event was stored and changed the subscription"},
        202: {
            "model": SubscriptionEventOut,
            "description": "stored, not applied: unchanged (already in that status), stale "
            "(older than the current state) or rejected (not a valid transition)",
        },
        **problem_responses(*_AUTH, 400, 413, 422),
    },
)
def create_subscription_event(
    body: SubscriptionEvent,
    request: Request,
    response: Response,
    _agent: Annotated[Agent, Depends(require(Permission.FEED))],
) -> SubscriptionEventOut:
    """Store one change and apply it to mmsq's subscription status; idempotent by
    ``event_id`` (a retry answers 200 ``duplicate``). Every event is kept with its outcome,
    whatever it is; only a body that cannot be read at all is refused (422)."""
    _msisdn(request, body.msisdn)
    try:
        result = services_of(request).subscription_events.apply_event(body)
    except InvalidEventError as exc:  # pragma: no cover - the MSISDN was checked above
        raise ProblemError(422, "invalid-msisdn", str(exc)) from None
    audit_context(request.scope).detail = (
        f"{body.event_id}: {body.kind.value} {body.product} from {body.source.value}: "
        f"{result.outcome.value}"
    )
    response.status_code = _EVENT_STATUS[result.outcome]
    return SubscriptionEventOut.of(result)

"""ASGI middleware: the audit trail of every call, and the request body size limit.

The audit entry is written *before* the response starts: a call whose audit entry cannot be
written is answered 503 instead, so no answer leaves without its trace.
"""

from __future__ import annotations

import itertools
import re
import secrets
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mmsq.api.audit_context import AUDIT_KEY, AuditContext
from mmsq.api.audit_writer import GroupCommitAudit
from mmsq.api.problems import BODY_TOO_LARGE, problem_response
from mmsq.audit import AuditEntry, subject_for_audit
from mmsq.ports import Clock

__all__ = ["AuditMiddleware", "BodyLimitMiddleware"]

log = structlog.get_logger(__name__)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,40}$")
#: Request ids need to be unique, not secret: a random prefix per process and a counter (no
#: system call per request).
_PROCESS_PREFIX = secrets.token_hex(4)
_SEQUENCE = itertools.count(1)


def _new_request_id() -> str:
    return f"{_PROCESS_PREFIX}{next(_SEQUENCE):08x}"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class _BodyTooLargeError(Exception):
    pass


class BodyLimitMiddleware:
    """413 for bodies over ``limit`` bytes: by Content-Length up front, or while streaming."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await problem_response(
                    scope, 400, "bad-content-length", "Content-Length is not a number"
                )(scope, receive, send)
                return
            if int(declared) > self.limit:
                await problem_response(
                    scope,
                    413,
                    "body-too-large",
                    f"the request body has {declared} bytes; at most {self.limit} are accepted",
                )(scope, receive, send)
                return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    scope[BODY_TOO_LARGE] = True
                    raise _BodyTooLargeError
            return message

        await self.app(scope, limited, send)


class AuditMiddleware:
    """Appends one audit entry per HTTP call: who, when, what (route template), outcome."""

    def __init__(self, app: ASGIApp, writer: GroupCommitAudit, clock: Clock) -> None:
        self.app = app
        self.writer = writer
        self.clock = clock

    def _entry(self, scope: Scope, status: int) -> AuditEntry:
        ctx: AuditContext = scope[AUDIT_KEY]
        route = scope.get("route")
        # Mounted under a prefix (/v1): the trail keeps the full template.
        path = getattr(route, "path", None)
        template = scope.get("root_path", "") + path if path else "(unmatched)"
        action = getattr(route, "name", None) or "unrouted"
        client = scope.get("client")
        return AuditEntry(
            at=self.clock.now(),
            actor=ctx.actor,
            role=ctx.role,
            method=scope.get("method", "?"),
            route=template,
            action=action,
            status=status,
            request_id=scope["mmsq.request_id"],
            subject=subject_for_audit(action, ctx.msisdn),
            detail=ctx.detail,
            client=client[0] if client else None,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, b"x-request-id")
        request_id = given if given and _REQUEST_ID.match(given) else _new_request_id()
        scope["mmsq.request_id"] = request_id
        scope[AUDIT_KEY] = AuditContext()
        state: dict[str, Any] = {"started": False, "swallow": False}

        async def write(status: int) -> bool:
            try:
                await self.writer.write(self._entry(scope, status))
            except Exception:
                log.exception("audit entry could not be written", request_id=request_id)
                return False
            return True

        async def audited_send(message: Message) -> None:
            if state["swallow"]:
                return
            if message["type"] == "http.response.start" and not state["started"]:
                state["started"] = True
                if not await write(int(message["status"])):
                    state["swallow"] = True
                    await problem_response(
                        scope, 503, "audit-unavailable", "the call could not be audited; retry"
                    )(scope, receive, send)
                    return
                message = {
                    **message,
                    "headers": [
                        *message.get("headers", []),
                        (b"x-request-id", request_id.encode()),
                    ],
                }
            await send(message)

        try:
            await self.app(scope, receive, audited_send)
        except Exception:
            if not state["started"]:
                await write(500)
            raise

"""Bearer-token authentication, per-token rate limits and role checks, as FastAPI dependencies."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mmsq.agents import Agent, Permission
from mmsq.api.audit_context import audit_context
from mmsq.api.problems import ProblemError
from mmsq.api.services import ApiServices

__all__ = ["bearer", "require", "services_of"]

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="A token from 'mmsq agents add NAME --role ROLE', sent as "
    "'Authorization: Bearer <token>'.",
)


def services_of(request: Request) -> ApiServices:
    services: ApiServices = request.app.state.services
    return services


def require(permission: Permission) -> Callable[..., Awaitable[Agent]]:
    """A dependency: the authenticated agent, within its rate limit, holding ``permission``."""

    async def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Agent:
        services = services_of(request)
        challenge = {"WWW-Authenticate": "Bearer"}
        if credentials is None:
            raise ProblemError(
                401, "unauthenticated", "send 'Authorization: Bearer <token>'", headers=challenge
            )
        # Token lookups are cached in memory (AgentService); a miss costs one indexed read.
        agent = services.agents.authenticate(credentials.credentials)
        if agent is None:
            raise ProblemError(
                401, "unauthenticated", "the token is unknown or revoked", headers=challenge
            )
        ctx = audit_context(request.scope)
        ctx.actor, ctx.role = agent.name, agent.role.value
        verdict = services.rate_limiter.check(f"agent:{agent.id}")
        if not verdict.allowed:
            retry = max(1, math.ceil(verdict.retry_after_s))
            raise ProblemError(
                429,
                "rate-limited",
                f"more than the allowed requests per minute for this token; retry in {retry} s",
                headers={"Retry-After": str(retry)},
            )
        if not agent.can(permission):
            raise ProblemError(
                403,
                "forbidden",
                f"the role {agent.role.value!r} may not {permission.value.replace('_', ' ')}",
            )
        return agent

    return dependency

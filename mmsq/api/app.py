"""``create_app``: the FastAPI application over already-built services.

The app opens nothing by itself; whoever builds the services (``mmsq api``, the daemon, a test)
owns them and closes them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from mmsq import __version__
from mmsq.api.audit_writer import GroupCommitAudit
from mmsq.api.middleware import AuditMiddleware, BodyLimitMiddleware
from mmsq.api.problems import PROBLEM_MEDIA_TYPE, install_problem_handlers, problem_responses
from mmsq.api.routes import router
from mmsq.api.services import ApiServices

__all__ = ["create_app", "use_threads"]

_DESCRIPTION = """\
Resend and diagnosis for customer-service agents, one subscriber at a time.

Every call needs a bearer token (`mmsq agents add NAME --role agent`). Errors are
[RFC 9457](https://www.rfc-editor.org/rfc/rfc9457) problem details
(`application/problem+json`). Every call is recorded in an append-only audit trail.
"""


def create_app(services: ApiServices) -> FastAPI:
    """The API as an ASGI app; mount it in the daemon or serve it with uvicorn.

    Served on its own, its lifespan sets the process's worker thread count to
    ``services.threads``; a host that mounts it (lifespans of mounted apps do not run) sets
    its own with ``use_threads``.
    """

    writer = GroupCommitAudit(services.audit)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        use_threads(services.threads)
        yield
        writer.close()

    app = FastAPI(
        lifespan=lifespan,
        title="mmsq agent API",
        version=__version__,
        description=_DESCRIPTION,
        openapi_tags=[
            {"name": "resends", "description": "resend an edition on a complaint"},
            {"name": "subscribers", "description": "diagnosis of one subscriber"},
            {"name": "audit", "description": "who did what, when"},
            {"name": "agents", "description": "API callers and their tokens"},
        ],
    )
    app.state.services = services
    app.state.audit_writer = writer  # a host that mounts the app closes it on shutdown
    install_problem_handlers(app)
    app.include_router(router)
    for route in app.routes:  # tag each route by its first path segment after /v1
        path = getattr(route, "path", "")
        if path.startswith("/v1/") and hasattr(route, "tags"):
            route.tags = [path.split("/")[2]]
    _problem_only_openapi(app)
    # Last added runs first: audit wraps everything, including 413 answers.
    app.add_middleware(BodyLimitMiddleware, limit=services.max_body_bytes)
    app.add_middleware(AuditMiddleware, writer=writer, clock=services.clock)
    return app


def use_threads(n: int) -> None:
    """Run sync endpoints and database work on at most ``n`` threads (process-wide).

    Each request's work is short and holds the GIL; dozens of threads contending for it
    (anyio's default is 40) raise the p99 latency several times over and lower throughput.
    """
    anyio.to_thread.current_default_thread_limiter().total_tokens = n


def _problem_only_openapi(app: FastAPI) -> None:
    """Document every error answer as what it is: a problem body (FastAPI's default 422
    schema is replaced; 422 is listed wherever input is validated)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
        )
        ref = {"$ref": "#/components/schemas/Problem"}
        for ops in doc.get("paths", {}).values():
            for op in ops.values():
                responses = op.setdefault("responses", {})
                for code, meta in problem_responses(422).items():
                    responses.setdefault(str(code), {"description": meta["description"]})
                for code, response in responses.items():
                    if code[0] in "45":
                        response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": ref}}
        schemas = doc.get("components", {}).get("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]

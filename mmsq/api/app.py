"""``create_app``: the FastAPI application over already-built services; ``serve_app``: that
application mounted under ``/v1``, as ``mmsq api`` serves it.

The app opens nothing by itself; whoever builds the services (``mmsq api``, the daemon, a test)
owns them and closes them, and closes the app's audit writer (``app.state.audit_writer``) after
the last request. The daemon mounts the app under ``/v1`` in its own HTTP server.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.types import ASGIApp, Receive, Scope, Send

from mmsq import __version__
from mmsq.api.audit_writer import GroupCommitAudit
from mmsq.api.middleware import AuditMiddleware, BodyLimitMiddleware
from mmsq.api.problems import PROBLEM_MEDIA_TYPE, install_problem_handlers, problem_responses
from mmsq.api.routes import PREFIX, router
from mmsq.api.services import ApiServices

__all__ = ["create_app", "serve_app", "use_threads"]

_DESCRIPTION = """\
Resend and diagnosis for customer-service agents, one subscriber at a time.

Every call needs a bearer token (`mmsq agents add NAME --role agent`). Errors are
[RFC 9457](https://www.rfc-editor.org/rfc/rfc9457) problem details
(`application/problem+json`). Every call is recorded in an append-only audit trail.
"""


def create_app(services: ApiServices) -> FastAPI:
    """The API as an ASGI app with paths relative to ``/v1``: mount it there (``serve_app``,
    the daemon). Its first request sets the process's worker thread count to
    ``services.threads`` (lifespans of mounted apps do not run)."""

    writer = GroupCommitAudit(services.audit)
    app = FastAPI(
        title="mmsq agent API",
        version=__version__,
        description=_DESCRIPTION,
        openapi_tags=[
            {"name": "resends", "description": "resend an edition on a complaint"},
            {"name": "subscribers", "description": "diagnosis of one subscriber"},
            {"name": "audit", "description": "who did what, when"},
            {"name": "agents", "description": "API callers and their tokens"},
            {
                "name": "subscription-events",
                "description": "real-time subscription changes from BOSS, MISC, the platform",
            },
        ],
    )
    app.state.services = services
    app.state.audit_writer = writer  # a host that mounts the app closes it on shutdown
    install_problem_handlers(app)
    app.include_router(router)
    for route in app.routes:  # tag each API route by its first path segment
        path = getattr(route, "path", "")
        if hasattr(route, "tags") and hasattr(route, "name") and route.name and "." in route.name:
            route.tags = [path.split("/")[1]]
    _problem_only_openapi(app)
    # Last added runs first: audit wraps everything, including 413 answers.
    app.add_middleware(BodyLimitMiddleware, limit=services.max_body_bytes)
    app.add_middleware(AuditMiddleware, writer=writer, clock=services.clock)
    app.add_middleware(_ThreadLimit, threads=services.threads)
    return app


class _ThreadLimit:
    """Sets the worker thread count once, on the first request (in the serving event loop)."""

    def __init__(self, app: ASGIApp, threads: int) -> None:
        self.app = app
        self.threads = threads
        self.done = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.done and scope["type"] == "http":
            use_threads(self.threads)
            self.done = True
        await self.app(scope, receive, send)


def serve_app(api: FastAPI, on_close: Callable[[], object] | None = None) -> FastAPI:
    """``api`` mounted under ``/v1``. When the server stops (or whoever built it without
    serving it calls ``app.state.close()``), the audit writer is closed, then ``on_close``
    is called (the owner of the services closes them there)."""

    def close() -> None:
        api.state.audit_writer.close()
        if on_close is not None:
            on_close()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        use_threads(api.state.services.threads)
        settle_heap()
        try:
            yield
        finally:
            close()

    outer = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    outer.state.close = close
    outer.mount(PREFIX, api)
    return outer


def settle_heap() -> None:
    """Takes what start-up built (modules, the app, its services) out of the garbage
    collector's full collections, once it is built and before requests come.

    A serving process holds a few hundred thousand long-lived objects (SQLAlchemy, pandas,
    Arrow, the app). Every full collection walked all of them: 140 to 180 ms, during which the
    process answered nothing; measured in a worker under load, several a minute, and they set
    the 99th percentile of latency. Frozen (``gc.freeze``), they are never examined again and a
    full collection takes a few milliseconds. Objects made later are collected as before."""
    gc.collect()
    gc.freeze()


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
            servers=app.servers or None,
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

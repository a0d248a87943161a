"""``create_app``: the FastAPI application over already-built services.

The app opens nothing by itself; whoever builds the services (``mmsq api``, the daemon, a test)
owns them and closes them.
"""

from __future__ import annotations

from fastapi import FastAPI

from mmsq import __version__
from mmsq.api.middleware import AuditMiddleware, BodyLimitMiddleware
from mmsq.api.problems import install_problem_handlers
from mmsq.api.routes import router
from mmsq.api.services import ApiServices

__all__ = ["create_app"]

_DESCRIPTION = """\
Resend and diagnosis for customer-service agents, one subscriber at a time.

Every call needs a bearer token (`mmsq agents add NAME --role agent`). Errors are
[RFC 9457](https://www.rfc-editor.org/rfc/rfc9457) problem details
(`application/problem+json`). Every call is recorded in an append-only audit trail.
"""


def create_app(services: ApiServices) -> FastAPI:
    """The API as an ASGI app; mount it in the daemon or serve it with uvicorn."""
    app = FastAPI(
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
    install_problem_handlers(app)
    app.include_router(router)
    for route in app.routes:  # tag each route by its first path segment after /v1
        path = getattr(route, "path", "")
        if path.startswith("/v1/") and hasattr(route, "tags"):
            route.tags = [path.split("/")[2]]
    # Last added runs first: audit wraps everything, including 413 answers.
    app.add_middleware(BodyLimitMiddleware, limit=services.max_body_bytes)
    app.add_middleware(AuditMiddleware, audit=services.audit, clock=services.clock)
    return app

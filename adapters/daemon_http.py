"""The daemon's HTTP application: probes, metrics, the MM7 endpoint, and whatever is mounted.

``create_http_app`` is a factory: the composition root passes the routers it built (the MM7
DeliveryReportReq endpoint today; the agent API's ``/v1`` routes later) and any ASGI sub-apps
to mount under a prefix. Probes:

- ``GET /healthz``: the process is alive and serving (always 200);
- ``GET /readyz``: every registered health check passes (200) or not (503), with details;
- ``GET /metrics``: Prometheus text format from the daemon's own CollectorRegistry.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp

from mmsq.health import HealthRegistry
from mmsq.metrics import Metrics

__all__ = ["create_http_app"]


def create_http_app(
    *,
    health: HealthRegistry,
    metrics: Metrics,
    routers: Sequence[APIRouter] = (),
    mounts: Sequence[tuple[str, ASGIApp]] = (),
    title: str = "mmsq daemon",
) -> FastAPI:
    """The HTTP app; ``routers`` are included as they are, ``mounts`` as (prefix, ASGI app)."""
    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        # Sync handler: FastAPI runs it in its thread pool, so a slow check never blocks the loop.
        readiness = health.check()
        return JSONResponse(readiness.as_dict(), status_code=200 if readiness.ok else 503)

    @app.get("/metrics")
    def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    for router in routers:
        app.include_router(router)
    for prefix, sub_app in mounts:
        app.mount(prefix, sub_app)
    return app

"""Errors as RFC 9457 problem details (``application/problem+json``), for every error path."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from mmsq.api.schemas import Problem

__all__ = [
    "BODY_TOO_LARGE",
    "PROBLEM_MEDIA_TYPE",
    "ProblemError",
    "install_problem_handlers",
    "problem_response",
    "problem_responses",
    "request_id_of",
]

PROBLEM_MEDIA_TYPE = "application/problem+json"
#: Scope key set by the body-size middleware when a streamed body went over the limit.
BODY_TOO_LARGE = "mmsq.body_too_large"

log = structlog.get_logger(__name__)

_TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Invalid request",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


def request_id_of(scope: dict[str, Any] | Any) -> str:
    return str(scope.get("mmsq.request_id", "unknown"))


class ProblemError(Exception):
    """Raised by endpoints and dependencies; rendered as a problem response."""

    def __init__(
        self,
        status: int,
        slug: str,
        detail: str,
        *,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.title = title or _TITLES.get(status, "Error")
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


def problem_response(
    scope: Any,
    status: int,
    slug: str,
    detail: str,
    *,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = Problem(
        type=f"urn:mmsq:problem:{slug}",
        title=title or _TITLES.get(status, "Error"),
        status=status,
        detail=detail,
        instance=f"urn:mmsq:request:{request_id_of(scope)}",
        **extra,
    ).model_dump(exclude_none=True)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for e in exc.errors():
        loc = [str(p) for p in e.get("loc", ())]
        out.append({"field": ".".join(loc), "message": e.get("msg", "invalid")})
    return out


def install_problem_handlers(app: FastAPI) -> None:
    """Every error the app can produce answers with a problem body."""

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(
            request.scope,
            exc.status,
            exc.slug,
            exc.detail,
            title=exc.title,
            headers=exc.headers,
            **exc.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _field_errors(exc)
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problem_response(
            request.scope, 422, "validation", detail or "invalid request", errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if request.scope.get(BODY_TOO_LARGE):
            return problem_response(
                request.scope, 413, "body-too-large", "the request body is larger than allowed"
            )
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        return problem_response(
            request.scope,
            exc.status_code,
            slug,
            str(exc.detail),
            headers=dict(exc.headers or {}),
        )

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", request_id=request_id_of(request.scope))
        return problem_response(
            request.scope, 500, "internal", "an unexpected error occurred; it has been logged"
        )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting problem bodies for ``statuses``."""
    return {
        s: {
            "model": Problem,
            "description": _TITLES.get(s, "Error"),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for s in statuses
    }

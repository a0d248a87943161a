"""The OpenAPI document is complete, and the app keeps to it (schemathesis, property-based).

Schemathesis generates requests from the document and checks every response: no server
errors, status codes and content types that the document lists, bodies and headers that match
their schemas. A small number of examples per operation keeps this to seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis import checks

from mmsq.api import ApiServices, create_app
from tests.api_harness import ApiWorld, api_world

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ApiWorld]:
    with api_world(f"sqlite:///{tmp_path / 'mmsq.db'}") as w:
        yield w


class _DeferredApp:
    """An ASGI app that forwards to the current test's app.

    The document is loaded at import time (schemathesis parametrizes at collection), but the app
    over a database is built per test; ``schemathesis.pytest.from_fixture`` would defer this
    itself but does not work with pytest 9.
    """

    target: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.target(scope, receive, send)


def _document() -> dict[str, Any]:
    # The document depends only on the routes, not on the services behind them.
    stub = cast(
        ApiServices, SimpleNamespace(max_body_bytes=4096, audit=None, clock=None, threads=4)
    )
    return create_app(stub).openapi()


_app = _DeferredApp()
schema = schemathesis.openapi.from_dict(_document())
schema.app = _app


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_keeps_to_its_openapi_document(case: Any, world: ApiWorld) -> None:
    _app.target = world.api
    case.call_and_validate(headers=world.auth("admin"), checks=CHECKS)


def test_openapi_document_declares_problems_security_and_examples(world: ApiWorld) -> None:
    doc = world.api.openapi()
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": doc["components"]["securitySchemes"]["bearer"]["description"],
    }
    problem = doc["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "instance"} <= set(problem["required"])
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op.get("security") == [{"bearer": []}], (method, path)
            for code in ("401", "403", "429", "422"):
                content = op["responses"][code]["content"]
                assert "application/problem+json" in content, (method, path, code)
    resend = doc["paths"]["/resends"]["post"]
    assert resend["requestBody"]["content"]["application/json"]["schema"]
    assert doc["components"]["schemas"]["ResendCreate"]["examples"]


def test_openapi_document_served_under_v1_names_its_server(world: ApiWorld) -> None:
    with TestClient(world.app) as c:
        doc = c.get("/v1/openapi.json").json()
    assert doc["servers"] == [{"url": "/v1"}]
    assert "/subscription-events" in doc["paths"]
    assert set(doc["paths"]["/subscription-events"]["post"]["responses"]) >= {"200", "201", "202"}

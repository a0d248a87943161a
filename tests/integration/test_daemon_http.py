"""The daemon's HTTP app on a real socket: MM7 delivery reports, probes, metrics."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import defusedxml.ElementTree as SafeET
import httpx
import pytest

from mmsq.adapters.daemon_http import create_http_app
from mmsq.adapters.http_server import ThreadedHttpServer
from mmsq.adapters.mm7_vasp import SOURCE, mm7_delivery_report_router
from mmsq.bootstrap import App, build_app
from mmsq.health import HealthRegistry
from mmsq.metrics import Metrics
from mmsq.report_intake import ReportIntake
from mmsq.settings import DatabaseSettings, Settings
from tests.daemon_harness import REL5_NS, dr_body


@dataclass
class Served:
    app: App
    metrics: Metrics
    health: HealthRegistry
    client: httpx.Client


@pytest.fixture
def served(db_url: str, tmp_path: Path) -> Iterator[Served]:
    settings = Settings(data_dir=tmp_path, database=DatabaseSettings(url=db_url))
    app = build_app(settings, check_schema=False)
    app.store.upgrade()
    metrics, health = Metrics(), HealthRegistry()
    health.add("schema", lambda: app.store.check_schema() or "current")
    intake = ReportIntake(app.ingest, app.store, metrics, app.clock)
    http = ThreadedHttpServer(
        create_http_app(
            health=health, metrics=metrics, routers=[mm7_delivery_report_router(intake)]
        ),
        "127.0.0.1",
        0,
        graceful_s=2,
    )
    http.start()
    try:
        with httpx.Client(base_url=http.url, timeout=10) as client:
            yield Served(app, metrics, health, client)
    finally:
        http.stop()
        app.close()


def post(s: Served, body: bytes) -> httpx.Response:
    return s.client.post("/mm7/dr", content=body, headers={"Content-Type": "text/xml"})


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def status_code(xml: bytes) -> tuple[str, str]:
    root = SafeET.fromstring(xml)
    body = next(e for e in root if local(e.tag) == "Body")
    first = body[0]
    code = next(e for e in first.iter() if local(e.tag) == "StatusCode")
    return local(first.tag), str(code.text)


def test_a_report_is_stored_once_and_answered_in_the_peers_namespace(served: Served) -> None:
    first = post(served, dr_body())
    again = post(served, dr_body(tid="dr-2"))
    assert first.status_code == again.status_code == 200
    assert status_code(first.content) == ("DeliveryReportRsp", "1000")
    assert f'xmlns="{REL5_NS}"'.encode() in first.content
    assert b">dr-1</" in first.content
    assert served.app.store.event_count() == 1
    get = served.metrics.registry.get_sample_value
    assert get("mmsq_delivery_reports_received_total", {"outcome": "stored"}) == 1
    assert get("mmsq_delivery_reports_received_total", {"outcome": "duplicate"}) == 1
    assert get("mmsq_ingest_records_total", {"source": "mm7"}) == 2


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<not-xml", "not well-formed XML"),
        (dr_body().replace(b"<MMStatus>Retrieved</MMStatus>", b""), "without MMStatus"),
        (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>', "refused XML"),
        (dr_body(recipient="12"), "report refused and quarantined"),
    ],
    ids=["not-xml", "no-mmstatus", "dtd", "bad-msisdn"],
)
def test_a_malformed_report_is_quarantined_and_refused_with_a_fault(
    served: Served, body: bytes, reason: str
) -> None:
    r = post(served, body)
    assert r.status_code == 400
    assert status_code(r.content) == ("Fault", "2007")
    assert reason.encode() in r.content
    rows = served.app.store.quarantine_rows()
    assert len(rows) == 1
    assert rows[0]["source"] == SOURCE
    assert served.app.store.event_count() == 0
    # The endpoint still works afterwards.
    assert post(served, dr_body()).status_code == 200


def test_a_storage_failure_asks_the_mmsc_to_retry(served: Served) -> None:
    with served.app.store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE event_segments")
    r = post(served, dr_body())
    assert r.status_code == 500
    assert status_code(r.content) == ("Fault", "3000")
    assert (
        served.metrics.registry.get_sample_value(
            "mmsq_delivery_reports_received_total", {"outcome": "error"}
        )
        == 1
    )


def test_probes_and_metrics(served: Served) -> None:
    assert served.client.get("/healthz").json() == {"status": "alive"}
    ready = served.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["schema"] == {"ok": True, "detail": "current"}
    served.health.add("smpp_bind", lambda: (_ for _ in ()).throw(RuntimeError("unbound")))
    not_ready = served.client.get("/readyz")
    assert not_ready.status_code == 503
    assert not_ready.json()["checks"]["smpp_bind"]["ok"] is False
    text = served.client.get("/metrics").text
    for name in ("mmsq_receipt_lag_seconds", "mmsq_throttling_events", "mmsq_queue_depth"):
        assert f"# TYPE {name}" in text


def test_extra_routers_and_mounted_apps_are_served() -> None:
    from fastapi import APIRouter, FastAPI

    v1 = APIRouter(prefix="/v1")

    @v1.get("/ping")
    def ping() -> dict[str, str]:
        return {"pong": "v1"}

    sub = FastAPI()

    @sub.get("/hello")
    def hello() -> dict[str, str]:
        return {"hello": "mounted"}

    app = create_http_app(
        health=HealthRegistry(), metrics=Metrics(), routers=[v1], mounts=[("/agent", sub)]
    )
    http = ThreadedHttpServer(app, "127.0.0.1", 0, graceful_s=1)
    http.start()
    try:
        with httpx.Client(base_url=http.url) as c:
            assert c.get("/v1/ping").json() == {"pong": "v1"}
            assert c.get("/agent/hello").json() == {"hello": "mounted"}
    finally:
        http.stop()


def test_a_port_in_use_is_a_clear_start_up_error() -> None:
    app = create_http_app(health=HealthRegistry(), metrics=Metrics())
    first = ThreadedHttpServer(app, "127.0.0.1", 0, graceful_s=1)
    first.start()
    try:
        second = ThreadedHttpServer(app, "127.0.0.1", first.port, graceful_s=1)
        with pytest.raises(OSError, match=r"cannot listen on 127\.0\.0\.1"):
            second.start()
    finally:
        first.stop()


def test_concurrent_reports_are_all_stored_by_the_daemons_wiring(
    db_url: str, tmp_path: Path
) -> None:
    import threading

    from mmsq.adapters.sql_store import SqlStore
    from mmsq.bootstrap import build_daemon
    from mmsq.settings import DaemonSettings

    store = SqlStore.from_url(db_url)
    store.upgrade()
    store.close()
    settings = Settings(
        data_dir=tmp_path, database=DatabaseSettings(url=db_url), daemon=DaemonSettings(port=0)
    )
    parts = build_daemon(settings)
    parts.http.start()
    codes: list[int] = []

    def sender(k: int) -> None:
        with httpx.Client(base_url=parts.http.url, timeout=60) as c:
            for i in range(5):
                r = post_to(c, dr_body(message_id=f"C-{k}-{i}", tid=f"t{k}{i}"))
                codes.append(r.status_code)

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(4)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        parts.http.stop()
        parts.app.close()
    assert codes == [200] * 20
    assert "probe" in parts.jobs.names()
    assert "probe" not in parts.unavailable_jobs
    assert (
        parts.metrics.registry.get_sample_value(
            "mmsq_delivery_reports_received_total", {"outcome": "stored"}
        )
        == 20
    )


def post_to(client: httpx.Client, body: bytes) -> httpx.Response:
    return client.post("/mm7/dr", content=body, headers={"Content-Type": "text/xml"})

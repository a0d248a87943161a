"""Tokens from the command line, and the API served by 'mmsq api' as an operator runs it."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx

from tests.e2e.test_cli import run


@contextlib.contextmanager
def api_server(tmp_path: Path, **settings: str) -> Iterator[int]:
    """`mmsq api` on a free port in ``tmp_path`` (``settings``: MMSQ_ variables); its port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MMSQ_")}
    env.update({"MMSQ_LOG__FORMAT": "json", **settings})
    proc = subprocess.Popen(
        [sys.executable, "-m", "mmsq", "api", "--host", "127.0.0.1", "--port", "0"],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stderr is not None
        port = None
        deadline = time.monotonic() + 60
        while port is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line and proc.poll() is not None:
                break
            if m := re.search(r"running on http://127\.0\.0\.1:(\d+)", line):
                port = int(m.group(1))
        assert port, "mmsq api did not start"
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stderr:
            proc.stderr.close()


def test_agents_add_list_revoke(tmp_path: Path) -> None:
    assert run(["db", "upgrade"], tmp_path).returncode == 0
    added = run(["agents", "add", "li.wei", "--role", "supervisor"], tmp_path)
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()
    assert token.startswith("mmsq_")
    assert "shown once" in added.stderr
    listed = run(["agents", "list", "--json"], tmp_path)
    doc = json.loads(listed.stdout)
    assert [(a["name"], a["role"]) for a in doc] == [("li.wei", "supervisor")]
    assert token not in listed.stdout
    again = run(["agents", "add", "li.wei"], tmp_path)
    assert again.returncode == 2
    assert "exists already" in again.stderr
    bad_role = run(["agents", "add", "x", "--role", "root"], tmp_path)
    assert bad_role.returncode == 2
    assert run(["agents", "revoke", "li.wei"], tmp_path).returncode == 0
    assert run(["agents", "revoke", "li.wei"], tmp_path).returncode == 1
    assert json.loads(run(["agents", "list", "--json"], tmp_path).stdout) == []


def test_mmsq_api_serves_the_agent_api(tmp_path: Path) -> None:
    assert run(["db", "upgrade"], tmp_path).returncode == 0
    token = run(["agents", "add", "li.wei"], tmp_path).stdout.strip()
    (tmp_path / "boss.csv").write_text(
        "msisdn,product,status\n13800138000,ah-daily,active\n", encoding="utf-8"
    )
    imported = run(["subscriptions", "import", "--source", "boss", "boss.csv"], tmp_path)
    assert imported.returncode == 0, imported.stderr
    with api_server(tmp_path) as port:
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
            d = c.get("/v1/subscribers/13800138000/diagnosis", headers=auth)
            assert d.status_code == 200, d.text
            assert d.json()["subscription"]["status"] == "active"
            assert d.json()["next_step"]["case"] == "sync_mismatch"
            r = c.post(
                "/v1/resends",
                json={"msisdn": "13800138000", "reason": "x", "edition": "ah-daily-20261123-am"},
                headers={**auth, "Idempotency-Key": "k1"},
            )
            assert r.status_code == 202, r.text
            assert r.json()["status"] == "queued"  # in the MM7 outbox, for the daemon to send
            doc = c.get("/v1/openapi.json").json()
            assert doc["servers"] == [{"url": "/v1"}]


def test_mmsq_api_workers_share_the_rate_limit(tmp_path: Path) -> None:
    """Two worker processes behind one socket: a token gets its burst once, not per worker."""
    assert run(["db", "upgrade"], tmp_path).returncode == 0
    token = run(["agents", "add", "li.wei"], tmp_path).stdout.strip()
    with api_server(
        tmp_path,
        MMSQ_API__WORKERS="2",
        MMSQ_API__RATE_LIMIT_BURST="6",
        MMSQ_API__RATE_LIMIT_PER_MINUTE="1",
    ) as port:
        auth = {"Authorization": f"Bearer {token}"}
        url = f"http://127.0.0.1:{port}/v1/subscribers/13800138000/diagnosis"
        statuses: list[int] = []
        workers: set[str] = set()  # request ids start with a prefix of their process
        deadline = time.monotonic() + 60
        while (len(workers) < 2 or len(statuses) < 12) and time.monotonic() < deadline:
            try:
                r = httpx.get(url, headers=auth, timeout=10)  # a new connection each time
            except httpx.ConnectError:  # the socket listens once a worker has started
                time.sleep(0.1)
                continue
            statuses.append(r.status_code)
            workers.add(r.headers["x-request-id"][:8])
        assert len(workers) == 2, "both workers should have answered"
        assert statuses.count(200) == 6, statuses
        assert statuses[:6] == [200] * 6
        assert set(statuses[6:]) == {429}
        assert (tmp_path / "var" / "api-rate-limits.bin").is_file()

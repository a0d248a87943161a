"""Tokens from the command line, and the API served by 'mmsq api' as an operator runs it."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx

from tests.e2e.test_cli import run


@contextlib.contextmanager
def api_server(tmp_path: Path, **settings: str) -> Iterator[int]:
    """`mmsq api` on a free port in ``tmp_path`` (``settings``: MMSQ_ variables); its port."""
    with api_process(tmp_path, **settings) as (port, _proc):
        yield port


@contextlib.contextmanager
def api_process(tmp_path: Path, **settings: str) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    """`mmsq api` as ``api_server`` starts it: its port and its process."""
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
        yield port, proc
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


_TWO_WORKERS = {
    "MMSQ_API__WORKERS": "2",
    "MMSQ_API__RATE_LIMIT_BURST": "100000",
    "MMSQ_API__RATE_LIMIT_PER_MINUTE": "100000",
}


def _worker_of_each_connection(port: int, token: str, n: int) -> list[str]:
    """Opens ``n`` connections at once (as a client's pool does), then sends one request on
    each: the process prefix of the request id that answered on each connection."""
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        socks.append(s)
    request = (
        "GET /v1/subscribers/13800138000/diagnosis HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {token}\r\n\r\n"
    ).encode()
    workers = []
    try:
        for s in socks:
            s.sendall(request)
        for s in socks:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = s.recv(65536)
                assert chunk, "connection closed"
                head += chunk
            m = re.search(rb"x-request-id: (\S+)", head, re.IGNORECASE)
            assert m, head[:200]
            assert head.startswith(b"HTTP/1.1 200"), head[:200]
            workers.append(m.group(1).decode()[:8])
    finally:
        for s in socks:
            s.close()
    return workers


def test_mmsq_api_workers_listen_each_on_a_socket_of_their_own(tmp_path: Path) -> None:
    """Each worker listens on a socket of its own (SO_REUSEPORT), so that the kernel spreads
    new connections over the workers; with one shared socket, a burst of connections could
    go mostly to whichever worker woke first. 64 connections opened at once reach both
    (about 32 each; fewer than 16 on one about once in ten thousand runs)."""
    assert run(["db", "upgrade"], tmp_path).returncode == 0
    token = run(["agents", "add", "li.wei"], tmp_path).stdout.strip()
    with api_process(tmp_path, **_TWO_WORKERS) as (port, proc):
        _wait_for_workers(port, token, 2)
        assert sorted(_listeners(port)) == _children(proc.pid)
        counts = Counter(_worker_of_each_connection(port, token, 64))
    assert len(counts) == 2, counts
    assert min(counts.values()) >= 16, counts


def _listeners(port: int) -> list[int]:
    """The processes holding a listening TCP socket on ``port`` (Linux), one per socket."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                f = line.split()
                if f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:  # LISTEN
                    inodes.add(f[9])
    owners = []
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        with contextlib.suppress(OSError):
            for fd in fd_dir.iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:[") and target[8:-1] in inodes:
                        owners.append(int(fd_dir.parent.name))
    return owners


def _wait_for_workers(port: int, token: str, n: int) -> set[str]:
    """The process prefixes of ``n`` workers, once each has answered."""
    seen: set[str] = set()
    deadline = time.monotonic() + 60
    while len(seen) < n and time.monotonic() < deadline:
        try:
            r = httpx.get(
                f"http://127.0.0.1:{port}/v1/subscribers/13800138000/diagnosis",
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            )
        except httpx.TransportError:  # a worker starting (or one just killed)
            time.sleep(0.1)
            continue
        seen.add(r.headers["x-request-id"][:8])
    assert len(seen) == n, seen
    return seen


def test_mmsq_api_restarts_a_worker_that_dies_and_stops_on_sigterm(tmp_path: Path) -> None:
    assert run(["db", "upgrade"], tmp_path).returncode == 0
    token = run(["agents", "add", "li.wei"], tmp_path).stdout.strip()
    with api_process(tmp_path, **_TWO_WORKERS) as (port, proc):
        first = _wait_for_workers(port, token, 2)
        children = _children(proc.pid)
        assert len(children) == 2, children
        os.kill(children[0], signal.SIGKILL)
        deadline = time.monotonic() + 60
        while len(_children(proc.pid)) < 2 or set(_children(proc.pid)) == set(children):
            assert time.monotonic() < deadline, "no worker started in place of the dead one"
            time.sleep(0.2)
        later: set[str] = set()
        while len(later - first) < 1:  # the new worker answers
            assert time.monotonic() < deadline, later
            later |= {_worker_of_each_connection(port, token, 8)[i] for i in range(8)}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert all(not Path(f"/proc/{pid}").exists() for pid in _children(proc.pid))


def _children(pid: int) -> list[int]:
    """The live worker processes of ``pid`` (Linux; not multiprocessing's resource tracker)."""
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        children = task / "children"
        if children.exists():
            out += [int(c) for c in children.read_text().split()]
    return sorted(c for c in out if b"spawn_main" in _cmdline(c))


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""

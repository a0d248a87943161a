"""A throwaway PostgreSQL cluster for the test suite (initdb + pg_ctl on 127.0.0.1).

PostgreSQL refuses to run as root, so as root the server runs as an unprivileged system user
(``mmsqtest``, created when missing).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType

__all__ = ["ThrowawayPostgres", "pg_available"]

USER = "mmsqtest"


def _bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


def pg_available() -> tuple[bool, str]:
    missing = [n for n in ("initdb", "pg_ctl") if _bin(n) is None]
    if missing:
        return False, f"PostgreSQL binaries not found: {', '.join(missing)}"
    return True, ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ThrowawayPostgres:
    """Starts a private cluster on enter; stops it and removes its files on exit."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="mmsq-pg-"))
        self._user: str | None = None

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        cmd = ["runuser", "-u", self._user, "--", *args] if self._user else args
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)

    def __enter__(self) -> ThrowawayPostgres:
        ok, why = pg_available()
        if not ok:
            raise RuntimeError(why)
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(USER)
            except KeyError:
                subprocess.run(
                    [
                        "useradd",
                        "--system",
                        "--no-create-home",
                        "--shell",
                        "/usr/sbin/nologin",
                        USER,
                    ],
                    check=True,
                    capture_output=True,
                )
            self._user = USER
            shutil.chown(self.dir, USER, USER)
            os.chmod(self.dir, 0o700)
        data, sock, log = self.dir / "data", self.dir / "sock", self.dir / "server.log"
        for p in (data, sock):
            p.mkdir()
            if self._user:
                shutil.chown(p, self._user, self._user)
        initdb = self._run(
            [
                str(_bin("initdb")),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--locale=C",
            ]
        )
        if initdb.returncode != 0:
            raise RuntimeError(f"initdb failed: {initdb.stderr[-2000:]}")
        opts = (
            f"-k {sock} -p {self.port} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=50"
        )
        start = self._run(
            [
                str(_bin("pg_ctl")),
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                str(data),
                "-l",
                str(log),
                "-o",
                opts,
            ]
        )
        if start.returncode != 0:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {start.stderr}\n{tail}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.1)
        raise RuntimeError("PostgreSQL did not accept connections within 30 s")

    def create_database(self, name: str | None = None) -> str:
        import psycopg

        name = name or f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._run([str(_bin("pg_ctl")), "stop", "-m", "immediate", "-D", str(self.dir / "data")])
        shutil.rmtree(self.dir, ignore_errors=True)

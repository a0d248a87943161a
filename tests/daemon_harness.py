"""Test helpers for the daemon: MM7 report bodies, polling with a deadline, a daemon process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REL5_NS = "http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/REL-5-MM7-1-2"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"


def dr_body(
    message_id: str = "MMSC-000001",
    recipient: str = "+8613800138000",
    status: str = "Retrieved",
    date: str = "2026-11-22T07:01:02+08:00",
    tid: str = "dr-1",
    namespace: str = REL5_NS,
) -> bytes:
    """A DeliveryReportReq as an MMSC sends it (written out, not built by mmsq's code)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<env:Envelope xmlns:env="{SOAP_ENV}"><env:Header>'
        f'<mm7:TransactionID xmlns:mm7="{namespace}" env:mustUnderstand="1">{tid}'
        "</mm7:TransactionID></env:Header><env:Body>"
        f'<DeliveryReportReq xmlns="{namespace}"><MM7Version>5.3.0</MM7Version>'
        f"<MMSRelayServerID>mmsc01</MMSRelayServerID><MessageID>{message_id}</MessageID>"
        f"<Recipient><Number>{recipient}</Number></Recipient>"
        "<Sender><ShortCode>10658000</ShortCode></Sender>"
        f"<Date>{date}</Date><MMStatus>{status}</MMStatus><StatusText>ok</StatusText>"
        "</DeliveryReportReq></env:Body></env:Envelope>"
    ).encode()


def wait_until(predicate: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    """Poll until ``predicate`` holds; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not before the deadline: {what or predicate}")
        time.sleep(0.05)


class DaemonProcess:
    """``mmsq daemon`` as a real subprocess with a temporary config; stderr goes to a file."""

    def __init__(self, workdir: Path, db_url: str, extra_toml: str = "") -> None:
        self.workdir = workdir
        self.data = workdir / "var"
        self.inbox = self.data / "inbox"
        self.done = self.data / "done"
        self.failed = self.data / "failed"
        self.config = workdir / "config.toml"
        self.log_path = workdir / "daemon.log"
        self.config.write_text(
            f'data_dir = "{self.data.as_posix()}"\n'
            f'[database]\nurl = "{db_url}"\n'
            '[log]\nformat = "json"\nlevel = "DEBUG"\n'
            "[daemon]\nport = 0\nsettle_s = 0.2\nshutdown_grace_s = 20\n"
            "[daemon.jobs.inbox]\ninterval_s = 0.2\n" + extra_toml
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MMSQ_")}
        env["MMSQ_CONFIG"] = str(self.config)
        return env

    def mmsq(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mmsq", *args],
            cwd=self.workdir,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def start(self) -> DaemonProcess:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mmsq", "daemon"],
                cwd=self.workdir,
                env=self.env(),
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        wait_until(
            lambda: self.event("daemon.started") is not None or self.proc.poll() is not None,  # type: ignore[union-attr]
            timeout=60,
            what="daemon.started",
        )
        started = self.event("daemon.started")
        assert started is not None, self.log_path.read_text()
        self.url = started["http"]
        return self

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a line being written
        return out

    def event(self, name: str) -> dict[str, Any] | None:
        return next((e for e in self.events() if e.get("event") == name), None)

    def terminate(self, timeout: float = 60) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)

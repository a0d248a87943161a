"""Interop: Kannel (bearerbox + smsbox) sends SMS through the SMSC simulator over SMPP.

Kannel is an independent SMPP client: what it puts on the wire (GSM 7-bit, UCS2, UDH
concatenation) must decode to the texts sent through its sendsms interface, and the
simulator's receipts must let Kannel correlate its messages (msg-id-type matched to the id
format) and call the DLR URL with the right final status.

Skips when Kannel is not installed, except in CI (CI set), where it fails instead.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO

import pytest

from mmsq.simulators.outcomes import FixedOutcomes, SmsOutcome
from mmsq.simulators.smsc import SmscSimulator
from mmsq.simulators.smsc_config import SmscConfig

pytestmark = pytest.mark.slow

WAIT_S = 30.0
GOOD, BAD = "8613800138000", "8613900139000"
CHINESE = "您好。您的彩信设置有误。请回复1获取设置。"
LONG_CHINESE = "尊敬的用户。您的手机彩信功能设置不正确。无法接收手机报。" * 5
LONG_GSM = "MMS help: open Settings > Mobile data, APN cmwap, price 0€ {free} [ok]. " * 6


def _binary(name: str) -> str | None:
    sbin = f"/usr/sbin/{name}"  # Debian installs the boxes outside a normal user's PATH
    return shutil.which(name) or (sbin if os.access(sbin, os.X_OK) else None)


@pytest.fixture(scope="module")
def kannel_bins() -> tuple[str, str]:
    bearerbox, smsbox = _binary("bearerbox"), _binary("smsbox")
    if bearerbox is None or smsbox is None:
        reason = "Kannel (bearerbox, smsbox) is not installed; apt-get install kannel"
        if os.environ.get("CI", "").lower() in ("1", "true"):
            pytest.fail(f"{reason} (required in CI)", pytrace=False)
        pytest.skip(reason)
    return bearerbox, smsbox


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait(condition: Callable[[], bool], what: str, logs: Path) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            tails = "\n".join(
                f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                for p in sorted(logs.glob("*.log"))
            )
            pytest.fail(f"timed out waiting for {what}\n{tails}")
        time.sleep(0.05)


class DlrSink:
    """A tiny HTTP server that records Kannel's DLR callbacks (query strings)."""

    def __init__(self) -> None:
        calls: list[dict[str, str]] = []
        self.calls = calls

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = urllib.parse.urlsplit(self.path).query
                calls.append(dict(urllib.parse.parse_qsl(query)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def dlr_sink() -> Iterator[DlrSink]:
    sink = DlrSink()
    yield sink
    sink.close()


def _kannel_conf(smsc: SmscSimulator, msg_id_type: int, ports: dict[str, int], d: Path) -> str:
    return f"""
group = core
admin-port = {ports["admin"]}
admin-password = admin-secret
admin-interface = 127.0.0.1
smsbox-port = {ports["smsbox"]}
box-allow-ip = 127.0.0.1
log-file = "{d / "bearerbox.log"}"
log-level = 1
dlr-storage = internal

group = smsc
smsc = smpp
smsc-id = sim
host = {smsc.host}
port = {smsc.port}
transceiver-mode = true
smsc-username = {smsc.config.system_id}
smsc-password = {smsc.config.password}
system-type = VMA
msg-id-type = {msg_id_type:#04x}

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {ports["smsbox"]}
sendsms-port = {ports["sendsms"]}
sendsms-interface = 127.0.0.1
log-file = "{d / "smsbox.log"}"
log-level = 1

group = sendsms-user
username = tester
password = tester-secret
concatenation = true
max-messages = 10
"""


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class Kannel:
    """bearerbox, then smsbox once bearerbox listens for it, on a generated kannel.conf;
    stopped with SIGTERM (bearerbox unbinds from the SMSC)."""

    def __init__(
        self, bins: tuple[str, str], conf: Path, logs: Path, ports: dict[str, int]
    ) -> None:
        self.logs = logs
        self.conf = conf
        self.sendsms_port = ports["sendsms"]
        self.procs: list[subprocess.Popen[bytes]] = []
        self.outputs: list[IO[bytes]] = []
        self._start("bearerbox", bins[0])
        _wait(lambda: _listening(ports["smsbox"]), "bearerbox's smsbox port", logs)
        self._start("smsbox", bins[1])

    def _start(self, name: str, binary: str) -> None:
        out = (self.logs / f"{name}.stdout.log").open("wb")
        self.outputs.append(out)
        self.procs.append(
            subprocess.Popen([binary, str(self.conf)], stdout=out, stderr=subprocess.STDOUT)
        )

    def sendsms(self, to: str, text: str, tag: str, dlr_port: int, **extra: str) -> None:
        dlr_url = f"http://127.0.0.1:{dlr_port}/dlr?tag={tag}&type=%d&answer=%A"
        query = urllib.parse.urlencode(
            {
                "username": "tester",
                "password": "tester-secret",
                "from": "10086",
                "to": to,
                "text": text,
                "charset": "UTF-8",
                "dlr-mask": "3",  # final states only: delivered (1) or failed (2)
                "dlr-url": dlr_url,
                **extra,
            }
        )
        url = f"http://127.0.0.1:{self.sendsms_port}/cgi-bin/sendsms?{query}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            answer = resp.read().decode()
        assert answer.startswith(("0:", "3:")), answer  # accepted, or queued until bound

    def sendsms_ready(self) -> bool:
        return _listening(self.sendsms_port)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for out in self.outputs:
            out.close()


@pytest.mark.parametrize(
    ("id_format", "msg_id_type"), [("dec", 0x00), ("hex", 0x03)], ids=["dec", "hex"]
)
def test_kannel_sends_through_the_simulator_and_gets_its_receipts(
    kannel_bins: tuple[str, str],
    dlr_sink: DlrSink,
    tmp_path: Path,
    id_format: str,
    msg_id_type: int,
) -> None:
    outcomes = FixedOutcomes(
        default_sms=SmsOutcome(delay_s=0.05),
        sms={BAD: SmsOutcome(stat="UNDELIV", err="001", delay_s=0.05)},
    )
    config = SmscConfig.model_validate(
        {"system_id": "kannel", "password": "kpw", "id_format": id_format, "first_message_id": 9990}
    )
    with SmscSimulator(config, outcomes) as smsc:
        ports = {"admin": _free_port(), "smsbox": _free_port(), "sendsms": _free_port()}
        conf = tmp_path / "kannel.conf"
        conf.write_text(_kannel_conf(smsc, msg_id_type, ports, tmp_path))
        kannel = Kannel(kannel_bins, conf, tmp_path, ports)
        try:
            _wait(lambda: smsc.stats().binds >= 1, "Kannel to bind", tmp_path)
            _wait(kannel.sendsms_ready, "smsbox's sendsms port", tmp_path)
            kannel.sendsms(GOOD, "hello from Kannel", "ascii", dlr_sink.port)
            kannel.sendsms(GOOD, CHINESE, "ucs2", dlr_sink.port, coding="2")
            kannel.sendsms(BAD, LONG_CHINESE, "long-ucs2", dlr_sink.port, coding="2")
            kannel.sendsms(GOOD, LONG_GSM, "long-gsm", dlr_sink.port)
            _wait(lambda: len(outcomes.texts) == 4, "four texts at the SMSC", tmp_path)
            _wait(lambda: len(dlr_sink.calls) == 4, "four DLR callbacks", tmp_path)
        finally:
            kannel.stop()
        stats = smsc.stats()
        received = smsc.received()

    texts = {(t.text, t.data_coding, t.segments) for t in outcomes.texts}
    assert ("hello from Kannel", 0, 1) in texts
    assert (CHINESE, 8, 1) in texts
    assert (LONG_CHINESE, 8, 3) in texts
    assert (LONG_GSM, 0, 4) in texts
    assert {t.msisdn for t in outcomes.texts} == {GOOD, BAD}
    # Every segment had its own id; each segment that asked for a receipt got its own (Kannel
    # asks on the first segment of a split message only), and Kannel acknowledged each one.
    assert len(received) == 1 + 1 + 3 + 4
    assert len({r.message_id for r in received}) == len(received)
    asked = sum(1 for r in received if r.registered_delivery & 0x03)
    assert asked >= 4
    assert (stats.receipts_sent, stats.receipts_acked) == (asked, asked)
    assert stats.decode_failures == 0
    # Kannel matched the receipts to its messages (else no DLR URL would be called).
    final = {call["tag"]: call["type"] for call in dlr_sink.calls}
    assert final == {"ascii": "1", "ucs2": "1", "long-ucs2": "2", "long-gsm": "1"}
    answer = next(c["answer"] for c in dlr_sink.calls if c["tag"] == "ascii")
    assert "stat:DELIVRD" in answer
    if id_format == "hex":
        assert {"2706", "270a"} <= {r.message_id for r in received}  # 9990, 9994 in hex

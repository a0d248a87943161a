"""`mmsq sim mmsc` as an operator runs it: a real process, a real SubmitReq, Ctrl-C to stop."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import defusedxml.ElementTree as SafeET

REL6 = "http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/REL-6-MM7-1-4"
SUBMIT = f"""<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/">
<env:Header><mm7:TransactionID xmlns:mm7="{REL6}">cli-1</mm7:TransactionID></env:Header>
<env:Body><SubmitReq xmlns="{REL6}"><MM7Version>6.8.0</MM7Version>
<SenderIdentification><VASPID>sp01</VASPID><VASID>news</VASID></SenderIdentification>
<Recipients><To><Number>13800138000</Number></To></Recipients>
</SubmitReq></env:Body></env:Envelope>""".encode()


@contextmanager
def simulator(tmp_path: Path, *args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MMSQ_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mmsq", "sim", "mmsc", "--port", "0", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("mmsc listening on "), line
        yield proc, line.split()[-1]
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


def submit(url: str) -> tuple[int, str]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("POST", parts.path, body=SUBMIT, headers={"Content-Type": "text/xml"})
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    code = next(e.text for e in SafeET.fromstring(body).iter() if e.tag.endswith("StatusCode"))
    return resp.status, str(code)


def test_sim_mmsc_accepts_a_submit_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    with simulator(tmp_path, "--vaspid", "sp01", "--seed", "3") as (proc, url):
        assert submit(url) == (200, "1000")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "1 accepted" in out
    assert "Traceback" not in err


def test_sim_mmsc_answers_4006_at_a_fault_rate_of_one(tmp_path: Path) -> None:
    with simulator(tmp_path, "--fault-4006-rate", "1") as (proc, url):
        assert submit(url) == (500, "4006")
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0

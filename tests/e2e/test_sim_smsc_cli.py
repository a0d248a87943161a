"""`mmsq sim smsc` as an operator runs it: a real process, a real bind, Ctrl-C to stop."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
from pathlib import Path


def test_sim_smsc_serves_until_interrupted(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MMSQ_")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mmsq",
            "sim",
            "smsc",
            "--port",
            "0",
            "--system-id",
            "esme1",
            "--password",
            "pw",
            "--id-format",
            "hex",
        ],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        started = json.loads(proc.stderr.readline())  # JSON log lines off a terminal
        assert started["event"] == "smsc simulator listening"
        body = b"esme1\0pw\0\0\x34\x00\x00\x00"
        with socket.create_connection(("127.0.0.1", started["port"]), timeout=10) as sock:
            sock.sendall(struct.pack(">IIII", 16 + len(body), 0x09, 0, 1) + body)
            head = sock.recv(16)
        assert struct.unpack(">IIII", head)[1:] == (0x80000009, 0, 1)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        rest = proc.stderr.read()
        assert '"event": "smsc simulator stopped"' in rest
        assert '"binds": 1' in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()

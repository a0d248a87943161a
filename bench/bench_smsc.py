"""SMSC simulator benchmark: submit_sm per second from one client with a window.

Starts ``mmsq sim smsc`` in a child process (so client and server do not share a GIL), binds
one transceiver, keeps ``--window`` submit_sm outstanding and acknowledges every receipt
(deliver_sm) as it comes. Prints submits/s (first submit to last submit_sm_resp), the time
until the last receipt, the command and the machine.

    python bench/bench_smsc.py [--messages 100000] [--window 200] [--no-receipts]
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import struct
import subprocess
import sys
import time

from machine_info import machine  # bench/machine_info.py, beside this script

HEADER = struct.Struct(">IIII")


def submit_pdu(sequence: int, msisdn: bytes, text: bytes, receipt: bool) -> bytes:
    body = (
        b"\x00\x05\x0010086\x00\x01\x01"
        + msisdn
        + b"\x00\x00\x00\x00\x00\x00"
        + bytes([1 if receipt else 0, 0, 0, 0, len(text)])
        + text
    )
    return HEADER.pack(16 + len(body), 4, 0, sequence) + body


class Client:
    """One transceiver keeping ``window`` submit_sm outstanding and acking every receipt."""

    def __init__(self, port: int, messages: int, window: int, receipts: bool) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.messages, self.window, self.receipts = messages, window, receipts
        self.pdus = [
            submit_pdu(i + 2, b"86138%08d" % (i % 10**8), b"MMS help %d" % i, receipts)
            for i in range(messages)
        ]
        self.buf = bytearray()
        self.sent = self.answered = self.got_receipts = self.errors = 0
        self.bound = False
        self.t0 = self.t_last_resp = 0.0

    def run(self) -> None:
        bind = b"mmsq\0secret\0\0\x34\x00\x00\x00"
        self.sock.sendall(HEADER.pack(16 + len(bind), 9, 0, 1) + bind)
        while self.answered < self.messages or (
            self.receipts and self.got_receipts < self.messages
        ):
            self._send_window()
            data = self.sock.recv(1 << 16)
            if not data:
                raise ConnectionError("connection closed by the SMSC")
            self.buf += data
            self._consume()
        self.sock.close()

    def _send_window(self) -> None:
        room = self.window - (self.sent - self.answered)
        if not self.bound or self.sent >= self.messages or room <= 0:
            return
        n = min(room, self.messages - self.sent)
        if self.sent == 0:
            self.t0 = time.perf_counter()
        self.sock.sendall(b"".join(self.pdus[self.sent : self.sent + n]))
        self.sent += n

    def _consume(self) -> None:
        buf, pos, acks = self.buf, 0, []
        while len(buf) - pos >= 16:
            length, command_id, status, sequence = HEADER.unpack_from(buf, pos)
            if len(buf) - pos < length:
                break
            pos += length
            if command_id == 0x80000004:
                self.answered += 1
                self.errors += status != 0
                if self.answered == self.messages:
                    self.t_last_resp = time.perf_counter()
            elif command_id == 0x00000005:
                self.got_receipts += 1
                acks.append(HEADER.pack(17, 0x80000005, 0, sequence) + b"\0")
            elif command_id == 0x80000009:
                if status != 0:
                    raise ConnectionError(f"bind refused: 0x{status:02X}")
                self.bound = True
        del buf[:pos]
        if acks:
            self.sock.sendall(b"".join(acks))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--window", type=int, default=200)
    ap.add_argument("--no-receipts", action="store_true")
    args = ap.parse_args()

    proc = subprocess.Popen(
        [sys.executable, "-m", "mmsq", "sim", "smsc", "--port", "0", "--stats-every", "3600"],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    try:
        port = json.loads(proc.stderr.readline())["port"]
        client = Client(port, args.messages, args.window, not args.no_receipts)
        client.run()
        t_end = time.perf_counter()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        proc.stderr.close()

    took = client.t_last_resp - client.t0
    print(
        f"submit_sm/s: {args.messages / took:,.0f} ({args.messages:,} in {took:.2f} s, "
        f"window {args.window}, errors {client.errors})"
    )
    if client.receipts:
        print(
            f"receipts: {client.got_receipts:,}, the last {t_end - client.t0:.2f} s after the "
            "first submit"
        )
    print("command: python bench/bench_smsc.py " + " ".join(sys.argv[1:]))
    print("machine: " + machine())
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Outreach benchmark: the SMPP link's sustained submit_sm/s, and its throughput limit, side by
side with Kannel's bearerbox as the reference gateway.

1. No limit: the SMSC simulator runs as ``mmsq sim smsc`` in a child process (stats every
   second); mmsq's ``SmppGateway`` (one transceiver, window ``--window``) is kept fed for
   ``--seconds`` after a warm-up, and the rate is read from the simulator's counters. Then the
   same with bearerbox (``max-pending-submits`` = the same window) fed by Kannel's ``mtbatch``.
2. Limit L (``--limit``): a bare SMPP peer in a child process answers every submit_sm and keeps
   the kernel's receive timestamp of each (SO_TIMESTAMPNS: when it reached the host, whether or
   not the peer process was scheduled at that moment); the achieved rate over ``--seconds`` and
   the most messages in any one-second window come from those times, for mmsq and for
   bearerbox (``throughput = L``).
3. Optionally (``--dispatcher N``): the whole dispatch path (SQLite outbox, claims, answers
   stored) for N planned single-segment contacts.

Receipts are not requested (registered_delivery 0) so that both gateways do the same work.

    python bench/bench_outreach.py [--seconds 60] [--window 10] [--limit 200] [--dispatcher 0]
                                   [--only-limit]
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from machine_info import machine  # bench/machine_info.py, beside this script

from mmsq.adapters.smpp_client import SmppConfig, SmppGateway
from mmsq.outbox import GatewayEvent, SubmitRequest, SubmitResult

WARMUP_S = 3.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the SMSC simulator in a child process -----------------------------------------------------


class SimStats:
    """``mmsq sim smsc --stats-every 1``: its submit counter, sampled once a second."""

    def __init__(self, system_id: str, password: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mmsq", "sim", "smsc", "--port", "0", "--system-id",
             system_id, "--password", password, "--stats-every", "1"],
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert self.proc.stderr is not None
        self.port = int(json.loads(self.proc.stderr.readline())["port"])
        self.samples: list[tuple[float, int]] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with contextlib.suppress(ValueError):
                doc = json.loads(line)
                if doc.get("event") == "smsc stats":
                    self.samples.append((time.monotonic(), int(doc["submits"])))

    def rate(self, start: float, seconds: float) -> tuple[float, int]:
        """submit_sm/s between the first sample after ``start`` and ``seconds`` later."""
        inside = [s for s in self.samples if s[0] >= start]
        first = inside[0]
        last = [s for s in inside if s[0] <= first[0] + seconds + 0.5][-1]
        return (last[1] - first[1]) / (last[0] - first[0]), last[1] - first[1]

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.thread.join(5)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


#: Linux socket option: a receive timestamp (CLOCK_REALTIME, ns) with each recvmsg.
SO_TIMESTAMPNS = 35


def _read_head(conn: socket.socket) -> tuple[bytes, float] | None:
    """A PDU header and the kernel's receive time of its first bytes (None: closed)."""
    head = b""
    arrived: float | None = None
    while len(head) < 16:
        data, ancillary, _, _ = conn.recvmsg(16 - len(head), socket.CMSG_SPACE(16))
        if not data:
            return None
        if arrived is None:
            arrived = time.time()  # no timestamp from the kernel: when read
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec = int.from_bytes(value[:8], "little")
                    arrived = sec + int.from_bytes(value[8:16], "little") / 1e9
        head += data
    return head, arrived


def _read_pdus(conn: socket.socket, times: list[float]) -> None:
    """Answer one ESME (binds, enquire_link, submit_sm, unbind) and note, for every
    submit_sm, when its first bytes reached this host: the kernel's receive timestamp of
    that segment, not when this process got round to reading it (a receiving process that
    is not scheduled for a while would otherwise bunch what arrived meanwhile)."""
    from mmsq.simulators.smpp_pdu import HEADER, Cmd, Status, encode_pdu, encode_submit_sm_resp

    conn.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sequence = 0
    while True:
        got = _read_head(conn)
        if got is None:
            return
        head, arrived = got
        length, command, _, seq = HEADER.unpack(head)
        body = b""
        while len(body) < length - 16:
            chunk = conn.recv(length - 16 - len(body))
            if not chunk:
                return
            body += chunk
        if command in (Cmd.BIND_TRANSCEIVER, Cmd.BIND_TRANSMITTER, Cmd.BIND_RECEIVER):
            reply = encode_pdu(command | Cmd.RESP_BIT, Status.OK, seq, b"wire\x00")
        elif command == Cmd.SUBMIT_SM:
            times.append(arrived)
            sequence += 1
            reply = encode_submit_sm_resp(Status.OK, seq, f"{sequence:x}")
        elif command in (Cmd.ENQUIRE_LINK, Cmd.UNBIND):
            reply = encode_pdu(command | Cmd.RESP_BIT, Status.OK, seq)
        elif command & Cmd.RESP_BIT:
            continue
        else:
            reply = encode_pdu(Cmd.GENERIC_NACK, Status.OK, seq)
        conn.sendall(reply)
        if command == Cmd.UNBIND:
            return


def serve_smsc(stamps: Path, system_id: str, password: str) -> int:
    """Child mode: a bare SMPP peer that answers every submit_sm at once and keeps the
    kernel's receive time of each (see ``_read_pdus``)."""
    del system_id, password  # any bind is accepted: the peer measures, it does not police
    # Scheduled ahead of everything else where allowed, so that it reads what arrives at once:
    # segments left waiting in the socket are merged by the kernel under the newest one's
    # receive time, which would bunch them (the figure would then tell about this peer, not
    # about the sender).
    with contextlib.suppress(AttributeError, PermissionError, OSError):
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    times: list[float] = []
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    print(json.dumps({"port": server.getsockname()[1]}), flush=True)
    workers = []
    while not stop.is_set():
        try:
            conn, _ = server.accept()
        except TimeoutError:
            continue
        t = threading.Thread(target=_read_pdus, args=(conn, times), daemon=True)
        t.start()
        workers.append(t)
    server.close()
    stamps.write_text("\n".join(f"{t:.6f}" for t in sorted(times)))
    return 0


class StampingSim:
    def __init__(self, system_id: str, password: str, workdir: Path) -> None:
        self.stamps = workdir / f"stamps-{system_id}.txt"
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve-smsc", str(self.stamps), "--system-id",
             system_id, "--password", password],
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        try:
            self.port = int(json.loads(self.proc.stdout.readline())["port"])
        except (ValueError, KeyError):
            self.proc.kill()
            self.proc.wait()
            raise

    def stop(self) -> list[float]:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        text = self.stamps.read_text()
        return [float(x) for x in text.split()] if text else []


def limit_figures(times: list[float], seconds: float) -> tuple[float, int]:
    """(achieved rate over ``seconds`` after the warm-up, most in any one-second window)."""
    times.sort()
    start = times[0] + WARMUP_S
    inside = [t for t in times if start <= t < start + seconds]
    worst = max(bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times))
    return len(inside) / seconds, worst


# -- feeding mmsq's gateway --------------------------------------------------------------------


def run_gateway(port: int, window: int, seconds: float, limit: float | None) -> dict[str, Any]:
    accepted = errors = 0
    lock = threading.Lock()

    def sink(event: GatewayEvent) -> None:
        nonlocal accepted, errors
        if isinstance(event, SubmitResult):
            with lock:
                if event.status == 0:
                    accepted += 1
                elif event.status > 0:
                    errors += 1

    cfg = SmppConfig(
        port=port,
        system_id="mmsq",
        password="secret",
        window=window,
        throughput_per_s=limit,
        registered_delivery=0,
    )
    gw = SmppGateway(cfg)
    gw.start(sink)
    deadline = time.monotonic() + 30
    while not gw.healthy():
        if time.monotonic() > deadline:
            raise RuntimeError("the gateway did not bind")
        time.sleep(0.01)
    n = 0
    t0 = time.monotonic()
    end = t0 + WARMUP_S + seconds + 1.5
    while time.monotonic() < end:
        if gw.queued() < 4000:
            gw.submit(
                [
                    SubmitRequest((i, 1), f"86138{i % 10**8:08d}", b"MMS help %d" % i, 0, 0)
                    for i in range(n, n + 4000)
                ]
            )
            n += 4000
        time.sleep(0.01)
    gw.stop(5.0)
    return {"t0": t0, "accepted": accepted, "errors": errors}


# -- Kannel ------------------------------------------------------------------------------------


def kannel_bins() -> tuple[str, str] | None:
    def find(name: str) -> str | None:
        for path in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
            if path and os.access(path, os.X_OK):
                return path
        return None

    bearerbox, mtbatch = find("bearerbox"), find("mtbatch")
    return (bearerbox, mtbatch) if bearerbox and mtbatch else None


def run_kannel(
    bins: tuple[str, str], port: int, window: int, seconds: float, limit: float | None, d: Path
) -> float:
    """Start bearerbox against the simulator, feed it with mtbatch; returns when fed."""
    bearerbox, mtbatch = bins
    box_port, admin_port = free_port(), free_port()
    conf = d / "kannel.conf"
    conf.write_text(
        f"""group = core
admin-port = {admin_port}
admin-password = admin-secret
admin-interface = 127.0.0.1
smsbox-port = {box_port}
box-allow-ip = 127.0.0.1
log-file = "{d / "bearerbox.log"}"
log-level = 2
dlr-storage = internal

group = smsc
smsc = smpp
smsc-id = sim
host = 127.0.0.1
port = {port}
transceiver-mode = true
smsc-username = kannel
smsc-password = kpw
system-type = VMA
max-pending-submits = {window}
{f"throughput = {limit:g}" if limit else ""}

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {box_port}
"""
    )
    total = int((WARMUP_S + seconds + 5) * (limit or 8000))
    (d / "content.txt").write_text("MMS help from Kannel\n")
    with (d / "receivers.txt").open("w") as fh:
        fh.writelines(f"86138{i % 10**8:08d}\n" for i in range(total))
    log = (d / "bearerbox.stdout.log").open("wb")
    box = subprocess.Popen([bearerbox, str(conf)], stdout=log, stderr=subprocess.STDOUT)
    feeder: subprocess.Popen[bytes] | None = None
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", box_port), 1):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("bearerbox did not listen")
            time.sleep(0.1)
        time.sleep(1.0)  # let the SMPP bind complete
        t0 = time.monotonic()
        feeder = subprocess.Popen(
            [mtbatch, "-v", "4", "-b", "127.0.0.1", "-p", str(box_port), "-f", "10086",
             str(d / "content.txt"), str(d / "receivers.txt")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(WARMUP_S + seconds + 1.5)
        return t0
    finally:
        if feeder is not None and feeder.poll() is None:
            feeder.kill()
            feeder.wait()
        box.terminate()
        try:
            box.wait(timeout=20)
        except subprocess.TimeoutExpired:
            box.kill()
            box.wait()
        log.close()


# -- the whole dispatch path -------------------------------------------------------------------


def run_dispatcher(contacts: int, window: int, d: Path) -> tuple[float, int]:
    from mmsq.adapters.sql_outbox import SqlOutbox
    from mmsq.adapters.sql_store import SqlStore
    from mmsq.bootstrap import SystemClock
    from mmsq.classify import Classifier
    from mmsq.contact_policy import load_contact_policy
    from mmsq.dispatch import DispatchConfig, Dispatcher
    from mmsq.outbox import PlannedContact, PlannedSegment
    from mmsq.rules_loader import load_rules

    url = f"sqlite:///{d / 'bench.db'}"
    SqlStore.from_url(url).upgrade()
    store = SqlOutbox.from_url(url)
    now = datetime.now(UTC)
    rows = [
        PlannedContact(f"k{i}", f"+86138{i:08d}", "help_sms", "terminal_capacity", None, 0,
                       "MMS help", None, now, now + timedelta(hours=1),
                       (PlannedSegment(b"MMS help %d" % i, 0, 0),))
        for i in range(contacts)
    ]  # fmt: skip
    for i in range(0, contacts, 5000):
        store.add_planned(rows[i : i + 5000], [], now)
    policy = load_contact_policy()
    policy = policy.model_copy(
        update={
            "quiet_hours": policy.quiet_hours.model_copy(update={"start": "00:00", "end": "00:00"}),
            "blackouts": (),
        }
    )
    sim = SimStats("mmsq", "secret")
    try:
        gw = SmppGateway(SmppConfig(port=sim.port, password="secret", window=window,
                                    registered_delivery=0))  # fmt: skip
        dispatcher = Dispatcher(store, gw, policy, Classifier(load_rules().status_codes),
                                SystemClock(), None, DispatchConfig(window=window))  # fmt: skip
        t0 = time.monotonic()
        summary = dispatcher.dispatch_once()
        took = time.monotonic() - t0
    finally:
        sim.stop()
        store.close()
    return summary.accepted / took, summary.accepted


# -- main --------------------------------------------------------------------------------------


def no_limit(bins: tuple[str, str] | None, window: int, seconds: float, d: Path) -> list[str]:
    lines: list[str] = []
    sim = SimStats("mmsq", "secret")
    try:
        fed = run_gateway(sim.port, window, seconds, None)
        ours, n_ours = sim.rate(fed["t0"] + WARMUP_S, seconds)
    finally:
        sim.stop()
    lines.append(
        f"mmsq SmppGateway, no limit: {ours:,.0f} submit_sm/s ({n_ours:,} in {seconds:g} s, "
        f"window {window}, errors {fed['errors']})"
    )
    if not bins:
        return [*lines, "Kannel: not installed (bearerbox and mtbatch), no reference figure"]
    sim = SimStats("kannel", "kpw")
    try:
        t0 = run_kannel(bins, sim.port, window, seconds, None, d)
        kannel, n_k = sim.rate(t0 + WARMUP_S, seconds)
    finally:
        sim.stop()
    lines.append(
        f"Kannel bearerbox (fed by mtbatch), no limit: {kannel:,.0f} submit_sm/s ({n_k:,} in "
        f"{seconds:g} s, max-pending-submits {window})"
    )
    lines.append(f"ratio mmsq / Kannel: {ours / kannel:.2f}")
    return lines


def with_limit(
    bins: tuple[str, str] | None, window: int, seconds: float, limit: float, d: Path
) -> list[str]:
    lines: list[str] = []
    stamping = StampingSim("mmsq", "secret", d)
    try:
        run_gateway(stamping.port, window, seconds, limit)
    finally:
        times = stamping.stop()
    achieved, worst = limit_figures(times, seconds)
    lines.append(
        f"mmsq SmppGateway, limit {limit:g}/s: {achieved:,.2f}/s achieved over {seconds:g} s "
        f"({achieved / limit:.2%} of L), at most {worst} in any 1-second window "
        "(kernel receive times at the SMSC)"
    )
    if bins:
        stamping = StampingSim("kannel", "kpw", d)
        try:
            run_kannel(bins, stamping.port, window, seconds, limit, d)
        finally:
            times = stamping.stop()
        achieved, worst = limit_figures(times, seconds)
        lines.append(
            f"Kannel bearerbox, throughput {limit:g}: {achieved:,.2f}/s achieved "
            f"({achieved / limit:.2%} of L), at most {worst} in any 1-second window"
        )
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--window", type=int, default=10)
    ap.add_argument("--limit", type=float, default=200.0)
    ap.add_argument("--dispatcher", type=int, default=0, help="contacts through the outbox")
    ap.add_argument("--only-limit", action="store_true", help="skip the no-limit comparison")
    ap.add_argument("--serve-smsc", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--system-id", default="mmsq", help=argparse.SUPPRESS)
    ap.add_argument("--password", default="secret", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_smsc:
        return serve_smsc(args.serve_smsc, args.system_id, args.password)

    bins = kannel_bins()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        lines = [] if args.only_limit else no_limit(bins, args.window, args.seconds, d)
        lines += with_limit(bins, args.window, args.seconds, args.limit, d)
        if args.dispatcher:
            rate, n = run_dispatcher(args.dispatcher, args.window, d)
            lines.append(
                f"mmsq dispatcher (SQLite outbox + gateway), no limit: {rate:,.0f} segments/s "
                f"({n:,} contacts, window {args.window})"
            )
    for line in lines:
        print(line)
    print("command: python bench/bench_outreach.py " + " ".join(sys.argv[1:]))
    print("machine: " + machine())
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""SMPP 3.4 link to the SMSC (smpplib): implements the ``SmsGateway`` port.

One smpplib client per bind, each owned by one thread (smpplib is not thread-safe); other
threads only put segments into a queue (``submit``) and receive results and receipts through
the sink given to ``start``. Binds are one transceiver, or a transmitter plus a receiver.

The transmitter keeps at most ``window`` submit_sm outstanding and never sends more than
``throughput_per_s`` segments in any one-second window (a GCRA pacer a little under the limit
plus a sliding one-second log as a hard stop). ESME_RTHROTTLED (0x58) pauses the whole bind; the
throttled PDUs are resent first, in their original order. ESME_RMSGQFUL (0x14) backs off the
bind with a doubling pause. Any other error is handed to the sink as it is: the core decides,
from the rules, whether it is final. A lost connection (or an SMSC that stops answering) is
re-established with a doubling backoff and the unanswered PDUs are resent first.

smpplib encodes and decodes every PDU and performs the bind; reading is done here, from one
buffer filled by large ``recv`` calls, because smpplib's own reader makes two system calls and
one ``select`` per PDU.
"""

from __future__ import annotations

import contextlib
import math
import select
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import smpplib.client
import smpplib.consts
import smpplib.exceptions
import smpplib.smpp
import structlog

from mmsq.adapters.smpp_receipt import ReceiptParseError, parse_receipt
from mmsq.outbox import (
    GatewayEvent,
    NullMetrics,
    OutreachMetrics,
    Receipt,
    SubmitRequest,
    SubmitResult,
)

__all__ = ["PacedLimiter", "SmppConfig", "SmppGateway"]

_log = structlog.get_logger("mmsq.adapters.smpp_client")

ESME_ROK = 0x00
ESME_RMSGQFUL = 0x14
ESME_RTHROTTLED = 0x58
GAVE_UP = -1  # SubmitResult.status of a segment handed back unsent (stopping)

_HEAD = struct.Struct(">IIII")
_SUBMIT_SM_RESP = 0x80000004
_DELIVER_SM = 0x00000005
_ENQUIRE_LINK = 0x00000015
_ENQUIRE_LINK_RESP = 0x80000015
_GENERIC_NACK = 0x80000000
_UNBIND = 0x00000006
_RECEIPT_ESM = 0x04  # esm_class bits 2-5 = 0001: SMSC delivery receipt


@dataclass(frozen=True)
class SmppConfig:
    """How to reach and use the SMSC (built from ``[smpp]`` in the settings)."""

    host: str = "127.0.0.1"
    port: int = 2775
    system_id: str = "mmsq"
    password: str = ""
    system_type: str = ""
    bind_mode: Literal["transceiver", "transmitter_receiver"] = "transceiver"
    window: int = 10
    throughput_per_s: float | None = None
    throughput_margin: float = 0.008  # pace this share under the limit (receiver-side jitter)
    source_addr: str = "10086"
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    dest_addr_ton: int = 1  # international: destinations are E.164 digits
    dest_addr_npi: int = 1
    registered_delivery: int = 1
    enquire_link_s: float = 30.0
    response_timeout_s: float = 30.0
    connect_timeout_s: float = 5.0
    reconnect_initial_s: float = 1.0
    reconnect_max_s: float = 60.0
    throttle_pause_s: float = 1.0
    msgqful_backoff_s: float = 1.0
    msgqful_backoff_max_s: float = 30.0


class PacedLimiter:
    """At most ``rate`` sends in any one-second window, paced evenly.

    A GCRA pacer at ``rate / (1 + margin)`` smooths the flow, so that the SMSC's receive
    times, shifted by scheduling or network jitter of up to about ``margin`` seconds, stay under
    the limit too; after a stall it lets the sender catch up by up to ``burst`` sends (default:
    200 ms worth). A log of the last ``floor(rate)`` send times is the hard stop: ``rate + 1``
    sends always span more than ``1 + margin`` seconds, whatever the pacer says; ``written``
    moves a send's time to when it actually left for the socket.
    """

    def __init__(self, rate: float, margin: float = 0.008, burst: int | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        if burst is None:
            burst = max(2, math.ceil(rate / 5))
        self.spacing = (1.0 + margin) / rate
        self.tolerance = self.spacing * max(0, burst - 1)
        # The hard stop keeps the margin too: catching up never squeezes the receiver's slack.
        self.horizon = 1.0 + margin
        self.tat: float | None = None
        self.cap = max(1, math.floor(rate))
        self.log: deque[float] = deque(maxlen=self.cap)

    def wait(self, now: float) -> float:
        """Seconds until the next send is allowed (0: now)."""
        if self.tat is None:
            self.tat = now
        w = self.tat - self.tolerance - now
        if len(self.log) == self.cap:
            w = max(w, self.log[0] + self.horizon - now)
        return max(0.0, w)

    def take(self, now: float) -> bool:
        if self.wait(now) > 0:
            return False
        assert self.tat is not None
        self.tat = max(self.tat, now) + self.spacing
        self.log.append(now)
        return True

    def written(self, count: int, now: float) -> None:
        """The last ``count`` sends taken have just been written to the socket: the hard stop
        counts from now on for them. A thread that was not scheduled between taking a send
        and writing it would otherwise write late sends back to back with the next ones."""
        moved = min(count, len(self.log))
        for _ in range(moved):
            self.log.pop()
        self.log.extend([now] * moved)


@dataclass
class _Pending:
    """A request on its way: its place in the original order, when it was last written."""

    order: int
    request: SubmitRequest
    sent_at: float = 0.0


@dataclass
class _Link:
    """One connected, bound smpplib client and its read buffer."""

    client: Any
    sock: socket.socket
    buf: bytearray = field(default_factory=bytearray)
    out: list[bytes] = field(default_factory=list)
    last_io: float = 0.0
    enquire_sent_at: float | None = None


def _utcnow() -> datetime:
    return datetime.now(UTC)


class _BindWorker:
    """One bind, one thread, one smpplib client."""

    def __init__(self, gw: SmppGateway, role: Literal["transceiver", "transmitter", "receiver"]):
        self.gw = gw
        self.cfg = gw.config
        self.role = role
        self.sends = role != "receiver"
        self.receives = role != "transmitter"
        self.name = f"{self.cfg.system_id}:{role}"
        self.state = "stopped"
        self.thread: threading.Thread | None = None
        self.link: _Link | None = None
        self.outstanding: dict[int, _Pending] = {}
        self.retry: list[_Pending] = []  # resent first, kept in original order
        self.paused_until = 0.0
        self.msgqful_backoff = self.cfg.msgqful_backoff_s
        self.unwritten = 0  # submits taken from the limiter, not yet written
        self.limiter = (
            PacedLimiter(self.cfg.throughput_per_s, self.cfg.throughput_margin)
            if self.cfg.throughput_per_s
            else None
        )
        self._new_wakers()

    def _new_wakers(self) -> None:
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)

    # -- lifecycle --------------------------------------------------------------------------

    def set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.gw.metrics.bind_state(self.name, state)

    def start(self) -> None:
        if self.wake_r.fileno() == -1:  # stopped before: a gateway can be started again
            self._new_wakers()
        self.thread = threading.Thread(target=self._run, name=f"smpp-{self.role}", daemon=True)
        self.thread.start()

    def wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            self.wake_w.send(b"\0")

    def close_wakers(self) -> None:
        self.wake_r.close()
        self.wake_w.close()

    def _run(self) -> None:
        delay = self.cfg.reconnect_initial_s
        try:
            while not self.gw.stopping.is_set():
                try:
                    self._connect()
                except (
                    OSError,
                    smpplib.exceptions.ConnectionError,
                    smpplib.exceptions.PDUError,
                ) as exc:
                    self.set_state("disconnected")
                    _log.warning("smpp bind failed", bind=self.name, error=str(exc), retry_s=delay)
                    self.gw.stopping.wait(delay)
                    delay = min(delay * 2, self.cfg.reconnect_max_s)
                    continue
                delay = self.cfg.reconnect_initial_s
                try:
                    self._serve()
                except (OSError, ConnectionError, smpplib.exceptions.ConnectionError) as exc:
                    _log.warning("smpp connection lost", bind=self.name, error=str(exc))
                self._drop_link()
                if not self.gw.stopping.is_set():
                    self.set_state("disconnected")
                    self.gw.stopping.wait(delay)
                    delay = min(delay * 2, self.cfg.reconnect_max_s)
        except Exception:  # a dead worker must say so: health turns false, the log has it
            _log.exception("smpp worker failed", bind=self.name)
            self.set_state("failed")
            self._drop_link()
            return
        self.set_state("stopped")

    def _connect(self) -> None:
        cfg = self.cfg
        self.set_state("connecting")
        client = smpplib.client.Client(
            cfg.host, cfg.port, timeout=cfg.connect_timeout_s, allow_unknown_opt_params=True
        )
        try:
            client.connect()
            bind = getattr(client, f"bind_{self.role}")
            bind(system_id=cfg.system_id, password=cfg.password, system_type=cfg.system_type)
        except BaseException:
            with contextlib.suppress(Exception):
                client.disconnect()
            raise
        sock = client._socket
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(None)
        sock.setblocking(False)
        self.link = _Link(client, sock, last_io=time.monotonic())
        self.set_state("bound")
        _log.info("smpp bound", bind=self.name, host=cfg.host, port=cfg.port)
        if self.outstanding:
            # Unanswered when the link went: their fate is unknown, so they go out again first.
            self._requeue(list(self.outstanding.values()))
            self.outstanding.clear()

    def _drop_link(self) -> None:
        link, self.link = self.link, None
        if link is None:
            return
        with contextlib.suppress(Exception):
            link.sock.close()
        link.client._socket = None
        link.client.state = smpplib.consts.SMPP_CLIENT_STATE_CLOSED

    def _requeue(self, items: Sequence[_Pending]) -> None:
        self.retry.extend(items)
        self.retry.sort(key=lambda p: p.order)

    # -- the loop ---------------------------------------------------------------------------

    def _serve(self) -> None:
        link = self.link
        assert link is not None
        cfg = self.cfg
        stopping = self.gw.stopping
        stop_deadline: float | None = None
        while True:
            now = time.monotonic()
            if stopping.is_set():
                if stop_deadline is None:
                    stop_deadline = now + self.gw.stop_timeout
                if not self.outstanding or now >= stop_deadline:
                    self._unbind(link)
                    return
            wait = 0.5
            if self.sends and not stopping.is_set():
                wait = min(wait, self._fill(link, now))
            if link.out:
                self._flush(link)
            wait = min(wait, self._keepalive(link, now))
            if stop_deadline is not None:
                wait = min(wait, 0.02)
            readable, _, _ = select.select([link.sock, self.wake_r], [], [], max(0.0, wait))
            if self.wake_r in readable:
                with contextlib.suppress(BlockingIOError):
                    self.wake_r.recv(4096)
            if link.sock in readable:
                self._read(link)
            if link.out:
                self._flush(link)
            if self.outstanding and cfg.response_timeout_s:
                oldest = min(p.sent_at for p in self.outstanding.values())
                if time.monotonic() - oldest > cfg.response_timeout_s:
                    raise ConnectionError("no submit_sm_resp within the response timeout")

    def _fill(self, link: _Link, now: float) -> float:
        """Write as many submit_sm as the window, the pause and the pacer allow; returns how
        long the loop may sleep before it can write more."""
        if now < self.paused_until:
            return self.paused_until - now
        if self.state in ("throttled", "backoff"):
            self.set_state("bound")
        free = self.cfg.window - len(self.outstanding)
        if free <= 0:
            return 0.5
        gw = self.gw
        batch: list[bytes] = []
        wait = 0.5
        while free > 0:
            if not self.retry:
                fresh = gw.take_input()
                if fresh is None:
                    break
                self.retry.append(fresh)
            pending = self.retry[0]
            if self.limiter is not None:
                # The time of this very send (the loop's ``now`` may be stale after a stall).
                t = time.monotonic()
                if not self.limiter.take(t):
                    wait = self.limiter.wait(t)
                    break
            self.retry.pop(0)
            pdu = self._submit_pdu(link, pending.request)
            pending.sent_at = now
            self.outstanding[pdu.sequence] = pending
            batch.append(pdu.generate())
            free -= 1
        if batch:
            link.out.extend(batch)
            self.unwritten += len(batch)
            gw.metrics.submitted(len(batch))
        return wait if free > 0 or self.retry else 0.5

    def _submit_pdu(self, link: _Link, req: SubmitRequest) -> Any:
        cfg = self.cfg
        return smpplib.smpp.make_pdu(
            "submit_sm",
            client=link.client,
            service_type="",
            source_addr_ton=cfg.source_addr_ton,
            source_addr_npi=cfg.source_addr_npi,
            source_addr=cfg.source_addr,
            dest_addr_ton=cfg.dest_addr_ton,
            dest_addr_npi=cfg.dest_addr_npi,
            destination_addr=req.destination,
            esm_class=req.esm_class,
            protocol_id=0,
            priority_flag=0,
            registered_delivery=cfg.registered_delivery,
            replace_if_present_flag=0,
            data_coding=req.data_coding,
            sm_default_msg_id=0,
            short_message=req.short_message,
        )

    def _flush(self, link: _Link) -> None:
        data = b"".join(link.out)
        link.out.clear()
        view = memoryview(data)
        while view:
            try:
                n = link.sock.send(view)
            except BlockingIOError:
                select.select([], [link.sock], [], 1.0)
                continue
            view = view[n:]
        link.last_io = time.monotonic()
        if self.limiter is not None and self.unwritten:
            self.limiter.written(self.unwritten, link.last_io)
        self.unwritten = 0

    def _keepalive(self, link: _Link, now: float) -> float:
        cfg = self.cfg
        if link.enquire_sent_at is not None:
            if now - link.enquire_sent_at > cfg.response_timeout_s:
                raise ConnectionError("no enquire_link_resp within the response timeout")
            return cfg.response_timeout_s - (now - link.enquire_sent_at)
        idle = now - link.last_io
        if idle >= cfg.enquire_link_s:
            pdu = smpplib.smpp.make_pdu("enquire_link", client=link.client)
            link.out.append(pdu.generate())
            link.enquire_sent_at = now
            return cfg.response_timeout_s
        return cfg.enquire_link_s - idle

    def _unbind(self, link: _Link) -> None:
        with contextlib.suppress(Exception):
            pdu = smpplib.smpp.make_pdu("unbind", client=link.client)
            link.out.append(pdu.generate())
            self._flush(link)
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                readable, _, _ = select.select([link.sock], [], [], 0.1)
                if readable and not link.sock.recv(65536):
                    break

    # -- reading ----------------------------------------------------------------------------

    def _read(self, link: _Link) -> None:
        try:
            data = link.sock.recv(1 << 18)
        except BlockingIOError:
            return
        if not data:
            raise ConnectionError("connection closed by the SMSC")
        link.last_io = time.monotonic()
        buf = link.buf
        buf += data
        pos, n = 0, len(buf)
        while n - pos >= 16:
            length, command_id, status, sequence = _HEAD.unpack_from(buf, pos)
            if length < 16:
                raise ConnectionError(f"PDU length {length} from the SMSC")
            if n - pos < length:
                break
            raw = bytes(buf[pos : pos + length])
            pos += length
            self._on_pdu(link, raw, command_id, status, sequence)
        del buf[:pos]

    def _on_pdu(self, link: _Link, raw: bytes, command_id: int, status: int, seq: int) -> None:
        if command_id in (_SUBMIT_SM_RESP, _GENERIC_NACK):
            pending = self.outstanding.pop(seq, None)
            if pending is None:
                return
            message_id = None
            if status == ESME_ROK and command_id == _SUBMIT_SM_RESP:
                body = raw[16:]
                message_id = body.split(b"\0", 1)[0].decode("latin-1")
            self._answered(pending, status, message_id)
        elif command_id == _DELIVER_SM:
            self._deliver_sm(link, raw, seq)
        elif command_id == _ENQUIRE_LINK:
            link.out.append(self._resp(link, "enquire_link_resp", seq))
        elif command_id == _ENQUIRE_LINK_RESP:
            link.enquire_sent_at = None
        elif command_id == _UNBIND:
            link.out.append(self._resp(link, "unbind_resp", seq))
            self._flush(link)
            raise ConnectionError("the SMSC unbound")

    @staticmethod
    def _resp(link: _Link, command: str, seq: int, status: int = ESME_ROK) -> bytes:
        """A response PDU for ``seq`` (smpplib ignores a ``sequence`` keyword: set it after)."""
        pdu = smpplib.smpp.make_pdu(command, client=link.client, status=status)
        pdu.sequence = seq
        data: bytes = pdu.generate()
        return data

    def _answered(self, pending: _Pending, status: int, message_id: str | None) -> None:
        gw = self.gw
        now = time.monotonic()
        if status == ESME_RTHROTTLED:
            self._requeue([pending])
            self.paused_until = max(self.paused_until, now + self.cfg.throttle_pause_s)
            if self.state != "throttled":
                gw.metrics.throttled(self.name)
                _log.info(
                    "smsc throttled: bind paused", bind=self.name, pause_s=self.cfg.throttle_pause_s
                )
            self.set_state("throttled")
            return
        if status == ESME_RMSGQFUL:
            self._requeue([pending])
            if self.state != "backoff":
                self.paused_until = max(self.paused_until, now + self.msgqful_backoff)
                _log.info(
                    "smsc queue full: backing off", bind=self.name, pause_s=self.msgqful_backoff
                )
                self.msgqful_backoff = min(self.msgqful_backoff * 2, self.cfg.msgqful_backoff_max_s)
            self.set_state("backoff")
            return
        if status == ESME_ROK:
            self.msgqful_backoff = self.cfg.msgqful_backoff_s
        gw.emit(SubmitResult(pending.request.key, status, message_id, _utcnow()))

    def _deliver_sm(self, link: _Link, raw: bytes, seq: int) -> None:
        status = ESME_ROK
        try:
            pdu = smpplib.smpp.parse_pdu(raw, client=link.client, allow_unknown_opt_params=True)
        except Exception as exc:  # an undecodable deliver_sm is refused, not fatal
            _log.warning("undecodable deliver_sm", bind=self.name, error=str(exc))
            status = 0x08  # ESME_RSYSERR
            pdu = None
        if pdu is not None and (pdu.esm_class or 0) & 0x3C == _RECEIPT_ESM:
            tlvs = {
                name: getattr(pdu, name, None)
                for name in ("receipted_message_id", "message_state", "network_error_code")
            }
            source = pdu.source_addr
            source_text = source.decode("latin-1") if isinstance(source, bytes) else source
            try:
                parsed = parse_receipt(pdu.short_message or b"", tlvs, source_addr=source_text)
            except ReceiptParseError as exc:
                _log.warning("unreadable delivery receipt", bind=self.name, error=str(exc))
            else:
                self.gw.emit(
                    Receipt(
                        parsed.message_id,
                        parsed.stat,
                        parsed.err,
                        _utcnow(),
                        parsed.source_addr,
                        (pdu.short_message or b"").decode("latin-1")[:400],
                    )
                )
        link.out.append(self._resp(link, "deliver_sm_resp", seq, status))


class SmppGateway:
    """The SMSC link (``SmsGateway``): one transceiver, or a transmitter and a receiver."""

    def __init__(self, config: SmppConfig, metrics: OutreachMetrics | None = None) -> None:
        self.config = config
        self.metrics: OutreachMetrics = metrics or NullMetrics()
        self.stopping = threading.Event()
        self.stop_timeout = 5.0
        self._input: deque[_Pending] = deque()
        self._order = 0
        self._order_lock = threading.Lock()
        self._sink: Callable[[GatewayEvent], None] = lambda _e: None
        if config.bind_mode == "transceiver":
            self.workers = [_BindWorker(self, "transceiver")]
        else:
            self.workers = [_BindWorker(self, "transmitter"), _BindWorker(self, "receiver")]
        self.sender = self.workers[0]

    def start(self, sink: Callable[[GatewayEvent], None]) -> None:
        self._sink = sink
        self.stopping.clear()
        for w in self.workers:
            w.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop taking segments, wait up to ``timeout`` for the answers of those written,
        unbind, and hand back every segment never written (status -1)."""
        self.stop_timeout = timeout
        self.stopping.set()
        for w in self.workers:
            w.wake()
        for w in self.workers:
            if w.thread is not None:
                w.thread.join(timeout + 5.0)
            w.close_wakers()
        unsent = list(self.sender.retry) + list(self._input)
        self.sender.retry.clear()
        self._input.clear()
        now = _utcnow()
        for p in sorted(unsent, key=lambda p: p.order):
            self.emit(SubmitResult(p.request.key, GAVE_UP, None, now))

    def submit(self, requests: Sequence[SubmitRequest]) -> None:
        if not requests:
            return
        with self._order_lock:
            for r in requests:
                self._order += 1
                self._input.append(_Pending(self._order, r))
        self.sender.wake()

    def take_input(self) -> _Pending | None:
        try:
            return self._input.popleft()
        except IndexError:
            return None

    def emit(self, event: GatewayEvent) -> None:
        try:
            self._sink(event)
        except Exception:  # the sink's bug must not kill the bind
            _log.exception("gateway sink failed")

    def healthy(self) -> bool:
        return all(w.state in ("bound", "throttled", "backoff") for w in self.workers)

    @property
    def state(self) -> str:
        """One word: the worst of the binds' states."""
        order = ("failed", "stopped", "disconnected", "connecting", "backoff", "throttled")
        states = [w.state for w in self.workers]
        for s in order:
            if s in states:
                return s
        return "bound"

    def states(self) -> dict[str, str]:
        return {w.name: w.state for w in self.workers}

    def queued(self) -> int:
        """Segments accepted by ``submit`` and not yet written."""
        return len(self._input) + len(self.sender.retry)

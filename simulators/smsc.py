"""An SMSC simulator: a real SMPP 3.4 server on TCP, for tests, demos and benchmarks.

It accepts binds for one account, answers submit_sm with message ids, decodes what it
receives with its own code (texts in GSM 7-bit, Latin-1 or UCS2, concatenated or not; OMA CP
pushes to WDP port 2948), hands the results to an ``OutcomeSource`` and sends delivery receipts
(deliver_sm) with the stat, err and delay the source chooses. Faults (throttling, queue full,
dropped connections, slow responses) are injected on demand from seeded generators.

The server runs an asyncio loop in a background thread; every mutable structure below is
touched only from that thread, except the received-message log (guarded by a lock) and the
counters (read as a snapshot).
"""

from __future__ import annotations

import asyncio
import copy
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from types import TracebackType
from typing import Self, TypeVar

import structlog

from mmsq.msisdn import mask_msisdn

from .ota_push import OtaDecodeError, decode_ota_push
from .outcomes import FixedOutcomes, OutcomeSource, SmsOutcome, TextSms
from .smpp_pdu import (
    HEADER,
    MAX_PDU_LENGTH,
    Cmd,
    PduError,
    Status,
    SubmitSm,
    Tlv,
    decode_bind,
    decode_submit_sm,
    encode_bind_resp,
    encode_deliver_sm,
    encode_pdu,
    encode_submit_sm_resp,
    encode_tlv,
)
from .sms_reassembly import Kind, Message, Reassembler, split_segment
from .sms_userdata import UserDataError
from .smsc_config import SmscConfig

__all__ = ["DecodeFailure", "ReceivedSm", "SmscSimulator", "SmscStats", "receipt_text"]

_log = structlog.get_logger("mmsq.simulators.smsc")
_T = TypeVar("_T")

_RX, _TX = 1, 2
_BIND_MODES = {Cmd.BIND_RECEIVER: _RX, Cmd.BIND_TRANSMITTER: _TX, Cmd.BIND_TRANSCEIVER: _RX | _TX}
_SMSC_DELIVERY_RECEIPT = 0x04
# SMPP 3.4 section 5.2.28 message_state
_MESSAGE_STATES = {
    "ENROUTE": 1,
    "DELIVRD": 2,
    "EXPIRED": 3,
    "DELETED": 4,
    "UNDELIV": 5,
    "ACCEPTD": 6,
    "UNKNOWN": 7,
    "REJECTD": 8,
}
_SLOT_S = 0.01  # receipts fall due in 10 ms slots
_GSM_NETWORK = 3  # network_error_code network type (SMPP 3.4 section 5.3.2.31)


@dataclass(frozen=True, slots=True)
class ReceivedSm:
    """One accepted submit_sm, as received (for tests and inspection)."""

    system_id: str
    message_id: str
    source: str
    destination: str
    esm_class: int
    data_coding: int
    registered_delivery: int
    message: bytes
    tlvs: dict[int, bytes]


@dataclass(frozen=True, slots=True)
class DecodeFailure:
    """A message the simulator could not decode: recipient and reason."""

    msisdn: str
    reason: str


@dataclass(slots=True)
class SmscStats:
    """The simulator's counters; ``SmscSimulator.stats()`` returns a copy (a snapshot)."""

    connections: int = 0
    binds: int = 0
    bind_failures: int = 0
    submits: int = 0
    throttled: int = 0
    msgqful: int = 0
    dropped_connections: int = 0
    generic_nacks: int = 0
    texts: int = 0
    pushes: int = 0
    binary: int = 0
    decode_failures: int = 0
    receipts_sent: int = 0
    receipts_acked: int = 0
    receipts_rejected: int = 0
    receipts_redelivered: int = 0
    receipts_dropped: int = 0
    receipts_waiting: int = 0  # timer running: the handset's outcome is not yet known
    receipts_held: int = 0  # due, but no receiver bound for the system_id
    receipts_unacked: int = 0  # sent, deliver_sm_resp not yet received

    @property
    def receipts_pending(self) -> int:
        """Receipts not yet acknowledged by an ESME."""
        return self.receipts_waiting + self.receipts_held + self.receipts_unacked


@dataclass(slots=True)
class _Receipt:
    system_id: str
    message_id: str
    recipient: str
    originator: str
    stat: str
    err: str
    submitted: datetime
    excerpt: str
    done: datetime | None = None


def receipt_text(
    message_id: str, stat: str, err: str, submitted: datetime, done: datetime, text: str
) -> str:
    """The receipt text of SMPP 3.4 Appendix B."""
    dlvrd = "001" if stat == "DELIVRD" else "000"
    return (
        f"id:{message_id} sub:001 dlvrd:{dlvrd} submit date:{submitted:%y%m%d%H%M} "
        f"done date:{done:%y%m%d%H%M} stat:{stat} err:{err} text:{text}"
    )


def _ascii(text: str) -> str:
    """Printable ASCII for the receipt text: anything else becomes '?'."""
    if text.isascii() and text.isprintable():
        return text
    return "".join(c if " " <= c <= "~" else "?" for c in text)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class _Session(asyncio.Protocol):
    """One ESME connection."""

    def __init__(self, smsc: SmscSimulator) -> None:
        self.smsc = smsc
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.mode = 0
        self.system_id = ""
        self.closing = False
        self.hangup = False  # close once the replies of the current read are written
        self.sequence = 0
        self.unacked: dict[int, _Receipt] = {}
        self._outq: list[bytes] = []

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.smsc._session_opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.smsc._session_gone(self)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        n = len(buf)
        pos = 0
        out: list[bytes] = []
        smsc = self.smsc
        while n - pos >= 16 and not self.closing and not self.hangup:
            length, command_id, status, sequence = HEADER.unpack_from(buf, pos)
            if length < 16 or length > MAX_PDU_LENGTH:
                # The stream cannot be resynchronised: answer, then hang up.
                smsc._counters.generic_nacks += 1
                out.append(encode_pdu(Cmd.GENERIC_NACK, Status.INVCMDLEN, sequence))
                self.write(b"".join(out))
                self.close()
                buf.clear()
                return
            if n - pos < length:
                break
            body = bytes(buf[pos + 16 : pos + length])
            pos += length
            reply = smsc._dispatch(self, command_id, status, sequence, body)
            if reply is not None:
                out.append(reply)
        del buf[:pos]
        if out:
            self.write(b"".join(out))
        if self.hangup:
            self.close()

    # -- output ----------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if not self.closing and self.transport is not None:
            self.transport.write(data)

    def write_soon(self, data: bytes) -> None:
        """Queue ``data`` and write everything queued in one call at the next loop turn."""
        if not self._outq:
            asyncio.get_running_loop().call_soon(self._flush)
        self._outq.append(data)

    def _flush(self) -> None:
        data, self._outq = b"".join(self._outq), []
        self.write(data)

    def next_sequence(self) -> int:
        self.sequence = self.sequence + 1 if self.sequence < 0x7FFFFFFF else 1
        return self.sequence

    def close(self) -> None:
        """Close after what is already written (the peer sees the end of the stream)."""
        if self.closing:
            return
        if self._outq:
            self._flush()
        self.closing = True
        self.smsc._unregister_receiver(self)
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.closing = True
        self.smsc._unregister_receiver(self)
        if self.transport is not None:
            self.transport.abort()


class SmscSimulator:
    """The SMSC simulator; ``start()``/``stop()`` or use it as a context manager.

    ``clock`` gives the wall-clock time written into receipts; ``monotonic`` drives the
    throughput limit (both are seams for tests). The ``OutcomeSource`` is called from the
    server's thread, one call at a time.
    """

    def __init__(
        self,
        config: SmscConfig | None = None,
        outcomes: OutcomeSource | None = None,
        *,
        clock: Callable[[], datetime] = _utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config or SmscConfig()
        self.outcomes: OutcomeSource = outcomes if outcomes is not None else FixedOutcomes()
        self._clock = clock
        self._monotonic = monotonic
        self._counters = SmscStats()
        self._log_lock = threading.Lock()
        self._log: deque[ReceivedSm] = deque(maxlen=self.config.log_size)
        self._failures: deque[DecodeFailure] = deque(maxlen=1000)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._port = self.config.port
        self._reset_state()

    def _reset_state(self) -> None:
        cfg = self.config
        self._sessions: set[_Session] = set()
        self._receivers: dict[str, list[_Session]] = {}
        self._held: dict[str, deque[_Receipt]] = {}
        self._due: dict[int, list[_Receipt]] = {}
        self._rr = 0
        self._next_id = cfg.first_message_id
        self._id_fmt = "d" if cfg.id_format == "dec" else "x"
        self._receipt_id_fmt = (
            self._id_fmt
            if cfg.receipt_id_format is None
            else "d"
            if cfg.receipt_id_format == "dec"
            else "x"
        )
        # Fault injection, not security: repeatable runs need seeded generators.
        self._rng_drop = random.Random(f"{cfg.seed}:drop")  # noqa: S311
        self._rng_full = random.Random(f"{cfg.seed}:msgqful")  # noqa: S311
        self._capacity = max(1.0, cfg.throughput or 1.0)
        self._tokens = self._capacity
        self._t_last = self._monotonic()
        self._reassembler = Reassembler()

    # -- public surface ------------------------------------------------------------------

    @property
    def host(self) -> str:
        return self.config.host

    @property
    def port(self) -> int:
        """The listening port (the ephemeral one chosen once started, when configured 0)."""
        return self._port

    def stats(self) -> SmscStats:
        """A snapshot of the counters (ints updated by the server thread, copied at once)."""
        return copy.copy(self._counters)

    def received(self) -> list[ReceivedSm]:
        """The submit_sm accepted so far (the newest ``config.log_size``), oldest first."""
        with self._log_lock:
            return list(self._log)

    def failures(self) -> list[DecodeFailure]:
        """Messages that could not be decoded (the newest 1,000)."""
        with self._log_lock:
            return list(self._failures)

    def start(self) -> Self:
        """Listen and serve in a background thread; returns once the port is open."""
        if self._thread is not None:
            raise RuntimeError("the SMSC simulator is already running")
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                server = loop.run_until_complete(
                    loop.create_server(
                        lambda: _Session(self),
                        self.config.host,
                        self.config.port,
                        reuse_address=True,
                    )
                )
            except OSError as exc:
                errors.append(exc)
                ready.set()
                loop.close()
                return
            self._server = server
            self._port = server.sockets[0].getsockname()[1]
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="smsc-simulator", daemon=True)
        self._thread.start()
        ready.wait()
        if errors:
            self._thread.join()
            self._thread = self._loop = None
            raise errors[0]
        _log.info("smsc simulator listening", host=self.host, port=self.port)
        return self

    def stop(self) -> None:
        """Close every connection and the listening socket; join the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            self._loop = self._thread = self._server = None
        _log.info("smsc simulator stopped", **self._stats_fields())

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _stats_fields(self) -> dict[str, int]:
        s = self.stats()
        return {f.name: getattr(s, f.name) for f in fields(s)}

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for session in list(self._sessions):
            session.abort()
        if self._server is not None:
            await self._server.wait_closed()
        for _ in range(3):  # let the transports' connection_lost callbacks run
            await asyncio.sleep(0)

    # -- sessions --------------------------------------------------------------------------

    def _session_opened(self, session: _Session) -> None:
        self._sessions.add(session)
        self._counters.connections += 1

    def _session_gone(self, session: _Session) -> None:
        self._sessions.discard(session)
        self._unregister_receiver(session)
        if session.mode:
            _log.info("esme disconnected", system_id=session.system_id)
        unacked, session.unacked = session.unacked, {}
        c = self._counters
        c.receipts_unacked -= len(unacked)
        c.receipts_redelivered += len(unacked)
        for receipt in unacked.values():
            self._route(receipt)

    def _unregister_receiver(self, session: _Session) -> None:
        if session.mode & _RX:
            group = self._receivers.get(session.system_id)
            if group and session in group:
                group.remove(session)
                if not group:
                    del self._receivers[session.system_id]

    # -- PDUs ------------------------------------------------------------------------------

    def _dispatch(
        self, session: _Session, command_id: int, status: int, sequence: int, body: bytes
    ) -> bytes | None:
        if command_id == Cmd.SUBMIT_SM:  # the hot path first
            return self._submit(session, sequence, body)
        if command_id in (Cmd.DELIVER_SM_RESP, Cmd.GENERIC_NACK):
            self._receipt_answered(session, sequence, status, command_id)
            return None
        if command_id in _BIND_MODES:
            return self._bind(session, command_id, sequence, body)
        return self._control(session, command_id, sequence)

    def _control(self, session: _Session, command_id: int, sequence: int) -> bytes | None:
        """enquire_link, unbind, responses to nothing pending, and unknown commands."""
        if command_id == Cmd.ENQUIRE_LINK:
            return encode_pdu(Cmd.ENQUIRE_LINK_RESP, Status.OK, sequence)
        if command_id == Cmd.UNBIND:
            _log.info("esme unbound", system_id=session.system_id)
            session.hangup = True
            return encode_pdu(Cmd.UNBIND_RESP, Status.OK, sequence)
        if command_id & Cmd.RESP_BIT:
            return None  # enquire_link_resp, unbind_resp: nothing to do
        self._counters.generic_nacks += 1
        return encode_pdu(Cmd.GENERIC_NACK, Status.INVCMDID, sequence)

    def _bind(self, session: _Session, command_id: int, sequence: int, body: bytes) -> bytes:
        cfg = self.config
        if session.mode:
            return encode_bind_resp(command_id, Status.ALYBND, sequence, cfg.system_id)
        try:
            req = decode_bind(body)
        except PduError as exc:
            self._counters.bind_failures += 1
            return encode_bind_resp(command_id, exc.status, sequence, cfg.system_id)
        if req.system_id != cfg.system_id:
            status = Status.INVSYSID
        elif req.password != cfg.password:
            status = Status.INVPASWD
        else:
            status = Status.OK
        if status != Status.OK:
            self._counters.bind_failures += 1
            _log.info("bind refused", system_id=req.system_id, status=f"0x{status:02X}")
            return encode_bind_resp(command_id, status, sequence, cfg.system_id)
        mode = _BIND_MODES[command_id]
        session.mode = mode
        session.system_id = req.system_id
        self._counters.binds += 1
        _log.info("esme bound", system_id=req.system_id, rx=bool(mode & _RX), tx=bool(mode & _TX))
        if mode & _RX:
            self._receivers.setdefault(req.system_id, []).append(session)
            # After the bind_resp has been written: hand over the receipts kept meanwhile.
            asyncio.get_running_loop().call_soon(self._release_held, req.system_id)
        return encode_bind_resp(command_id, Status.OK, sequence, cfg.system_id)

    def _submit(self, session: _Session, sequence: int, body: bytes) -> bytes | None:
        c = self._counters
        cfg = self.config
        if not session.mode & _TX:
            return self._respond(session, encode_submit_sm_resp(Status.INVBNDSTS, sequence, ""))
        try:
            sm = decode_submit_sm(body)
        except PduError as exc:
            return self._respond(session, encode_submit_sm_resp(exc.status, sequence, ""))
        if cfg.drop_rate and self._rng_drop.random() < cfg.drop_rate:
            c.dropped_connections += 1
            session.hangup = True
            return None
        if cfg.throughput is not None and not self._take_token(cfg.throughput):
            c.throttled += 1
            return self._respond(session, encode_submit_sm_resp(Status.THROTTLED, sequence, ""))
        if cfg.msgqful_rate and self._rng_full.random() < cfg.msgqful_rate:
            c.msgqful += 1
            return self._respond(session, encode_submit_sm_resp(Status.MSGQFUL, sequence, ""))
        number = self._next_id
        self._next_id += 1
        message_id = format(number, self._id_fmt)
        c.submits += 1
        excerpt = self._decode(sm)
        with self._log_lock:
            self._log.append(
                ReceivedSm(
                    session.system_id,
                    message_id,
                    sm.source_addr,
                    sm.destination_addr,
                    sm.esm_class,
                    sm.data_coding,
                    sm.registered_delivery,
                    sm.message,
                    sm.tlvs,
                )
            )
        if sm.registered_delivery & 0x03:
            self._schedule_receipt(session.system_id, number, sm, excerpt)
        return self._respond(session, encode_submit_sm_resp(Status.OK, sequence, message_id))

    def _respond(self, session: _Session, pdu: bytes) -> bytes | None:
        delay = self.config.resp_delay_s
        if not delay:
            return pdu
        asyncio.get_running_loop().call_later(delay, session.write, pdu)
        return None

    def _take_token(self, rate: float) -> bool:
        now = self._monotonic()
        tokens = min(self._capacity, self._tokens + (now - self._t_last) * rate)
        self._t_last = now
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return True
        self._tokens = tokens
        return False

    # -- decoding --------------------------------------------------------------------------

    def _decode(self, sm: SubmitSm) -> str:
        """Decode one submit_sm and hand over a completed message; the receipt excerpt."""
        cfg = self.config
        try:
            segment = split_segment(sm, cfg.gsm7_packing, cfg.wap_push_port)
        except UserDataError as exc:
            self._decode_failed(sm.destination_addr, str(exc))
            return ""
        if segment.kind is Kind.BINARY:
            self._counters.binary += 1
            return ""
        message = self._reassembler.add(sm, segment)
        if message is None:
            return segment.excerpt()
        if message.kind is Kind.PUSH:
            self._push_received(message)
            return ""
        text = self._text_received(message)
        if message.segments > 1 or text is None:
            return segment.excerpt()
        return text[:20]

    def _text_received(self, message: Message) -> str | None:
        try:
            text = message.text()
        except UserDataError as exc:
            self._decode_failed(message.destination, str(exc))
            return None
        self._counters.texts += 1
        sms = TextSms(message.destination, text, message.data_coding, message.segments)
        self._hand_over(self.outcomes.on_text_sms, sms)
        return text

    def _push_received(self, message: Message) -> None:
        outcomes, dest = self.outcomes, message.destination
        try:
            push = decode_ota_push(
                dest, message.units, outcomes.imsi(dest), outcomes.user_pin(dest)
            )
        except OtaDecodeError as exc:
            self._decode_failed(dest, str(exc))
            return
        self._counters.pushes += 1
        self._hand_over(outcomes.on_ota_push, push)

    def _hand_over(self, callback: Callable[[_T], None], value: _T) -> None:
        try:
            callback(value)
        except Exception:  # the outcome source's bug must not break the SMPP session
            _log.exception("outcome source failed", callback=getattr(callback, "__name__", "?"))

    def _decode_failed(self, msisdn: str, reason: str) -> None:
        self._counters.decode_failures += 1
        with self._log_lock:
            self._failures.append(DecodeFailure(msisdn, reason))
        _log.warning("undecodable message", msisdn=mask_msisdn(msisdn), reason=reason)

    # -- receipts --------------------------------------------------------------------------

    def _schedule_receipt(self, system_id: str, number: int, sm: SubmitSm, excerpt: str) -> None:
        try:
            outcome = self.outcomes.sms_outcome(sm.destination_addr)
        except Exception:  # a faulty outcome source must not break the SMPP session
            _log.exception("outcome source failed", msisdn=mask_msisdn(sm.destination_addr))
            outcome = SmsOutcome()
        if sm.registered_delivery & 0x03 == 2 and outcome.stat == "DELIVRD":
            return  # receipt asked for on failure only
        receipt = _Receipt(
            system_id,
            format(number, self._receipt_id_fmt),
            sm.destination_addr,
            sm.source_addr,
            outcome.stat,
            outcome.err,
            self._clock(),
            _ascii(excerpt),
        )
        self._counters.receipts_waiting += 1
        # One timer per 10 ms slot rather than per receipt: thousands of receipts a second.
        loop = asyncio.get_running_loop()
        slot = math.ceil((loop.time() + max(0.0, outcome.delay_s)) / _SLOT_S)
        due = self._due.get(slot)
        if due is None:
            due = self._due[slot] = []
            loop.call_at(slot * _SLOT_S, self._receipts_due, slot)
        due.append(receipt)

    def _receipts_due(self, slot: int) -> None:
        receipts = self._due.pop(slot, [])
        self._counters.receipts_waiting -= len(receipts)
        done = self._clock()
        for receipt in receipts:
            receipt.done = done
            self._route(receipt)

    def _route(self, receipt: _Receipt) -> None:
        group = self._receivers.get(receipt.system_id)
        if group:
            self._rr += 1
            self._send_receipt(group[self._rr % len(group)], receipt)
            return
        held = self._held.setdefault(receipt.system_id, deque())
        if len(held) >= self.config.max_pending_receipts:
            held.popleft()
            self._counters.receipts_dropped += 1
            self._counters.receipts_held -= 1
        held.append(receipt)
        self._counters.receipts_held += 1

    def _release_held(self, system_id: str) -> None:
        held = self._held.pop(system_id, None)
        if not held:
            return
        self._counters.receipts_held -= len(held)
        _log.info("releasing kept receipts", system_id=system_id, receipts=len(held))
        for receipt in held:
            self._route(receipt)

    def _send_receipt(self, session: _Session, receipt: _Receipt) -> None:
        done = receipt.done or receipt.submitted
        text = receipt_text(
            receipt.message_id,
            receipt.stat,
            receipt.err,
            receipt.submitted,
            done,
            receipt.excerpt,
        )
        err = int(receipt.err) if receipt.err.isdigit() else 0
        tlvs = b"".join(
            (
                encode_tlv(Tlv.RECEIPTED_MESSAGE_ID, receipt.message_id.encode("ascii") + b"\0"),
                encode_tlv(Tlv.MESSAGE_STATE, bytes((_MESSAGE_STATES.get(receipt.stat, 7),))),
                encode_tlv(
                    Tlv.NETWORK_ERROR_CODE, bytes((_GSM_NETWORK, (err >> 8) & 0xFF, err & 0xFF))
                ),
            )
        )
        sequence = session.next_sequence()
        pdu = encode_deliver_sm(
            sequence,
            receipt.recipient,
            receipt.originator,
            _SMSC_DELIVERY_RECEIPT,
            0x00,
            text.encode("ascii"),
            tlvs,
        )
        session.unacked[sequence] = receipt
        self._counters.receipts_sent += 1
        self._counters.receipts_unacked += 1
        session.write_soon(pdu)

    def _receipt_answered(
        self, session: _Session, sequence: int, status: int, command_id: int
    ) -> None:
        receipt = session.unacked.pop(sequence, None)
        if receipt is None:
            return
        c = self._counters
        c.receipts_unacked -= 1
        if status == Status.OK and command_id == Cmd.DELIVER_SM_RESP:
            c.receipts_acked += 1
        else:  # the ESME refused it: a real SMSC gives up on such a receipt too
            c.receipts_rejected += 1

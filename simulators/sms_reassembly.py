"""Turning submit_sm PDUs back into whole messages, as the handset would see them.

Each PDU is classified (text, WAP push to the provisioning port, other binary), its units
extracted, and segments of a concatenated message (UDH IEI 0x00 or 0x08, or the sar_* TLVs)
collected until all have arrived.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from .smpp_pdu import SubmitSm, Tlv, tlv_int
from .sms_userdata import (
    Alphabet,
    Concat,
    Gsm7Packing,
    UserDataError,
    alphabet_of,
    decode_units,
    parse_udh,
    segment_units,
)

__all__ = ["WAP_PUSH_PORT", "Kind", "Message", "Reassembler", "Segment", "split_segment"]

WAP_PUSH_PORT = 2948
UDHI = 0x40


class Kind(Enum):
    TEXT = "text"
    PUSH = "push"
    BINARY = "binary"


@dataclass(frozen=True, slots=True)
class Segment:
    """One submit_sm's share of a message."""

    kind: Kind
    alphabet: Alphabet
    units: bytes
    concat: Concat | None
    dest_port: int | None

    def excerpt(self, n: int = 20) -> str:
        """The first ``n`` characters of this segment's text ('' for binary), for receipts."""
        if self.kind is not Kind.TEXT:
            return ""
        units = self.units[: 2 * n]  # enough for n characters: 2 octets or septets at most
        if self.alphabet is Alphabet.UCS2:
            units = units[: len(units) & ~1]
        try:
            text = decode_units(self.alphabet, units)
        except UserDataError:
            return ""
        return text[:n]


def split_segment(
    sm: SubmitSm, packing: Gsm7Packing = "auto", push_port: int = WAP_PUSH_PORT
) -> Segment:
    """Classify one submit_sm and extract its units; raise ``UserDataError`` when the user
    data cannot be read."""
    message = sm.message
    concat: Concat | None = None
    dest_port: int | None = None
    udh_length = 0
    if sm.esm_class & UDHI:
        udh = parse_udh(message)
        concat, dest_port, udh_length = udh.concat, udh.dest_port, udh.length
        message = message[udh_length:]
    if concat is None and Tlv.SAR_MSG_REF_NUM in sm.tlvs:
        try:
            concat = Concat(
                tlv_int(sm.tlvs[Tlv.SAR_MSG_REF_NUM]),
                tlv_int(sm.tlvs[Tlv.SAR_TOTAL_SEGMENTS]),
                tlv_int(sm.tlvs[Tlv.SAR_SEGMENT_SEQNUM]),
            )
        except KeyError:
            raise UserDataError("sar_msg_ref_num without the other sar_* TLVs") from None
        if not 1 <= concat.seq <= concat.total:
            raise UserDataError(f"sar segment {concat.seq} of {concat.total} is out of range")
    alphabet = alphabet_of(sm.data_coding)
    if dest_port == push_port:
        return Segment(Kind.PUSH, Alphabet.BINARY, message, concat, dest_port)
    if alphabet is Alphabet.BINARY:
        return Segment(Kind.BINARY, alphabet, message, concat, dest_port)
    units = segment_units(alphabet, message, udh_length, packing)
    return Segment(Kind.TEXT, alphabet, units, concat, dest_port)


@dataclass(frozen=True, slots=True)
class Message:
    """A whole message: its kind, addresses, first segment's data_coding, joined units."""

    kind: Kind
    source: str
    destination: str
    data_coding: int
    alphabet: Alphabet
    units: bytes
    segments: int

    def text(self) -> str:
        return decode_units(self.alphabet, self.units)


@dataclass
class _Pending:
    data_coding: int
    alphabet: Alphabet
    kind: Kind
    parts: dict[int, bytes] = field(default_factory=dict)


class Reassembler:
    """Collects segments per (source, destination, reference, total, port).

    At most ``max_pending`` incomplete messages are kept; beyond that the oldest is dropped
    and counted in ``dropped`` (an SMSC's reassembly buffer is finite too).
    """

    def __init__(self, max_pending: int = 10_000) -> None:
        self.max_pending = max_pending
        self.dropped = 0
        self._pending: dict[tuple[str, str, int, int, int | None], _Pending] = {}

    @property
    def pending(self) -> int:
        return len(self._pending)

    def add(self, sm: SubmitSm, segment: Segment) -> Message | None:
        """Add one segment; the whole message once its last segment has arrived."""
        concat = segment.concat
        if concat is None or concat.total == 1:
            return Message(
                segment.kind,
                sm.source_addr,
                sm.destination_addr,
                sm.data_coding,
                segment.alphabet,
                segment.units,
                1,
            )
        key = (sm.source_addr, sm.destination_addr, concat.ref, concat.total, segment.dest_port)
        entry = self._pending.get(key)
        if entry is None:
            if len(self._pending) >= self.max_pending:
                del self._pending[next(iter(self._pending))]
                self.dropped += 1
            entry = self._pending[key] = _Pending(sm.data_coding, segment.alphabet, segment.kind)
        entry.parts[concat.seq] = segment.units
        if len(entry.parts) < concat.total:
            return None
        del self._pending[key]
        units = b"".join(entry.parts[i] for i in range(1, concat.total + 1))
        return Message(
            entry.kind,
            sm.source_addr,
            sm.destination_addr,
            entry.data_coding,
            entry.alphabet,
            units,
            concat.total,
        )

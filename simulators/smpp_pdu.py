"""SMPP 3.4 PDU codec for the SMSC simulator: the few PDUs an SMSC receives and sends.

Written from the SMPP 3.4 specification (sections 4 and 5), independent of smpplib and of the
mmsq SMPP adapter, so that the simulator checks what a client really puts on the wire.
The decoders raise ``PduError`` with the SMPP status that the answer should carry.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

__all__ = [
    "HEADER",
    "MAX_PDU_LENGTH",
    "BindRequest",
    "Cmd",
    "PduError",
    "Status",
    "SubmitSm",
    "Tlv",
    "decode_bind",
    "decode_submit_sm",
    "encode_bind_resp",
    "encode_deliver_sm",
    "encode_pdu",
    "encode_submit_sm_resp",
    "encode_tlv",
    "tlv_int",
]

HEADER = struct.Struct(">IIII")  # command_length, command_id, command_status, sequence_number
MAX_PDU_LENGTH = 64 * 1024  # far above any legal SMPP 3.4 PDU; larger means a broken stream


class Cmd:
    """Command ids (SMPP 3.4 section 5.1.2.1)."""

    GENERIC_NACK = 0x80000000
    BIND_RECEIVER = 0x00000001
    BIND_RECEIVER_RESP = 0x80000001
    BIND_TRANSMITTER = 0x00000002
    BIND_TRANSMITTER_RESP = 0x80000002
    QUERY_SM = 0x00000003
    SUBMIT_SM = 0x00000004
    SUBMIT_SM_RESP = 0x80000004
    DELIVER_SM = 0x00000005
    DELIVER_SM_RESP = 0x80000005
    UNBIND = 0x00000006
    UNBIND_RESP = 0x80000006
    BIND_TRANSCEIVER = 0x00000009
    BIND_TRANSCEIVER_RESP = 0x80000009
    ENQUIRE_LINK = 0x00000015
    ENQUIRE_LINK_RESP = 0x80000015
    RESP_BIT = 0x80000000


class Status:
    """command_status values (SMPP 3.4 section 5.1.3) the simulator uses."""

    OK = 0x00
    INVMSGLEN = 0x01
    INVCMDLEN = 0x02
    INVCMDID = 0x03
    INVBNDSTS = 0x04
    ALYBND = 0x05
    SYSERR = 0x08
    INVDSTADR = 0x0B
    BINDFAIL = 0x0D
    INVPASWD = 0x0E
    INVSYSID = 0x0F
    MSGQFUL = 0x14
    THROTTLED = 0x58
    INVOPTPARSTREAM = 0xC0


class Tlv:
    """Optional parameter tags (SMPP 3.4 section 5.3.2) the simulator reads or writes."""

    RECEIPTED_MESSAGE_ID = 0x001E
    SAR_MSG_REF_NUM = 0x020C
    SAR_TOTAL_SEGMENTS = 0x020E
    SAR_SEGMENT_SEQNUM = 0x020F
    SC_INTERFACE_VERSION = 0x0210
    NETWORK_ERROR_CODE = 0x0423
    MESSAGE_PAYLOAD = 0x0424
    MESSAGE_STATE = 0x0427


class PduError(Exception):
    """A PDU body that cannot be decoded; ``status`` is the SMPP error to answer with."""

    def __init__(self, message: str, status: int = Status.INVCMDLEN) -> None:
        super().__init__(message)
        self.status = status


_TLV_HEAD = struct.Struct(">HH")
_U16 = struct.Struct(">H")


def _cstring(body: bytes, pos: int, max_len: int, name: str) -> tuple[bytes, int]:
    """A C-octet string starting at ``pos`` (max_len includes the NUL): (value, next pos)."""
    end = body.find(b"\x00", pos, pos + max_len)
    if end < 0:
        raise PduError(f"{name}: no NUL terminator within {max_len} octets")
    return body[pos:end], end + 1


def _tlvs(body: bytes, pos: int) -> dict[int, bytes]:
    tlvs: dict[int, bytes] = {}
    n = len(body)
    while pos < n:
        if pos + 4 > n:
            raise PduError("truncated TLV header", Status.INVOPTPARSTREAM)
        tag, length = _TLV_HEAD.unpack_from(body, pos)
        pos += 4
        if pos + length > n:
            raise PduError(f"TLV 0x{tag:04X} runs past the PDU", Status.INVOPTPARSTREAM)
        tlvs[tag] = body[pos : pos + length]
        pos += length
    return tlvs


@dataclass(frozen=True, slots=True)
class BindRequest:
    """The fields of bind_transmitter / bind_receiver / bind_transceiver that matter here."""

    system_id: str
    password: str
    system_type: str
    interface_version: int


def decode_bind(body: bytes) -> BindRequest:
    """Decode a bind_* body (SMPP 3.4 section 4.1)."""
    system_id, pos = _cstring(body, 0, 16, "system_id")
    password, pos = _cstring(body, pos, 9, "password")
    system_type, pos = _cstring(body, pos, 13, "system_type")
    if pos + 3 > len(body):
        raise PduError("bind body truncated")
    interface_version = body[pos]
    _cstring(body, pos + 3, 41, "address_range")
    return BindRequest(
        system_id.decode("latin-1"),
        password.decode("latin-1"),
        system_type.decode("latin-1"),
        interface_version,
    )


@dataclass(frozen=True, slots=True)
class SubmitSm:
    """A decoded submit_sm (SMPP 3.4 section 4.4.1); ``message`` is short_message or the
    message_payload TLV, UDH included."""

    source_addr: str
    destination_addr: str
    esm_class: int
    registered_delivery: int
    data_coding: int
    message: bytes
    tlvs: dict[int, bytes] = field(default_factory=dict)


def decode_submit_sm(body: bytes) -> SubmitSm:
    """Decode a submit_sm body; the short_message and the TLVs stay raw."""
    _, pos = _cstring(body, 0, 6, "service_type")
    pos += 2  # source_addr_ton, source_addr_npi
    source, pos = _cstring(body, pos, 21, "source_addr")
    pos += 2  # dest_addr_ton, dest_addr_npi
    dest, pos = _cstring(body, pos, 21, "destination_addr")
    if pos + 3 > len(body):
        raise PduError("submit_sm truncated after destination_addr")
    esm_class = body[pos]
    pos += 3  # esm_class, protocol_id, priority_flag
    _, pos = _cstring(body, pos, 17, "schedule_delivery_time")
    _, pos = _cstring(body, pos, 17, "validity_period")
    if pos + 5 > len(body):
        raise PduError("submit_sm truncated before short_message")
    registered_delivery = body[pos]
    data_coding = body[pos + 2]
    sm_length = body[pos + 4]
    pos += 5
    if pos + sm_length > len(body):
        raise PduError("short_message runs past the PDU", Status.INVMSGLEN)
    message = body[pos : pos + sm_length]
    pos += sm_length
    tlvs = _tlvs(body, pos) if pos < len(body) else {}
    payload = tlvs.get(Tlv.MESSAGE_PAYLOAD)
    if payload is not None:
        if sm_length:
            raise PduError("both short_message and message_payload are set", Status.INVMSGLEN)
        message = payload
    return SubmitSm(
        source.decode("latin-1"),
        dest.decode("latin-1"),
        esm_class,
        registered_delivery,
        data_coding,
        message,
        tlvs,
    )


def encode_pdu(command_id: int, status: int, sequence: int, body: bytes = b"") -> bytes:
    """A whole PDU: the 16-octet header and the body."""
    return HEADER.pack(16 + len(body), command_id, status, sequence) + body


def encode_tlv(tag: int, value: bytes) -> bytes:
    """One optional parameter: tag, length, value."""
    return _TLV_HEAD.pack(tag, len(value)) + value


def encode_bind_resp(command_id: int, status: int, sequence: int, system_id: str) -> bytes:
    """bind_*_resp: system_id, and the sc_interface_version TLV (3.4) on success."""
    body = system_id.encode("latin-1") + b"\x00"
    if status == Status.OK:
        body += encode_tlv(Tlv.SC_INTERFACE_VERSION, b"\x34")
    return encode_pdu(command_id | Cmd.RESP_BIT, status, sequence, body)


def encode_submit_sm_resp(status: int, sequence: int, message_id: str) -> bytes:
    """submit_sm_resp; the body is left out on error, as SMPP 3.4 section 4.4.2 allows."""
    body = message_id.encode("ascii") + b"\x00" if status == Status.OK else b""
    return encode_pdu(Cmd.SUBMIT_SM_RESP, status, sequence, body)


def encode_deliver_sm(
    sequence: int,
    source_addr: str,
    destination_addr: str,
    esm_class: int,
    data_coding: int,
    short_message: bytes,
    tlvs: bytes = b"",
) -> bytes:
    """deliver_sm (SMPP 3.4 section 4.6.1) with international/ISDN addresses."""
    body = b"".join(
        (
            b"\x00",  # service_type
            b"\x01\x01",
            source_addr.encode("latin-1"),
            b"\x00\x01\x01",
            destination_addr.encode("latin-1"),
            b"\x00",
            # esm_class, protocol_id, priority_flag, schedule (empty), validity (empty),
            # registered_delivery, replace_if_present_flag, data_coding, sm_default_msg_id
            bytes((esm_class, 0, 0, 0, 0, 0, 0, data_coding, 0, len(short_message))),
            short_message,
            tlvs,
        )
    )
    return encode_pdu(Cmd.DELIVER_SM, Status.OK, sequence, body)


def tlv_int(value: bytes) -> int:
    """A TLV value read as an unsigned integer of 1 or 2 octets."""
    return value[0] if len(value) == 1 else _U16.unpack_from(value)[0] if len(value) >= 2 else 0

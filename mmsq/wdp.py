"""WDP over GSM SMS: a datagram split into binary SMS with port addressing and concatenation.

Each SMS carries at most 140 octets of user data, user data header (UDH) included
(3GPP TS 23.040 §9.2.3.24, WAP-259-WDP annex). The 16-bit application port IE (IEI 0x05)
goes into every segment; the 8-bit-reference concatenation IE (IEI 0x00) is added when the
datagram needs more than one SMS. The result is ready for SMPP ``submit_sm``: the UDH
indicator in ``esm_class`` and 8-bit data in ``data_coding``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DATA_CODING_8BIT",
    "ESM_CLASS_UDHI",
    "MAX_SEGMENTS",
    "SMS_USER_DATA_OCTETS",
    "WAP_PUSH_PORT",
    "WSP_SOURCE_PORT",
    "SmsSegment",
    "segment_datagram",
]

SMS_USER_DATA_OCTETS = 140
WAP_PUSH_PORT = 2948  # 0x0B84, the WAP Push connectionless session service
WSP_SOURCE_PORT = 9200  # 0x23F0, the WSP connectionless port servers send from
ESM_CLASS_UDHI = 0x40
DATA_CODING_8BIT = 0x04
MAX_SEGMENTS = 255

_IEI_CONCAT_8BIT = 0x00
_IEI_PORTS_16BIT = 0x05


@dataclass(frozen=True)
class SmsSegment:
    """One binary SMS: its UDH (with the UDHL octet) and its share of the datagram."""

    udh: bytes
    payload: bytes
    seq: int = 1
    total: int = 1
    reference: int | None = None
    esm_class: int = ESM_CLASS_UDHI
    data_coding: int = DATA_CODING_8BIT

    @property
    def short_message(self) -> bytes:
        """What goes into SMPP ``short_message``: UDH then payload, at most 140 octets."""
        return self.udh + self.payload


def _ports_ie(dest: int, src: int) -> bytes:
    for port in (dest, src):
        if not 0 <= port <= 0xFFFF:
            raise ValueError(f"port {port} is not a 16-bit number")
    return bytes((_IEI_PORTS_16BIT, 4)) + dest.to_bytes(2, "big") + src.to_bytes(2, "big")


def segment_datagram(
    datagram: bytes,
    *,
    dest_port: int = WAP_PUSH_PORT,
    src_port: int = WSP_SOURCE_PORT,
    reference: int = 0,
) -> list[SmsSegment]:
    """Split ``datagram`` into SMS segments addressed to ``dest_port``.

    One SMS holds 133 octets (140 - UDH ``06 05 04 dd dd ss ss``); beyond that every segment
    carries 128 (140 - ``0B 05 04 dd dd ss ss 00 03 ref total seq``). ``reference`` (0-255)
    ties the segments of one message together: use a new one for each message to a handset.
    """
    if not datagram:
        raise ValueError("nothing to send: the datagram is empty")
    if not 0 <= reference <= 0xFF:
        raise ValueError("an 8-bit concatenation reference is 0-255")
    ports = _ports_ie(dest_port, src_port)
    single_room = SMS_USER_DATA_OCTETS - 1 - len(ports)
    if len(datagram) <= single_room:
        return [SmsSegment(bytes((len(ports),)) + ports, datagram)]
    room = single_room - 5  # the concatenation IE: IEI, length, reference, total, sequence
    chunks = [datagram[i : i + room] for i in range(0, len(datagram), room)]
    if len(chunks) > MAX_SEGMENTS:
        raise ValueError(f"{len(datagram)} octets need more than {MAX_SEGMENTS} SMS")
    total = len(chunks)
    segments = []
    for seq, chunk in enumerate(chunks, start=1):
        elements = ports + bytes((_IEI_CONCAT_8BIT, 3, reference, total, seq))
        segments.append(
            SmsSegment(bytes((len(elements),)) + elements, chunk, seq, total, reference)
        )
    return segments

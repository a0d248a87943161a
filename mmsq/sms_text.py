"""Text SMS encoding: GSM 7-bit where the text allows it, else UCS2; concatenation by UDH.

Segment counts matter: the SMSC's throughput limit counts segments, and so does the operator's
bill. Limits (3GPP TS 23.040): one SMS carries 140 octets of user data. GSM 7-bit: 160
septets alone, 153 per part with a 6-octet concatenation UDH (an escape pair never straddles
two parts). UCS2: 70 UTF-16 code units alone, 67 per part (a surrogate pair never straddles).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DC_DEFAULT",
    "DC_UCS2",
    "EncodedSms",
    "SmsSegment",
    "encode_text",
    "gsm7_septets",
]

DC_DEFAULT = 0x00  # SMSC default alphabet: GSM 03.38 7-bit (sent unpacked, one septet per octet)
DC_UCS2 = 0x08
ESM_UDHI = 0x40

# GSM 03.38 default alphabet (index = septet value) and the extension table (ESC 0x1B + value).
_GSM7 = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXT = {"\f": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F, "[": 0x3C, "~": 0x3D,
             "]": 0x3E, "|": 0x40, "€": 0x65}  # fmt: skip
_GSM7_INDEX = {ch: i for i, ch in enumerate(_GSM7) if ch != "\x1b"}


@dataclass(frozen=True, slots=True)
class SmsSegment:
    """One submit_sm's worth: short_message (UDH included when esm_class has UDHI)."""

    short_message: bytes
    esm_class: int
    data_coding: int


@dataclass(frozen=True, slots=True)
class EncodedSms:
    segments: tuple[SmsSegment, ...]
    encoding: str  # "gsm7" or "ucs2"

    @property
    def count(self) -> int:
        return len(self.segments)


def gsm7_septets(text: str) -> list[int] | None:
    """The text as GSM 7-bit septets (escapes as two), or None if a character is not in it."""
    out: list[int] = []
    for ch in text:
        if ch in _GSM7_INDEX:
            out.append(_GSM7_INDEX[ch])
        elif ch in _GSM7_EXT:
            out += (0x1B, _GSM7_EXT[ch])
        else:
            return None
    return out


def _split_septets(septets: list[int], size: int) -> list[list[int]]:
    parts: list[list[int]] = []
    i = 0
    while i < len(septets):
        end = min(i + size, len(septets))
        if end < len(septets) and septets[end - 1] == 0x1B:
            end -= 1  # keep an escape with the character it introduces
        parts.append(septets[i:end])
        i = end
    return parts


def _split_units(data: bytes, units: int) -> list[bytes]:
    parts: list[bytes] = []
    i = 0
    size = units * 2
    while i < len(data):
        end = min(i + size, len(data))
        if end < len(data) and 0xD8 <= data[end - 2] <= 0xDB:
            end -= 2  # a high surrogate stays with its low surrogate
        parts.append(data[i:end])
        i = end
    return parts


def _udh(reference: int, total: int, seq: int) -> bytes:
    # IEI 0x00: concatenated short messages, 8-bit reference number.
    return bytes((0x05, 0x00, 0x03, reference & 0xFF, total, seq))


def encode_text(text: str, reference: int = 0, force_ucs2: bool = False) -> EncodedSms:
    """Encode ``text`` as one or more segments; ``reference`` ties the parts together."""
    septets = None if force_ucs2 else gsm7_septets(text)
    if septets is not None:
        if len(septets) <= 160:
            return EncodedSms((SmsSegment(bytes(septets), 0, DC_DEFAULT),), "gsm7")
        # Unpacked septets with a UDH: 153 per part keeps the packed size within 140 octets,
        # which is what the SMSC will transmit over the air.
        parts = [bytes(p) for p in _split_septets(septets, 153)]
        dc, encoding = DC_DEFAULT, "gsm7"
    else:
        data = text.encode("utf-16-be")
        if len(data) <= 140:
            return EncodedSms((SmsSegment(data, 0, DC_UCS2),), "ucs2")
        parts = _split_units(data, 67)
        dc, encoding = DC_UCS2, "ucs2"
    if len(parts) > 255:
        raise ValueError(f"text needs {len(parts)} segments; at most 255 can be concatenated")
    total = len(parts)
    return EncodedSms(
        tuple(
            SmsSegment(_udh(reference, total, n) + part, ESM_UDHI, dc)
            for n, part in enumerate(parts, 1)
        ),
        encoding,
    )

"""SMS user data as an SMSC sees it in submit_sm: the user data header (3GPP TS 23.040
section 9.2.3.24), the alphabet named by SMPP ``data_coding``, and the text of one segment.

Texts are reassembled from *units*: unpacked septets for GSM 7-bit, raw octets otherwise. The
units of all segments are joined before decoding, so that a UCS2 surrogate pair or a GSM
escape split across two segments still decodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal

from .gsm7 import decode_septets, fill_bits, unpack_septets

__all__ = [
    "Alphabet",
    "Concat",
    "Gsm7Packing",
    "Udh",
    "UserDataError",
    "alphabet_of",
    "decode_units",
    "parse_udh",
    "segment_units",
]

Gsm7Packing = Literal["auto", "packed", "unpacked"]

IEI_CONCAT_8 = 0x00
IEI_PORTS_8 = 0x04
IEI_PORTS_16 = 0x05
IEI_CONCAT_16 = 0x08


class UserDataError(ValueError):
    """User data that cannot be decoded (bad UDH, odd UCS2 length, ...)."""


class Alphabet(Enum):
    GSM7 = "gsm7"
    ASCII = "ascii"
    LATIN1 = "latin1"
    UCS2 = "ucs2"
    BINARY = "binary"


# SMPP 3.4 section 5.2.19: values 0x00-0x0F have SMPP meanings; above, the GSM DCS groups.
_SMPP_CODINGS = {
    0x00: Alphabet.GSM7,
    0x01: Alphabet.ASCII,
    0x02: Alphabet.BINARY,
    0x03: Alphabet.LATIN1,
    0x04: Alphabet.BINARY,
    0x08: Alphabet.UCS2,
}


_GENERAL = (Alphabet.GSM7, Alphabet.BINARY, Alphabet.UCS2, Alphabet.BINARY)
_MESSAGE_WAITING = {0xC: Alphabet.GSM7, 0xD: Alphabet.GSM7, 0xE: Alphabet.UCS2}


def _alphabet(data_coding: int) -> Alphabet:
    if data_coding < 0x10:
        return _SMPP_CODINGS.get(data_coding, Alphabet.BINARY)
    group = data_coding >> 4
    if group <= 0x3:  # general data coding; compressed (bit 5) is treated as binary
        return Alphabet.BINARY if data_coding & 0x20 else _GENERAL[(data_coding >> 2) & 0x3]
    if group == 0xF:  # data coding / message class: bit 2 selects 8-bit data
        return Alphabet.BINARY if data_coding & 0x04 else Alphabet.GSM7
    return _MESSAGE_WAITING.get(group, Alphabet.BINARY)


_ALPHABETS = tuple(_alphabet(dc) for dc in range(256))


def alphabet_of(data_coding: int) -> Alphabet:
    """The alphabet an SMPP data_coding names (SMPP 3.4 5.2.19, 3GPP TS 23.038 section 4)."""
    return _ALPHABETS[data_coding & 0xFF]


@dataclass(frozen=True, slots=True)
class Concat:
    """One segment's place in a concatenated message."""

    ref: int
    total: int
    seq: int


@dataclass(frozen=True, slots=True)
class Udh:
    """The information elements the simulator acts on, and the header's size in octets."""

    length: int  # UDHL + 1
    concat: Concat | None = None
    dest_port: int | None = None
    src_port: int | None = None


def parse_udh(message: bytes) -> Udh:
    """Parse the UDH at the start of ``message`` (esm_class UDHI set)."""
    if not message:
        raise UserDataError("UDHI set but the message is empty")
    udhl = message[0]
    if udhl + 1 > len(message):
        raise UserDataError(f"UDH length {udhl} runs past the message ({len(message)} octets)")
    concat: Concat | None = None
    dest_port: int | None = None
    src_port: int | None = None
    pos, end = 1, udhl + 1
    while pos < end:
        if pos + 2 > end:
            raise UserDataError("truncated information element in the UDH")
        iei, iel = message[pos], message[pos + 1]
        value = message[pos + 2 : pos + 2 + iel]
        if pos + 2 + iel > end:
            raise UserDataError(f"UDH element 0x{iei:02X} runs past the header")
        if iei == IEI_CONCAT_8 and iel == 3:
            concat = Concat(value[0], value[1], value[2])
        elif iei == IEI_CONCAT_16 and iel == 4:
            concat = Concat((value[0] << 8) | value[1], value[2], value[3])
        elif iei == IEI_PORTS_16 and iel == 4:
            dest_port = (value[0] << 8) | value[1]
            src_port = (value[2] << 8) | value[3]
        elif iei == IEI_PORTS_8 and iel == 2:
            dest_port, src_port = value[0], value[1]
        pos += 2 + iel
    if concat is not None and not 1 <= concat.seq <= concat.total:
        raise UserDataError(f"segment {concat.seq} of {concat.total} is out of range")
    return Udh(udhl + 1, concat, dest_port, src_port)


def segment_units(
    alphabet: Alphabet, user_data: bytes, udh_length: int, packing: Gsm7Packing = "auto"
) -> bytes:
    """The units of one segment (``user_data`` is what follows the UDH, if any).

    SMPP normally carries GSM 7-bit as one unpacked septet per octet; some clients pack it
    (with fill bits after a UDH). ``auto`` takes an octet with the top bit set as proof of
    packing, since an unpacked septet never has it.
    """
    if alphabet is not Alphabet.GSM7:
        return user_data
    packed = packing == "packed" or (packing == "auto" and any(b & 0x80 for b in user_data))
    if packed:
        return unpack_septets(user_data, fill_bits(udh_length) if udh_length else 0)
    return user_data


def decode_units(alphabet: Alphabet, units: bytes) -> str:
    """Text from the joined units of all segments."""
    if alphabet is Alphabet.GSM7:
        return decode_septets(units)
    if alphabet is Alphabet.UCS2:
        if len(units) % 2:
            raise UserDataError(f"UCS2 text of odd length {len(units)}")
        try:
            return units.decode("utf-16-be")
        except UnicodeDecodeError as exc:
            raise UserDataError(f"invalid UTF-16: {exc.reason}") from None
    if alphabet is Alphabet.ASCII:
        return units.decode("ascii", errors="replace")
    if alphabet is Alphabet.LATIN1:
        return units.decode("latin-1")
    raise UserDataError("binary data has no text")

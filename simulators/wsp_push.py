"""Connectionless WSP Push PDU decoding (WAP-230-WSP section 8.2.4.1 and 8.4.2.24), enough
for an OMA Client Provisioning push: TID, PDU type, headers, content type with its SEC and
MAC parameters, and the body.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CONNECTIVITY_WBXML",
    "SEC_NAMES",
    "PushPdu",
    "WspError",
    "decode_push",
    "read_uintvar",
]

PDU_PUSH = 0x06
PDU_CONFIRMED_PUSH = 0x07
CONNECTIVITY_WBXML = "application/vnd.wap.connectivity-wbxml"
# WAP-230-WSP Appendix A, Table 40 (only the types a provisioning push may carry)
_WELL_KNOWN_MEDIA = {0x35: "text/vnd.wap.connectivity-xml", 0x36: CONNECTIVITY_WBXML}
PARAM_SEC = 0x11
PARAM_MAC = 0x12
_UNTYPED = {"SEC": PARAM_SEC, "MAC": PARAM_MAC}
SEC_NAMES = {0: "NETWPIN", 1: "USERPIN", 2: "USERNETWPIN", 3: "USERPINMAC"}


class WspError(ValueError):
    """Bytes that are not a well-formed WSP push."""


@dataclass(frozen=True, slots=True)
class PushPdu:
    """A decoded push: the content type, the SEC method name and MAC (None when absent)."""

    tid: int
    content_type: str
    sec: str | None
    mac: str | None
    body: bytes


def read_uintvar(data: bytes, pos: int) -> tuple[int, int]:
    """A WSP uintvar (7 bits per octet, top bit = more follows): (value, next position)."""
    value = 0
    for i in range(5):
        if pos + i >= len(data):
            raise WspError("truncated uintvar")
        b = data[pos + i]
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            return value, pos + i + 1
    raise WspError("uintvar longer than 5 octets")


def _text(data: bytes, pos: int, end: int) -> tuple[str, int]:
    """Text-string / Token-text / Quoted-string, NUL-terminated: (value, next position)."""
    if pos < end and data[pos] == 0x22:  # quoted string: the quote is not part of the value
        pos += 1
    nul = data.find(b"\x00", pos, end)
    if nul < 0:
        raise WspError("text value without NUL terminator")
    if pos < end and data[pos] == 0x7F:  # Quote before a text starting with an octet > 127
        pos += 1
    return data[pos:nul].decode("utf-8", errors="replace"), nul + 1


def _integer(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """Integer-value: Short-integer or Long-integer (Short-length + big-endian octets)."""
    if pos >= end:
        raise WspError("missing integer value")
    b = data[pos]
    if b & 0x80:
        return b & 0x7F, pos + 1
    if b > 30 or pos + 1 + b > end:
        raise WspError(f"bad long-integer length {b}")
    return int.from_bytes(data[pos + 1 : pos + 1 + b], "big"), pos + 1 + b


def _skip_value(data: bytes, pos: int, end: int) -> int:
    """Skip an untyped or unknown typed value (short int, length-prefixed or text)."""
    b = data[pos]
    if b & 0x80:
        return pos + 1
    if b <= 30:
        return pos + 1 + b
    if b == 31:
        length, nxt = read_uintvar(data, pos + 1)
        return nxt + length
    return _text(data, pos, end)[1]


def _content_type(data: bytes, pos: int, end: int) -> tuple[str, str | None, str | None]:
    """Content-type value: (media type, SEC name, MAC)."""
    first = data[pos]
    if first & 0x80:  # constrained media: well-known short integer
        return _WELL_KNOWN_MEDIA.get(first & 0x7F, f"0x{first & 0x7F:02X}"), None, None
    if first >= 0x20:  # constrained media: extension text
        return _text(data, pos, end)[0], None, None
    # Content-general-form: Value-length Media-type *(Parameter)
    if first == 31:
        length, pos = read_uintvar(data, pos + 1)
    else:
        length, pos = first, pos + 1
    stop = pos + length
    if stop > end:
        raise WspError("content-type value runs past the headers")
    if data[pos] & 0x80:
        media = _WELL_KNOWN_MEDIA.get(data[pos] & 0x7F, f"0x{data[pos] & 0x7F:02X}")
        pos += 1
    elif data[pos] >= 0x20:
        media, pos = _text(data, pos, stop)
    else:
        code, pos = _integer(data, pos, stop)
        media = _WELL_KNOWN_MEDIA.get(code, f"0x{code:02X}")
    sec, mac = _sec_and_mac(data, pos, stop)
    return media, sec, mac


def _sec_and_mac(data: bytes, pos: int, stop: int) -> tuple[str | None, str | None]:
    """The SEC and MAC among the content-type parameters, typed (well-known token) or not."""
    sec: str | None = None
    mac: str | None = None
    while pos < stop:
        if data[pos] & 0x80:  # typed parameter with a well-known short-integer token
            token = data[pos] & 0x7F
            pos += 1
        else:  # untyped parameter: token text, then a value
            name, pos = _text(data, pos, stop)
            token = _UNTYPED.get(name.upper(), -1)
        if token == PARAM_SEC:
            value, pos = _integer(data, pos, stop)
            sec = SEC_NAMES.get(value, f"0x{value:02X}")
        elif token == PARAM_MAC:
            mac, pos = _text(data, pos, stop)
        else:
            pos = _skip_value(data, pos, stop)
    return sec, mac


def decode_push(pdu: bytes) -> PushPdu:
    """Decode a connectionless push PDU (also accepts a ConfirmedPush's type 0x07)."""
    if len(pdu) < 4:
        raise WspError(f"push PDU too short ({len(pdu)} octets)")
    tid, pdu_type = pdu[0], pdu[1]
    if pdu_type not in (PDU_PUSH, PDU_CONFIRMED_PUSH):
        raise WspError(f"PDU type 0x{pdu_type:02X} is not a push")
    headers_len, pos = read_uintvar(pdu, 2)
    end = pos + headers_len
    if headers_len == 0 or end > len(pdu):
        raise WspError(f"headers length {headers_len} does not fit the PDU")
    try:
        content_type, sec, mac = _content_type(pdu, pos, end)
    except IndexError:
        raise WspError("content-type value truncated") from None
    return PushPdu(tid, content_type, sec, mac, pdu[end:])

"""OMA CP test vectors written out by hand: the worked example of the project's OMA CP
reference (the MMS settings document, 309 octets, as Kannel and libwbxml encode it), token by
token, and the WSP push header Kannel puts in front of it. MAC values are the reference's,
checked there against Kannel and NowSMS."""

from __future__ import annotations

__all__ = [
    "NETWPIN_MAC",
    "USERPIN_MAC",
    "WORKED_EXAMPLE",
    "characteristic",
    "parm",
    "s",
    "wsp_push",
]

END = b"\x01"


def s(text: str) -> bytes:
    """STR_I: inline string."""
    return b"\x03" + text.encode() + b"\x00"


def parm(name_token: bytes, value: bytes) -> bytes:
    """<parm name=... value=.../>: tag 0x87 (parm with attributes), name token, value=."""
    return b"\x87" + name_token + b"\x06" + value + END


def characteristic(type_token: bytes, *children: bytes) -> bytes:
    """<characteristic type=...>children</characteristic>: tag 0xC6."""
    return b"\xc6" + type_token + END + b"".join(children) + END


NAME = parm(b"\x07", s("Example MMS"))
WORKED_EXAMPLE = b"".join(
    [
        b"\x03\x0b\x6a\x00",  # WBXML 1.3, public id 0x0B (PROV 1.0), UTF-8, no string table
        b"\xc5\x46\x01",  # <wap-provisioningdoc version="1.0">
        characteristic(b"\x56", NAME),  # BOOTSTRAP
        characteristic(
            b"\x55",  # NAPDEF
            parm(b"\x11", s("MMS_NAP")),  # NAPID
            parm(b"\x10", b"\xab"),  # BEARER = GSM-GPRS
            NAME,
            parm(b"\x08", s("mms.example.net")),  # NAP-ADDRESS
            parm(b"\x09", b"\x89"),  # NAP-ADDRTYPE = APN
            characteristic(
                b"\x5a",  # NAPAUTHINFO
                parm(b"\x0c", b"\x9a"),  # AUTHTYPE = PAP
                parm(b"\x0d", s("mms")),  # AUTHNAME
                parm(b"\x0e", s("mms")),  # AUTHSECRET
            ),
        ),
        characteristic(
            b"\x51",  # PXLOGICAL
            parm(b"\x15", s("MMS_PROXY")),  # PROXY-ID
            NAME,
            characteristic(
                b"\x52",  # PXPHYSICAL
                parm(b"\x2f", s("MMS_PXP")),  # PHYSICAL-PROXY-ID
                parm(b"\x20", s("10.1.2.3")),  # PXADDR
                parm(b"\x21", b"\x85"),  # PXADDRTYPE = IPV4
                parm(b"\x22", s("MMS_NAP")),  # TO-NAPID
                characteristic(b"\x53", parm(b"\x23", s("8080"))),  # PORT / PORTNBR
            ),
        ),
        # APPLICATION is on attribute page 1; Kannel switches back to page 0 for value=.
        characteristic(
            b"\x00\x01\x55",
            parm(b"\x36\x00\x00", s("w4")),  # APPID
            parm(b"\x00\x01\x39\x00\x00", s("MMS_PROXY")),  # TO-PROXY
            parm(b"\x00\x01\x34\x00\x00", s("http://mmsc.example.net/mms")),  # ADDR
            NAME,  # page 0 again
        ),
        END,  # </wap-provisioningdoc>
    ]
)

USERPIN_MAC = "6A4F4C740FF39B7E9EA81813BEE7668B104B7CD6"
NETWPIN_MAC = "BB8007579D34A5737E1F00F072F0B9A14BB15734"


def wsp_push(sec: int | None, mac: str | None, body: bytes = WORKED_EXAMPLE) -> bytes:
    """01 06 <headers len> <content type>: Kannel's connectionless push header."""
    if sec is None:
        headers = b"\xb6"  # constrained media: 0x36 | 0x80
    else:
        params = bytes([0x91, 0x80 | sec]) + b"\x92" + (mac or "").encode() + b"\x00"
        value = b"\xb6" + params
        headers = b"\x1f" + bytes([len(value)]) + value
    return bytes([0x01, 0x06, len(headers)]) + headers + body

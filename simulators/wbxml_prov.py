"""A small WBXML decoder (WAP-192-WBXML, versions 1.1-1.3) for OMA Client Provisioning
documents (public id 0x0B, ``-//WAPFORUM//DTD PROV 1.0//EN``; ProvCont 1.1 reuses it).

It turns the body of a provisioning push into XML text and the PARM name -> value pairs, the
way a handset's provisioning client would read it. Token tables: WAP-183-ProvCont and
OMA-WAP-ProvCont 1.1 (code pages 0 and 1), as listed in the project's OMA CP reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Element", "ProvDocument", "WbxmlError", "decode_prov"]

PUBLIC_ID_PROV = 0x0B
PROV_FPI = "-//WAPFORUM//DTD PROV 1.0//EN"

# Global tokens (WBXML section 7.1)
SWITCH_PAGE, END, ENTITY, STR_I, LITERAL = 0x00, 0x01, 0x02, 0x03, 0x04
PI, STR_T, OPAQUE = 0x43, 0x83, 0xC3
_UNSUPPORTED = {0x40, 0x41, 0x42, 0x80, 0x81, 0x82, 0xC0, 0xC1, 0xC2, PI}
_LITERALS = {0x04, 0x44, 0x84, 0xC4}
_CHARSETS = {3: "ascii", 4: "latin-1", 106: "utf-8", 1015: "utf-16"}

_TAGS = {
    (0, 0x05): "wap-provisioningdoc",
    (0, 0x06): "characteristic",
    (0, 0x07): "parm",
    (1, 0x06): "characteristic",
    (1, 0x07): "parm",
}

_TYPES_0 = [
    "PXLOGICAL",
    "PXPHYSICAL",
    "PORT",
    "VALIDITY",
    "NAPDEF",
    "BOOTSTRAP",
    "VENDORCONFIG",
    "CLIENTIDENTITY",
    "PXAUTHINFO",
    "NAPAUTHINFO",
    "ACCESS",
]
_NAMES_0 = [
    "NAME",
    "NAP-ADDRESS",
    "NAP-ADDRTYPE",
    "CALLTYPE",
    "VALIDUNTIL",
    "AUTHTYPE",
    "AUTHNAME",
    "AUTHSECRET",
    "LINGER",
    "BEARER",
    "NAPID",
    "COUNTRY",
    "NETWORK",
    "INTERNET",
    "PROXY-ID",
    "PROXY-PROVIDER-ID",
    "DOMAIN",
    "PROVURL",
    "PXAUTH-TYPE",
    "PXAUTH-ID",
    "PXAUTH-PW",
    "STARTPAGE",
    "BASAUTH-ID",
    "BASAUTH-PW",
    "PUSHENABLED",
    "PXADDR",
    "PXADDRTYPE",
    "TO-NAPID",
    "PORTNBR",
    "SERVICE",
    "LINKSPEED",
    "DNLINKSPEED",
    "LOCAL-ADDR",
    "LOCAL-ADDRTYPE",
    "CONTEXT-ALLOW",
    "TRUST",
    "MASTER",
    "SID",
    "SOC",
    "WSP-VERSION",
    "PHYSICAL-PROXY-ID",
    "CLIENT-ID",
    "DELIVERY-ERR-SDU",
    "DELIVERY-ORDER",
    "TRAFFIC-CLASS",
    "MAX-SDU-SIZE",
    "MAX-BITRATE-UPLINK",
    "MAX-BITRATE-DNLINK",
    "RESIDUAL-BER",
    "SDU-ERROR-RATIO",
    "TRAFFIC-HANDL-PRIO",
    "TRANSFER-DELAY",
    "GUARANTEED-BITRATE-UPLINK",
    "GUARANTEED-BITRATE-DNLINK",
    "PXADDR-FQDN",
    "PROXY-PW",
    "PPGAUTH-TYPE",
]

# Attribute-start tokens: (attribute name, value prefix or None)
_ATTR_START: dict[tuple[int, int], tuple[str, str | None]] = {
    (0, 0x05): ("name", None),
    (0, 0x06): ("value", None),
    (0, 0x45): ("version", None),
    (0, 0x46): ("version", "1.0"),
    (0, 0x50): ("type", None),
    (0, 0x5C): ("type", "BEARERINFO"),
    (0, 0x5D): ("type", "DNS-ADDRINFO"),
    (0, 0x47): ("name", "PULLENABLED"),
    (0, 0x48): ("name", "DNS-ADDR"),
    (0, 0x49): ("name", "MAX-NUM-RETRY"),
    (0, 0x4A): ("name", "FIRST-RETRY-TIMEOUT"),
    (0, 0x4B): ("name", "REREG-THRESHOLD"),
    (0, 0x4C): ("name", "T-BIT"),
    (0, 0x4E): ("name", "AUTH-ENTITY"),
    (0, 0x4F): ("name", "SPI"),
    (1, 0x05): ("name", None),
    (1, 0x06): ("value", None),
    (1, 0x07): ("name", "NAME"),
    (1, 0x14): ("name", "INTERNET"),
    (1, 0x1C): ("name", "STARTPAGE"),
    (1, 0x22): ("name", "TO-NAPID"),
    (1, 0x23): ("name", "PORTNBR"),
    (1, 0x24): ("name", "SERVICE"),
    (1, 0x50): ("type", None),
    (1, 0x53): ("type", "PORT"),
    (1, 0x55): ("type", "APPLICATION"),
    (1, 0x56): ("type", "APPADDR"),
    (1, 0x57): ("type", "APPAUTH"),
    (1, 0x58): ("type", "CLIENTIDENTITY"),
    (1, 0x59): ("type", "RESOURCE"),
}
_ATTR_START.update({(0, 0x51 + i): ("type", t) for i, t in enumerate(_TYPES_0)})
_ATTR_START.update({(0, 0x07 + i): ("name", n) for i, n in enumerate(_NAMES_0)})
_NAMES_1 = [
    "AACCEPT",
    "AAUTHDATA",
    "AAUTHLEVEL",
    "AAUTHNAME",
    "AAUTHSECRET",
    "AAUTHTYPE",
    "ADDR",
    "ADDRTYPE",
    "APPID",
    "APROTOCOL",
    "PROVIDER-ID",
    "TO-PROXY",
    "URI",
    "RULE",
    "APPREF",
    "TO-APPREF",
]
_ATTR_START.update({(1, 0x2E + i): ("name", n) for i, n in enumerate(_NAMES_1)})

_BEARERS = [
    "GSM-USSD",
    "GSM-SMS",
    "ANSI-136-GUTS",
    "IS-95-CDMA-SMS",
    "IS-95-CDMA-CSD",
    "IS-95-CDMA-PACKET",
    "ANSI-136-CSD",
    "ANSI-136-GPRS",
    "GSM-CSD",
    "GSM-GPRS",
    "AMPS-CDPD",
    "PDC-CSD",
    "PDC-PACKET",
    "IDEN-SMS",
    "IDEN-CSD",
    "IDEN-PACKET",
    "FLEX/REFLEX",
    "PHS-SMS",
    "PHS-CSD",
    "TRETRA-SDS",
    "TRETRA-PACKET",
    "ANSI-136-GHOST",
    "MOBITEX-MPAK",
    "CDMA2000-1X-SIMPLE-IP",
    "CDMA2000-1X-MOBILE-IP",
    "3G-GSM",
    "WLAN",
]
_CALLTYPES = [
    "ANALOG-MODEM",
    "V.120",
    "V.110",
    "X.31",
    "BIT-TRANSPARENT",
    "DIRECT-ASYNCHRONOUS-DATA-SERVICE",
]
_SERVICES = [
    "CL-WSP",
    "CO-WSP",
    "CL-SEC-WSP",
    "CO-SEC-WSP",
    "CL-SEC-WTA",
    "CO-SEC-WTA",
    "OTA-HTTP-TO",
    "OTA-HTTP-TLS-TO",
    "OTA-HTTP-PO",
    "OTA-HTTP-TLS-PO",
]
_ATTR_VALUE: dict[tuple[int, int], str] = {
    (0, 0x85 + i): v
    for i, v in enumerate(["IPV4", "IPV6", "E164", "ALPHA", "APN", "SCODE", "TETRA-ITSI", "MAN"])
}
_ATTR_VALUE.update({(0, 0x90 + i): v for i, v in enumerate(_CALLTYPES)})
_ATTR_VALUE.update(
    {
        (0, 0x9A + i): v
        for i, v in enumerate(["PAP", "CHAP", "HTTP-BASIC", "HTTP-DIGEST", "WTLS-SS", "MD5"])
    }
)
_ATTR_VALUE.update({(0, 0xA2 + i): v for i, v in enumerate(_BEARERS)})
_ATTR_VALUE.update({(0, 0xCA + i): v for i, v in enumerate(_SERVICES)})
_ATTR_VALUE.update({(0, 0xC5): "AUTOBAUDING", (0, 0xE0): "AAA", (0, 0xE1): "HA"})
_ATTR_VALUE.update(
    {
        (1, 0x86): "IPV6",
        (1, 0x87): "E164",
        (1, 0x88): "ALPHA",
        (1, 0x8D): "APPSRV",
        (1, 0x8E): "OBEX",
        (1, 0x90): ",",
        (1, 0x91): "HTTP-",
        (1, 0x92): "BASIC",
        (1, 0x93): "DIGEST",
    }
)


_XML_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"})


def _escape(text: str) -> str:
    return text.translate(_XML_ESCAPES)


class WbxmlError(ValueError):
    """Bytes that are not a well-formed OMA CP WBXML document."""


@dataclass(slots=True)
class Element:
    """One decoded element: tag name, attributes in document order, child elements."""

    tag: str
    attrs: list[tuple[str, str]] = field(default_factory=list)
    children: list[Element] = field(default_factory=list)

    def attr(self, name: str) -> str | None:
        return next((v for k, v in self.attrs if k == name), None)


@dataclass(frozen=True, slots=True)
class ProvDocument:
    """A decoded provisioning document: its root, XML text and PARM values.

    ``parameters`` maps each PARM name to the first value seen in document order (``NAME``
    therefore comes from the first characteristic that has one) and also each
    characteristic path, e.g. ``APPLICATION/ADDR`` or ``NAPDEF/NAPAUTHINFO/AUTHNAME``.
    """

    root: Element
    xml: str
    parameters: dict[str, str]


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.strtbl = b""
        self.charset = "utf-8"
        self.tag_page = 0
        self.attr_page = 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise WbxmlError(f"unexpected end of document at offset {self.pos}")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def mb_u_int32(self) -> int:
        value = 0
        for _ in range(5):
            b = self.byte()
            value = (value << 7) | (b & 0x7F)
            if not b & 0x80:
                return value
        raise WbxmlError("mb_u_int32 longer than 5 octets")

    def inline_string(self) -> str:
        end = self.data.find(b"\x00", self.pos)
        if end < 0:
            raise WbxmlError(f"inline string at offset {self.pos} has no terminator")
        raw = self.data[self.pos : end]
        self.pos = end + 1
        return self._text(raw)

    def table_string(self, index: int) -> str:
        if index >= len(self.strtbl):
            raise WbxmlError(f"string table reference {index} out of range")
        end = self.strtbl.find(b"\x00", index)
        return self._text(self.strtbl[index : end if end >= 0 else len(self.strtbl)])

    def opaque(self) -> str:
        n = self.mb_u_int32()
        if self.pos + n > len(self.data):
            raise WbxmlError("opaque data runs past the document")
        raw = self.data[self.pos : self.pos + n]
        self.pos += n
        return self._text(raw)

    def _text(self, raw: bytes) -> str:
        try:
            return raw.decode(self.charset)
        except UnicodeDecodeError as exc:
            raise WbxmlError(f"string not valid {self.charset}: {exc.reason}") from None


def _header(r: _Reader) -> None:
    version = r.byte()
    if not 0x01 <= version <= 0x03:
        raise WbxmlError(f"unsupported WBXML version 0x{version:02X}")
    public_id = r.mb_u_int32()
    fpi_index = r.mb_u_int32() if public_id == 0 else None
    mib = r.mb_u_int32()
    if mib not in _CHARSETS and mib != 0:
        raise WbxmlError(f"unsupported charset MIBenum {mib}")
    r.charset = _CHARSETS.get(mib, "utf-8")
    n = r.mb_u_int32()
    if r.pos + n > len(r.data):
        raise WbxmlError("string table runs past the document")
    r.strtbl = r.data[r.pos : r.pos + n]
    r.pos += n
    if fpi_index is not None:
        fpi = r.table_string(fpi_index)
        if fpi != PROV_FPI:
            raise WbxmlError(f"not a provisioning document (public id {fpi!r})")
    elif public_id != PUBLIC_ID_PROV:
        raise WbxmlError(f"not a provisioning document (public id 0x{public_id:02X})")


def _attributes(r: _Reader) -> list[tuple[str, str]]:  # noqa: PLR0912 - one branch per token
    attrs: list[tuple[str, str]] = []
    name: str | None = None
    parts: list[str] = []
    while True:
        b = r.byte()
        if b == SWITCH_PAGE:
            r.attr_page = r.byte()
            continue
        if b in (END, LITERAL) or (b < 0x80 and b not in (ENTITY, STR_I)):
            if name is not None:
                attrs.append((name, "".join(parts)))
            if b == END:
                return attrs
            if b == LITERAL:
                name, parts = r.table_string(r.mb_u_int32()), []
                continue
            if b in _UNSUPPORTED:
                raise WbxmlError(f"unsupported token 0x{b:02X} at offset {r.pos - 1}")
            start = _ATTR_START.get((r.attr_page, b))
            if start is None:
                raise WbxmlError(
                    f"unknown attribute token 0x{b:02X} on page {r.attr_page} at offset {r.pos - 1}"
                )
            name, prefix = start
            parts = [prefix] if prefix else []
            continue
        if name is None:
            raise WbxmlError(f"attribute value without an attribute at offset {r.pos - 1}")
        if b == STR_I:
            parts.append(r.inline_string())
        elif b == STR_T:
            parts.append(r.table_string(r.mb_u_int32()))
        elif b == ENTITY:
            parts.append(chr(r.mb_u_int32()))
        elif b == OPAQUE:
            parts.append(r.opaque())
        elif b in _UNSUPPORTED:
            raise WbxmlError(f"unsupported token 0x{b:02X} at offset {r.pos - 1}")
        else:
            value = _ATTR_VALUE.get((r.attr_page, b))
            if value is None:
                raise WbxmlError(
                    f"unknown value token 0x{b:02X} on page {r.attr_page} at offset {r.pos - 1}"
                )
            parts.append(value)


def _element(r: _Reader, depth: int = 0) -> Element:  # noqa: PLR0912 - one branch per token
    if depth > 32:
        raise WbxmlError("elements nested too deeply")
    while True:
        b = r.byte()
        if b != SWITCH_PAGE:
            break
        r.tag_page = r.byte()
    if b & 0x3F == LITERAL:
        tag = r.table_string(r.mb_u_int32())
    else:
        found = _TAGS.get((r.tag_page, b & 0x3F))
        if found is None:
            raise WbxmlError(
                f"unknown tag token 0x{b:02X} on page {r.tag_page} at offset {r.pos - 1}"
            )
        tag = found
    element = Element(tag)
    if b & 0x80:
        element.attrs = _attributes(r)
    if b & 0x40:
        while True:
            c = r.data[r.pos] if r.pos < len(r.data) else -1
            if c == END:
                r.pos += 1
                break
            if c == SWITCH_PAGE:
                r.pos += 1
                r.tag_page = r.byte()
            elif c == STR_I:  # character data: provisioning documents have none that matters
                r.pos += 1
                r.inline_string()
            elif c in (STR_T, ENTITY):
                r.pos += 1
                r.mb_u_int32()
            elif c == OPAQUE:
                r.pos += 1
                r.opaque()
            elif c == -1:
                raise WbxmlError(f"element <{tag}> is not closed")
            elif c in _UNSUPPORTED:
                raise WbxmlError(f"unsupported token 0x{c:02X} at offset {r.pos}")
            else:
                element.children.append(_element(r, depth + 1))
    return element


def _to_xml(element: Element, indent: int, out: list[str]) -> None:
    pad = "  " * indent
    attrs = "".join(f' {_escape(k)}="{_escape(v)}"' for k, v in element.attrs)
    if not element.children:
        out.append(f"{pad}<{_escape(element.tag)}{attrs}/>")
        return
    out.append(f"{pad}<{_escape(element.tag)}{attrs}>")
    for child in element.children:
        _to_xml(child, indent + 1, out)
    out.append(f"{pad}</{_escape(element.tag)}>")


def _collect(element: Element, path: tuple[str, ...], params: dict[str, str]) -> None:
    for child in element.children:
        if child.tag == "characteristic":
            _collect(child, (*path, child.attr("type") or "?"), params)
        elif child.tag == "parm":
            name, value = child.attr("name"), child.attr("value")
            if name is None:
                continue
            params.setdefault(name, value or "")
            params.setdefault("/".join((*path, name)), value or "")


def decode_prov(data: bytes) -> ProvDocument:
    """Decode a provisioning WBXML document; raise ``WbxmlError`` when it is not one."""
    r = _Reader(data)
    _header(r)
    root = _element(r)
    if root.tag != "wap-provisioningdoc":
        raise WbxmlError(f"root element is <{root.tag}>, not <wap-provisioningdoc>")
    if r.pos != len(data):
        raise WbxmlError(f"{len(data) - r.pos} octets after the end of the document")
    lines = ['<?xml version="1.0"?>']
    _to_xml(root, 0, lines)
    params: dict[str, str] = {}
    _collect(root, (), params)
    return ProvDocument(root, "\n".join(lines) + "\n", params)

"""OMA Client Provisioning documents: the model, the MMS settings builder, WBXML and XML.

A ``wap-provisioningdoc`` is a tree of ``characteristic`` elements holding ``parm`` name/value
pairs (OMA-WAP-TS-ProvCont). Handsets receive it as WBXML 1.3 with the PROV 1.0 public id.
The encoder follows the rules that make its bytes equal to Kannel's and to libwbxml's
``xml2wbxml -n -v 1.3``: code-page-0 tag tokens, attribute-start tokens looked up in the
ProvCont table order, whole-value attribute-value tokens only (never substrings), and inline
strings for everything else. Matching is case-sensitive, so a value decodes to exactly the
text that was encoded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.sax.saxutils import quoteattr

__all__ = [
    "PROV_DOCTYPE",
    "Characteristic",
    "MmsSettings",
    "NapAuth",
    "Parm",
    "ProvisioningDoc",
    "build_mms_document",
    "encode_wbxml",
    "render_xml",
]

PROV_DOCTYPE = (
    '<!DOCTYPE wap-provisioningdoc PUBLIC "-//WAPFORUM//DTD PROV 1.0//EN" '
    '"http://www.wapforum.org/DTD/prov.dtd">'
)

# -- the document model ---------------------------------------------------------------------


@dataclass(frozen=True)
class Parm:
    """One ``<parm name=... value=.../>``; ``value`` None means the parm has no value."""

    name: str
    value: str | None = None


@dataclass(frozen=True)
class Characteristic:
    """One ``<characteristic type=...>`` with its parms and nested characteristics in order."""

    type: str
    items: tuple[Parm | Characteristic, ...] = ()


@dataclass(frozen=True)
class ProvisioningDoc:
    """The root ``<wap-provisioningdoc version=...>``."""

    characteristics: tuple[Characteristic, ...]
    version: str = "1.0"


# -- MMS settings -> document -----------------------------------------------------------------


@dataclass(frozen=True)
class NapAuth:
    """NAPAUTHINFO: how the handset authenticates on the access point (often PAP)."""

    auth_type: str = "PAP"
    auth_name: str = ""
    auth_secret: str = ""


@dataclass(frozen=True)
class MmsSettings:
    """Everything an MMS-capable handset needs: APN, WAP proxy, MMSC, and their names.

    The ids (``napid``, ``proxy_id``, ``physical_proxy_id``) only link the characteristics to
    each other inside the document; handsets match them case-sensitively.
    """

    name: str
    apn: str
    proxy_address: str
    proxy_port: int
    mmsc_url: str
    napid: str = "MMS_NAP"
    proxy_id: str = "MMS_PROXY"
    physical_proxy_id: str = "MMS_PXP"
    bearer: str | None = None
    nap_auth: NapAuth | None = None
    port_service: str | None = None
    application_name: str | None = None


def build_mms_document(s: MmsSettings) -> ProvisioningDoc:
    """The provisioning document operators push for MMS (BOOTSTRAP, NAPDEF, PXLOGICAL, w4).

    The order and the links follow real operator messages: the w4 APPLICATION points at the
    proxy with TO-PROXY (some clients set the MMSC only then) and PXPHYSICAL at the NAPDEF.
    """
    nap: list[Parm | Characteristic] = [Parm("NAPID", s.napid)]
    if s.bearer:
        nap.append(Parm("BEARER", s.bearer))
    nap += [Parm("NAME", s.name), Parm("NAP-ADDRESS", s.apn), Parm("NAP-ADDRTYPE", "APN")]
    if s.nap_auth is not None:
        auth: list[Parm | Characteristic] = [Parm("AUTHTYPE", s.nap_auth.auth_type)]
        if s.nap_auth.auth_name:
            auth.append(Parm("AUTHNAME", s.nap_auth.auth_name))
        if s.nap_auth.auth_secret:
            auth.append(Parm("AUTHSECRET", s.nap_auth.auth_secret))
        nap.append(Characteristic("NAPAUTHINFO", tuple(auth)))

    port: list[Parm | Characteristic] = [Parm("PORTNBR", str(s.proxy_port))]
    if s.port_service:
        port.append(Parm("SERVICE", s.port_service))
    physical = Characteristic(
        "PXPHYSICAL",
        (
            Parm("PHYSICAL-PROXY-ID", s.physical_proxy_id),
            Parm("PXADDR", s.proxy_address),
            Parm("PXADDRTYPE", "IPV4"),
            Parm("TO-NAPID", s.napid),
            Characteristic("PORT", tuple(port)),
        ),
    )
    application: list[Parm | Characteristic] = [
        Parm("APPID", "w4"),
        Parm("TO-PROXY", s.proxy_id),
        Parm("ADDR", s.mmsc_url),
    ]
    if s.application_name:
        application.append(Parm("NAME", s.application_name))
    return ProvisioningDoc(
        (
            Characteristic("BOOTSTRAP", (Parm("NAME", s.name),)),
            Characteristic("NAPDEF", tuple(nap)),
            Characteristic(
                "PXLOGICAL", (Parm("PROXY-ID", s.proxy_id), Parm("NAME", s.name), physical)
            ),
            Characteristic("APPLICATION", tuple(application)),
        )
    )


# -- WBXML tables (ProvCont §7, in the order Kannel's compiler walks them) --------------------

_WBXML_VERSION_1_3 = 0x03
_PUBLIC_ID_PROV10 = 0x0B  # "-//WAPFORUM//DTD PROV 1.0//EN"; ProvCont 1.1 reuses it
_CHARSET_UTF8 = 0x6A  # IANA MIBenum 106
_SWITCH_PAGE = 0x00
_END = 0x01
_STR_I = 0x03
_HAS_ATTRIBUTES = 0x80
_HAS_CONTENT = 0x40
_TAG_DOC = 0x05
_TAG_CHARACTERISTIC = 0x06
_TAG_PARM = 0x07

_Token = tuple[int, int]  # (attribute code page, token)

_TYPES: dict[str, tuple[_Token, ...]] = {
    "PXLOGICAL": ((0, 0x51),),
    "PXPHYSICAL": ((0, 0x52),),
    "PORT": ((0, 0x53), (1, 0x53)),
    "VALIDITY": ((0, 0x54),),
    "NAPDEF": ((0, 0x55),),
    "BOOTSTRAP": ((0, 0x56),),
    "VENDORCONFIG": ((0, 0x57),),
    "CLIENTIDENTITY": ((0, 0x58), (1, 0x58)),
    "PXAUTHINFO": ((0, 0x59),),
    "NAPAUTHINFO": ((0, 0x5A),),
    "ACCESS": ((0, 0x5B),),
    "APPLICATION": ((1, 0x55),),
    "APPADDR": ((1, 0x56),),
    "APPAUTH": ((1, 0x57),),
    "RESOURCE": ((1, 0x59),),
}

_PAGE0_NAMES = {
    "NAME": 0x07, "NAP-ADDRESS": 0x08, "NAP-ADDRTYPE": 0x09, "CALLTYPE": 0x0A,
    "VALIDUNTIL": 0x0B, "AUTHTYPE": 0x0C, "AUTHNAME": 0x0D, "AUTHSECRET": 0x0E,
    "LINGER": 0x0F, "BEARER": 0x10, "NAPID": 0x11, "COUNTRY": 0x12, "NETWORK": 0x13,
    "INTERNET": 0x14, "PROXY-ID": 0x15, "PROXY-PROVIDER-ID": 0x16, "DOMAIN": 0x17,
    "PROVURL": 0x18, "PXAUTH-TYPE": 0x19, "PXAUTH-ID": 0x1A, "PXAUTH-PW": 0x1B,
    "STARTPAGE": 0x1C, "BASAUTH-ID": 0x1D, "BASAUTH-PW": 0x1E, "PUSHENABLED": 0x1F,
    "PXADDR": 0x20, "PXADDRTYPE": 0x21, "TO-NAPID": 0x22, "PORTNBR": 0x23, "SERVICE": 0x24,
    "LINKSPEED": 0x25, "DNLINKSPEED": 0x26, "LOCAL-ADDR": 0x27, "LOCAL-ADDRTYPE": 0x28,
    "CONTEXT-ALLOW": 0x29, "TRUST": 0x2A, "MASTER": 0x2B, "SID": 0x2C, "SOC": 0x2D,
    "WSP-VERSION": 0x2E, "PHYSICAL-PROXY-ID": 0x2F, "CLIENT-ID": 0x30,
    "DELIVERY-ERR-SDU": 0x31, "DELIVERY-ORDER": 0x32, "TRAFFIC-CLASS": 0x33,
    "MAX-SDU-SIZE": 0x34, "MAX-BITRATE-UPLINK": 0x35, "MAX-BITRATE-DNLINK": 0x36,
    "RESIDUAL-BER": 0x37, "SDU-ERROR-RATIO": 0x38, "TRAFFIC-HANDL-PRIO": 0x39,
    "TRANSFER-DELAY": 0x3A, "GUARANTEED-BITRATE-UPLINK": 0x3B,
    "GUARANTEED-BITRATE-DNLINK": 0x3C, "PXADDR-FQDN": 0x3D, "PROXY-PW": 0x3E,
    "PPGAUTH-TYPE": 0x3F, "PULLENABLED": 0x47, "DNS-ADDR": 0x48, "MAX-NUM-RETRY": 0x49,
    "FIRST-RETRY-TIMEOUT": 0x4A, "REREG-THRESHOLD": 0x4B, "T-BIT": 0x4C,
    "AUTH-ENTITY": 0x4E, "SPI": 0x4F,
}  # fmt: skip
_PAGE1_NAMES = {
    "NAME": 0x07, "INTERNET": 0x14, "STARTPAGE": 0x1C, "TO-NAPID": 0x22, "PORTNBR": 0x23,
    "SERVICE": 0x24, "AACCEPT": 0x2E, "AAUTHDATA": 0x2F, "AAUTHLEVEL": 0x30,
    "AAUTHNAME": 0x31, "AAUTHSECRET": 0x32, "AAUTHTYPE": 0x33, "ADDR": 0x34,
    "ADDRTYPE": 0x35, "APPID": 0x36, "APROTOCOL": 0x37, "PROVIDER-ID": 0x38,
    "TO-PROXY": 0x39, "URI": 0x3A, "RULE": 0x3B,
}  # fmt: skip

# Left out on purpose: 0xB5 TETRA-SDS and 0xB6 TETRA-PACKET, which libwbxml and other decoders
# spell "TRETRA-..."; sent inline, those values reach every client as written.
_PAGE0_VALUES = {
    "IPV4": 0x85, "IPV6": 0x86, "E164": 0x87, "ALPHA": 0x88, "APN": 0x89, "SCODE": 0x8A,
    "TETRA-ITSI": 0x8B, "MAN": 0x8C, "ANALOG-MODEM": 0x90, "V.120": 0x91, "V.110": 0x92,
    "X.31": 0x93, "BIT-TRANSPARENT": 0x94, "DIRECT-ASYNCHRONOUS-DATA-SERVICE": 0x95,
    "PAP": 0x9A, "CHAP": 0x9B, "HTTP-BASIC": 0x9C, "HTTP-DIGEST": 0x9D, "WTLS-SS": 0x9E,
    "MD5": 0x9F, "GSM-USSD": 0xA2, "GSM-SMS": 0xA3, "ANSI-136-GUTS": 0xA4,
    "IS-95-CDMA-SMS": 0xA5, "IS-95-CDMA-CSD": 0xA6, "IS-95-CDMA-PACKET": 0xA7,
    "ANSI-136-CSD": 0xA8, "ANSI-136-GPRS": 0xA9, "GSM-CSD": 0xAA, "GSM-GPRS": 0xAB,
    "AMPS-CDPD": 0xAC, "PDC-CSD": 0xAD, "PDC-PACKET": 0xAE, "IDEN-SMS": 0xAF,
    "IDEN-CSD": 0xB0, "IDEN-PACKET": 0xB1, "FLEX/REFLEX": 0xB2, "PHS-SMS": 0xB3,
    "PHS-CSD": 0xB4, "ANSI-136-GHOST": 0xB7,
    "MOBITEX-MPAK": 0xB8, "CDMA2000-1X-SIMPLE-IP": 0xB9, "CDMA2000-1X-MOBILE-IP": 0xBA,
    "AUTOBAUDING": 0xC5, "CL-WSP": 0xCA, "CO-WSP": 0xCB, "CL-SEC-WSP": 0xCC,
    "CO-SEC-WSP": 0xCD, "CL-SEC-WTA": 0xCE, "CO-SEC-WTA": 0xCF, "OTA-HTTP-TO": 0xD0,
    "OTA-HTTP-TLS-TO": 0xD1, "OTA-HTTP-PO": 0xD2, "OTA-HTTP-TLS-PO": 0xD3, "AAA": 0xE0,
    "HA": 0xE1,
}  # fmt: skip
_PAGE1_VALUES = {
    "IPV6": 0x86, "E164": 0x87, "ALPHA": 0x88, "APPSRV": 0x8D, "OBEX": 0x8E, ",": 0x90,
    "HTTP-": 0x91, "BASIC": 0x92, "DIGEST": 0x93,
}  # fmt: skip


def _candidates(page0: dict[str, int], page1: dict[str, int], key: str) -> tuple[_Token, ...]:
    found: list[_Token] = []
    if key in page0:
        found.append((0, page0[key]))
    if key in page1:
        found.append((1, page1[key]))
    return tuple(found)


# Catch-all attribute starts followed by an inline string (or, for value=, a value token).
_NAME_INLINE: tuple[_Token, ...] = ((0, 0x05), (1, 0x05))
_VALUE_START: tuple[_Token, ...] = ((0, 0x06), (1, 0x06))
_TYPE_INLINE: tuple[_Token, ...] = ((0, 0x50), (1, 0x50))
_VERSION_1_0: _Token = (0, 0x46)
_VERSION_INLINE: _Token = (0, 0x45)


class _Writer:
    """Emits tokens and tracks the attribute code page (tags never leave page 0)."""

    def __init__(self, compact: bool) -> None:
        self.out = bytearray()
        self.page = 0
        self.compact = compact

    def choose(self, options: tuple[_Token, ...]) -> _Token:
        # Kannel and libwbxml take the first entry in table order (page 0 first); the compact
        # form, seen in operators' own messages, stays on the current page when it can.
        if self.compact:
            for opt in options:
                if opt[0] == self.page:
                    return opt
        return options[0]

    def attr(self, token: _Token) -> None:
        page, code = token
        if page != self.page:
            self.out += bytes((_SWITCH_PAGE, page))
            self.page = page
        self.out.append(code)

    def inline(self, text: str) -> None:
        raw = text.encode("utf-8")
        if b"\x00" in raw:
            raise ValueError("a WBXML inline string cannot contain NUL")
        self.out.append(_STR_I)
        self.out += raw
        self.out.append(0x00)

    def value(self, text: str) -> None:
        tokens = _candidates(_PAGE0_VALUES, _PAGE1_VALUES, text)
        if tokens:
            page, code = self.choose(tokens)
            self.attr((page, 0x06))
            self.out.append(code)
        else:
            self.attr(self.choose(_VALUE_START))
            self.inline(text)


def _write_characteristic(w: _Writer, c: Characteristic) -> None:
    w.out.append(_TAG_CHARACTERISTIC | _HAS_ATTRIBUTES | (_HAS_CONTENT if c.items else 0))
    if c.type in _TYPES:
        w.attr(w.choose(_TYPES[c.type]))
    else:
        w.attr(w.choose(_TYPE_INLINE))
        w.inline(c.type)
    w.out.append(_END)
    for item in c.items:
        if isinstance(item, Characteristic):
            _write_characteristic(w, item)
        else:
            _write_parm(w, item)
    if c.items:
        w.out.append(_END)


def _write_parm(w: _Writer, p: Parm) -> None:
    w.out.append(_TAG_PARM | _HAS_ATTRIBUTES)
    tokens = _candidates(_PAGE0_NAMES, _PAGE1_NAMES, p.name)
    if tokens:
        w.attr(w.choose(tokens))
    else:
        w.attr(w.choose(_NAME_INLINE))
        w.inline(p.name)
    if p.value is not None:
        w.value(p.value)
    w.out.append(_END)


def encode_wbxml(doc: ProvisioningDoc, *, compact: bool = False) -> bytes:
    """The document as WBXML 1.3 (public id PROV 1.0, UTF-8, no string table).

    ``compact=False`` gives Kannel's bytes (attribute page back to 0 for every inline value);
    ``compact=True`` stays on the current attribute page where a token exists there, as
    operators' own messages do (about 10 bytes shorter; decodes to the same document).
    """
    w = _Writer(compact)
    w.out += bytes((_WBXML_VERSION_1_3, _PUBLIC_ID_PROV10, _CHARSET_UTF8, 0x00))
    w.out.append(_TAG_DOC | _HAS_ATTRIBUTES | (_HAS_CONTENT if doc.characteristics else 0))
    if doc.version == "1.0":
        w.attr(_VERSION_1_0)
    else:
        w.attr(_VERSION_INLINE)
        w.inline(doc.version)
    w.out.append(_END)
    for c in doc.characteristics:
        _write_characteristic(w, c)
    if doc.characteristics:
        w.out.append(_END)
    return bytes(w.out)


# -- XML text ---------------------------------------------------------------------------------


@dataclass
class _XmlLines:
    indent: str
    lines: list[str] = field(default_factory=list)

    def characteristic(self, c: Characteristic, depth: int) -> None:
        pad = self.indent * depth
        if not c.items:
            self.lines.append(f"{pad}<characteristic type={_attr(c.type)}/>")
            return
        self.lines.append(f"{pad}<characteristic type={_attr(c.type)}>")
        for item in c.items:
            if isinstance(item, Characteristic):
                self.characteristic(item, depth + 1)
            else:
                value = "" if item.value is None else f" value={_attr(item.value)}"
                self.lines.append(f"{pad}{self.indent}<parm name={_attr(item.name)}{value}/>")
        self.lines.append(f"{pad}</characteristic>")


def _attr(text: str) -> str:
    # Tabs and newlines would be normalised to spaces by an XML parser: keep them as references.
    return quoteattr(text, {"\t": "&#9;", "\n": "&#10;", "\r": "&#13;"})


def render_xml(doc: ProvisioningDoc, indent: str = "  ") -> str:
    """The document as XML text with the PROV 1.0 DOCTYPE (what the WBXML decodes to)."""
    x = _XmlLines(indent, ['<?xml version="1.0" encoding="UTF-8"?>', PROV_DOCTYPE])
    x.lines.append(f"<wap-provisioningdoc version={_attr(doc.version)}>")
    for c in doc.characteristics:
        x.characteristic(c, 1)
    x.lines.append("</wap-provisioningdoc>")
    return "\n".join(x.lines) + "\n"

"""WSP connectionless Push PDUs for OMA CP, with the SEC/MAC authentication parameters.

The PDU is ``TID | 0x06 Push | HeadersLen (uintvar) | Content-Type | body`` (WAP-230-WSP §8).
The content type is ``application/vnd.wap.connectivity-wbxml`` (well-known 0x36), in the general
form with the SEC and MAC parameters when the message is authenticated (OMA ProvBoot §5):
``MAC = uppercase hex of HMAC-SHA1(K, WBXML body)`` where K depends on the security method.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Literal

__all__ = [
    "CONTENT_TYPE_CONNECTIVITY_WBXML",
    "PushSecurity",
    "SecurityDecision",
    "SecurityMethod",
    "compute_mac",
    "decide_security",
    "encode_uintvar",
    "encode_value_length",
    "imsi_key",
    "mac_key",
    "push_headers",
    "push_pdu",
]

CONTENT_TYPE_CONNECTIVITY_WBXML = 0x36  # application/vnd.wap.connectivity-wbxml
_PDU_PUSH = 0x06
_PARAM_SEC = 0x11 | 0x80  # well-known parameter SEC (Short-integer)
_PARAM_MAC = 0x12 | 0x80  # well-known parameter MAC (Text-value)
_LENGTH_QUOTE = 0x1F
_SHORT_LENGTH_MAX = 30


class SecurityMethod(IntEnum):
    """The SEC parameter values (OMA ProvBoot); USERPINMAC is named but not produced here."""

    NETWPIN = 0
    USERPIN = 1
    USERNETWPIN = 2
    USERPINMAC = 3


def encode_uintvar(n: int) -> bytes:
    """WSP uintvar: 7 bits per octet, most significant first, continuation bit 0x80."""
    if n < 0:
        raise ValueError("uintvar cannot be negative")
    groups = [n & 0x7F]
    n >>= 7
    while n:
        groups.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(groups))


def encode_value_length(n: int) -> bytes:
    """WSP Value-length: a Short-length octet up to 30, else Length-quote 0x1F and a uintvar."""
    if n <= _SHORT_LENGTH_MAX:
        return bytes((n,))
    return bytes((_LENGTH_QUOTE,)) + encode_uintvar(n)


def imsi_key(imsi: str) -> bytes:
    """The NETWPIN key: the IMSI as the SIM stores it in EF_IMSI, without the length octet.

    Nibbles are [parity, d1 ... dn] with parity 9 for an odd digit count and 1 for an even one
    (then an F filler goes last), packed low nibble first: ``234150123456789`` -> ``29 43 51
    10 32 54 76 98``.
    """
    if not imsi.isascii() or not imsi.isdigit() or not 6 <= len(imsi) <= 15:
        raise ValueError("an IMSI is 6 to 15 decimal digits")
    nibbles = [9 if len(imsi) % 2 else 1, *(int(d) for d in imsi)]
    if len(nibbles) % 2:
        nibbles.append(0xF)
    return bytes(nibbles[i] | nibbles[i + 1] << 4 for i in range(0, len(nibbles), 2))


def _pin_bytes(pin: str) -> bytes:
    # Users type the PIN on a phone keypad: digits only.
    if not pin.isascii() or not pin.isdigit() or not 4 <= len(pin) <= 16:
        raise ValueError("a PIN is 4 to 16 decimal digits")
    return pin.encode("ascii")


def mac_key(method: SecurityMethod, imsi: str | None = None, pin: str | None = None) -> bytes:
    """The HMAC key for ``method``: IMSI key (NETWPIN), PIN (USERPIN), or both (USERNETWPIN)."""
    if method is SecurityMethod.NETWPIN:
        if not imsi:
            raise ValueError("NETWPIN needs the subscriber's IMSI")
        return imsi_key(imsi)
    if method is SecurityMethod.USERPIN:
        if not pin:
            raise ValueError("USERPIN needs a PIN")
        return _pin_bytes(pin)
    if method is SecurityMethod.USERNETWPIN:
        if not imsi or not pin:
            raise ValueError("USERNETWPIN needs the IMSI and a PIN")
        return imsi_key(imsi) + _pin_bytes(pin)
    raise ValueError(f"{method.name} is not supported (clients reject or ignore it)")


def compute_mac(key: bytes, body: bytes) -> str:
    """40 uppercase hex digits of HMAC-SHA1 over the exact WBXML body (clients compare case)."""
    return hmac.new(key, body, hashlib.sha1).hexdigest().upper()


@dataclass(frozen=True)
class PushSecurity:
    """SEC and MAC as they go into the push header."""

    method: SecurityMethod
    mac: str

    def __post_init__(self) -> None:
        if len(self.mac) != 40 or self.mac.upper() != self.mac or not self.mac.isalnum():
            raise ValueError("MAC is 40 uppercase hex digits")


def push_headers(security: PushSecurity | None) -> bytes:
    """The Content-Type header value: ``B6`` alone, or general form with SEC then MAC.

    SEC comes first and MAC right after it, nothing in between: some clients parse only that.
    """
    media = bytes((CONTENT_TYPE_CONNECTIVITY_WBXML | 0x80,))
    if security is None:
        return media
    params = (
        bytes((_PARAM_SEC, 0x80 | int(security.method), _PARAM_MAC))
        + security.mac.encode("ascii")
        + b"\x00"
    )
    content = media + params
    return encode_value_length(len(content)) + content


def push_pdu(body: bytes, security: PushSecurity | None, tid: int = 0x01) -> bytes:
    """The whole connectionless WSP Push PDU carrying ``body`` (the WBXML document)."""
    if not 0 <= tid <= 0xFF:
        raise ValueError("TID is one octet")
    headers = push_headers(security)
    return bytes((tid, _PDU_PUSH)) + encode_uintvar(len(headers)) + headers + body


# -- what to do for one subscriber -------------------------------------------------------------

Requestable = Literal["NETWPIN", "USERPIN", "USERNETWPIN"]
WithoutImsi = Literal["USERPIN", "NO_PUSH"]


@dataclass(frozen=True)
class SecurityDecision:
    """How (or whether) to authenticate the push for one subscriber, and why.

    ``pin_for_help_sms`` is set when the user must type a PIN to accept the settings: the help
    SMS that announces the push has to carry it. ``key`` is the HMAC key (never printed).
    """

    action: Literal["push", "no_push"]
    reason: str
    method: SecurityMethod | None = None
    pin_for_help_sms: str | None = None
    key: bytes = field(default=b"", repr=False)

    @property
    def pushes(self) -> bool:
        return self.action == "push"

    def security_for(self, body: bytes) -> PushSecurity:
        """SEC and MAC for ``body`` under this decision."""
        if self.method is None:
            raise ValueError("no push was decided: " + self.reason)
        return PushSecurity(self.method, compute_mac(self.key, body))


def decide_security(
    requested: Requestable,
    without_imsi: WithoutImsi,
    *,
    imsi: str | None,
    pin: str | None,
    new_pin: Callable[[], str],
) -> SecurityDecision:
    """Pick the security for one push from the profile's choice and what is known.

    NETWPIN and USERNETWPIN need the IMSI; without it the profile either falls back to USERPIN
    (the PIN then travels in the help SMS) or sends no push. ``new_pin`` makes a PIN when one
    is needed and none was given (the caller decides how: randomly in production).
    """
    if requested != "USERPIN" and not imsi:
        if without_imsi == "NO_PUSH":
            return SecurityDecision("no_push", f"{requested} needs the IMSI, which is unknown")
        chosen_pin = pin or new_pin()
        return SecurityDecision(
            "push",
            f"{requested} needs the IMSI, which is unknown: USERPIN, PIN sent in the help SMS",
            SecurityMethod.USERPIN,
            chosen_pin,
            mac_key(SecurityMethod.USERPIN, pin=chosen_pin),
        )
    if requested == "NETWPIN":
        return SecurityDecision(
            "push",
            "NETWPIN: the handset checks the IMSI of its SIM, no PIN to type",
            SecurityMethod.NETWPIN,
            None,
            mac_key(SecurityMethod.NETWPIN, imsi=imsi),
        )
    chosen_pin = pin or new_pin()
    method = SecurityMethod[requested]
    return SecurityDecision(
        "push",
        f"{requested}: the user types the PIN sent in the help SMS",
        method,
        chosen_pin,
        mac_key(method, imsi=imsi, pin=chosen_pin),
    )

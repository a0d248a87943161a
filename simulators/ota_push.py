"""OMA Client Provisioning pushes as a handset checks them: the WSP push is decoded, the
WBXML body turned into XML and parameters, and the MAC verified (OMA ProvBoot section 5.3).

MAC = uppercase hex of HMAC-SHA1(key, WBXML body). The key depends on SEC: the IMSI in
EF_IMSI semi-octet form (NETWPIN), the user PIN in ASCII (USERPIN), both (USERNETWPIN); for
USERPINMAC the PIN the user types is n digits followed by n MAC digits.
"""

from __future__ import annotations

import hashlib
import hmac

from .outcomes import OtaPush
from .wbxml_prov import WbxmlError, decode_prov
from .wsp_push import CONNECTIVITY_WBXML, WspError, decode_push

__all__ = ["OtaDecodeError", "decode_ota_push", "imsi_key", "mac_is_valid", "mac_of"]


class OtaDecodeError(ValueError):
    """A push the handset could not use (not WSP, not OMA CP, bad WBXML)."""


def imsi_key(imsi: str) -> bytes:
    """The IMSI in EF_IMSI semi-octet form without the length byte: nibbles [parity, digits],
    parity 9 for an odd number of digits and 1 for an even one (then an F filler), packed low
    nibble first. ``234150123456789`` -> ``29 43 51 10 32 54 76 98``."""
    digits = [int(c) for c in imsi if c.isdigit()]
    nibbles = [9 if len(digits) % 2 else 1, *digits]
    if len(nibbles) % 2:
        nibbles.append(0xF)
    return bytes(nibbles[i] | (nibbles[i + 1] << 4) for i in range(0, len(nibbles), 2))


def mac_of(key: bytes, body: bytes) -> str:
    """HMAC-SHA1 of ``body`` under ``key``, as 40 uppercase hex characters."""
    return hmac.new(key, body, hashlib.sha1).hexdigest().upper()


def _key(sec: str, imsi: str | None, pin: str | None) -> bytes | None:
    """The HMAC key for NETWPIN, USERPIN or USERNETWPIN (None: the handset lacks it)."""
    if sec == "NETWPIN":
        return imsi_key(imsi) if imsi is not None else None
    if sec == "USERPIN":
        return pin.encode("ascii") if pin is not None else None
    if sec == "USERNETWPIN" and imsi is not None and pin is not None:
        return imsi_key(imsi) + pin.encode("ascii")
    return None


def _userpinmac_is_valid(mac: str | None, body: bytes, pin: str | None) -> bool:
    """USERPINMAC: the PIN typed is n key digits then n digits derived from the HMAC."""
    if pin is None or len(pin) % 2 or not pin.isdigit():
        return False
    half = len(pin) // 2
    digest = hmac.new(pin[:half].encode("ascii"), body, hashlib.sha1).digest()
    expected = "".join(str(digest[i] % 10) for i in range(half))
    if not hmac.compare_digest(expected, pin[half:]):
        return False
    return mac is None or hmac.compare_digest(mac, digest.hex().upper())


def mac_is_valid(
    sec: str | None, mac: str | None, body: bytes, imsi: str | None, pin: str | None
) -> bool:
    """Whether the push's MAC matches the key the handset holds (False when unauthenticated
    or when the handset lacks what the method needs)."""
    if sec == "USERPINMAC":
        return _userpinmac_is_valid(mac, body, pin)
    if sec is None or mac is None:
        return False
    key = _key(sec, imsi, pin)
    return key is not None and hmac.compare_digest(mac_of(key, body), mac)


def decode_ota_push(msisdn: str, pdu: bytes, imsi: str | None, pin: str | None) -> OtaPush:
    """Decode a reassembled WDP payload sent to port 2948 into an ``OtaPush``."""
    try:
        push = decode_push(pdu)
    except WspError as exc:
        raise OtaDecodeError(f"WSP: {exc}") from None
    if push.content_type != CONNECTIVITY_WBXML:
        raise OtaDecodeError(f"content type {push.content_type!r} is not OMA CP WBXML")
    try:
        doc = decode_prov(push.body)
    except WbxmlError as exc:
        raise OtaDecodeError(f"WBXML: {exc}") from None
    return OtaPush(
        msisdn=msisdn,
        sec=push.sec,
        mac=push.mac,
        mac_valid=mac_is_valid(push.sec, push.mac, push.body, imsi, pin),
        xml=doc.xml,
        parameters=doc.parameters,
    )

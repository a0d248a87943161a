"""One OTA settings message for one subscriber: document, security decision, PDU, SMS segments.

This is the recipe the preview command shows and the dispatcher will send: profile -> OMA CP
document -> WBXML -> security decision (SEC/MAC) -> WSP push -> WDP SMS segments.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from mmsq.ota_cp import ProvisioningDoc, build_mms_document, encode_wbxml, render_xml
from mmsq.ota_profiles import OtaProfile
from mmsq.wap_push import PushSecurity, Requestable, SecurityDecision, decide_security, push_pdu
from mmsq.wdp import WAP_PUSH_PORT, SmsSegment, segment_datagram

__all__ = ["OtaMessage", "prepare_ota_message", "random_pin"]


def random_pin(length: int) -> str:
    """A fresh numeric PIN from the system's secure random source."""
    return "".join(secrets.choice("0123456789") for _ in range(length))


@dataclass(frozen=True)
class OtaMessage:
    """Everything about one OTA push; ``segments`` is empty when the decision is no push."""

    document: ProvisioningDoc
    xml: str
    wbxml: bytes
    decision: SecurityDecision
    security: PushSecurity | None
    pdu: bytes | None
    segments: tuple[SmsSegment, ...]

    @property
    def headers_length(self) -> int:
        """Octets of the WSP part before the WBXML body (TID, type, length, headers)."""
        return 0 if self.pdu is None else len(self.pdu) - len(self.wbxml)


def prepare_ota_message(
    profile: OtaProfile,
    *,
    imsi: str | None = None,
    pin: str | None = None,
    security: Requestable | None = None,
    reference: int = 0,
    tid: int = 0x01,
    new_pin: Callable[[], str] | None = None,
) -> OtaMessage:
    """Build the OTA message for one subscriber from ``profile``.

    ``security`` overrides the profile's method; ``new_pin`` makes a PIN when one is needed
    and none is given (default: a random one of the profile's length). ``reference`` is the
    SMS concatenation reference (0-255), new for every message to the same handset.
    """
    document = build_mms_document(profile.settings())
    wbxml = encode_wbxml(document, compact=profile.compact_wbxml)
    decision = decide_security(
        security or profile.security,
        profile.without_imsi,
        imsi=imsi,
        pin=pin,
        new_pin=new_pin or (lambda: random_pin(profile.pin_length)),
    )
    push_security = decision.security_for(wbxml) if decision.pushes else None
    pdu = push_pdu(wbxml, push_security, tid) if decision.pushes else None
    segments: tuple[SmsSegment, ...] = ()
    if pdu is not None:
        segments = tuple(
            segment_datagram(
                pdu, dest_port=WAP_PUSH_PORT, src_port=profile.source_port, reference=reference
            )
        )
    return OtaMessage(document, render_xml(document), wbxml, decision, push_security, pdu, segments)

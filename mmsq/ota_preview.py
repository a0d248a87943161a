"""What ``mmsq ota preview`` shows: one OTA message as a JSON document or as readable text.

Kept out of the CLI so that the rendering is plain code with plain tests; the CLI only gathers
the inputs (profile, IMSI, PIN, the optional wbxml2xml decoding) and prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, get_args

from mmsq.ota_message import OtaMessage
from mmsq.wap_push import Requestable

__all__ = ["OtaPreview", "parse_security"]


def parse_security(text: str | None) -> Requestable | None:
    """A security method named by the user (any letter case), or None for the profile's own."""
    if text is None:
        return None
    for method in get_args(Requestable):
        if text.strip().upper() == method:
            return method  # type: ignore[no-any-return]  # one of the Literal's own values
    raise ValueError(f"security must be one of {', '.join(get_args(Requestable))}, not {text!r}")


@dataclass(frozen=True)
class OtaPreview:
    """One OTA message for one (masked) subscriber, with what an independent decoder read."""

    msisdn_masked: str
    profile: str
    message: OtaMessage
    decoded_xml: str | None
    decoder_note: str

    def as_dict(self) -> dict[str, Any]:
        """The JSON document of ``mmsq ota preview --json``."""
        m, d = self.message, self.message.decision
        return {
            "msisdn": self.msisdn_masked,
            "profile": self.profile,
            "document_xml": m.xml,
            "wbxml_hex": m.wbxml.hex(),
            "wbxml_octets": len(m.wbxml),
            "security": {
                "action": d.action,
                "method": d.method.name if d.method is not None else None,
                "reason": d.reason,
                "pin_for_help_sms": d.pin_for_help_sms,
                "mac": m.security.mac if m.security else None,
            },
            "push_header_hex": m.pdu[: m.headers_length].hex() if m.pdu else None,
            "segments": [
                {
                    "seq": s.seq,
                    "total": s.total,
                    "udh_hex": s.udh.hex(),
                    "payload_hex": s.payload.hex(),
                    "short_message_hex": s.short_message.hex(),
                    "esm_class": s.esm_class,
                    "data_coding": s.data_coding,
                }
                for s in m.segments
            ],
            "decoded_xml": self.decoded_xml,
            "decoder": self.decoder_note,
        }

    def as_text(self) -> str:
        """The readable preview: XML, security and MAC, WBXML, header, segments, decoding."""
        m, d = self.message, self.message.decision
        lines = [
            f"OTA MMS settings for {self.msisdn_masked} (profile {self.profile})",
            "",
            "-- document (XML) --",
            m.xml.rstrip("\n"),
            "",
            f"-- security: {d.action} {d.method.name if d.method else ''}".rstrip() + " --",
            d.reason,
        ]
        if d.pin_for_help_sms:
            lines.append(f"PIN to put in the help SMS: {d.pin_for_help_sms}")
        if m.security:
            lines.append(f"MAC (HMAC-SHA1, uppercase hex): {m.security.mac}")
        lines += ["", f"-- WBXML ({len(m.wbxml)} octets) --", m.wbxml.hex(" ")]
        if m.pdu is not None:
            lines += ["", "-- WSP push header --", m.pdu[: m.headers_length].hex(" ")]
            lines += ["", f"-- SMS segments ({len(m.segments)}): UDH | payload --"]
            for s in m.segments:
                lines.append(
                    f"[{s.seq}/{s.total}] esm_class=0x{s.esm_class:02X} "
                    f"data_coding=0x{s.data_coding:02X} {len(s.short_message)} octets"
                )
                lines.append(f"  UDH     {s.udh.hex(' ')}")
                lines.append(f"  payload {s.payload.hex(' ')}")
        lines += ["", f"-- decoded XML ({self.decoder_note}) --"]
        if self.decoded_xml is not None:
            lines.append(self.decoded_xml.rstrip("\n"))
        return "\n".join(lines) + "\n"

"""SMPP 3.4 delivery receipts: the receipt text and the receipt TLVs.

Each text field is optional and read on its own (real SMSCs drop, reorder and re-case them);
the TLVs ``receipted_message_id``, ``message_state`` and ``network_error_code`` win when present.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from mmsq.domain import DeliveryReport

__all__ = [
    "ReceiptParseError",
    "SmppReceipt",
    "message_id_variants",
    "normalise_message_id",
    "parse_receipt",
]

_STATES = {
    1: "ENROUTE",
    2: "DELIVRD",
    3: "EXPIRED",
    4: "DELETED",
    5: "UNDELIV",
    6: "ACCEPTD",
    7: "UNKNOWN",
    8: "REJECTD",
    9: "SKIPPED",
}
_FIELDS = {
    "id": re.compile(r"\bid:\s*([0-9A-Za-z\-_.]{1,64})", re.IGNORECASE),
    "sub": re.compile(r"\bsub:\s*(\d{1,3})", re.IGNORECASE),
    "dlvrd": re.compile(r"\bdlvrd:\s*(\d{1,3})", re.IGNORECASE),
    "submit_date": re.compile(r"\bsubmit[ _]date:\s*(\d{10,14})", re.IGNORECASE),
    "done_date": re.compile(r"\bdone[ _]date:\s*(\d{10,14})", re.IGNORECASE),
    "stat": re.compile(r"\bstat:\s*([A-Za-z]{5,8})", re.IGNORECASE),
    "err": re.compile(r"\berr:\s*([0-9A-Fa-fx]{1,8})", re.IGNORECASE),
    "text": re.compile(r"\btext:\s?(.*)$", re.IGNORECASE | re.DOTALL),
}


class ReceiptParseError(ValueError):
    """Not a delivery receipt mmsq can read; the message says why."""


@dataclass(frozen=True, slots=True)
class SmppReceipt:
    message_id: str
    sub: str | None
    dlvrd: str | None
    submit_date: datetime | None
    done_date: datetime | None
    stat: str | None
    err: str | None
    text: str | None
    source_addr: str | None = None

    def to_report(self) -> DeliveryReport:
        return DeliveryReport(
            msisdn=self.source_addr or "",
            message_id=self.message_id,
            status_source="smpp",
            status_code=self.stat or "",
            error_code=self.err,
            submitted_at=self.submit_date,
            done_at=self.done_date,
        )


def _date(text: str | None, tz: tzinfo) -> datetime | None:
    if not text:
        return None
    formats = {10: "%y%m%d%H%M", 12: "%y%m%d%H%M%S", 14: "%Y%m%d%H%M%S"}
    fmt = formats.get(len(text))
    if fmt is None:
        return None
    try:
        return datetime.strptime(text, fmt).replace(tzinfo=tz)
    except ValueError:
        return None


def _tlv_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        value = bytes(value).split(b"\x00", 1)[0].decode("ascii", "replace")
    text = str(value).strip().strip("\x00")
    return text or None


def _network_error(value: object) -> str | None:
    """network_error_code: 3 octets (network type, 16-bit error) or ASCII digits."""
    if isinstance(value, bytes | bytearray):
        raw = bytes(value)
        if len(raw) == 3 and not raw.isdigit():
            return str(int.from_bytes(raw[1:3], "big"))
        return _tlv_text(raw)
    if isinstance(value, int):
        return str(value)
    return _tlv_text(value)


def parse_receipt(
    text: str | bytes,
    tlvs: Mapping[str, object] | None = None,
    source_addr: str | None = None,
    tz: tzinfo = UTC,
) -> SmppReceipt:
    """Read a receipt from its short_message text and optional TLVs."""
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("latin-1")
    tlvs = tlvs or {}
    found = {
        name: (m.group(1).strip() if (m := rx.search(text)) else None)
        for name, rx in _FIELDS.items()
    }
    message_id = _tlv_text(tlvs.get("receipted_message_id")) or found["id"]
    if not message_id:
        raise ReceiptParseError("no message id (neither id: in the text nor receipted_message_id)")
    state = tlvs.get("message_state")
    stat = _STATES.get(state) if isinstance(state, int) else None
    stat = stat or (found["stat"].upper() if found["stat"] else None)
    err = _network_error(tlvs["network_error_code"]) if "network_error_code" in tlvs else None
    return SmppReceipt(
        message_id=message_id,
        sub=found["sub"],
        dlvrd=found["dlvrd"],
        submit_date=_date(found["submit_date"], tz),
        done_date=_date(found["done_date"], tz),
        stat=stat,
        err=err or found["err"],
        text=found["text"],
        source_addr=source_addr,
    )


def normalise_message_id(mid: str) -> str:
    """Canonical form for correlation: trimmed, lower case, no leading zeros."""
    text = mid.strip().strip("\x00").lower()
    if text.startswith("0x"):
        text = text[2:]
    stripped = text.lstrip("0")
    return stripped or ("0" if text else "")


def message_id_variants(mid: str) -> frozenset[str]:
    """The canonical id plus its decimal<->hex reading: SMSCs that answer submit_sm in one
    base and receipt in the other are matched by comparing these sets."""
    canon = normalise_message_id(mid)
    variants = {canon}
    if canon.isdigit():
        variants.add(format(int(canon), "x"))
    if canon and all(c in "0123456789abcdef" for c in canon):
        variants.add(str(int(canon, 16)))
    return frozenset(v for v in variants if v)

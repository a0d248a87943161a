"""SMPP 3.4 delivery receipts: the receipt text and the receipt TLVs.

Each text field is optional and read on its own (real SMSCs drop, reorder and re-case them);
the TLVs ``receipted_message_id``, ``message_state`` and ``network_error_code`` win when present.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from mmsq.domain import DeliveryReport

__all__ = [
    "MAX_MESSAGE_ID_LENGTH",
    "MESSAGE_STATES",
    "ReceiptParseError",
    "SmppReceipt",
    "dec_to_hex",
    "hex_to_dec",
    "message_id_variants",
    "normalise_message_id",
    "parse_receipt",
]

MAX_MESSAGE_ID_LENGTH = 64
"""SMPP 3.4 message_id is a C-Octet String of at most 65 octets, NUL included."""

MESSAGE_STATES: Mapping[int, str] = {
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
"""message_state TLV value -> receipt ``stat:`` spelling (9 is SMPP 5.0)."""

_STATE_NAMES = {
    "DELIVERED": "DELIVRD",
    "UNDELIVERABLE": "UNDELIV",
    "ACCEPTED": "ACCEPTD",
    "REJECTED": "REJECTD",
} | {name: name for name in MESSAGE_STATES.values()}

_FLAGS = re.IGNORECASE | re.ASCII
_ID_CHARS = r"[0-9A-Za-z\-_.]"
_FIELDS = {
    "id": re.compile(rf"\bid:\s*({_ID_CHARS}+)", _FLAGS),
    "sub": re.compile(r"\bsub:\s*([0-9]{1,10})\b", _FLAGS),
    "dlvrd": re.compile(r"\bdlvrd:\s*([0-9]{1,10})\b", _FLAGS),
    "submit_date": re.compile(r"\bsubmit[ _]?date:\s*([0-9]{10,14})\b", _FLAGS),
    "done_date": re.compile(r"\bdone[ _]?date:\s*([0-9]{10,14})\b", _FLAGS),
    "stat": re.compile(r"\bstat:\s*([A-Za-z][A-Za-z_]{0,15})\b", _FLAGS),
    "err": re.compile(r"\berr:\s*([0-9A-Fa-fx]{1,8})\b", _FLAGS),
}
_TEXT = re.compile(r"\btext:\s?", _FLAGS)
_DATE_FORMATS = {10: "%y%m%d%H%M", 12: "%y%m%d%H%M%S", 14: "%Y%m%d%H%M%S"}
_TRIM = string.whitespace + "\x00"
_DEC = re.compile(r"[0-9]+", re.ASCII)
_HEX = re.compile(r"[0-9a-f]+", re.ASCII)


class ReceiptParseError(ValueError):
    """Not a delivery receipt mmsq can read; the message says why."""


@dataclass(frozen=True, slots=True)
class SmppReceipt:
    """One delivery receipt: the text fields as sent, TLV values preferred, dates aware."""

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
        """The receipt in the engine's vocabulary (status_source ``smpp``, err as error_code)."""
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
    """YYMMDDhhmm, YYMMDDhhmmss or YYYYMMDDhhmmss in ``tz``; None when unreadable."""
    fmt = _DATE_FORMATS.get(len(text)) if text else None
    if text is None or fmt is None:
        return None
    try:
        return datetime.strptime(text, fmt).replace(tzinfo=tz)
    except ValueError:
        return None


def _tlv_text(value: object) -> str | None:
    """A C-Octet String TLV (bytes or str) as text, cut at the first NUL and trimmed."""
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        value = bytes(value).split(b"\x00", 1)[0].decode("latin-1")
    text = str(value).split("\x00", 1)[0].strip(_TRIM)
    return text or None


def _message_state(value: object) -> str | None:
    """message_state TLV (int, 1-octet bytes, digits or a state name) as a ``stat:`` value."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, bytes | bytearray):
        raw = bytes(value)
        value = raw[0] if len(raw) == 1 and not raw.isdigit() else raw.decode("latin-1")
    if isinstance(value, int):
        return MESSAGE_STATES.get(value)
    text = str(value).strip(_TRIM).upper()
    if _DEC.fullmatch(text):
        return MESSAGE_STATES.get(int(text))
    return _STATE_NAMES.get(text)


def _as_octets(value: object) -> bytes | None:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str) and all(ord(c) < 256 for c in value):
        return value.encode("latin-1")
    return None


def _network_error(value: object) -> str | None:
    """network_error_code: 3 octets (network type, 16-bit error) or ASCII digits, as decimal."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raw = _as_octets(value)
    if raw is None:
        return None
    if len(raw) == 3 and not raw.isdigit():
        return str(int.from_bytes(raw[1:3], "big"))
    digits = raw.strip(_TRIM.encode())
    if digits.isdigit():
        return digits.decode("ascii")
    if len(raw) in (1, 2):
        return str(int.from_bytes(raw, "big"))
    return None


def _fields(text: str) -> dict[str, str | None]:
    """Each receipt field searched on its own, before ``text:`` first, then anywhere."""
    marker = _TEXT.search(text)
    head = text[: marker.start()] if marker else text
    found: dict[str, str | None] = {}
    for name, rx in _FIELDS.items():
        m = rx.search(head) or (rx.search(text) if marker else None)
        found[name] = m.group(1) if m else None
    found["text"] = text[marker.end() :].strip(_TRIM) if marker else None
    return found


def parse_receipt(
    text: str | bytes,
    tlvs: Mapping[str, object] | None = None,
    source_addr: str | None = None,
    tz: tzinfo = UTC,
) -> SmppReceipt:
    """Read a receipt from its short_message text and optional TLVs (TLVs win).

    Raises ReceiptParseError when there is no message id or nothing that looks like a receipt.
    """
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("latin-1")
    tlvs = tlvs or {}
    found = _fields(text)
    stat = _message_state(tlvs.get("message_state"))
    if stat is None and found["stat"]:
        stat = found["stat"].upper()
    err = _network_error(tlvs.get("network_error_code")) or found["err"]
    receipt_like = [found[k] for k in ("sub", "dlvrd", "submit_date", "done_date")]
    message_id = _tlv_text(tlvs.get("receipted_message_id")) or found["id"]
    if not message_id:
        if stat is None and err is None and not any(receipt_like):
            raise ReceiptParseError(
                "not a delivery receipt: no id:, stat:, err: or date fields and no receipt TLVs"
            )
        raise ReceiptParseError("no message id (neither id: in the text nor receipted_message_id)")
    if len(message_id) > MAX_MESSAGE_ID_LENGTH:
        raise ReceiptParseError(
            f"message id of {len(message_id)} characters (SMPP allows {MAX_MESSAGE_ID_LENGTH})"
        )
    if stat is None and err is None and not any(receipt_like):
        raise ReceiptParseError(
            "not a delivery receipt: an id but no stat:, err:, sub:, dlvrd: or date fields"
        )
    return SmppReceipt(
        message_id=message_id,
        sub=found["sub"],
        dlvrd=found["dlvrd"],
        submit_date=_date(found["submit_date"], tz),
        done_date=_date(found["done_date"], tz),
        stat=stat,
        err=err,
        text=found["text"],
        source_addr=source_addr,
    )


def normalise_message_id(mid: str) -> str:
    """Canonical id for correlation: trimmed of spaces/NULs, lower case, and for a decimal or
    hex id (``0x`` prefix allowed) without leading zeros. Other ids are only trimmed/lowered."""
    text = mid.strip(_TRIM).lower()
    digits = text[2:] if text.startswith("0x") and _HEX.fullmatch(text[2:]) else text
    if _HEX.fullmatch(digits):
        return digits.lstrip("0") or "0"
    return text


def hex_to_dec(mid: str) -> str | None:
    """The decimal reading of a hex id (``"1f4"`` -> ``"500"``), or None when it is not hex."""
    canon = normalise_message_id(mid)
    if not _HEX.fullmatch(canon) or len(canon) > MAX_MESSAGE_ID_LENGTH:
        return None
    return str(int(canon, 16))


def dec_to_hex(mid: str) -> str | None:
    """The lower-case hex reading of a decimal id (``"500"`` -> ``"1f4"``), or None."""
    canon = normalise_message_id(mid)
    if not _DEC.fullmatch(canon) or len(canon) > MAX_MESSAGE_ID_LENGTH:
        return None
    return format(int(canon), "x")


def message_id_variants(mid: str) -> frozenset[str]:
    """The canonical id plus its decimal<->hex reinterpretations, for correlation.

    Some SMSCs give the id in hex in submit_sm_resp and in decimal in the receipt (Kannel's
    ``msg-id-type``): two ids denote the same message when their variant sets intersect.
    """
    canon = normalise_message_id(mid)
    if not canon:
        return frozenset()
    return frozenset(v for v in (canon, hex_to_dec(canon), dec_to_hex(canon)) if v)

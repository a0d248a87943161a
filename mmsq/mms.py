"""Sending an MM: the message, the result, the retry decision and the ``MmsGateway`` port.

mmsq sends few MMs of its own: recovery probes for suspended subscribers and resends asked for
by customer-service agents. The newspaper itself is sent by the content platform. The MM7
adapter implements ``MmsGateway``; the core decides what to send and what a result means.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

__all__ = [
    "PROBE_EDITION",
    "SENT_MAYBE",
    "MmsContent",
    "MmsGateway",
    "MmsPart",
    "MmsSubmission",
    "SubmitOutcome",
    "SubmitResult",
    "outcome_of",
    "probe_content",
]

#: The edition of recovery probes: never counted as a newspaper delivery.
PROBE_EDITION = "recovery-probe"


@dataclass(frozen=True, slots=True)
class MmsPart:
    """One media object of an MM: its Content-ID (without <>), type and bytes."""

    content_id: str
    content_type: str
    data: bytes
    filename: str | None = None


@dataclass(frozen=True, slots=True)
class MmsContent:
    """A presentation (SMIL) and its media objects; ``size`` is what the MMSC is asked to carry."""

    subject: str
    smil: str
    parts: tuple[MmsPart, ...]

    @property
    def size(self) -> int:
        return len(self.smil.encode()) + sum(len(p.data) for p in self.parts)


@dataclass(frozen=True, slots=True)
class MmsSubmission:
    """One MM to one recipient (E.164) for an edition; ``reference`` is the caller's id."""

    msisdn: str
    edition: str
    content: MmsContent
    reference: str
    delivery_report: bool = True
    linked_id: str | None = None


#: ``SubmitResult.details["sent"]`` of a transport failure after the request went out (a read
#: timeout, a connection dropped mid-answer): the MMSC may have accepted the MM. Failures
#: before anything was sent (connection refused) say ``"no"``.
SENT_MAYBE = "maybe"


class SubmitOutcome(StrEnum):
    ACCEPTED = "accepted"  # the MMSC took it: a delivery report will follow
    RETRY = "retry"  # a transient refusal (3xxx, 4xxx, transport): try again later
    REJECTED = "rejected"  # a final refusal (2xxx): retrying cannot help


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """What the MMSC answered (or why it could not be asked)."""

    outcome: SubmitOutcome
    status_code: int | None
    status_text: str
    message_id: str | None = None
    attempts: int = 1
    details: dict[str, str] = field(default_factory=dict)


def outcome_of(status_code: int) -> SubmitOutcome:
    """The retry decision for an MM7 StatusCode class (3GPP TS 23.140 annex: status codes).

    1xxx success; 2xxx client errors (the request is wrong: never retried); 3xxx server errors
    and 4xxx service errors (the MMSC cannot now: retried with backoff and a cap).
    """
    klass = status_code // 1000
    if klass == 1:
        return SubmitOutcome.ACCEPTED
    if klass == 2:
        return SubmitOutcome.REJECTED
    return SubmitOutcome.RETRY


class MmsGateway(Protocol):
    """Submits MMs to the MMSC (MM7 SubmitReq); blocking, thread-safe."""

    def submit(self, submission: MmsSubmission) -> SubmitResult: ...


def _png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A small chequered PNG, built without an imaging library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter: none
        for x in range(width):
            on = (x // 4 + y // 4) % 2 == 0
            rows += bytes(rgb) if on else b"\xff\xff\xff"
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    # Stored (level 0): a few KB on the wire, the size of a real small picture, so the probe
    # costs what a real MM costs rather than 200 bytes.
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows), 0))
        + chunk(b"IEND", b"")
    )


def probe_content(text: str, subject: str = "MMS check") -> MmsContent:
    """The small recovery MM: SMIL, one text and one small image (a few KB)."""
    smil = (
        '<smil><head><layout><root-layout width="176" height="144"/>'
        '<region id="Image" top="0" left="0" height="100" width="176"/>'
        '<region id="Text" top="100" left="0" height="44" width="176"/>'
        '</layout></head><body><par dur="5000ms">'
        '<img src="cid:probe-image" region="Image"/>'
        '<text src="cid:probe-text" region="Text"/>'
        "</par></body></smil>"
    )
    return MmsContent(
        subject=subject,
        smil=smil,
        parts=(
            MmsPart("probe-text", "text/plain; charset=utf-8", text.encode(), "probe.txt"),
            MmsPart("probe-image", "image/png", _png(48, 32, (0, 102, 204)), "probe.png"),
        ),
    )

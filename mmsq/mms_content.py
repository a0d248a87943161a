"""What an outbox item carries: the probe MM, or the edition a resend repeats.

The outbox stores only a reference (``content_ref``) and asks a ``ContentSource`` for the MM when
it sends, so a resend carries the edition as it is published, and a probe the configured text.
"""

from __future__ import annotations

from typing import Protocol

from mmsq.mms import MmsContent, probe_content
from mmsq.mms_outbox_model import OutboxItem, OutboxKind

__all__ = ["ContentSource", "ContentUnavailableError", "EditionSource", "OutboxContent"]


class ContentUnavailableError(LookupError):
    """The MM for an item cannot be built; the message says why (the item fails with it)."""


class EditionSource(Protocol):
    """The published content of an edition (``content_ref`` may name a variant)."""

    def edition(self, edition: str, content_ref: str | None) -> MmsContent:
        """Raises ContentUnavailableError when the edition is not there."""
        ...


class ContentSource(Protocol):
    def content_for(self, item: OutboxItem) -> MmsContent:
        """Raises ContentUnavailableError when the MM cannot be built."""
        ...


class OutboxContent:
    """Probes get the configured probe MM; resends get their edition from ``editions``."""

    def __init__(
        self, probe_text: str, probe_subject: str, editions: EditionSource | None = None
    ) -> None:
        self._probe = probe_content(probe_text, probe_subject)
        self._editions = editions

    def content_for(self, item: OutboxItem) -> MmsContent:
        if item.kind is OutboxKind.PROBE:
            return self._probe
        if self._editions is None:
            raise ContentUnavailableError(
                "no edition content configured (mm7.editions_dir) for resends"
            )
        return self._editions.edition(item.edition, item.content_ref)

"""Subscription snapshot files from BOSS, MISC or the content platform.

CSV with a header row (``msisdn,product,status,since,channel``; order free, extra columns
ignored), UTF-8, optionally gzip. Read exactly like the MMSC CDR export: byte chunks cut at line
ends, parsed by pyarrow, unreadable rows quarantined with their line number.
"""

from __future__ import annotations

from mmsq.adapters.cdr_csv import CdrFileReader
from mmsq.subscription_import import SNAPSHOT_INPUT_COLUMNS, SNAPSHOT_REQUIRED_COLUMNS

__all__ = ["SnapshotFileReader"]


# mypy sees mmsq.adapters as Any (the package-dir mapping), hence the ignore.
class SnapshotFileReader(CdrFileReader):  # type: ignore[misc]
    """Streams one snapshot file as raw chunks of text columns with their line numbers."""

    columns = SNAPSHOT_INPUT_COLUMNS
    required = SNAPSHOT_REQUIRED_COLUMNS

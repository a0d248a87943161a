"""The do-not-contact list (complainers, staff, test numbers, opted out).

It excludes a subscriber from proactive contact (help SMS, OTA pushes, probes), never from
diagnosis: a listed subscriber is still scored and their verdict says they are listed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd

from mmsq.domain import QuarantinedRecord
from mmsq.msisdn import MsisdnNormaliser
from mmsq.ports import Clock
from mmsq.scoring_ports import BlacklistStore

__all__ = ["BLACKLIST_COLUMNS", "BlacklistImport", "BlacklistService", "parse_blacklist"]

BLACKLIST_COLUMNS: tuple[str, ...] = ("msisdn", "reason", "until")


@dataclass
class BlacklistImport:
    source: str
    entries: pd.DataFrame
    rejected: list[QuarantinedRecord] = field(default_factory=list)


def parse_blacklist(
    raw: pd.DataFrame, source: str, normaliser: MsisdnNormaliser
) -> BlacklistImport:
    """Validate text rows (msisdn, reason, until[, _line]); bad rows are rejected with a reason.

    ``until`` is an ISO date (the last day the entry holds) or empty for no end.
    """
    frame = raw.fillna("").astype(str)
    line = (
        frame["_line"].astype(int)
        if "_line" in frame
        else pd.Series(range(2, len(frame) + 2), index=frame.index)
    )
    msisdn = normaliser.normalise_series(frame["msisdn"])
    reason = frame["reason"].str.strip() if "reason" in frame else pd.Series("", index=frame.index)
    until_text = (
        frame["until"].str.strip() if "until" in frame else pd.Series("", index=frame.index)
    )
    until = pd.to_datetime(until_text.where(until_text != ""), format="%Y-%m-%d", errors="coerce")
    bad_msisdn = msisdn.isna()
    bad_until = (until_text != "") & until.isna()
    rejected = [
        QuarantinedRecord(source, int(n), why, ",".join(row))
        for n, why, row in zip(
            line[bad_msisdn | bad_until],
            pd.Series("invalid MSISDN", index=frame.index).where(
                bad_msisdn, "until is not a date (YYYY-MM-DD)"
            )[bad_msisdn | bad_until],
            frame[bad_msisdn | bad_until][[c for c in BLACKLIST_COLUMNS if c in frame]].itertuples(
                index=False, name=None
            ),
            strict=True,
        )
    ]
    ok = ~(bad_msisdn | bad_until)
    entries = pd.DataFrame(
        {
            "msisdn": msisdn[ok].astype(str).to_numpy(),
            "reason": reason[ok].replace("", "unspecified").to_numpy(),
            "until": until[ok].dt.date.astype(object).where(until[ok].notna(), None).to_numpy(),
        }
    ).drop_duplicates("msisdn", keep="last")
    return BlacklistImport(source, entries.reset_index(drop=True), rejected)


class BlacklistService:
    """Import and maintain the do-not-contact list (the API calls ``add`` and ``remove``)."""

    def __init__(self, store: BlacklistStore, normaliser: MsisdnNormaliser, clock: Clock) -> None:
        self.store = store
        self.normaliser = normaliser
        self.clock = clock

    def import_file(self, path: Path) -> BlacklistImport:
        """Read a CSV with header msisdn,reason,until; valid rows are stored, bad ones listed."""
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
        missing = {"msisdn"} - set(raw.columns)
        if missing:
            raise ValueError(f"{path}: the header must name msisdn,reason,until")
        raw["_line"] = range(2, len(raw) + 2)
        result = parse_blacklist(raw, str(path), self.normaliser)
        self.store.upsert_blacklist(result.entries, self.clock.now())
        return result

    def add(self, msisdn: str, reason: str, until: date | None = None) -> str:
        """Add or replace one entry; returns the normalised MSISDN. Raises ValueError."""
        normal = self.normaliser.normalise(msisdn)
        if normal is None:
            raise ValueError(f"not a valid MSISDN: {msisdn!r}")
        self.store.upsert_blacklist(
            pd.DataFrame([{"msisdn": normal, "reason": reason or "unspecified", "until": until}]),
            self.clock.now(),
        )
        return normal

    def remove(self, msisdn: str) -> bool:
        normal = self.normaliser.normalise(msisdn)
        return normal is not None and self.store.remove_blacklist(normal)

    def is_listed(self, msisdn: str, on: date | None = None) -> bool:
        normal = self.normaliser.normalise(msisdn)
        day = on or self.clock.now().date()
        return normal is not None and normal in set(self.store.blacklist_active(day)["msisdn"])

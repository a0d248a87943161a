"""Remedies: from the recovery state machine's flagged subscribers to planned contacts, and
from contacts the SMSC took back to the state machine (flagged -> remedied).

The two halves of the daemon's ``plan`` and ``dispatch`` jobs, and of the demo's act phase.
Planning reads who is flagged (and why) and who must not be contacted; recording reads which
contacts were accepted by the SMSC since the last round and moves those subscribers on.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Protocol

import pandas as pd

from mmsq.outreach_plan import PlanSummary
from mmsq.recovery import RecoveryService

__all__ = ["RemedySource", "plan_remedies", "record_remedies"]


class RemedySource(Protocol):
    """What planning needs from the recovery store."""

    def load_states(self, msisdns: list[str] | None = None) -> pd.DataFrame: ...

    def blacklist_active(self, on: date) -> pd.DataFrame: ...


class Planner(Protocol):
    def plan(
        self,
        candidates: pd.DataFrame,
        blacklist: set[str] | frozenset[str] = frozenset(),
        complaints: pd.DataFrame | None = None,
    ) -> PlanSummary: ...


def plan_remedies(
    source: RemedySource, planner: Planner, on: date, complaints: pd.DataFrame | None = None
) -> PlanSummary:
    """Plan contacts for every flagged subscriber (the ladder depends on the verdict; the
    contact policy decides who is contacted, and records why not for everyone else)."""
    states = source.load_states()
    flagged = states.loc[states["state"] == "flagged", ["msisdn", "verdict"]]
    blacklist = set(source.blacklist_active(on)["msisdn"].astype(str))
    return planner.plan(flagged.reset_index(drop=True), blacklist, complaints)


def record_remedies(
    recovery: RecoveryService,
    sent_since: Callable[[datetime], list[tuple[str, str]]],
    since: datetime,
) -> int:
    """Move flagged subscribers whose help SMS or OTA push the SMSC took to ``remedied``;
    returns how many moved. Subscribers in any other state are left alone."""
    kinds: dict[str, set[str]] = {}
    for msisdn, action in sent_since(since):
        kinds.setdefault(msisdn, set()).add("ota" if action == "ota_push" else "help_sms")
    if not kinds:
        return 0
    states = recovery.store.load_states(list(kinds))
    flagged = set(states.loc[states["state"] == "flagged", "msisdn"].astype(str))
    moved = 0
    for msisdn in sorted(flagged):
        sent = kinds[msisdn]
        kind = "ota" if "ota" in sent else "help_sms"
        recovery.record_remedy(msisdn, kind, evidence="sent: " + "+".join(sorted(sent)))  # type: ignore[arg-type]
        moved += 1
    return moved

"""Remedies: from the recovery state machine's flagged subscribers to planned contacts, and
from contacts the SMSC took back to the state machine (flagged -> remedied).

The two halves of the daemon's ``plan`` and ``dispatch`` jobs, and of the demo's act phase.
Planning reads who is flagged (and why) and who must not be contacted; recording reads which
contacts were accepted by the SMSC since the last round and moves those subscribers on.
``send_due_probes`` is the daemon's ``probe`` job: a recovery probe MM for each suspended
subscriber whose next probe is due (the delivered probe resumes them: mmsq.delivery_feedback).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal, Protocol

import pandas as pd

from mmsq.outreach_plan import PlanSummary
from mmsq.recovery import RecoveryService

__all__ = [
    "ProbeOutbox",
    "ProbeRound",
    "RemedySource",
    "plan_remedies",
    "record_remedies",
    "send_due_probes",
]


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
    batch: list[tuple[str, Literal["ota", "help_sms"], str]] = []
    for msisdn in sorted(flagged):
        sent = kinds[msisdn]
        kind: Literal["ota", "help_sms"] = "ota" if "ota" in sent else "help_sms"
        batch.append((msisdn, kind, "sent: " + "+".join(sorted(sent))))
    for i in range(0, len(batch), _BATCH):
        recovery.record_remedies(batch[i : i + _BATCH])
    return len(batch)


#: Subscribers moved per transaction when recording remedies and probes.
_BATCH = 1000


class _Enqueued(Protocol):
    @property
    def created(self) -> bool: ...


class ProbeOutbox(Protocol):
    """What probing needs from the MM7 outbox (mmsq.mms_outbox.MmsOutbox)."""

    def enqueue(self, kind: str, msisdn: str, edition: str, reference: str) -> _Enqueued: ...


@dataclass(frozen=True)
class ProbeRound:
    """One round of the ``probe`` job: how many were due, queued, already queued today
    (a rerun), left out as do-not-contact, and refused by the outbox (not an E.164 number)."""

    due: int = 0
    enqueued: int = 0
    repeated: int = 0
    do_not_contact: int = 0
    refused: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "due": self.due,
            "enqueued": self.enqueued,
            "repeated": self.repeated,
            "do_not_contact": self.do_not_contact,
            "refused": self.refused,
        }


def send_due_probes(
    recovery: RecoveryService,
    outbox: ProbeOutbox,
    blacklist: Collection[str],
    day: date,
) -> ProbeRound:
    """Queue a recovery probe for every subscriber whose next probe is due on ``day``.

    One probe per subscriber and day: the outbox reference ``probe:<msisdn>:<day>`` makes a
    rerun of the same day a no-op, and the probe is counted (``probe_sent``) only when it is
    newly queued. Subscribers on the do-not-contact list (``blacklist``, on top of the one
    the recovery service already applies) are never probed. A number the outbox refuses is
    counted and skipped; it does not stop the round.
    """
    due = recovery.due_probes(day)
    listed = set(blacklist)
    enqueued = repeated = skipped = refused = 0
    queued: list[str] = []
    again: list[str] = []
    for msisdn in due["msisdn"].astype(str):
        if msisdn in listed:
            skipped += 1
            continue
        try:
            result = outbox.enqueue("probe", msisdn, "", reference=f"probe:{msisdn}:{day}")
        except ValueError:
            refused += 1
            continue
        if result.created:
            queued.append(msisdn)
            enqueued += 1
        else:
            again.append(msisdn)
            repeated += 1
    # A probe queued by a round that stopped before recording it (still due, its item
    # already in the outbox, no probe recorded on ``day``) is recorded now, once.
    if again:
        states = recovery.store.load_states(again)
        stamped = states["last_probe_at"].dt.tz_convert(recovery.tz).dt.date
        queued += sorted(set(again) - set(states.loc[stamped == day, "msisdn"].astype(str)))
    evidence = f"probe queued ({day.isoformat()})"
    for i in range(0, len(queued), _BATCH):
        recovery.record_probes_sent([(m, evidence) for m in queued[i : i + _BATCH]])
    return ProbeRound(len(due), enqueued, repeated, skipped, refused)

"""The recovery state machine: pure transition logic and the service that persists it.

Per subscriber::

    active --verdict--> flagged --remedy_sent--> remedied --delivered--> recovered
                           |  \\--delivered (self)--> recovered        |
                           |                                          |
                           +--suspend_threshold_reached--> suspended --probe_sent--> probing
                                                              \\--(probe_)delivered--> resumed
    any state but invalid --cleanup_verdict--> invalid (subscription clean-up list, never probed)

Subscribers in ``active`` are not stored: a state row exists only once a subscriber has left
it. Every transition is appended to a log with its time, cause and evidence, so the funnel can
be counted and each subscriber's path explained.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from mmsq.ports import Clock
from mmsq.scoring_ports import BlacklistStore, RecoveryStore
from mmsq.scoring_rules import RecoveryRules

__all__ = [
    "STATE_COLUMNS",
    "TRANSITIONS",
    "TRANSITION_COLUMNS",
    "Event",
    "InvalidTransitionError",
    "RecoveryService",
    "State",
    "SubscriberRecovery",
    "Transition",
    "due_probes",
    "next_state",
    "plan_run",
    "probe_offset_days",
]


class State(StrEnum):
    ACTIVE = "active"
    FLAGGED = "flagged"
    REMEDIED = "remedied"
    RECOVERED = "recovered"
    SUSPENDED = "suspended"
    PROBING = "probing"
    RESUMED = "resumed"
    #: Number invalid or subscription cancelled: on the subscription clean-up list.
    INVALID = "invalid"


class Event(StrEnum):
    VERDICT = "verdict"
    CLEANUP_VERDICT = "cleanup_verdict"
    REMEDY_SENT = "remedy_sent"
    DELIVERED = "delivered"
    PROBE_SENT = "probe_sent"
    PROBE_DELIVERED = "probe_delivered"
    SUSPEND_THRESHOLD_REACHED = "suspend_threshold_reached"


_S, _E = State, Event
#: Every allowed transition; anything else is refused.
TRANSITIONS: dict[tuple[State, Event], State] = {
    (_S.ACTIVE, _E.VERDICT): _S.FLAGGED,
    (_S.ACTIVE, _E.CLEANUP_VERDICT): _S.INVALID,
    (_S.FLAGGED, _E.REMEDY_SENT): _S.REMEDIED,
    (_S.FLAGGED, _E.DELIVERED): _S.RECOVERED,
    (_S.FLAGGED, _E.SUSPEND_THRESHOLD_REACHED): _S.SUSPENDED,
    (_S.FLAGGED, _E.CLEANUP_VERDICT): _S.INVALID,
    (_S.REMEDIED, _E.REMEDY_SENT): _S.REMEDIED,
    (_S.REMEDIED, _E.DELIVERED): _S.RECOVERED,
    (_S.REMEDIED, _E.SUSPEND_THRESHOLD_REACHED): _S.SUSPENDED,
    (_S.REMEDIED, _E.CLEANUP_VERDICT): _S.INVALID,
    (_S.RECOVERED, _E.VERDICT): _S.FLAGGED,
    (_S.RECOVERED, _E.CLEANUP_VERDICT): _S.INVALID,
    (_S.SUSPENDED, _E.PROBE_SENT): _S.PROBING,
    (_S.SUSPENDED, _E.PROBE_DELIVERED): _S.RESUMED,
    (_S.SUSPENDED, _E.DELIVERED): _S.RESUMED,
    (_S.SUSPENDED, _E.CLEANUP_VERDICT): _S.INVALID,
    (_S.PROBING, _E.PROBE_SENT): _S.PROBING,
    (_S.PROBING, _E.PROBE_DELIVERED): _S.RESUMED,
    (_S.PROBING, _E.DELIVERED): _S.RESUMED,
    (_S.PROBING, _E.CLEANUP_VERDICT): _S.INVALID,
    (_S.RESUMED, _E.VERDICT): _S.FLAGGED,
    (_S.RESUMED, _E.CLEANUP_VERDICT): _S.INVALID,
    (_S.INVALID, _E.DELIVERED): _S.RECOVERED,
}

STATE_COLUMNS: tuple[str, ...] = (
    "msisdn",
    "state",
    "verdict",
    "reason",
    "since",
    "since_day",
    "suspended_day",
    "probes_sent",
    "last_probe_at",
)
TRANSITION_COLUMNS: tuple[str, ...] = (
    "msisdn",
    "at",
    "from_state",
    "to_state",
    "event",
    "cause",
    "evidence",
    "run_id",
)
#: States in which a delivery means the subscriber is back.
_DELIVERY_STATES = (State.FLAGGED, State.REMEDIED, State.SUSPENDED, State.PROBING, State.INVALID)
_SUSPENDED_STATES = (State.SUSPENDED, State.PROBING)
_REASON_CHARS = 500


class InvalidTransitionError(ValueError):
    """An event that the subscriber's current state does not accept."""

    def __init__(self, state: State, event: Event) -> None:
        super().__init__(f"a subscriber in state {state} does not accept {event}")
        self.state = state
        self.event = event


def next_state(state: State, event: Event) -> State:
    """The state after ``event``; raises InvalidTransitionError when it is not allowed."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise InvalidTransitionError(state, event) from None


@dataclass(frozen=True)
class Transition:
    msisdn: str
    at: datetime
    from_state: State
    to_state: State
    event: Event
    cause: str
    evidence: str


def empty_states() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in STATE_COLUMNS})


def _targets(event: Event) -> dict[str, str]:
    return {s.value: t.value for (s, e), t in TRANSITIONS.items() if e is event}


def plan_run(
    scored: pd.DataFrame,
    states: pd.DataFrame,
    rules: RecoveryRules,
    as_of: date,
    at: datetime,
    run_id: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The transitions one scoring run makes, and the state rows to write (vectorised).

    ``scored`` has columns msisdn, verdict, score, reasons, failed_run, last_delivery_day
    (ISO text, "" when none). In order, for each subscriber at most one of:

    1. a delivery on a day after the current state began, in a state that waits for one:
       ``delivered`` (cause ``self``, ``remedy`` after a remedy, ``probe`` while probing);
    2. a clean-up verdict (``rules.cleanup_verdicts``) -> invalid, or a flag verdict
       (``rules.flag_verdicts``) from active/recovered/resumed -> flagged;

    then, for flagged or remedied subscribers, a failure run of at least
    ``rules.suspend_after_failed_run`` days -> suspended (a second transition in the same run).
    """
    verdicts = scored["verdict"].astype(str)
    flag = {v.value for v in rules.flag_verdicts}
    cleanup = {v.value for v in rules.cleanup_verdicts}
    current = states.set_index("msisdn")["state"] if not states.empty else pd.Series(dtype=object)
    # hash lookups: isin() on millions of strings is slow with arrow-backed text
    known = pd.Series(
        pd.Index(current.index).get_indexer(scored["msisdn"]) >= 0, index=scored.index
    )
    relevant = known | verdicts.isin(flag | cleanup)
    df = scored.loc[
        relevant, ["msisdn", "verdict", "score", "reasons", "failed_run", "last_delivery_day"]
    ].copy()
    if df.empty:
        return (
            pd.DataFrame({c: pd.Series(dtype=object) for c in TRANSITION_COLUMNS}),
            empty_states(),
        )
    prior = states.set_index("msisdn").reindex(df["msisdn"]) if not states.empty else None
    df["state"] = (
        prior["state"].fillna(State.ACTIVE.value).to_numpy()
        if prior is not None
        else State.ACTIVE.value
    )
    df["since_day"] = (
        prior["since_day"].fillna("").astype(str).to_numpy() if prior is not None else ""
    )
    df = df.reset_index(drop=True)
    as_of_text = as_of.isoformat()
    stamp = pd.Timestamp(at)
    out: list[pd.DataFrame] = []

    def step(mask: np.ndarray, event: Event, cause: pd.Series, evidence: pd.Series) -> None:
        to = df["state"].map(_targets(event))
        mask = mask & to.notna().to_numpy()
        if not mask.any():
            return
        out.append(
            pd.DataFrame(
                {
                    "msisdn": df["msisdn"][mask],
                    "at": stamp,
                    "from_state": df["state"][mask],
                    "to_state": to[mask],
                    "event": event.value,
                    "cause": cause[mask],
                    "evidence": evidence[mask].str.slice(0, 2000),
                    "run_id": run_id,
                }
            )
        )
        df.loc[mask, "state"] = to[mask]
        df.loc[mask, "moved"] = True

    df["moved"] = False
    state = df["state"]
    last = df["last_delivery_day"].fillna("").astype(str)
    delivered = (
        state.isin([s.value for s in _DELIVERY_STATES]) & (last != "") & (last > df["since_day"])
    ).to_numpy()
    cause = pd.Series(
        np.select(
            [state == State.REMEDIED.value, state == State.PROBING.value],
            ["remedy", "probe"],
            "self",
        ),
        index=df.index,
    )
    step(
        delivered,
        Event.DELIVERED,
        cause,
        "delivery on " + last + " after " + state + " since " + df["since_day"],
    )

    summary = df["verdict"] + " (score " + df["score"].map("{:.2f}".format) + "): " + df["reasons"]
    free = ~df["moved"].to_numpy()
    step(
        free & df["verdict"].isin(cleanup).to_numpy(), Event.CLEANUP_VERDICT, df["verdict"], summary
    )
    free = ~df["moved"].to_numpy()
    step(free & df["verdict"].isin(flag).to_numpy(), Event.VERDICT, df["verdict"], summary)

    threshold = rules.suspend_after_failed_run
    runs = df["failed_run"].to_numpy()
    reached = (
        df["state"].isin([State.FLAGGED.value, State.REMEDIED.value]).to_numpy()
        & (runs >= threshold)
        & ~delivered
    )
    step(
        reached,
        Event.SUSPEND_THRESHOLD_REACHED,
        df["failed_run"].astype(str) + " failed days",
        df["failed_run"].astype(str) + f" failed days in a row (threshold {threshold}); " + summary,
    )

    transitions = (
        pd.concat(out, ignore_index=True)
        if out
        else pd.DataFrame({c: pd.Series(dtype=object) for c in TRANSITION_COLUMNS})
    )
    moved = df[df["moved"]].copy()
    new_states = _state_rows(moved, prior, as_of_text, stamp, summary.loc[moved.index])
    return transitions[list(TRANSITION_COLUMNS)], new_states


def _state_rows(
    moved: pd.DataFrame,
    prior: pd.DataFrame | None,
    as_of_text: str,
    stamp: pd.Timestamp,
    summary: pd.Series,
) -> pd.DataFrame:
    if moved.empty:
        return empty_states()
    rows = pd.DataFrame({"msisdn": moved["msisdn"].to_numpy(), "state": moved["state"].to_numpy()})
    rows["verdict"] = moved["verdict"].to_numpy()
    rows["reason"] = summary.str.slice(0, _REASON_CHARS).to_numpy()
    rows["since"] = stamp
    rows["since_day"] = as_of_text
    suspended = rows["state"].isin([s.value for s in _SUSPENDED_STATES])
    old_suspended = (
        prior.reindex(rows["msisdn"])["suspended_day"].to_numpy()
        if prior is not None
        else np.full(len(rows), None, dtype=object)
    )
    newly = (rows["state"] == State.SUSPENDED.value).to_numpy()
    day = pd.Series(old_suspended, index=rows.index, dtype=object)
    day = day.where(suspended.to_numpy() & day.notna().to_numpy(), None)
    day[newly] = as_of_text
    rows["suspended_day"] = day
    rows["probes_sent"] = 0
    rows["last_probe_at"] = None
    return rows[list(STATE_COLUMNS)]


def probe_offset_days(probes_sent: np.ndarray, rules: RecoveryRules) -> np.ndarray:
    """Days after suspension at which probe number ``probes_sent + 1`` is due."""
    listed = np.array(rules.probe_after_days, dtype=np.int64)
    n = probes_sent.astype(np.int64)
    k = len(listed)
    return np.where(
        n < k,
        listed[np.minimum(n, k - 1)],
        listed[-1] + (n - k + 1) * rules.probe_every_days,
    )


def due_probes(
    states: pd.DataFrame, rules: RecoveryRules, on: date, blacklisted: pd.Series | None = None
) -> pd.DataFrame:
    """Suspended subscribers whose next probe is due on or before ``on`` (vectorised).

    Columns msisdn, probe_number, due_day, suspended_day. Do-not-contact subscribers
    (``blacklisted``: their MSISDNs) are never probed.
    """
    s = states[states["state"].isin([x.value for x in _SUSPENDED_STATES])]
    s = s[s["suspended_day"].notna()]
    if blacklisted is not None and len(blacklisted):
        s = s[~s["msisdn"].isin(blacklisted)]
    if s.empty:
        return pd.DataFrame({"msisdn": [], "probe_number": [], "due_day": [], "suspended_day": []})
    sent = s["probes_sent"].fillna(0).to_numpy(dtype=np.int64)
    start = pd.to_datetime(s["suspended_day"].astype(str)).to_numpy()
    due = start + probe_offset_days(sent, rules).astype("timedelta64[D]")
    frame = pd.DataFrame(
        {
            "msisdn": s["msisdn"].to_numpy(),
            "probe_number": sent + 1,
            "due_day": pd.Series(due).dt.date.to_numpy(),
            "suspended_day": s["suspended_day"].astype(str).to_numpy(),
        }
    )
    return frame[frame["due_day"] <= on].sort_values(["due_day", "msisdn"]).reset_index(drop=True)


_FUNNEL: dict[str, tuple[str | None, str | None, str | None]] = {
    # stage: (event, to_state, cause); None matches anything
    "flagged": (Event.VERDICT.value, State.FLAGGED.value, None),
    "remedied": (Event.REMEDY_SENT.value, State.REMEDIED.value, None),
    "recovered": (None, State.RECOVERED.value, None),
    "recovered_self": (None, State.RECOVERED.value, "self"),
    "recovered_after_remedy": (None, State.RECOVERED.value, "remedy"),
    "suspended": (None, State.SUSPENDED.value, None),
    "probed": (Event.PROBE_SENT.value, None, None),
    "resumed": (None, State.RESUMED.value, None),
    "cleanup": (None, State.INVALID.value, None),
}


class RecoveryService:
    """Events from outside a scoring run (remedies, probes, deliveries) and the read side:
    suspension list, clean-up list, due probes, funnel, a subscriber's path."""

    def __init__(
        self,
        store: RecoveryStore,
        blacklist: BlacklistStore,
        rules: RecoveryRules,
        clock: Clock,
        timezone: str = "UTC",
    ) -> None:
        self.store = store
        self.blacklist = blacklist
        self.rules = rules
        self.clock = clock
        self.tz = ZoneInfo(timezone)

    def today(self) -> date:
        return self.clock.now().astimezone(self.tz).date()

    def _local_midnight(self, day: date) -> datetime:
        return datetime(day.year, day.month, day.day, tzinfo=self.tz)

    def state_of(self, msisdn: str) -> dict[str, Any] | None:
        rows = self.store.load_states([msisdn])
        return None if rows.empty else dict(rows.iloc[0])

    def _apply(self, msisdn: str, event: Event, cause: str, evidence: str) -> Transition:
        return self._apply_many([(msisdn, event, cause, evidence)])[0]

    def _apply_many(self, changes: Sequence[tuple[str, Event, str, str]]) -> list[Transition]:
        """Move each (msisdn, event, cause, evidence) and store all of it in one transaction:
        one state read and one write for the batch, not one per subscriber. A subscriber
        appears at most once per batch. A probe without a cause is named by its number
        (``probe 2``), its evidence by default ``probe 2 sent``."""
        if not changes:
            return []
        numbers = [c[0] for c in changes]
        if len(set(numbers)) != len(numbers):
            raise ValueError("a subscriber appears twice in one batch of transitions")
        loaded = self.store.load_states(numbers)
        records: list[dict[str, Any]] = loaded.to_dict("records")  # type: ignore[assignment]
        rows = {str(r["msisdn"]): r for r in records}
        now = self.clock.now()
        stamp = pd.Timestamp(now)
        today = self.today().isoformat()
        out: list[Transition] = []
        t_rows: list[dict[str, Any]] = []
        s_rows: list[dict[str, Any]] = []
        for msisdn, event, given_cause, given_evidence in changes:
            cause, evidence = given_cause, given_evidence
            row = rows.get(msisdn)
            current = State(row["state"]) if row else State.ACTIVE
            target = next_state(current, event)
            new = dict(row) if row else dict.fromkeys(STATE_COLUMNS)
            new.update(msisdn=msisdn, state=target.value, since=stamp, since_day=today)
            probes = int(new.get("probes_sent") or 0)
            if event is Event.PROBE_SENT:
                probes += 1
                new["last_probe_at"] = stamp
                cause = cause or f"probe {probes}"
                evidence = evidence or f"{cause} sent"
            new["probes_sent"] = probes
            if target not in _SUSPENDED_STATES:
                new["suspended_day"] = None
                new["probes_sent"] = 0
            out.append(Transition(msisdn, now, current, target, event, cause, evidence))
            s_rows.append(new)
            t_rows.append(
                {
                    "msisdn": msisdn,
                    "at": stamp,
                    "from_state": current.value,
                    "to_state": target.value,
                    "event": event.value,
                    "cause": cause,
                    "evidence": evidence,
                    "run_id": None,
                }
            )
        self.store.apply_transitions(
            pd.DataFrame(t_rows), pd.DataFrame(s_rows)[list(STATE_COLUMNS)]
        )
        return out

    def record_remedy(
        self, msisdn: str, kind: Literal["ota", "help_sms"], evidence: str = ""
    ) -> Transition:
        """An OTA settings push or a help SMS was sent to a flagged subscriber."""
        return self._apply(msisdn, Event.REMEDY_SENT, kind, evidence or f"{kind} sent")

    def record_remedies(
        self, sent: Sequence[tuple[str, Literal["ota", "help_sms"], str]]
    ) -> list[Transition]:
        """``record_remedy`` for many subscribers at once: (msisdn, kind, evidence)."""
        return self._apply_many(
            [(m, Event.REMEDY_SENT, kind, ev or f"{kind} sent") for m, kind, ev in sent]
        )

    def record_probe_sent(self, msisdn: str, evidence: str = "") -> Transition:
        return self.record_probes_sent([(msisdn, evidence)])[0]

    def record_probes_sent(self, sent: Sequence[tuple[str, str]]) -> list[Transition]:
        """A recovery probe was queued for each (msisdn, evidence); one transaction."""
        return self._apply_many([(m, Event.PROBE_SENT, "", evidence) for m, evidence in sent])

    def record_delivery(
        self, msisdn: str, *, probe: bool = False, evidence: str = ""
    ) -> Transition | None:
        """A message (``probe``: a recovery probe) was delivered. Resumes or recovers a
        subscriber who waits for one; returns None for a subscriber who was not waiting."""
        row = self.state_of(msisdn)
        current = State(row["state"]) if row else State.ACTIVE
        event = Event.PROBE_DELIVERED if probe else Event.DELIVERED
        if (current, event) not in TRANSITIONS:
            return None
        cause = "probe" if probe else ("remedy" if current is State.REMEDIED else "self")
        return self._apply(msisdn, event, cause, evidence or f"{event.value} reported")

    def due_probes(self, on: date | None = None) -> pd.DataFrame:
        day = on or self.today()
        states = self.store.load_states()
        listed = self.blacklist.blacklist_active(day)["msisdn"]
        return due_probes(states, self.rules, day, listed)

    def suspensions(self) -> pd.DataFrame:
        """The suspension list for the content platform: msisdn, reason, since (ISO date)."""
        s = self.store.load_states()
        s = s[s["state"].isin([x.value for x in _SUSPENDED_STATES])]
        return pd.DataFrame(
            {
                "msisdn": s["msisdn"].to_numpy(),
                "reason": s["reason"].fillna("").to_numpy(),
                "since": s["suspended_day"].astype(str).to_numpy(),
            }
        ).sort_values("msisdn", ignore_index=True)

    def cleanup_list(self) -> pd.DataFrame:
        """Numbers for subscription clean-up: msisdn, reason, since."""
        s = self.store.load_states()
        s = s[s["state"] == State.INVALID.value]
        return pd.DataFrame(
            {
                "msisdn": s["msisdn"].to_numpy(),
                "reason": s["reason"].fillna("").to_numpy(),
                "since": s["since_day"].astype(str).to_numpy(),
            }
        ).sort_values("msisdn", ignore_index=True)

    def funnel(self, first_day: date, last_day: date) -> dict[str, int]:
        """Subscribers entering each stage between ``first_day`` and ``last_day`` (local
        dates, inclusive)."""
        counts = self.store.transition_counts(
            self._local_midnight(first_day), self._local_midnight(last_day + timedelta(days=1))
        )
        result: dict[str, int] = {}
        for stage, (event, to_state, cause) in _FUNNEL.items():
            m = pd.Series(True, index=counts.index)
            if event is not None:
                m &= counts["event"] == event
            if to_state is not None:
                m &= counts["to_state"] == to_state
            if cause is not None:
                m &= counts["cause"] == cause
            result[stage] = int(counts.loc[m, "subscribers"].sum())
        return result

    def history(self, msisdn: str) -> list[dict[str, Any]]:
        """The subscriber's path: every transition, oldest first."""
        return self.store.transitions_for(msisdn)

    def subscriber(self, msisdn: str, transitions: int = 20) -> SubscriberRecovery | None:
        """Where one subscriber stands and how it got there (two indexed reads); None while
        the subscriber is ``active`` and has never left it."""
        row = self.store.state_for(msisdn)
        steps = self.store.recent_transitions(msisdn, transitions)
        if row is None and not steps:
            return None
        return SubscriberRecovery(
            msisdn=msisdn,
            state=State(row["state"]) if row else State.ACTIVE,
            verdict=row["verdict"] if row else None,
            reason=row["reason"] if row else None,
            since=_utc(row["since_ts"]) if row else None,
            probes_sent=int(row["probes_sent"] or 0) if row else 0,
            last_probe_at=_utc(row["last_probe_ts"]) if row else None,
            transitions=tuple(
                Transition(
                    msisdn,
                    _utc(s["at_ts"]) or datetime.fromtimestamp(0, UTC),
                    State(s["from_state"]),
                    State(s["to_state"]),
                    Event(s["event"]),
                    s["cause"],
                    s["evidence"],
                )
                for s in steps
            ),
        )


def _utc(ts: int | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(int(ts), UTC)


@dataclass(frozen=True)
class SubscriberRecovery:
    """One subscriber's recovery state, the verdict that put it there, and its latest
    transitions (newest first)."""

    msisdn: str
    state: State
    verdict: str | None
    reason: str | None
    since: datetime | None
    probes_sent: int
    last_probe_at: datetime | None
    transitions: tuple[Transition, ...]

    @property
    def delivery_suspended(self) -> bool:
        """Bulk delivery is suspended by mmsq (suspended, or being probed)."""
        return self.state in _SUSPENDED_STATES

"""The recovery state machine: every allowed transition, refusals, and what a scoring run does."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd
import pytest

from mmsq.recovery import (
    STATE_COLUMNS,
    TRANSITIONS,
    Event,
    InvalidTransitionError,
    State,
    due_probes,
    next_state,
    plan_run,
)
from mmsq.scoring_rules import RecoveryRules

RULES = RecoveryRules(suspend_after_failed_run=10, probe_after_days=(7, 14), probe_every_days=30)
AS_OF = date(2026, 11, 22)
AT = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)
M = "+8613800138000"


@pytest.mark.parametrize(
    ("state", "event", "expected"),
    [(s, e, t) for (s, e), t in TRANSITIONS.items()],
    ids=[f"{s}-{e}" for (s, e) in TRANSITIONS],
)
def test_every_allowed_transition(state: State, event: Event, expected: State) -> None:
    assert next_state(state, event) is expected


REFUSED = [
    (State.ACTIVE, Event.REMEDY_SENT),
    (State.ACTIVE, Event.PROBE_SENT),
    (State.ACTIVE, Event.DELIVERED),
    (State.FLAGGED, Event.PROBE_SENT),
    (State.FLAGGED, Event.VERDICT),
    (State.INVALID, Event.PROBE_SENT),  # invalid numbers are cleaned up, never probed
    (State.INVALID, Event.SUSPEND_THRESHOLD_REACHED),
    (State.SUSPENDED, Event.REMEDY_SENT),
    (State.RECOVERED, Event.PROBE_DELIVERED),
]


@pytest.mark.parametrize(("state", "event"), REFUSED, ids=[f"{s}-{e}" for s, e in REFUSED])
def test_transitions_not_in_the_table_are_refused(state: State, event: Event) -> None:
    with pytest.raises(InvalidTransitionError, match=f"state {state}"):
        next_state(state, event)


def test_every_state_but_active_can_be_reached() -> None:
    assert set(TRANSITIONS.values()) == set(State) - {State.ACTIVE}


def scored(verdict: str, failed_run: int = 4, last_delivery: str = "") -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "msisdn": M,
                "verdict": verdict,
                "score": 0.9,
                "reasons": "because",
                "failed_run": failed_run,
                "last_delivery_day": last_delivery,
            }
        ]
    )


def states(state: str | None, since_day: str = "2026-11-15", **extra: object) -> pd.DataFrame:
    if state is None:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in STATE_COLUMNS})
    row = dict.fromkeys(STATE_COLUMNS) | {
        "msisdn": M,
        "state": state,
        "since_day": since_day,
        "probes_sent": 0,
        "since": pd.Timestamp("2026-11-15T02:00Z"),
    }
    row.update(extra)
    return pd.DataFrame([row])


def run(s: pd.DataFrame, st: pd.DataFrame) -> tuple[list[tuple[str, str, str, str]], pd.DataFrame]:
    t, new = plan_run(s, st, RULES, AS_OF, AT, "run1")
    return list(zip(t["from_state"], t["to_state"], t["event"], t["cause"], strict=True)), new


RUN_CASES = [
    # (id, verdict, failed run, last delivery day, current state, since day, expected transitions)
    ("healthy subscriber: nothing", "healthy", 0, "2026-11-22", None, "", []),
    ("insufficient evidence: nothing", "insufficient_evidence", 3, "2026-11-18", None, "", []),
    (
        "misconfigured is flagged",
        "terminal_misconfigured",
        4,
        "2026-11-18",
        None,
        "",
        [("active", "flagged", "verdict", "terminal_misconfigured")],
    ),
    (
        "long failure: flagged then suspended",
        "terminal_capacity",
        12,
        "2026-11-10",
        None,
        "",
        [
            ("active", "flagged", "verdict", "terminal_capacity"),
            ("flagged", "suspended", "suspend_threshold_reached", "12 failed days"),
        ],
    ),
    (
        "already flagged, same verdict: nothing",
        "terminal_misconfigured",
        5,
        "2026-11-17",
        "flagged",
        "2026-11-20",
        [],
    ),
    (
        "flagged reaches the threshold",
        "terminal_misconfigured",
        10,
        "2026-11-12",
        "flagged",
        "2026-11-20",
        [("flagged", "suspended", "suspend_threshold_reached", "10 failed days")],
    ),
    (
        "remedied reaches the threshold",
        "terminal_misconfigured",
        11,
        "2026-11-11",
        "remedied",
        "2026-11-20",
        [("remedied", "suspended", "suspend_threshold_reached", "11 failed days")],
    ),
    (
        "recovery without any remedy",
        "healthy",
        0,
        "2026-11-21",
        "flagged",
        "2026-11-18",
        [("flagged", "recovered", "delivered", "self")],
    ),
    (
        "recovery after a remedy",
        "healthy",
        0,
        "2026-11-21",
        "remedied",
        "2026-11-19",
        [("remedied", "recovered", "delivered", "remedy")],
    ),
    (
        "delivery on the day of flagging does not count",
        "healthy",
        0,
        "2026-11-18",
        "flagged",
        "2026-11-18",
        [],
    ),
    (
        "suspended subscriber delivered again resumes",
        "insufficient_evidence",
        0,
        "2026-11-21",
        "suspended",
        "2026-11-10",
        [("suspended", "resumed", "delivered", "self")],
    ),
    (
        "probing subscriber delivered again resumes by the probe",
        "healthy",
        0,
        "2026-11-21",
        "probing",
        "2026-11-17",
        [("probing", "resumed", "delivered", "probe")],
    ),
    (
        "cancelled number goes to clean-up, not probing",
        "subscriber_invalid",
        12,
        "",
        None,
        "",
        [("active", "invalid", "cleanup_verdict", "subscriber_invalid")],
    ),
    (
        "flagged number found invalid goes to clean-up",
        "subscriber_invalid",
        3,
        "",
        "flagged",
        "2026-11-18",
        [("flagged", "invalid", "cleanup_verdict", "subscriber_invalid")],
    ),
    (
        "suspended number found invalid goes to clean-up",
        "subscriber_invalid",
        3,
        "",
        "probing",
        "2026-11-18",
        [("probing", "invalid", "cleanup_verdict", "subscriber_invalid")],
    ),
    ("invalid stays invalid", "subscriber_invalid", 20, "", "invalid", "2026-11-01", []),
    (
        "recovered relapses",
        "terminal_capacity",
        4,
        "2026-11-18",
        "recovered",
        "2026-11-10",
        [("recovered", "flagged", "verdict", "terminal_capacity")],
    ),
    (
        "resumed relapses",
        "unreachable",
        8,
        "2026-11-14",
        "resumed",
        "2026-11-12",
        [("resumed", "flagged", "verdict", "unreachable")],
    ),
]


@pytest.mark.parametrize(
    ("verdict", "run_days", "last", "state", "since", "expected"),
    [c[1:] for c in RUN_CASES],
    ids=[c[0] for c in RUN_CASES],
)
def test_scoring_run_transitions(
    verdict: str,
    run_days: int,
    last: str,
    state: str | None,
    since: str,
    expected: list[tuple[str, str, str, str]],
) -> None:
    got, new = run(scored(verdict, run_days, last), states(state, since))
    assert got == expected
    if expected:
        assert new["state"].tolist() == [expected[-1][1]]
        assert new["since_day"].tolist() == ["2026-11-22"]
    else:
        assert new.empty


def test_suspension_records_the_day_and_reason() -> None:
    _t, new = plan_run(
        scored("terminal_capacity", 12, "2026-11-10"), states(None), RULES, AS_OF, AT, "r"
    )
    row = new.iloc[0]
    assert row["suspended_day"] == "2026-11-22"
    assert row["reason"] == "terminal_capacity (score 0.90): because"


def test_transitions_carry_time_evidence_and_run() -> None:
    t, _new = plan_run(scored("terminal_misconfigured"), states(None), RULES, AS_OF, AT, "run7")
    row = t.iloc[0]
    assert row["at"] == pd.Timestamp(AT)
    assert row["run_id"] == "run7"
    assert row["evidence"] == "terminal_misconfigured (score 0.90): because"


@pytest.mark.parametrize(
    ("probes_sent", "suspended_day", "due"),
    [
        (0, "2026-11-15", date(2026, 11, 22)),  # 7 days after suspension
        (1, "2026-11-08", date(2026, 11, 22)),  # 14 days
        (2, "2026-10-09", date(2026, 11, 22)),  # 14 + 30
        (3, "2026-09-09", date(2026, 11, 22)),  # 14 + 60
    ],
)
def test_probes_follow_the_escalating_schedule(
    probes_sent: int, suspended_day: str, due: date
) -> None:
    st = states(
        "probing" if probes_sent else "suspended",
        suspended_day=suspended_day,
        probes_sent=probes_sent,
    )
    got = due_probes(st, RULES, AS_OF)
    assert got[["probe_number", "due_day"]].values.tolist() == [[probes_sent + 1, due]]
    assert due_probes(st, RULES, date(2026, 11, 21)).empty


def test_do_not_contact_subscribers_are_never_probed() -> None:
    st = states("suspended", suspended_day="2026-11-01")
    assert len(due_probes(st, RULES, AS_OF)) == 1
    assert due_probes(st, RULES, AS_OF, blacklisted=pd.Series([M])).empty


def test_flagged_subscribers_are_not_probed() -> None:
    assert due_probes(states("flagged"), RULES, AS_OF).empty

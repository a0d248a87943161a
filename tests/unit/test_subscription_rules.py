"""The pure rules of subscriptions: event transitions, staleness, the event model."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from mmsq.subscriptions import (
    EventKind,
    EventOutcome,
    SubscriptionEvent,
    SubscriptionState,
    SubscriptionStatus,
    decide,
)

A, S, U, C = (
    SubscriptionStatus.ACTIVE,
    SubscriptionStatus.SUSPENDED,
    SubscriptionStatus.UNSUBSCRIBED,
    SubscriptionStatus.CANCELLED,
)


def state(status: SubscriptionStatus | None, ts: int = 100) -> SubscriptionState:
    return SubscriptionState(status, ts)


@pytest.mark.parametrize(
    ("current", "kind", "outcome", "status"),
    [
        (None, EventKind.SUBSCRIBE, EventOutcome.APPLIED, A),
        (U, EventKind.SUBSCRIBE, EventOutcome.APPLIED, A),
        (A, EventKind.SUSPEND, EventOutcome.APPLIED, S),
        (S, EventKind.RESUME, EventOutcome.APPLIED, A),
        (S, EventKind.UNSUBSCRIBE, EventOutcome.APPLIED, U),
        (A, EventKind.CANCEL, EventOutcome.APPLIED, C),
        (A, EventKind.SUBSCRIBE, EventOutcome.UNCHANGED, A),
        (S, EventKind.SUSPEND, EventOutcome.UNCHANGED, S),
        (U, EventKind.RESUME, EventOutcome.REJECTED, U),
        (U, EventKind.SUSPEND, EventOutcome.REJECTED, U),
        (None, EventKind.UNSUBSCRIBE, EventOutcome.REJECTED, None),
    ],
)
def test_transitions(
    current: SubscriptionStatus | None,
    kind: EventKind,
    outcome: EventOutcome,
    status: SubscriptionStatus | None,
) -> None:
    t = decide(state(current) if current else None, kind, event_ts=200)
    assert (t.outcome, t.status) == (outcome, status)


def test_event_older_than_the_state_is_stale_and_keeps_the_state() -> None:
    t = decide(state(S, ts=500), EventKind.RESUME, event_ts=499)
    assert (t.outcome, t.status) == (EventOutcome.STALE, S)


def test_event_at_the_same_instant_as_the_state_is_applied() -> None:
    assert decide(state(A, ts=500), EventKind.SUSPEND, 500).outcome is EventOutcome.APPLIED


def test_event_model_is_the_api_body() -> None:
    body = {
        "event_id": "boss-1",
        "msisdn": " 13800138000 ",
        "product": "ah-daily",
        "kind": "subscribe",
        "event_time": "2026-11-22T08:00:00+08:00",
        "source": "boss",
    }
    e = SubscriptionEvent.model_validate_json(__import__("json").dumps(body))
    assert e.msisdn == "13800138000"
    assert e.event_time == datetime(2026, 11, 22, 0, 0, tzinfo=UTC)
    assert e.kind is EventKind.SUBSCRIBE


@pytest.mark.parametrize(
    "change",
    [
        {"event_time": "2026-11-22T08:00:00"},  # no offset: ambiguous instant
        {"kind": "pause"},
        {"source": "crm"},
        {"event_id": ""},
        {"colour": "blue"},
    ],
)
def test_event_model_refuses_bad_bodies(change: dict[str, str]) -> None:
    body = {
        "event_id": "e",
        "msisdn": "13800138000",
        "product": "p",
        "kind": "subscribe",
        "event_time": "2026-11-22T08:00:00+08:00",
        "source": "misc",
        **change,
    }
    with pytest.raises(ValidationError):
        SubscriptionEvent.model_validate(body)

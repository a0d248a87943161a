"""The complaint case library: validation, and the next step for each common case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mmsq.complaint_cases import CaseFacts, load_complaint_cases
from mmsq.diagnosis import DeliveryRecord, DiagnosisService
from mmsq.recovery import State, SubscriberRecovery
from mmsq.rules_loader import RulesError
from mmsq.subscription_lookup import InMemorySubscriptions, SubscriptionStatus, SubscriptionView
from tests.api_fakes import FakeHistory, FakeRecovery, MemoryResendStore, NoDevices

MSISDN = "+8613800138000"
T0 = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)


def facts(**kw: object) -> CaseFacts:
    base: dict[str, object] = {
        "subscription": "active",
        "suspended_by_mmsq": False,
        "verdict": None,
        "last_cause": None,
        "has_deliveries": True,
    }
    base.update(kw)
    return CaseFacts(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("given", "case"),
    [
        ({"subscription": "unknown", "has_deliveries": False}, "not_subscribed"),
        ({"subscription": "cancelled"}, "not_subscribed"),
        ({"subscription": "suspended"}, "account_suspended"),
        ({"subscription": "suspended", "suspended_by_mmsq": True}, "delivery_suspended"),
        ({"suspended_by_mmsq": True, "last_cause": "not_fetched"}, "delivery_suspended"),
        ({"has_deliveries": False}, "sync_mismatch"),
        ({"last_cause": "not_fetched"}, "handset_settings"),
        ({"last_cause": "terminal_capacity"}, "memory_full"),
        ({"last_cause": "terminal_incapable"}, "handset_incapable"),
        ({"last_cause": "unreachable"}, "unreachable"),
        ({"last_cause": "delivered"}, "delivered_not_seen"),
        ({"last_cause": "platform_error"}, "unknown"),
    ],
)
def test_shipped_cases_give_the_expected_next_step(given: dict[str, object], case: str) -> None:
    cases = load_complaint_cases()
    assert cases.next_step(facts(**given)).id == case


def test_every_shipped_case_has_english_and_chinese_scripts() -> None:
    for case in load_complaint_cases().cases:
        assert case.script.en.strip()
        assert any("\u4e00" <= ch <= "\u9fff" for ch in case.script.zh)
        assert "\\" not in case.script.en


def test_operator_file_replaces_shipped_and_is_validated(tmp_path: Path) -> None:
    (tmp_path / "complaint_cases.toml").write_text(
        '[[cases]]\nid = "only"\ntitle = "x"\nmatch = { last_cause = ["delivered"] }\n'
        '[cases.script]\nen = "a"\nzh = "b"\n',
        encoding="utf-8",
    )
    with pytest.raises(RulesError, match="must have no match conditions"):
        load_complaint_cases(tmp_path)
    (tmp_path / "complaint_cases.toml").write_text(
        '[[cases]]\nid = "only"\ntitle = "x"\nmatch = { subscription = ["gone"] }\n'
        '[cases.script]\nen = "a"\nzh = "b"\n',
        encoding="utf-8",
    )
    with pytest.raises(RulesError, match="unknown subscription state"):
        load_complaint_cases(tmp_path)


def record(
    minutes_ago: int, cause: str, code: str = "Retrieved", final: bool = True
) -> DeliveryRecord:
    at = T0 - timedelta(minutes=minutes_ago)
    return DeliveryRecord(MSISDN, "ed", f"m{minutes_ago}", at, at, "mm7", code, None, cause, final)


def test_diagnosis_of_a_misconfigured_handset() -> None:
    subs = InMemorySubscriptions([SubscriptionView(MSISDN, "ah-daily", SubscriptionStatus.ACTIVE)])
    history = FakeHistory(
        [
            record(10, "not_fetched", "Expired"),
            record(20, "pending", "Pending", final=False),
            record(720, "not_fetched", "Expired"),
            record(1440, "delivered"),
        ]
    )
    svc = DiagnosisService(
        subscriptions=subs,
        history=history,
        devices=NoDevices(),
        recovery=FakeRecovery(),
        resends=MemoryResendStore(),
        cases=load_complaint_cases(),
    )
    d = svc.diagnose(MSISDN)
    assert d.assessment is not None
    assert d.assessment.verdict == "terminal_misconfigured"
    assert d.assessment.source == "delivery history"
    assert d.assessment.reasons[0] == "2 of the last 3 final deliveries failed"
    assert d.next_step.id == "handset_settings"
    assert [r.message_id for r in d.deliveries] == ["m10", "m20", "m720", "m1440"]


def test_diagnosis_of_subscriber_suspended_by_mmsq() -> None:
    subs = InMemorySubscriptions([SubscriptionView(MSISDN, "ah-daily", SubscriptionStatus.ACTIVE)])
    recovery = SubscriberRecovery(
        MSISDN,
        State.PROBING,
        "unreachable",
        "unreachable (score 0.80): 9 failed days in a row; phone off",
        T0,
        2,
        T0,
        (),
    )
    svc = DiagnosisService(
        subscriptions=subs,
        history=FakeHistory([record(10, "not_fetched")]),
        devices=NoDevices(),
        recovery=FakeRecovery({MSISDN: recovery}),
        resends=MemoryResendStore(),
        cases=load_complaint_cases(),
    )
    d = svc.diagnose(MSISDN)
    assert d.suspended_by_mmsq
    assert d.next_step.id == "delivery_suspended"
    assert d.assessment is not None
    assert (d.assessment.verdict, d.assessment.recovery_state, d.assessment.source) == (
        "unreachable",
        "probing",
        "scoring",
    )
    assert d.assessment.reasons == (
        "unreachable (score 0.80)",
        "9 failed days in a row",
        "phone off",
    )


def test_operator_suspension_is_not_mmsq_suspension() -> None:
    subs = InMemorySubscriptions(
        [SubscriptionView(MSISDN, "ah-daily", SubscriptionStatus.SUSPENDED)]
    )
    svc = DiagnosisService(
        subscriptions=subs,
        history=FakeHistory([record(10, "not_fetched")]),
        devices=NoDevices(),
        recovery=FakeRecovery(),
        resends=MemoryResendStore(),
        cases=load_complaint_cases(),
    )
    d = svc.diagnose(MSISDN)
    assert not d.suspended_by_mmsq
    assert d.next_step.id == "account_suspended"

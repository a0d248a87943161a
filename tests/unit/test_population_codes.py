"""Every code the simulated population can emit means, to the shipped rules, what it intends."""

from __future__ import annotations

import pytest

from mmsq.classify import Classifier
from mmsq.rules_loader import load_rules
from mmsq.simulators.handset_codes import (
    HEALTHY_EXPIRY,
    HEALTHY_TRANSIENT,
    MMS_VARIANTS,
    SMS_TRANSIENT,
    SMS_VARIANTS,
    UNKNOWN_CODES,
    MmsVariant,
)
from mmsq.simulators.handset_states import EXPECTED_VERDICT, HandsetState

NOTIFY_NAMESPACE = "cmpp"  # the ingest setting notify_status_source defaults to cmpp

# What each state's codes must say (the MMS status code's class; the notification's class).
_INTENDED: dict[HandsetState, tuple[set[str], set[str | None]]] = {
    HandsetState.HEALTHY: ({"delivered"}, {"delivered"}),
    HandsetState.SETTINGS_WRONG_APN: ({"not_fetched"}, {"delivered"}),
    HandsetState.SETTINGS_WRONG_MMSC: ({"not_fetched"}, {"delivered"}),
    HandsetState.AUTO_DOWNLOAD_OFF: ({"not_fetched"}, {"delivered"}),
    HandsetState.MEMORY_FULL: ({"terminal_capacity"}, {"delivered", "terminal_capacity"}),
    HandsetState.POWERED_OFF_HOURS: ({"unreachable", "not_fetched"}, {"unreachable"}),
    HandsetState.POWERED_OFF_WEEKS: ({"unreachable", "not_fetched"}, {"unreachable"}),
    HandsetState.OUT_OF_COVERAGE: ({"unreachable", "not_fetched"}, {"unreachable"}),
    HandsetState.NON_MMS_HANDSET: (
        {"terminal_incapable", "not_fetched"},
        {"delivered", "terminal_incapable"},
    ),
    HandsetState.NUMBER_CANCELLED: ({"subscriber_invalid"}, {"subscriber_invalid", "unknown"}),
    HandsetState.SUSPENDED_BILLING: (
        {"subscriber_suspended", "policy_blocked"},
        {"subscriber_suspended", "unknown"},
    ),
}

ALL_MMS = [
    pytest.param(v, id=f"{state.label}:{v.status_source}:{v.status_code}:{v.notify_status}")
    for state, vs in MMS_VARIANTS.items()
    for v in vs
] + [
    pytest.param(v, id=f"noise:{v.status_source}:{v.status_code}")
    for v in (*HEALTHY_TRANSIENT, *HEALTHY_EXPIRY)
]


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier(load_rules().status_codes)


@pytest.mark.parametrize("variant", ALL_MMS)
def test_every_mms_variant_classifies_as_declared(
    classifier: Classifier, variant: MmsVariant
) -> None:
    code = classifier.lookup(variant.status_source, variant.status_code)
    assert code.known
    assert code.cause.value == variant.cause
    mm = classifier.lookup("mm7", variant.mm_status)
    assert mm.known
    assert mm.cause.value == variant.mm_status_cause
    if variant.notify_status:
        notify = classifier.lookup(NOTIFY_NAMESPACE, variant.notify_status)
        assert notify.known
        assert notify.cause.value == variant.notify_cause
    else:
        assert variant.notify_cause is None


@pytest.mark.parametrize("state", list(HandsetState), ids=lambda s: s.label)
def test_each_state_reports_the_causes_intended_for_it(state: HandsetState) -> None:
    codes, notifies = _INTENDED[state]
    variants = MMS_VARIANTS[state]
    assert {v.cause for v in variants} <= codes
    assert {v.notify_cause for v in variants} <= notifies
    assert sum(v.weight for v in variants) == pytest.approx(1.0)


def test_wrong_settings_look_like_a_delivered_push_never_fetched() -> None:
    for state in (HandsetState.SETTINGS_WRONG_APN, HandsetState.SETTINGS_WRONG_MMSC):
        assert all(
            v.cause == "not_fetched" and v.notify_status == "DELIVRD" for v in MMS_VARIANTS[state]
        )
        assert EXPECTED_VERDICT[state] == "terminal_misconfigured"


@pytest.mark.parametrize(("namespace", "code"), UNKNOWN_CODES)
def test_deliberately_unknown_codes_are_unknown_to_the_rules(
    classifier: Classifier, namespace: str, code: str
) -> None:
    got = classifier.lookup(namespace, code)
    assert not got.known
    assert got.cause.value == "unknown"


@pytest.mark.parametrize("state", list(HandsetState), ids=lambda s: s.label)
def test_sms_receipts_classify_as_declared(classifier: Classifier, state: HandsetState) -> None:
    for v in (*SMS_VARIANTS[state], SMS_TRANSIENT):
        got = classifier.lookup("smpp", v.stat, v.err)
        assert got.known
        assert got.cause.value == v.cause


def test_reachable_handsets_get_sms_even_with_broken_mms() -> None:
    for state in (
        HandsetState.HEALTHY,
        HandsetState.SETTINGS_WRONG_APN,
        HandsetState.SETTINGS_WRONG_MMSC,
        HandsetState.AUTO_DOWNLOAD_OFF,
        HandsetState.NON_MMS_HANDSET,
    ):
        assert [v.stat for v in SMS_VARIANTS[state]] == ["DELIVRD"]
    for state in (HandsetState.POWERED_OFF_HOURS, HandsetState.NUMBER_CANCELLED):
        assert all(v.stat != "DELIVRD" for v in SMS_VARIANTS[state])

"""Classification of every shipped status-code table, and the lookup rules themselves."""

from __future__ import annotations

import pytest

from mmsq.classify import Classifier
from mmsq.domain import CauseClass
from mmsq.rules_loader import load_rules

RULES = load_rules().status_codes
ALL_ENTRIES = [
    pytest.param(ns_name, entry, id=f"{ns_name}:{entry.code}")
    for ns_name, ns in RULES.namespaces.items()
    for entry in ns.codes
]


@pytest.fixture
def classifier() -> Classifier:
    return Classifier(RULES)


@pytest.mark.parametrize(("namespace", "entry"), ALL_ENTRIES)
def test_every_shipped_entry_classifies_to_its_own_cause(
    classifier: Classifier, namespace: str, entry: object
) -> None:
    got = classifier.lookup(namespace, entry.code)  # type: ignore[attr-defined]
    assert got.known
    assert got.cause is entry.cause  # type: ignore[attr-defined]
    assert got.final is entry.final  # type: ignore[attr-defined]
    assert got.provenance


@pytest.mark.parametrize(
    ("namespace", "code", "err", "cause"),
    [
        ("mm7", "Retrieved", None, CauseClass.DELIVERED),
        ("MM7", " retrieved ", None, CauseClass.DELIVERED),
        ("mm7", "Expired", None, CauseClass.NOT_FETCHED),
        ("mm7", "unrecognized", None, CauseClass.TERMINAL_INCAPABLE),
        ("mm7", "4006", None, CauseClass.NETWORK_TRANSIENT),
        ("mm7", "2003", None, CauseClass.SUBSCRIBER_INVALID),
        ("mms", "0x81", None, CauseClass.DELIVERED),
        ("mms", "129", None, CauseClass.DELIVERED),
        ("mms", "0X80", None, CauseClass.NOT_FETCHED),
        ("mms_response", "0xC7", None, CauseClass.NETWORK_TRANSIENT),
        ("mms_response", "0xF3", None, CauseClass.UNKNOWN),
        ("cmpp", "MK:0017", None, CauseClass.TERMINAL_CAPACITY),
        ("cmpp", "mk:0024", None, CauseClass.UNREACHABLE),
        ("cmpp", "MK:0001", None, CauseClass.SUBSCRIBER_INVALID),
        ("cmpp", "DB:0102", None, CauseClass.SUBSCRIBER_SUSPENDED),
        ("cmpp", "MB:1077", None, CauseClass.POLICY_BLOCKED),
        ("sgip", "26", None, CauseClass.TERMINAL_CAPACITY),
        ("sgip", "026", None, CauseClass.TERMINAL_CAPACITY),
        ("smgp", "err:601", None, CauseClass.SUBSCRIBER_SUSPENDED),
        ("smpp", "DELIVRD", "000", CauseClass.DELIVERED),
        ("smpp", "UNDELIV", "027", CauseClass.UNREACHABLE),
        ("smpp", "UNDELIV", "0x20", CauseClass.TERMINAL_CAPACITY),
        ("smpp", "UNDELIV", "999", CauseClass.UNKNOWN),
        ("smpp_command", "0x58", None, CauseClass.NETWORK_TRANSIENT),
        ("smpp_command", "88", None, CauseClass.NETWORK_TRANSIENT),
        ("parlayx", "DeliveredToTerminal", None, CauseClass.DELIVERED),
    ],
)
def test_known_codes_map_to_the_expected_cause(
    classifier: Classifier, namespace: str, code: str, err: str | None, cause: CauseClass
) -> None:
    assert classifier.lookup(namespace, code, err).cause is cause


def test_unrefined_undeliverable_is_still_a_known_code(classifier: Classifier) -> None:
    got = classifier.lookup("smpp", "UNDELIV", "999")
    assert got.known
    assert classifier.unknown_seen == {}


def test_retry_advice_follows_the_rules(classifier: Classifier) -> None:
    assert classifier.lookup("mm7", "4006").retry
    assert not classifier.lookup("mm7", "2002").retry
    assert classifier.lookup("smpp_command", "0x14").retry


@pytest.mark.parametrize(
    ("namespace", "code"),
    [("cmpp", "ZZ:9999"), ("nosuch", "1"), ("mms", "junk"), ("mm7", ""), ("sgip", "99999")],
)
def test_unknown_codes_are_classified_unknown_and_counted(
    classifier: Classifier, namespace: str, code: str
) -> None:
    got = classifier.lookup(namespace, code)
    assert got.cause is CauseClass.UNKNOWN
    assert not got.known
    assert sum(classifier.unknown_seen.values()) == 1


def test_pending_states_are_not_final(classifier: Classifier) -> None:
    for ns, code in [("smpp", "ENROUTE"), ("mm7", "1000"), ("parlayx", "MessageWaiting")]:
        got = classifier.lookup(ns, code)
        assert got.cause is CauseClass.PENDING
        assert not got.final

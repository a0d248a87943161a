"""The shipped status-code table (`rules/status_codes.toml`): validity, contents, lookups."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

import mmsq.rules
from mmsq.classify import Classifier
from mmsq.domain import CauseClass
from mmsq.rules_model import CodeEntry, StatusCodeRules, parse_int_code

SHIPPED = Path(mmsq.rules.__file__).parent / "status_codes.toml"
NAMESPACES = {
    "mm7",
    "mms",
    "mms_response",
    "mms_retrieve",
    "smpp",
    "smpp_state",
    "smpp_err",
    "smpp_command",
    "cmpp",
    "sgip",
    "smgp",
    "parlayx",
}


def _load() -> StatusCodeRules:
    with SHIPPED.open("rb") as fh:
        return StatusCodeRules.model_validate(tomllib.load(fh))


RULES = _load()
ENTRIES = [
    pytest.param(ns_name, entry, id=f"{ns_name}:{entry.code}")
    for ns_name, ns in RULES.namespaces.items()
    for entry in ns.codes
]


@pytest.fixture
def classifier() -> Classifier:
    return Classifier(RULES)


def _entries(cause: CauseClass) -> list[tuple[str, CodeEntry]]:
    return [
        (name, e) for name, ns in RULES.namespaces.items() for e in ns.codes if e.cause is cause
    ]


def test_shipped_file_validates_with_version_and_all_namespaces() -> None:
    rules = _load()
    assert rules.version == "2026-11-22"
    assert set(rules.namespaces) == NAMESPACES
    assert all(ns.codes for ns in rules.namespaces.values())


@pytest.mark.parametrize(("namespace", "entry"), ENTRIES)
def test_every_entry_classifies_to_its_own_cause(
    classifier: Classifier, namespace: str, entry: CodeEntry
) -> None:
    got = classifier.lookup(namespace, entry.code)
    assert got.known
    assert (got.cause, got.final, got.retry) == (entry.cause, entry.final, entry.retry)
    assert got.provenance == entry.provenance
    assert classifier.unknown_seen == {}


@pytest.mark.parametrize(("namespace", "entry"), ENTRIES)
def test_every_entry_is_found_in_another_spelling(
    classifier: Classifier, namespace: str, entry: CodeEntry
) -> None:
    if RULES.namespaces[namespace].match == "integer":
        value = parse_int_code(entry.code)
        assert value is not None
        spelling = f"0{value}" if entry.code.lower().startswith("0x") else hex(value).upper()
    else:
        spelling = f"  {entry.code.swapcase()} "
    assert classifier.lookup(namespace, spelling).cause is entry.cause


@pytest.mark.parametrize(("namespace", "entry"), ENTRIES)
def test_every_entry_cites_a_source(namespace: str, entry: CodeEntry) -> None:
    assert entry.provenance.strip()
    assert entry.provenance != entry.code


@pytest.mark.parametrize(
    ("namespace", "code", "err", "cause"),
    [
        ("mm7", "Retrieved", None, CauseClass.DELIVERED),
        ("mm7", "RETRIEVED", None, CauseClass.DELIVERED),
        ("mm7", "Expired", None, CauseClass.NOT_FETCHED),
        ("mm7", "Deferred", None, CauseClass.NOT_FETCHED),
        ("mm7", "Rejected", None, CauseClass.CONTENT_REJECTED),
        ("mm7", "Indeterminate", None, CauseClass.UNKNOWN),
        ("mm7", "Forwarded", None, CauseClass.PENDING),
        ("mm7", "Unrecognised", None, CauseClass.TERMINAL_INCAPABLE),
        ("mm7", "unrecognized", None, CauseClass.TERMINAL_INCAPABLE),
        ("mm7", "DeliveryConditionNotMet", None, CauseClass.TERMINAL_INCAPABLE),
        ("mm7", "Unreachable", None, CauseClass.UNREACHABLE),
        ("mm7", "NotSupported", None, CauseClass.TERMINAL_INCAPABLE),
        ("mm7", "1000", None, CauseClass.PENDING),
        ("mm7", "1100", None, CauseClass.PENDING),
        ("mm7", "2001", None, CauseClass.POLICY_BLOCKED),
        ("mm7", "2002", None, CauseClass.SUBSCRIBER_INVALID),
        ("mm7", "2003", None, CauseClass.SUBSCRIBER_INVALID),
        ("mm7", "2004", None, CauseClass.CONTENT_REJECTED),
        ("mm7", "2007", None, CauseClass.CONTENT_REJECTED),
        ("mm7", "3002", None, CauseClass.CONTENT_REJECTED),
        ("mm7", "4001", None, CauseClass.PLATFORM_ERROR),
        ("mm7", "4006", None, CauseClass.NETWORK_TRANSIENT),
        ("mm7", "4008", None, CauseClass.POLICY_BLOCKED),
        ("mms", "0x80", None, CauseClass.NOT_FETCHED),
        ("mms", "0x81", None, CauseClass.DELIVERED),
        ("mms", "129", None, CauseClass.DELIVERED),
        ("mms", "0x84", None, CauseClass.TERMINAL_INCAPABLE),
        ("mms", "0x87", None, CauseClass.UNREACHABLE),
        ("mms_response", "0x80", None, CauseClass.PENDING),
        ("mms_response", "0xC3", None, CauseClass.NETWORK_TRANSIENT),
        ("mms_response", "0xC7", None, CauseClass.NETWORK_TRANSIENT),
        ("mms_response", "0xE5", None, CauseClass.CONTENT_REJECTED),
        ("mms_response", "0xF3", None, CauseClass.UNKNOWN),
        ("mms_retrieve", "0x80", None, CauseClass.DELIVERED),
        ("mms_retrieve", "0xE3", None, CauseClass.TERMINAL_INCAPABLE),
        ("smpp", "ENROUTE", None, CauseClass.PENDING),
        ("smpp", "DELIVRD", "000", CauseClass.DELIVERED),
        ("smpp", "EXPIRED", None, CauseClass.UNREACHABLE),
        ("smpp", "BUFFRED", None, CauseClass.PENDING),
        ("smpp", "SKIPPED", None, CauseClass.POLICY_BLOCKED),
        ("smpp", "UNDELIV", "027", CauseClass.UNREACHABLE),
        ("smpp", "UNDELIV", "0x1B", CauseClass.UNREACHABLE),
        ("smpp", "UNDELIV", "001", CauseClass.SUBSCRIBER_INVALID),
        ("smpp", "UNDELIV", "032", CauseClass.TERMINAL_CAPACITY),
        ("smpp", "REJECTD", "013", CauseClass.POLICY_BLOCKED),
        ("smpp", "UNDELIV", "999", CauseClass.UNKNOWN),
        ("smpp_state", "2", None, CauseClass.DELIVERED),
        ("smpp_state", "5", "6", CauseClass.UNREACHABLE),
        ("smpp_err", "034", None, CauseClass.NETWORK_TRANSIENT),
        ("smpp_command", "0x0B", None, CauseClass.SUBSCRIBER_INVALID),
        ("smpp_command", "0x58", None, CauseClass.NETWORK_TRANSIENT),
        ("smpp_command", "88", None, CauseClass.NETWORK_TRANSIENT),
        ("smpp_command", "0x61", None, CauseClass.PLATFORM_ERROR),
        ("cmpp", "DELIVRD", None, CauseClass.DELIVERED),
        ("cmpp", "MK:0001", None, CauseClass.SUBSCRIBER_INVALID),
        ("cmpp", "MK:0016", None, CauseClass.TERMINAL_INCAPABLE),
        ("cmpp", "MK:0017", None, CauseClass.TERMINAL_CAPACITY),
        ("cmpp", "mk:0024", None, CauseClass.UNREACHABLE),
        ("cmpp", "MK:0208", None, CauseClass.TERMINAL_CAPACITY),
        ("cmpp", "MI:0010", None, CauseClass.SUBSCRIBER_INVALID),
        ("cmpp", "MN:0036", None, CauseClass.UNREACHABLE),
        ("cmpp", "MC:0055", None, CauseClass.TERMINAL_CAPACITY),
        ("cmpp", "MB:1031", None, CauseClass.TERMINAL_CAPACITY),
        ("cmpp", "MB:1077", None, CauseClass.POLICY_BLOCKED),
        ("cmpp", "MA:0054", None, CauseClass.NETWORK_TRANSIENT),
        ("cmpp", "IC:0151", None, CauseClass.NETWORK_TRANSIENT),
        ("cmpp", "DB:0100", None, CauseClass.SUBSCRIBER_INVALID),
        ("cmpp", "DB:0102", None, CauseClass.SUBSCRIBER_SUSPENDED),
        ("cmpp", "DB:0103", None, CauseClass.SUBSCRIBER_SUSPENDED),
        ("cmpp", "DB:0141", None, CauseClass.POLICY_BLOCKED),
        ("cmpp", "ID:0076", None, CauseClass.CONTENT_REJECTED),
        ("cmpp", "TUIDING", None, CauseClass.POLICY_BLOCKED),
        ("cmpp", "tuiding", None, CauseClass.POLICY_BLOCKED),
        ("cmpp", "MX:0012", None, CauseClass.POLICY_BLOCKED),
        ("cmpp", "ID:0008", None, CauseClass.NETWORK_TRANSIENT),
        ("sgip", "0", None, CauseClass.DELIVERED),
        ("sgip", "25", None, CauseClass.UNREACHABLE),
        ("sgip", "26", None, CauseClass.TERMINAL_CAPACITY),
        ("sgip", "026", None, CauseClass.TERMINAL_CAPACITY),
        ("sgip", "27", None, CauseClass.TERMINAL_INCAPABLE),
        ("sgip", "29", None, CauseClass.SUBSCRIBER_INVALID),
        ("sgip", "43", None, CauseClass.TERMINAL_CAPACITY),
        ("sgip", "108", None, CauseClass.SUBSCRIBER_SUSPENDED),
        ("sgip", "118", None, CauseClass.TERMINAL_INCAPABLE),
        ("sgip", "106", None, CauseClass.POLICY_BLOCKED),
        ("smgp", "DELIVRD", None, CauseClass.DELIVERED),
        ("smgp", "err:601", None, CauseClass.SUBSCRIBER_SUSPENDED),
        ("smgp", "ERR:613", None, CauseClass.SUBSCRIBER_INVALID),
        ("smgp", "ERR:602", None, CauseClass.UNREACHABLE),
        ("smgp", "ExpiredS713S", None, CauseClass.TERMINAL_CAPACITY),
        ("parlayx", "DeliveredToTerminal", None, CauseClass.DELIVERED),
        ("parlayx", "MessageWaiting", None, CauseClass.PENDING),
        ("parlayx", "DeliveryImpossible", None, CauseClass.UNKNOWN),
    ],
)
def test_well_known_codes_map_to_the_expected_cause(
    classifier: Classifier, namespace: str, code: str, err: str | None, cause: CauseClass
) -> None:
    got = classifier.lookup(namespace, code, err)
    assert got.cause is cause
    assert got.known


def test_undeliverable_with_an_unlisted_err_keeps_its_own_known_class(
    classifier: Classifier,
) -> None:
    got = classifier.lookup("smpp", "UNDELIV", "999")
    assert (got.cause, got.known, got.final) == (CauseClass.UNKNOWN, True, True)
    assert got.provenance == classifier.lookup("smpp", "UNDELIV").provenance
    assert classifier.unknown_seen == {}


def test_err_zero_means_no_error_and_is_not_a_map_code(classifier: Classifier) -> None:
    assert classifier.lookup("smpp", "UNDELIV", "000").cause is CauseClass.UNKNOWN
    assert classifier.lookup("smpp", "DELIVRD", "000").cause is CauseClass.DELIVERED
    assert not classifier.lookup("smpp_err", "0").known


def test_refinement_carries_the_refining_entrys_retry_advice(classifier: Classifier) -> None:
    absent = classifier.lookup("smpp", "UNDELIV", "27")
    invalid = classifier.lookup("smpp", "UNDELIV", "1")
    assert absent.retry
    assert not invalid.retry


def test_unassigned_transient_response_status_falls_in_the_transient_range(
    classifier: Classifier,
) -> None:
    got = classifier.lookup("mms_response", "0xC7")
    assert (got.cause, got.retry, got.known) == (CauseClass.NETWORK_TRANSIENT, True, True)
    assert "7.3.48" in got.provenance


@pytest.mark.parametrize(
    ("namespace", "code"), [("mms_response", "0xF3"), ("mms_retrieve", "0xE9")]
)
def test_unassigned_permanent_status_is_a_known_final_failure_without_retry(
    classifier: Classifier, namespace: str, code: str
) -> None:
    got = classifier.lookup(namespace, code)
    assert (got.cause, got.final, got.retry, got.known) == (CauseClass.UNKNOWN, True, False, True)
    assert classifier.unknown_seen == {}


def test_retrieve_status_ranges_follow_the_oma_rule(classifier: Classifier) -> None:
    assert classifier.lookup("mms_retrieve", "0xD0").cause is CauseClass.NETWORK_TRANSIENT
    assert classifier.lookup("mms_retrieve", "0xFF").cause is CauseClass.UNKNOWN


def test_assigned_code_inside_a_range_uses_its_own_entry(classifier: Classifier) -> None:
    assert classifier.lookup("mms_response", "0xE5").cause is CauseClass.CONTENT_REJECTED


def test_decimal_and_hex_spellings_of_a_command_status_are_one_code(
    classifier: Classifier,
) -> None:
    assert classifier.lookup("smpp_command", "88") == classifier.lookup("smpp_command", "0x58")
    assert classifier.lookup("smpp_command", "0088") == classifier.lookup("smpp_command", "0x58")


def test_receipt_stat_and_message_state_tlv_agree(classifier: Classifier) -> None:
    stats = [
        "ENROUTE",
        "DELIVRD",
        "EXPIRED",
        "DELETED",
        "UNDELIV",
        "ACCEPTD",
        "UNKNOWN",
        "REJECTD",
        "SKIPPED",
    ]
    for num, stat in enumerate(stats, start=1):
        by_text = classifier.lookup("smpp", stat)
        by_tlv = classifier.lookup("smpp_state", str(num))
        assert (by_text.cause, by_text.final, by_text.retry) == (
            by_tlv.cause,
            by_tlv.final,
            by_tlv.retry,
        ), stat


def test_unknown_code_is_unknown_and_counted(classifier: Classifier) -> None:
    got = classifier.lookup("cmpp", "ZZ:9999")
    assert got.cause is CauseClass.UNKNOWN
    assert not got.known
    classifier.lookup("cmpp", "ZZ:9999")
    assert classifier.unknown_seen == {("cmpp", "ZZ:9999"): 2}


def test_value_outside_every_range_is_unknown_and_counted(classifier: Classifier) -> None:
    assert not classifier.lookup("mms_response", "0x99").known
    assert classifier.unknown_seen == {("mms_response", "0x99"): 1}


def test_pending_entries_and_only_they_are_not_final() -> None:
    for name, ns in RULES.namespaces.items():
        for e in ns.codes:
            assert e.final is (e.cause is not CauseClass.PENDING), f"{name}:{e.code}"


@pytest.mark.parametrize(
    "cause",
    [
        CauseClass.DELIVERED,
        CauseClass.PENDING,
        CauseClass.SUBSCRIBER_INVALID,
        CauseClass.SUBSCRIBER_SUSPENDED,
        CauseClass.POLICY_BLOCKED,
        CauseClass.CONTENT_REJECTED,
        CauseClass.TERMINAL_CAPACITY,
        CauseClass.TERMINAL_INCAPABLE,
        CauseClass.UNKNOWN,
    ],
)
def test_causes_a_blind_resend_cannot_fix_never_advise_retry(cause: CauseClass) -> None:
    assert [f"{n}:{e.code}" for n, e in _entries(cause) if e.retry] == []


def test_only_transient_mm7_status_codes_are_retried() -> None:
    status_codes = [e for e in RULES.namespaces["mm7"].codes if e.code.isdigit()]
    assert {e.code for e in status_codes if e.retry} == {"3000", "3001", "4000", "4005", "4006"}


def test_only_secondary_smpp_states_are_refined_and_by_map_errors() -> None:
    refined = {
        (name, e.code, e.refine_with)
        for name, ns in RULES.namespaces.items()
        for e in ns.codes
        if e.refine_with
    }
    assert refined == {
        ("smpp", "UNDELIV", "smpp_err"),
        ("smpp", "REJECTD", "smpp_err"),
        ("smpp_state", "5", "smpp_err"),
        ("smpp_state", "8", "smpp_err"),
    }


def test_cmpp_codes_are_seven_character_stat_values() -> None:
    assert [e.code for e in RULES.namespaces["cmpp"].codes if len(e.code) != 7] == []


@pytest.mark.parametrize("namespace", ["mms", "mms_response", "mms_retrieve"])
def test_mms_header_values_are_single_octets_with_the_high_bit_set(namespace: str) -> None:
    ns = RULES.namespaces[namespace]
    values = [parse_int_code(e.code) for e in ns.codes]
    assert all(v is not None and 0x80 <= v <= 0xFF for v in values)
    assert all(0x80 <= r.from_ <= r.to <= 0xFF for r in ns.ranges)


def test_every_cause_class_is_used_by_some_entry() -> None:
    used = {e.cause for ns in RULES.namespaces.values() for e in ns.codes}
    assert used == set(CauseClass)

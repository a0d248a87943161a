"""Each verdict's rules, table-driven, from day-by-day histories written as letters."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mmsq.devices import DeviceCatalogue, read_device_table
from mmsq.features import bit_length, build_features, popcount, summarise_window
from mmsq.scoring import explain, score_subscribers
from mmsq.scoring_rules import load_scoring_rules

LAST = date(2026, 11, 22)
WINDOW = 30
FIRST = LAST - timedelta(days=WINDOW - 1)
NOKIA_6300 = "35332003"  # MMS, accepts OTA settings
NOKIA_1100 = "35694005"  # no MMS
IPHONE_4 = "35925406"  # MMS, no OTA

# One letter per day, oldest first, ending on LAST; "." means no report that day.
# Two editions a day, both with the same outcome.
_DAY: dict[str, dict[str, int]] = {
    "D": {"delivered": 2, "c_delivered": 2},
    "N": {"notified_not_fetched": 2, "c_not_fetched": 2},
    "F": {"c_not_fetched": 2},
    "U": {"c_unreachable": 2},
    "C": {"c_terminal_capacity": 2},
    "I": {"c_terminal_incapable": 2},
    "X": {"c_subscriber_invalid": 2},
    "P": {"c_policy_blocked": 2},
    "S": {"c_subscriber_suspended": 2},
    "T": {"c_network_transient": 2},
}


def daily(msisdn: str, pattern: str) -> pd.DataFrame:
    pattern = pattern.rjust(WINDOW, ".")
    rows = []
    for j, letter in enumerate(pattern):
        if letter == ".":
            continue
        row = {"msisdn": msisdn, "day": FIRST + timedelta(days=j), "attempts": 2, "final": 2}
        row.update(_DAY[letter])
        rows.append(row)
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def catalogue() -> DeviceCatalogue:
    return DeviceCatalogue(
        read_device_table(Path(__file__).parent.parent / "fixtures" / "devices_scoring.csv")
    )


def assess(
    catalogue: DeviceCatalogue,
    pattern: str,
    tac: str | None = NOKIA_6300,
    status: str = "unknown",
    blacklisted: str | None = None,
) -> tuple[pd.Series, pd.Series]:
    msisdn = "+8613800138000"
    frame = daily(msisdn, pattern)
    summary = summarise_window(frame, FIRST, LAST)
    if summary.empty:  # no history: the subscriber is known (a state, a device) but silent
        summary = pd.DataFrame([dict.fromkeys(summary.columns, 0) | {"msisdn": msisdn}])
    rules = load_scoring_rules()
    f = build_features(
        summary,
        FIRST,
        WINDOW,
        devices=pd.DataFrame({"msisdn": [msisdn], "tac": [tac]}) if tac else None,
        catalogue=catalogue,
        subscription_status=pd.Series([status]),
        blacklist=pd.DataFrame({"msisdn": [msisdn], "reason": [blacklisted]})
        if blacklisted
        else None,
    )
    scored = score_subscribers(f, rules)
    scored["reasons"] = explain(f, scored, rules)
    return f.iloc[0], scored.iloc[0]


CASES = [
    # (id, pattern, tac, subscription status, expected verdict)
    ("no history at all", "", NOKIA_6300, "unknown", "insufficient_evidence"),
    ("too few days", "DD", NOKIA_6300, "unknown", "insufficient_evidence"),
    ("delivered every day", "D" * 30, NOKIA_6300, "unknown", "healthy"),
    ("one failed day is not a run", "D" * 29 + "U", NOKIA_6300, "unknown", "healthy"),
    (
        "received before, now notified but never fetched",
        "D" * 24 + "N" * 6,
        NOKIA_6300,
        "unknown",
        "terminal_misconfigured",
    ),
    (
        "misconfigured with a day powered off",
        "D" * 20 + "NNUNNN",
        IPHONE_4,
        "unknown",
        "terminal_misconfigured",
    ),
    (
        "new MMS handset never fetched from day one",
        "." * 20 + "N" * 10,
        NOKIA_6300,
        "unknown",
        "terminal_misconfigured",
    ),
    (
        "new subscriber failing from day one on a non-MMS handset",
        "." * 20 + "N" * 10,
        NOKIA_1100,
        "unknown",
        "terminal_incapable",
    ),
    (
        "incapable codes on an unknown handset",
        "." * 22 + "I" * 8,
        None,
        "unknown",
        "terminal_incapable",
    ),
    ("memory full", "D" * 24 + "C" * 6, NOKIA_6300, "unknown", "terminal_capacity"),
    (
        "memory full, not misconfigured, despite a not-fetched day",
        "D" * 22 + "CCNCCCCC",
        NOKIA_6300,
        "unknown",
        "terminal_capacity",
    ),
    (
        "powered off for a week and more",
        "D" * 20 + "UFUFUFUFUF",
        NOKIA_6300,
        "unknown",
        "unreachable",
    ),
    (
        "powered off for three days: not yet actionable",
        "D" * 27 + "UUU",
        NOKIA_6300,
        "unknown",
        "insufficient_evidence",
    ),
    ("cancelled number", "D" * 25 + "XXXXX", NOKIA_6300, "unknown", "subscriber_invalid"),
    (
        "cancelled subscription, transient errors",
        "D" * 25 + "TTTTT",
        NOKIA_6300,
        "cancelled",
        "subscriber_invalid",
    ),
    ("opted out", "D" * 25 + "PPPPP", NOKIA_6300, "unknown", "policy_blocked"),
    ("suspended by billing", "D" * 25 + "SSSSS", NOKIA_6300, "unknown", "policy_blocked"),
    (
        "network trouble is not the subscriber's",
        "D" * 24 + "T" * 6,
        NOKIA_6300,
        "unknown",
        "insufficient_evidence",
    ),
]


@pytest.mark.parametrize(
    ("pattern", "tac", "status", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_verdict(
    catalogue: DeviceCatalogue, pattern: str, tac: str | None, status: str, expected: str
) -> None:
    _f, s = assess(catalogue, pattern, tac, status)
    assert s["verdict"] == expected, s["reasons"]


def test_reasons_say_what_an_agent_needs(catalogue: DeviceCatalogue) -> None:
    _f, s = assess(catalogue, "D" * 26 + "NNUN")
    assert s["reasons"] == (
        "4 failed days in a row since 2026-11-19 (days with a final report and no delivery); "
        "3 of those 4 days: notification delivered, MM never fetched; "
        "1 of those 4 days: absent subscriber or powered off; "
        "received 52 MMS before 2026-11-19; handset Nokia 6300 accepts OTA settings"
    )


def test_blacklist_excludes_contact_never_diagnosis(catalogue: DeviceCatalogue) -> None:
    f, s = assess(catalogue, "D" * 24 + "N" * 6, blacklisted="complaint")
    assert s["verdict"] == "terminal_misconfigured"
    assert bool(f["blacklisted"])
    assert "on the do-not-contact list (complaint): no proactive contact" in s["reasons"]


def test_new_subscriber_on_non_mms_handset_is_explained(catalogue: DeviceCatalogue) -> None:
    _f, s = assess(catalogue, "." * 20 + "N" * 10, NOKIA_1100)
    assert "never received an MMS since first seen on 2026-11-13" in s["reasons"]
    assert "handset Nokia 1100 cannot do MMS" in s["reasons"]


def test_short_outage_says_what_it_waits_for(catalogue: DeviceCatalogue) -> None:
    _f, s = assess(catalogue, "D" * 27 + "UUU")
    assert "closest is unreachable" in s["reasons"]
    assert "which needs 7 failed days" in s["reasons"]


def test_unknown_handset_is_named_by_tac(catalogue: DeviceCatalogue) -> None:
    _f, s = assess(catalogue, "D" * 24 + "C" * 6, tac="99999999")
    assert "handset TAC 99999999 not in the device table" in s["reasons"]


def test_failure_run_counts_days_since_the_last_delivery(catalogue: DeviceCatalogue) -> None:
    f, _s = assess(catalogue, "NNDD" + "." * 20 + "DNN.NN")
    assert f["failed_run"] == 4  # the day without a report is skipped, not a break
    assert f["last_delivery_day"] == "2026-11-17"
    assert f["delivered"] == 6


def test_bit_helpers_are_exact_at_the_top_of_the_word() -> None:
    values = np.array([0, 1, 6, (1 << 62) - 1, (1 << 53) + 1], dtype=np.int64)
    assert popcount(values).tolist() == [0, 1, 2, 62, 2]
    assert bit_length(values).tolist() == [0, 1, 3, 62, 54]


def test_summary_ignores_days_outside_the_window() -> None:
    frame = pd.concat([daily("+8613800138000", "D" * 30)])
    early = frame.assign(day=FIRST - timedelta(days=1)).head(1)
    summary = summarise_window(pd.concat([early, frame]), FIRST, LAST)
    assert summary["attempts"].iloc[0] == 60
    assert summary["m_delivered"].iloc[0] == (1 << 30) - 1


def test_recent_shares_follow_the_latest_days_of_the_run() -> None:
    """Misconfigured for 20 days, then barred by billing for the last 9: the handset's trouble
    now is the bar, and the verdict says so."""
    first = date(2026, 11, 1)
    days = 30
    nnf = sum(1 << j for j in range(days - 9))
    policy = sum(1 << j for j in range(days - 9, days))
    summary = pd.DataFrame(
        {
            "msisdn": ["+8613800138000"],
            "attempts": [60],
            "final": [60],
            "delivered": [0],
            "m_final": [nnf | policy],
            "m_delivered": [0],
            "m_nnf": [nnf],
            "m_nf": [nnf],
            "m_capacity": [0],
            "m_incapable": [0],
            "m_unreachable": [0],
            "m_invalid": [0],
            "m_policy": [policy],
        }
    )
    f = build_features(summary, first, days, recent_days=7)
    assert f["share_policy"].iloc[0] == 9 / 30
    assert f["recent_share_policy"].iloc[0] == 1.0
    assert f["recent_share_notified_not_fetched"].iloc[0] == 0.0
    scored = score_subscribers(f, load_scoring_rules())
    assert scored["verdict"].iloc[0] == "policy_blocked"

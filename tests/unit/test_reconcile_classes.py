"""Each difference class on a small hand-made subscription base, and stale sources."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from mmsq.reconcile import find_differences, freshness
from mmsq.subscriptions import STATUS_CODES, DifferenceClass, Source, SubscriptionStatus

ALL = {Source.BOSS, Source.MISC, Source.PLATFORM}
_CODE = {"": 0, **{s.value: c for s, c in STATUS_CODES.items()}}


def base(*rows: tuple[int, str, str, str, str]) -> pd.DataFrame:
    """Rows of (number, product, boss, misc, platform); "" = not in that source."""
    return pd.DataFrame(
        {
            "msisdn_num": np.array([r[0] for r in rows], dtype=np.int64),
            "product": pd.Categorical([r[1] for r in rows]),
            "boss": np.array([_CODE[r[2]] for r in rows], dtype=np.int8),
            "misc": np.array([_CODE[r[3]] for r in rows], dtype=np.int8),
            "platform": np.array([_CODE[r[4]] for r in rows], dtype=np.int8),
        }
    )


def classes(frame: pd.DataFrame) -> dict[str, list[tuple[str, str, str]]]:
    out: dict[str, list[tuple[str, str, str]]] = {}
    for cls, msisdn, product, action in frame[["class", "msisdn", "product", "action"]].itertuples(
        index=False, name=None
    ):
        out.setdefault(cls, []).append((msisdn, product, action))
    return out


def test_agreeing_sources_have_no_differences() -> None:
    d = find_differences(
        base(
            (8613800000001, "daily", "active", "active", "active"),
            (8613800000002, "daily", "suspended", "suspended", "suspended"),
            (8613800000003, "daily", "unsubscribed", "cancelled", ""),
        ),
        ALL,
    )
    assert d.frame.empty
    assert d.counts() == {c.value: 0 for c in DifferenceClass}


def test_billed_but_not_on_the_send_list_is_added() -> None:
    d = find_differences(base((8613800000001, "daily", "active", "active", "")), ALL)
    assert classes(d.frame) == {"billed_not_on_send_list": [("+8613800000001", "daily", "add")]}


def test_on_the_send_list_but_not_billed_is_removed() -> None:
    d = find_differences(base((8613800000001, "daily", "", "active", "active")), ALL)
    assert classes(d.frame) == {"on_send_list_not_billed": [("+8613800000001", "daily", "remove")]}


@pytest.mark.parametrize(
    ("boss", "platform", "action"),
    [
        ("suspended", "active", "suspend"),
        ("unsubscribed", "active", "remove"),
        ("cancelled", "active", "remove"),
        ("active", "suspended", "add"),
        ("active", "unsubscribed", "add"),
    ],
)
def test_status_mismatch_follows_billing(boss: str, platform: str, action: str) -> None:
    d = find_differences(base((8613800000001, "daily", boss, boss, platform)), ALL)
    assert classes(d.frame) == {"status_mismatch": [("+8613800000001", "daily", action)]}


def test_status_mismatch_between_billing_and_misc_proposes_no_platform_action() -> None:
    d = find_differences(base((8613800000001, "daily", "active", "suspended", "active")), ALL)
    assert classes(d.frame) == {"status_mismatch": [("+8613800000001", "daily", "")]}


def test_product_mismatch_pairs_the_billed_and_the_sent_product() -> None:
    d = find_differences(
        base(
            (8613800000001, "daily", "active", "active", ""),
            (8613800000001, "evening", "", "active", "active"),
        ),
        ALL,
    )
    assert classes(d.frame) == {
        "product_mismatch": [
            ("+8613800000001", "daily", "add"),
            ("+8613800000001", "evening", "remove"),
        ]
    }
    assert list(d.frame["detail"]) == ["the send list has evening", "billed for daily"]


def test_missing_in_misc_is_listed_without_a_platform_action() -> None:
    d = find_differences(base((8613800000001, "daily", "active", "", "active")), ALL)
    assert classes(d.frame) == {"missing_in_misc": [("+8613800000001", "daily", "")]}


def test_a_subscription_in_two_classes_gets_one_repair() -> None:
    d = find_differences(base((8613800000001, "daily", "active", "", "")), ALL)
    assert sorted(d.frame["class"]) == ["billed_not_on_send_list", "missing_in_misc"]
    repairs = d.repairs()
    assert repairs[["action", "msisdn", "class"]].values.tolist() == [
        ["add", "+8613800000001", "billed_not_on_send_list"]
    ]


def test_a_stale_platform_skips_every_comparison_with_it() -> None:
    # The platform's columns read as absent when it is stale: no mass "billed, not sent".
    states = base(
        (8613800000001, "daily", "active", "active", ""),
        (8613800000002, "daily", "active", "suspended", ""),
    )
    d = find_differences(states, {Source.BOSS, Source.MISC})
    counts = d.counts()
    assert counts["billed_not_on_send_list"] is None
    assert counts["on_send_list_not_billed"] is None
    assert counts["product_mismatch"] is None
    assert counts["status_mismatch"] == 1
    assert counts["missing_in_misc"] == 0
    assert d.repairs().empty
    assert "platform" in d.skipped[DifferenceClass.BILLED_NOT_ON_SEND_LIST]


def test_one_fresh_source_compares_nothing() -> None:
    d = find_differences(base((8613800000001, "daily", "active", "", "")), {Source.BOSS})
    assert set(d.counts().values()) == {None}


def test_freshness_allows_the_configured_age() -> None:
    f = freshness(
        {Source.BOSS: date(2026, 11, 22), Source.MISC: date(2026, 11, 21)},
        as_of=date(2026, 11, 23),
        stale_after_days=1,
    )
    assert (f[Source.BOSS].age_days, f[Source.BOSS].stale) == (1, False)
    assert (f[Source.MISC].age_days, f[Source.MISC].stale) == (2, True)
    assert (f[Source.PLATFORM].latest, f[Source.PLATFORM].stale) == (None, True)


def test_status_codes_cover_every_status() -> None:
    assert sorted(STATUS_CODES.values()) == [1, 2, 3, 4]
    assert set(STATUS_CODES) == set(SubscriptionStatus)

"""Contact policy: every reason not to contact, the ladders, caps, budget, holdout, windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from mmsq.contact_policy import (
    ContactPolicy,
    in_holdout,
    load_contact_policy,
    next_send_time,
    plan_contacts,
)
from mmsq.rules_loader import RulesError

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai


@pytest.fixture(scope="module")
def shipped() -> ContactPolicy:
    return load_contact_policy()


@pytest.fixture
def policy(shipped: ContactPolicy) -> ContactPolicy:
    # No holdout unless a test asks for one: the outcome of each check stays visible.
    return shipped.model_copy(update={"holdout": shipped.holdout.model_copy(update={"share": 0.0})})


def cand(msisdn: str, verdict: str = "terminal_misconfigured", **kw: object) -> dict[str, object]:
    return {
        "msisdn": msisdn,
        "verdict": verdict,
        "brand": kw.get("brand", "Nokia"),
        "model": "6300",
        "ota_capable": kw.get("ota_capable", True),
        "delivered": kw.get("delivered", 12),
    }


def history(*rows: tuple[str, str, str, datetime]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["msisdn", "action", "reason", "at"])


def plan(
    policy: ContactPolicy,
    cands: list[dict[str, object]],
    hist: pd.DataFrame | None = None,
    **kw: object,
):  # type: ignore[no-untyped-def]
    return plan_contacts(
        policy,
        pd.DataFrame(cands),
        hist if hist is not None else history(),
        NOW,
        **kw,  # type: ignore[arg-type]
    )


def test_shipped_policy_loads_and_every_ladder_template_exists(shipped: ContactPolicy) -> None:
    assert shipped.holdout.share == 0.10
    assert {"terminal_misconfigured", "terminal_capacity"} <= set(shipped.ladders)


def test_ota_capable_misconfigured_gets_push_then_accept_sms(policy: ContactPolicy) -> None:
    result = plan(policy, [cand("+8613800000001")])
    assert list(result.planned["action"]) == ["ota_push", "help_sms"]
    assert result.planned["template"].isna().tolist() == [True, False]
    assert result.planned["template"][1] == "accept_settings"
    assert result.planned["idempotency_key"].is_unique
    assert result.skipped.empty


def test_other_handsets_get_brand_instructions(policy: ContactPolicy) -> None:
    result = plan(policy, [cand("+8613800000002", ota_capable=False, brand="Samsung")])
    assert list(result.planned["action"]) == ["help_sms"]
    assert result.planned["text"][0].startswith("【彩信助手】三星用户")
    unknown = plan(policy, [cand("+8613800000003", ota_capable=False, brand="Acme")])
    assert "cmwap" in unknown.planned["text"][0]  # the default text


def test_capacity_gets_clear_inbox(policy: ContactPolicy) -> None:
    result = plan(policy, [cand("+8613800000004", "terminal_capacity")])
    assert list(result.planned["template"]) == ["clear_inbox"]


@pytest.mark.parametrize(
    ("case", "kwargs", "hist", "expected"),
    [
        ("unreachable has no remedy", {"verdict": "unreachable"}, None, "no_remedy"),
        ("blacklisted", {"blacklist": True}, None, "blacklist"),
        ("complained last week", {"complained_days_ago": 7}, None, "complained"),
        (
            "same verdict 5 days ago",
            {},
            ("help_sms", "terminal_misconfigured", 5),
            "same_reason",
        ),
        ("responsive, contacted 2 days ago", {}, ("help_sms", "terminal_capacity", 2), "tier_cap"),
        (
            "silent, contacted 10 days ago",
            {"delivered": 0},
            ("help_sms", "terminal_capacity", 10),
            "tier_cap",
        ),
    ],
)
def test_reasons_not_to_contact(
    policy: ContactPolicy,
    case: str,
    kwargs: dict[str, object],
    hist: tuple[str, str, int] | None,
    expected: str,
) -> None:
    msisdn = "+8613800000010"
    c = cand(
        msisdn,
        str(kwargs.get("verdict", "terminal_misconfigured")),
        delivered=kwargs.get("delivered", 12),
    )
    h = history((msisdn, hist[0], hist[1], NOW - timedelta(days=hist[2]))) if hist else history()
    complaints = (
        pd.DataFrame(
            {"msisdn": [msisdn], "at": [NOW - timedelta(days=int(kwargs["complained_days_ago"]))]}
        )  # type: ignore[call-overload]
        if "complained_days_ago" in kwargs
        else None
    )
    blacklist = {msisdn} if kwargs.get("blacklist") else set()
    result = plan(policy, [c], h, blacklist=blacklist, complaints=complaints)
    assert result.planned.empty, case
    assert list(result.skipped["skip"]) == [expected], case


def test_responsive_subscriber_contacted_again_after_the_gap(policy: ContactPolicy) -> None:
    msisdn = "+8613800000011"
    h = history((msisdn, "help_sms", "terminal_capacity", NOW - timedelta(days=3)))
    assert not plan(policy, [cand(msisdn)], h).planned.empty


def test_action_cap_drops_the_capped_step_only(policy: ContactPolicy) -> None:
    msisdn = "+8613800000012"
    old = NOW - timedelta(days=20)
    h = history((msisdn, "ota_push", "x", old), (msisdn, "ota_push", "y", old - timedelta(days=1)))
    result = plan(policy, [cand(msisdn)], h)
    assert list(result.planned["action"]) == ["help_sms"]


def test_action_cap_for_the_only_step_skips_the_subscriber(policy: ContactPolicy) -> None:
    msisdn = "+8613800000013"
    old = NOW - timedelta(days=25)
    h = history(*[(msisdn, "help_sms", f"r{i}", old + timedelta(hours=i)) for i in range(3)])
    result = plan(policy, [cand(msisdn, "terminal_capacity")], h)
    assert list(result.skipped["skip"]) == ["action_cap"]


def test_budget_goes_to_the_first_candidates(policy: ContactPolicy) -> None:
    small = policy.model_copy(
        update={"budget": policy.budget.model_copy(update={"daily_total": 3})}
    )
    cands = [cand(f"+86138000001{i:02d}", "terminal_capacity") for i in range(5)]
    result = plan(small, cands)
    assert list(result.planned["msisdn"]) == [c["msisdn"] for c in cands[:3]]
    assert result.skip_counts() == {"budget": 2}


def test_planning_twice_gives_the_same_keys(policy: ContactPolicy) -> None:
    cands = [cand(f"+86139000000{i}") for i in range(5)]
    assert plan(policy, cands).planned.equals(plan(policy, cands).planned)


def test_holdout_is_stable_and_about_the_configured_share(shipped: ContactPolicy) -> None:
    msisdns = pd.Series([f"+86138{i:08d}" for i in range(20_000)])
    first = in_holdout(msisdns, shipped.holdout)
    assert first.equals(in_holdout(msisdns, shipped.holdout))
    assert 0.09 < first.mean() < 0.11
    other = in_holdout(msisdns, shipped.holdout.model_copy(update={"salt": "another"}))
    assert not first.equals(other)
    result = plan_contacts(
        shipped,
        pd.DataFrame([cand(m, "terminal_capacity") for m in msisdns[:2000]]),
        history(),
        NOW,
    )
    assert result.skip_counts()["holdout"] == int(first[:2000].sum())


@pytest.mark.parametrize(
    ("utc", "expected_utc"),
    [
        # 11:00 local: allowed now
        (datetime(2026, 11, 23, 3, 0, tzinfo=UTC), datetime(2026, 11, 23, 3, 0, tzinfo=UTC)),
        # 23:00 local: quiet hours until 08:30, then the am blackout until 09:00 local
        (datetime(2026, 11, 23, 15, 0, tzinfo=UTC), datetime(2026, 11, 24, 1, 0, tzinfo=UTC)),
        # 07:00 local: blackout around the morning edition until 09:00
        (datetime(2026, 11, 22, 23, 0, tzinfo=UTC), datetime(2026, 11, 23, 1, 0, tzinfo=UTC)),
        # 17:00 local: evening edition blackout until 19:00
        (datetime(2026, 11, 23, 9, 0, tzinfo=UTC), datetime(2026, 11, 23, 11, 0, tzinfo=UTC)),
    ],
)
def test_next_send_time_respects_quiet_hours_and_blackouts(
    shipped: ContactPolicy, utc: datetime, expected_utc: datetime
) -> None:
    assert next_send_time(shipped, utc) == expected_utc


def test_region_time_zone_is_used(shipped: ContactPolicy) -> None:
    policy = shipped.model_copy(
        update={
            "quiet_hours": shipped.quiet_hours.model_copy(
                update={"region_timezones": {"Urumqi": "Asia/Urumqi"}}
            ),
            "blackouts": (),
        }
    )
    # 22:30 in Shanghai is 20:30 in Urumqi: Urumqi may still be contacted.
    t = datetime(2026, 11, 23, 14, 30, tzinfo=UTC)
    assert next_send_time(policy, t, "Urumqi") == t
    assert next_send_time(policy, t, "Hefei") > t


def test_operator_override_is_merged_and_validated(tmp_path: Path) -> None:
    (tmp_path / "contact_policy.toml").write_text("[holdout]\nshare = 0.2\n")
    assert load_contact_policy(tmp_path).holdout.share == 0.2
    (tmp_path / "contact_policy.toml").write_text("[holdout]\nshare = 2\n")
    with pytest.raises(RulesError, match=r"holdout\.share"):
        load_contact_policy(tmp_path)


def test_ladder_with_unknown_template_is_refused(tmp_path: Path) -> None:
    (tmp_path / "contact_policy.toml").write_text(
        '[ladders]\nterminal_capacity = [{ action = "help_sms", template = "nope" }]\n'
    )
    with pytest.raises(RulesError, match="nope"):
        load_contact_policy(tmp_path)

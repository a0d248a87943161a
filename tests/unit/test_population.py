"""The simulated handset population: identities, determinism, state mix and dynamics."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from mmsq.simulators.devices import Device, load_device_table, luhn_check_digit
from mmsq.simulators.handset_states import EXPECTED_VERDICT, STATE_NAMES, HandsetState
from mmsq.simulators.outcomes import OtaPush, OutcomeSource, TextSms
from mmsq.simulators.population import HandsetPopulation
from mmsq.simulators.population_config import DailyRates, PopulationConfig

S = HandsetState
QUIET = DailyRates(**dict.fromkeys(DailyRates.model_fields, 0.0))
GOOD = {
    "NAP-ADDRESS": "cmwap",
    "ADDR": "http://mmsc.monternet.com",
    "PXADDR": "10.0.0.172",
    "PORTNBR": "80",
}


def _pop(**kw: Any) -> HandsetPopulation:
    kw.setdefault("subscribers", 2000)
    return HandsetPopulation(PopulationConfig(**kw))


def _device(pop: HandsetPopulation, **want: Any) -> Device:
    return next(
        d for d in pop.devices if d.known and all(getattr(d, k) == v for k, v in want.items())
    )


def _text(msisdn: str) -> TextSms:
    return TextSms(msisdn=msisdn, text="MMS help: set APN cmwap", data_coding=8, segments=1)


def _push(
    msisdn: str, sec: str | None = "NETWPIN", *, mac_valid: bool = True, **params: str
) -> OtaPush:
    return OtaPush(msisdn, sec, "AB" * 20, mac_valid, "<wap-provisioningdoc/>", {**GOOD, **params})


def _script(pop: HandsetPopulation) -> list[object]:
    """A fixed sequence of calls, as the simulators would make them."""
    seen: list[object] = []
    numbers = pop.msisdns()[:300].tolist()
    for day in range(4):
        for m in numbers:
            seen.append(pop.mms_outcome(m))
            seen.append(pop.sms_outcome(m))
        for m in numbers[::7]:
            pop.on_text_sms(_text(m))
        for m in numbers[::11]:
            pop.on_ota_push(_push(m))
        seen.append(pop.edition_outcomes().to_dict("list"))
        pop.advance_to(day + 1)
    seen.append(pop.complaints())
    return seen


# ------------------------------------------------------------------ identities


def test_satisfies_the_outcome_source_protocol() -> None:
    source: OutcomeSource = _pop(subscribers=10)
    assert source.imsi("+8613800000000") is None


def test_subscribers_have_chinese_mobile_identities() -> None:
    pop = _pop(subscribers=3000)
    numbers = pop.msisdns().tolist()
    assert len(set(numbers)) == 3000
    for m in numbers[:200]:
        assert m.startswith("+861")
        assert len(m) == 14
        imsi = pop.imsi(m)
        assert imsi is not None
        assert len(imsi) == 15
        assert imsi[:5] in {"46000", "46002", "46007"}
        imei = pop.imei(m)
        device = pop.device_of(m)
        assert imei is not None
        assert device is not None
        assert len(imei) == 15
        assert imei.startswith(device.tac)
        assert luhn_check_digit(imei[:14]) == int(imei[14])
        pin = pop.user_pin(m)
        assert pin is not None
        assert len(pin) == 4
        assert pin.isdigit()
        assert pop.region(m) in PopulationConfig().regions
    assert pop.imeis(np.arange(200)).tolist() == [pop.imei(m) for m in numbers[:200]]


def test_luhn_check_digit_of_a_published_example() -> None:
    assert luhn_check_digit("49015420323751") == 8


def test_msisdn_is_found_in_any_usual_spelling() -> None:
    pop = _pop(subscribers=50)
    m = pop.msisdn_at(7)
    national = m[3:]
    for spelling in (m, m[1:], national, "0086" + national, f" {m} "):
        assert pop.index_of(spelling) == 7
    assert pop.index_of("12345") is None


def test_strangers_get_no_such_subscriber_outcomes() -> None:
    pop = _pop(subscribers=10)
    stranger = "+8619900000001"
    assert pop.index_of(stranger) is None
    assert pop.mms_outcome(stranger).status_code == "2003"
    assert pop.sms_outcome(stranger).stat == "UNDELIV"
    assert (
        pop.imsi(stranger),
        pop.user_pin(stranger),
        pop.imei(stranger),
        pop.region(stranger),
    ) == (None,) * 4
    pop.on_text_sms(_text(stranger))
    pop.on_ota_push(_push(stranger))


# ------------------------------------------------------------------ determinism


def test_same_seed_and_same_calls_give_identical_runs() -> None:
    a, b = _pop(seed=42), _pop(seed=42)
    assert _script(a) == _script(b)
    pd.testing.assert_frame_equal(a.ground_truth(), b.ground_truth())
    assert a.complaints() == b.complaints()


def test_another_seed_gives_another_population() -> None:
    a, b = _pop(seed=1), _pop(seed=2)
    assert a.msisdns().tolist() != b.msisdns().tolist()
    assert a.ground_truth()["state"].tolist() != b.ground_truth()["state"].tolist()


def test_outcomes_do_not_depend_on_other_subscribers_calls() -> None:
    a, b = _pop(seed=5), _pop(seed=5)
    m, other = a.msisdn_at(3), a.msisdn_at(4)
    for _ in range(5):
        b.mms_outcome(other)
        b.sms_outcome(other)
    assert [a.mms_outcome(m) for _ in range(20)] == [b.mms_outcome(m) for _ in range(20)]


def test_batch_outcomes_equal_one_by_one_outcomes() -> None:
    a, b = _pop(seed=9, unknown_code_share=0.2), _pop(seed=9, unknown_code_share=0.2)
    numbers = a.msisdns()[:500].tolist()
    numbers = [*numbers, *numbers[:50], "+8619900000001"]
    assert a.mms_outcomes(numbers) == [b.mms_outcome(m) for m in numbers]


# ------------------------------------------------------------------ mix


def test_initial_state_mix_is_close_to_the_configured_shares() -> None:
    pop = _pop(subscribers=20_000, seed=3)
    shares = dict(zip(STATE_NAMES, PopulationConfig().shares(), strict=True))
    counts = pop.state_counts()
    for name, share in shares.items():
        assert counts[name] / 20_000 == pytest.approx(share, abs=0.006), name


def test_configured_shares_replace_the_defaults() -> None:
    pop = _pop(subscribers=1000, state_shares={"healthy": 1, "memory_full": 1})
    counts = pop.state_counts()
    assert counts["healthy"] + counts["memory_full"] == 1000
    assert counts["memory_full"] == pytest.approx(500, abs=80)


def test_some_handsets_have_tacs_the_shipped_table_does_not_know() -> None:
    pop = _pop(subscribers=20_000)
    known = pop.ground_truth_day(0)["device_known"].mean()
    assert known == pytest.approx(0.95, abs=0.01)
    shipped = {d.tac for d in load_device_table()}
    truth = pop.ground_truth_day(0)
    assert (truth["tac"].astype(str).isin(shipped) == truth["device_known"]).all()


def test_non_mms_state_goes_with_non_mms_handsets() -> None:
    pop = _pop(subscribers=5000)
    for i in pop.indices_in(S.NON_MMS_HANDSET)[:100]:
        device = pop.device_of(pop.msisdn_at(int(i)))
        assert device is not None
        assert not device.mms_capable
    for i in pop.indices_in(S.HEALTHY)[:100]:
        device = pop.device_of(pop.msisdn_at(int(i)))
        assert device is not None
        assert device.mms_capable


def test_unknown_codes_and_noise_appear_at_about_their_shares() -> None:
    pop = _pop(subscribers=20_000, state_shares={"healthy": 1})
    frame = pop.edition_outcomes()
    delivered = frame["mm_status"].eq("Retrieved").mean()
    assert delivered == pytest.approx(1 - 0.015 - 0.01, abs=0.006)
    unknown = frame["status_code"].isin(
        ["MK:0099", "LT:0003", "MB:0999", "SystemFailure", "250", "ERR:999"]
    )
    assert unknown.mean() == pytest.approx(0.01, abs=0.004)


def test_sms_receipts_follow_reachability() -> None:
    pop = _pop(subscribers=50, sms_transient_share=0.0)
    m = pop.msisdn_at(0)
    pop.set_state(m, S.SETTINGS_WRONG_APN)
    assert pop.sms_outcome(m).stat == "DELIVRD"
    pop.set_state(m, S.POWERED_OFF_WEEKS)
    assert pop.sms_outcome(m).stat in {"EXPIRED", "UNDELIV"}
    pop.set_state(m, S.NUMBER_CANCELLED)
    assert pop.sms_outcome(m).err == "001"


# ------------------------------------------------------------------ help SMS


def test_help_sms_fixes_settings_when_the_subscriber_follows_it() -> None:
    pop = _pop(subscribers=50, help_fix_default=1.0, help_fix_by_brand={})
    m = pop.msisdn_at(1)
    pop.set_state(m, S.SETTINGS_WRONG_MMSC)
    pop.on_text_sms(_text(m))
    assert pop.state_of(m) is S.HEALTHY
    assert pop.counters.texts_fixed == 1


def test_help_sms_is_less_effective_the_more_a_subscriber_was_nagged() -> None:
    pop = _pop(
        subscribers=50, help_fix_default=1.0, help_fix_by_brand={}, nag_decay=0.0, rates=QUIET
    )
    m = pop.msisdn_at(2)
    pop.set_state(m, S.HEALTHY)
    pop.on_text_sms(_text(m))  # nothing to fix, but the subscriber has been nagged once
    pop.set_state(m, S.SETTINGS_WRONG_APN)
    pop.on_text_sms(_text(m))
    assert pop.state_of(m) is S.SETTINGS_WRONG_APN
    assert pop.nag_count(m) == 2
    pop.advance_to(PopulationConfig().nag_window_days + 1)
    assert pop.nag_count(m) == 0
    pop.on_text_sms(_text(m))
    assert pop.state_of(m) is S.HEALTHY


def test_help_fix_rate_depends_on_brand() -> None:
    pop = _pop(
        subscribers=4000, help_fix_by_brand={"Apple": 1.0}, help_fix_default=0.0, rates=QUIET
    )
    fixed = {True: 0, False: 0}
    for m in pop.msisdns().tolist():
        device = pop.device_of(m)
        assert device is not None
        if not device.mms_capable:
            continue
        pop.set_state(m, S.SETTINGS_WRONG_APN)
        pop.on_text_sms(_text(m))
        if pop.state_of(m) is S.HEALTHY:
            fixed[device.brand == "Apple"] += 1
    assert fixed[False] == 0
    assert fixed[True] > 0


def test_help_sms_is_lost_on_a_powered_off_handset() -> None:
    pop = _pop(subscribers=50, help_fix_default=1.0, help_fix_by_brand={})
    m = pop.msisdn_at(3)
    pop.set_state(m, S.POWERED_OFF_HOURS)
    pop.on_text_sms(_text(m))
    assert pop.state_of(m) is S.POWERED_OFF_HOURS
    assert pop.nag_count(m) == 0


def test_help_sms_clears_a_full_memory_sometimes() -> None:
    pop = _pop(subscribers=50, help_fix_memory=1.0)
    m = pop.msisdn_at(4)
    pop.set_state(m, S.MEMORY_FULL)
    pop.on_text_sms(_text(m))
    assert pop.state_of(m) is S.HEALTHY


# ------------------------------------------------------------------ OTA


def _cp_subscriber(
    pop: HandsetPopulation, sec: str = "NETWPIN", state: S = S.SETTINGS_WRONG_APN
) -> str:
    m = pop.msisdn_at(5)
    pop.set_device(m, _device(pop, ota_cp=True, mms_capable=True, cp_security=sec).tac)
    pop.set_state(m, state)
    return m


def test_valid_ota_push_fixes_a_cp_capable_misconfigured_handset() -> None:
    pop = _pop(subscribers=50, ota_accept=1.0)
    m = _cp_subscriber(pop)
    pop.on_ota_push(_push(m))
    assert pop.state_of(m) is S.HEALTHY
    assert pop.counters.pushes_fixed == 1


def test_ota_push_with_invalid_mac_is_ignored() -> None:
    pop = _pop(subscribers=50, ota_accept=1.0)
    m = _cp_subscriber(pop)
    pop.on_ota_push(_push(m, mac_valid=False))
    assert pop.state_of(m) is S.SETTINGS_WRONG_APN


def test_ota_push_with_a_wrong_apn_does_not_fix() -> None:
    pop = _pop(subscribers=50, ota_accept=1.0)
    m = _cp_subscriber(pop)
    pop.on_ota_push(_push(m, **{"NAP-ADDRESS": "cmnet"}))
    assert pop.state_of(m) is S.SETTINGS_WRONG_APN


def test_ota_push_with_a_wrong_mmsc_breaks_a_working_handset() -> None:
    pop = _pop(subscribers=50, ota_accept=1.0)
    m = _cp_subscriber(pop, state=S.HEALTHY)
    pop.on_ota_push(_push(m, ADDR="http://mmsc.example.com"))
    assert pop.state_of(m) is S.SETTINGS_WRONG_MMSC


def test_ota_push_with_a_security_the_handset_does_not_accept_is_ignored() -> None:
    pop = _pop(subscribers=50, ota_accept=1.0, ota_userpin_accept=1.0)
    m = _cp_subscriber(pop, sec="NETWPIN")
    pop.on_ota_push(_push(m, sec="USERPIN"))
    pop.on_ota_push(_push(m, sec=None))
    assert pop.state_of(m) is S.SETTINGS_WRONG_APN
    m2 = _cp_subscriber(pop, sec="USERPIN")
    pop.on_ota_push(_push(m2, sec="USERPIN"))
    assert pop.state_of(m2) is S.HEALTHY


def test_ota_push_does_not_fix_a_handset_without_cp_support() -> None:
    pop = _pop(subscribers=50, ota_accept=1.0)
    m = pop.msisdn_at(6)
    pop.set_device(m, _device(pop, brand="Apple").tac)
    pop.set_state(m, S.SETTINGS_WRONG_APN)
    pop.on_ota_push(_push(m))
    assert pop.state_of(m) is S.SETTINGS_WRONG_APN


def test_ota_push_needs_the_user_to_accept_it() -> None:
    pop = _pop(subscribers=50, ota_accept=0.0)
    m = _cp_subscriber(pop)
    pop.on_ota_push(_push(m))
    assert pop.state_of(m) is S.SETTINGS_WRONG_APN


# ------------------------------------------------------------------ days


def test_memory_full_clears_over_time() -> None:
    pop = _pop(subscribers=3000, rates=QUIET.model_copy(update={"memory_clear": 1.0}))
    full = pop.indices_in(S.MEMORY_FULL)
    assert full.size > 0
    pop.advance_day()
    assert (pop.ground_truth_day(1)["state"].to_numpy()[full] == "healthy").all()


def test_memory_full_stays_without_clearing() -> None:
    pop = _pop(subscribers=3000, rates=QUIET)
    full = pop.indices_in(S.MEMORY_FULL)
    pop.advance_to(3)
    assert (pop.ground_truth_day(3)["state"].to_numpy()[full] == "memory_full").all()


def test_powered_off_hours_returns_to_the_previous_state() -> None:
    pop = _pop(subscribers=50, rates=QUIET.model_copy(update={"power_on_hours": 1.0}))
    m = pop.msisdn_at(8)
    pop.set_state(m, S.SETTINGS_WRONG_MMSC)
    pop.set_state(m, S.POWERED_OFF_HOURS)
    pop.advance_day()
    assert pop.state_of(m) is S.SETTINGS_WRONG_MMSC


def test_handset_swaps_bring_new_imeis_and_sometimes_wrong_settings() -> None:
    rates = QUIET.model_copy(update={"handset_swap": 1.0, "swap_wrong_settings": 1.0})
    pop = _pop(subscribers=1000, rates=rates, state_shares={"healthy": 1})
    before = pop.imeis()
    pop.advance_day()
    after = pop.imeis()
    assert (before != after).mean() > 0.95
    counts = pop.state_counts()
    assert counts["healthy"] == 0
    assert (
        counts["settings_wrong_apn"] + counts["settings_wrong_mmsc"] + counts["non_mms_handset"]
        == 1000
    )


def test_factory_resets_wipe_settings() -> None:
    pop = _pop(
        subscribers=500,
        rates=QUIET.model_copy(update={"factory_reset": 1.0}),
        state_shares={"healthy": 1},
    )
    pop.advance_day()
    assert pop.state_counts()["settings_wrong_apn"] == 500


def test_subscribers_complain_after_days_without_the_newspaper() -> None:
    pop = _pop(
        subscribers=2000,
        rates=QUIET,
        complaint_daily=1.0,
        complaint_after_days=2,
        state_shares={"healthy": 0.5, "settings_wrong_apn": 0.5},
    )
    pop.advance_to(5)
    complaints = pop.complaints()
    broken = set(pop.msisdns(pop.indices_in(S.SETTINGS_WRONG_APN)).tolist())
    assert {c.msisdn for c in complaints} == broken
    assert len(complaints) == len(broken)  # the cooldown holds further calls back
    assert {c.day for c in complaints} == {PopulationConfig().start_date + timedelta(days=1)}
    assert all(c.days_missing == 2 and c.reason == "newspaper_missing" for c in complaints)
    assert len(pop.complaints(1)) == len(broken)


def test_advance_to_accepts_dates_and_refuses_the_past() -> None:
    pop = _pop(subscribers=20, start_date=date(2026, 11, 1))
    pop.advance_to(date(2026, 11, 4))
    assert pop.day == 3
    assert pop.today == date(2026, 11, 4)
    with pytest.raises(ValueError, match="cannot go back"):
        pop.advance_to(1)


# ------------------------------------------------------------------ ground truth


def test_ground_truth_has_one_row_per_subscriber_per_day_with_the_verdict() -> None:
    pop = _pop(subscribers=500)
    pop.advance_to(2)
    truth = pop.ground_truth()
    assert list(truth.columns) == [
        "msisdn",
        "day",
        "state",
        "expected_verdict",
        "tac",
        "device_known",
        "brand",
        "model",
        "region",
    ]
    assert len(truth) == 1500
    assert sorted(truth["day"].unique()) == ["2026-11-01", "2026-11-02", "2026-11-03"]
    verdicts = {s.label: v for s, v in EXPECTED_VERDICT.items()}
    assert (truth["state"].astype(str).map(verdicts) == truth["expected_verdict"].astype(str)).all()
    today = truth[truth["day"] == "2026-11-03"].set_index("msisdn")
    for m in pop.msisdns()[:50].tolist():
        state = pop.state_of(m)
        assert state is not None
        assert today.loc[m, "state"] == state.label


def test_ground_truth_day_that_was_not_simulated_is_an_error() -> None:
    with pytest.raises(KeyError):
        _pop(subscribers=10).ground_truth_day(3)


def test_config_rejects_unknown_states_and_bad_probabilities() -> None:
    with pytest.raises(ValidationError, match="unknown states"):
        PopulationConfig(state_shares={"broken": 1.0})
    with pytest.raises(ValidationError):
        PopulationConfig(unknown_tac_share=1.5)

"""Configuration of the simulated handset population, with documented defaults.

Defaults follow the operator case studies in the project's domain notes where they give figures:
a newspaper receive success rate around 74-80% before any recovery work (so roughly a fifth of
subscribers fail for a handset or subscription reason), 94.7% of IMEIs matched to a known model
(about 5% unknown TACs), and a complaint rate of a few tens per 10,000 subscribers a month.
The rest are plausible guesses, all overridable.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mmsq.simulators.handset_states import STATE_NAMES

__all__ = ["DailyRates", "OperatorProfile", "PopulationConfig"]

Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OperatorProfile(_Frozen):
    """The MMS settings a handset needs on this network; an OTA push must carry exactly these."""

    apn: str = "cmwap"
    mmsc_url: str = "http://mmsc.monternet.com"
    proxy: str = "10.0.0.172:80"

    @property
    def proxy_host(self) -> str:
        return self.proxy.rsplit(":", 1)[0]

    @property
    def proxy_port(self) -> str | None:
        host, sep, port = self.proxy.rpartition(":")
        return port if sep and host else None


class DailyRates(_Frozen):
    """Per-subscriber, per-day probabilities of the population's own changes."""

    power_off_hours: Probability = Field(0.018, description="a working handset is off for a day")
    power_on_hours: Probability = Field(0.85, description="an off-for-hours handset is back")
    coverage_loss: Probability = Field(0.005, description="a handset goes out of coverage")
    coverage_back: Probability = Field(0.5, description="an out-of-coverage handset is back")
    power_off_weeks: Probability = Field(0.001, description="travel, a spare phone in a drawer")
    power_on_weeks: Probability = Field(0.07, description="back after weeks (mean two weeks)")
    suspend: Probability = Field(0.0015, description="billing suspends the number (arrears)")
    unsuspend: Probability = Field(0.1, description="the subscriber pays, service resumes")
    cancel: Probability = Field(0.0002, description="the number is cancelled (for good)")
    handset_swap: Probability = Field(0.001, description="a new handset (new IMEI and TAC)")
    non_mms_swap: Probability = Field(0.004, description="owners of non-MMS phones upgrade faster")
    swap_wrong_settings: Probability = Field(0.35, description="a new handset lacks MMS settings")
    factory_reset: Probability = Field(0.0003, description="a reset wipes the MMS settings")
    memory_fill: Probability = Field(0.002, description="the message store fills up")
    memory_clear: Probability = Field(0.05, description="the subscriber clears it unprompted")
    auto_download_off: Probability = Field(0.0002, description="the user turns auto-fetch off")


_DEFAULT_SHARES: dict[str, float] = {
    "healthy": 0.775,
    "settings_wrong_apn": 0.05,
    "settings_wrong_mmsc": 0.03,
    "auto_download_off": 0.015,
    "memory_full": 0.03,
    "powered_off_hours": 0.02,
    "powered_off_weeks": 0.015,
    "out_of_coverage": 0.01,
    "non_mms_handset": 0.02,
    "number_cancelled": 0.02,
    "suspended_billing": 0.015,
}

# Population by prefecture-level city of Anhui (millions, rounded): where subscribers live.
_ANHUI: dict[str, float] = {
    "Hefei": 9.4,
    "Fuyang": 8.2,
    "Suzhou": 5.3,
    "Bozhou": 5.0,
    "Lu'an": 4.4,
    "Anqing": 4.2,
    "Chuzhou": 4.0,
    "Wuhu": 3.6,
    "Bengbu": 3.3,
    "Huainan": 3.0,
    "Xuancheng": 2.5,
    "Ma'anshan": 2.2,
    "Huaibei": 2.0,
    "Tongling": 1.3,
    "Chizhou": 1.3,
    "Huangshan": 1.3,
}

# Chance that one help SMS gets a subscriber to fix their own MMS settings, by handset brand:
# smartphones with a settings menu that follows the text fare better than old feature phones.
_HELP_BY_BRAND: dict[str, float] = {
    "Apple": 0.45,
    "Xiaomi": 0.40,
    "Huawei": 0.35,
    "Nokia": 0.35,
    "Samsung": 0.32,
    "OPPO": 0.30,
    "vivo": 0.30,
    "Sony Ericsson": 0.30,
    "Motorola": 0.28,
    "Lenovo": 0.25,
    "ZTE": 0.25,
    "Coolpad": 0.20,
}


class PopulationConfig(_Frozen):
    """Everything the population needs; the same config and seed give the same population."""

    subscribers: int = Field(10_000, ge=1, le=50_000_000)
    seed: int = 1
    start_date: date = Field(date(2026, 11, 1), description="the date of simulated day 0")
    state_shares: dict[str, float] = Field(
        default_factory=lambda: dict(_DEFAULT_SHARES),
        description="initial share of each handset state; normalised; missing states get 0",
    )
    unknown_tac_share: Probability = Field(
        0.05, description="share of handsets whose TAC the shipped device table does not know"
    )
    unknown_code_share: Probability = Field(
        0.01, description="share of MMs whose CDR code the shipped rules do not know"
    )
    transient_share: Probability = Field(
        0.015, description="share of MMs to healthy handsets lost to network/platform trouble"
    )
    healthy_expiry_share: Probability = Field(
        0.01, description="share of MMs to healthy handsets that expire unfetched anyway"
    )
    sms_transient_share: Probability = Field(
        0.003, description="share of SMS to reachable handsets failing with an SMSC error"
    )
    regions: dict[str, float] = Field(default_factory=lambda: dict(_ANHUI))
    imsi_mnc_shares: dict[str, float] = Field(
        default_factory=lambda: {"00": 0.6, "02": 0.3, "07": 0.1},
        description="MNC of the IMSI (MCC 460); China Mobile uses 00, 02, 07",
    )
    operator: OperatorProfile = OperatorProfile()
    rates: DailyRates = DailyRates()
    # Simulated report delays (seconds of wall time the simulators wait before reporting).
    mms_report_delay_s: float = Field(0.05, ge=0)
    mms_failure_delay_s: float = Field(0.1, ge=0)
    sms_delay_s: float = Field(0.02, ge=0)
    sms_failure_delay_s: float = Field(0.1, ge=0)
    # Help SMS.
    help_fix_by_brand: dict[str, float] = Field(default_factory=lambda: dict(_HELP_BY_BRAND))
    help_fix_default: Probability = Field(0.15, description="brands not in help_fix_by_brand")
    help_fix_memory: Probability = Field(0.35, description="'clear your inbox' works this often")
    nag_window_days: int = Field(14, ge=1, description="help SMS counted over this many days")
    nag_decay: Probability = Field(
        0.6, description="each help SMS already received in the window multiplies the chance"
    )
    # OTA settings.
    ota_accept: Probability = Field(0.85, description="the user accepts a valid settings push")
    ota_userpin_accept: Probability = Field(
        0.6, description="the user accepts and types the PIN for a USERPIN push"
    )
    # Complaints.
    complaint_after_days: int = Field(3, ge=1, description="days without the newspaper")
    complaint_daily: Probability = Field(
        0.0008, description="chance a subscriber past that point calls customer service that day"
    )
    complaint_cooldown_days: int = Field(30, ge=1)

    @field_validator("state_shares")
    @classmethod
    def _known_states(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(v) - set(STATE_NAMES))
        if unknown:
            raise ValueError(f"unknown states {unknown}; states are {list(STATE_NAMES)}")
        if any(x < 0 for x in v.values()) or sum(v.values()) <= 0:
            raise ValueError("shares must be non-negative with a positive sum")
        return v

    @field_validator("regions", "imsi_mnc_shares")
    @classmethod
    def _weights(cls, v: dict[str, float]) -> dict[str, float]:
        if not v or any(x < 0 for x in v.values()) or sum(v.values()) <= 0:
            raise ValueError("needs at least one entry, non-negative weights, positive sum")
        return v

    @field_validator("imsi_mnc_shares")
    @classmethod
    def _mnc(cls, v: dict[str, float]) -> dict[str, float]:
        bad = [k for k in v if len(k) != 2 or not k.isdigit()]
        if bad:
            raise ValueError(f"MNCs are two digits: {bad}")
        return v

    def shares(self) -> list[float]:
        """Initial state shares in state order, normalised to 1."""
        raw = [self.state_shares.get(name, 0.0) for name in STATE_NAMES]
        total = sum(raw)
        return [x / total for x in raw]

"""Scoring and recovery rules (``rules/scoring.toml``): weights, thresholds, minimum evidence.

Rules are data: the pydantic models below are the contract for the file, and
``load_scoring_rules`` merges an operator's file of the same name over the shipped one (tables
merge key by key, any other value replaces the shipped one), like ``status_codes.toml``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mmsq.rules_loader import RuleProblem, RulesError, shipped_rules_dir
from mmsq.verdicts import CANDIDATE_VERDICTS, Verdict

__all__ = [
    "MAX_WINDOW_DAYS",
    "SCORE_FEATURES",
    "HealthyRule",
    "RecoveryRules",
    "ScoringRules",
    "VerdictRule",
    "WindowRule",
    "deep_merge",
    "load_scoring_rules",
]

SCORING_FILE = "scoring.toml"
#: Day masks are 64-bit integers, one bit per day of the window.
MAX_WINDOW_DAYS = 62

#: The numeric features (each 0..1) that verdict weights may name; see docs/scoring.md.
SCORE_FEATURES: tuple[str, ...] = (
    "share_notified_not_fetched",
    "share_not_fetched_unnotified",
    "share_capacity",
    "share_incapable",
    "share_unreachable",
    "share_invalid",
    "share_policy",
    "share_other",
    "recent_share_notified_not_fetched",
    "recent_share_not_fetched_unnotified",
    "recent_share_capacity",
    "recent_share_incapable",
    "recent_share_unreachable",
    "recent_share_invalid",
    "recent_share_policy",
    "recent_share_other",
    "history",
    "no_history",
    "new_subscriber",
    "device_known",
    "device_mms_capable",
    "device_not_mms_capable",
    "device_ota_cp",
    "subscription_cancelled",
    "subscription_suspended",
    "error_rate",
)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WindowRule(_Frozen):
    """The look-back window and the minimum evidence for any verdict."""

    days: int = Field(default=30, ge=1, le=MAX_WINDOW_DAYS)
    min_final_days: int = Field(
        default=3, ge=1, description="days with a final report needed for any verdict"
    )
    recent_days: int = Field(
        default=7,
        ge=1,
        le=MAX_WINDOW_DAYS,
        description="the failure run's latest days that the recent_share_* features look at",
    )


class HealthyRule(_Frozen):
    max_failed_run: int = Field(
        default=1,
        ge=0,
        description="a subscriber with a delivery in the window whose failure run is this short "
        "or shorter is healthy",
    )


class VerdictRule(_Frozen):
    """One verdict's score (weighted sum of features, clipped to 0..1) and its thresholds."""

    min_score: float = Field(ge=0.0, le=1.0)
    min_failed_run: int = Field(ge=1, description="failed days in a row needed for this verdict")
    weights: dict[str, float]

    @field_validator("weights")
    @classmethod
    def _known_features(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(v) - set(SCORE_FEATURES))
        if unknown:
            raise ValueError(f"unknown features {unknown}; known: {', '.join(SCORE_FEATURES)}")
        if not v:
            raise ValueError("at least one weight is needed")
        return v


class RecoveryRules(_Frozen):
    """When to suspend delivery and when to probe a suspended subscriber."""

    suspend_after_failed_run: int = Field(
        default=10, ge=1, description="failed days in a row (editions proxy) before suspension"
    )
    probe_after_days: tuple[int, ...] = Field(
        default=(7, 14), min_length=1, description="days after suspension of the first probes"
    )
    probe_every_days: int = Field(
        default=30, ge=1, description="days between probes after the listed ones"
    )
    flag_verdicts: tuple[Verdict, ...] = (
        Verdict.TERMINAL_MISCONFIGURED,
        Verdict.TERMINAL_CAPACITY,
        Verdict.TERMINAL_INCAPABLE,
        Verdict.UNREACHABLE,
        Verdict.POLICY_BLOCKED,
    )
    cleanup_verdicts: tuple[Verdict, ...] = (Verdict.SUBSCRIBER_INVALID,)

    @field_validator("probe_after_days")
    @classmethod
    def _increasing(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if any(d < 0 for d in v) or list(v) != sorted(set(v)):
            raise ValueError("probe_after_days must be distinct, non-negative and increasing")
        return v

    @model_validator(mode="after")
    def _disjoint(self) -> RecoveryRules:
        both = set(self.flag_verdicts) & set(self.cleanup_verdicts)
        if both:
            raise ValueError(f"verdicts both flagged and cleaned up: {sorted(both)}")
        if {Verdict.HEALTHY, Verdict.INSUFFICIENT_EVIDENCE} & (
            set(self.flag_verdicts) | set(self.cleanup_verdicts)
        ):
            raise ValueError("healthy and insufficient_evidence cannot flag a subscriber")
        return self


class ScoringRules(_Frozen):
    """``rules/scoring.toml``."""

    version: str = ""
    window: WindowRule = WindowRule()
    healthy: HealthyRule = HealthyRule()
    verdicts: dict[Verdict, VerdictRule]
    recovery: RecoveryRules = RecoveryRules()

    @field_validator("verdicts")
    @classmethod
    def _candidates_only(cls, v: dict[Verdict, VerdictRule]) -> dict[Verdict, VerdictRule]:
        extra = sorted(set(v) - set(CANDIDATE_VERDICTS))
        if extra:
            raise ValueError(
                f"{extra} are not scored verdicts (healthy and insufficient_evidence are what "
                "remains when no scored verdict qualifies)"
            )
        return v


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Tables merge key by key; any other value in ``override`` replaces the one in ``base``."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read(path: Path, problems: list[RuleProblem]) -> dict[str, Any]:
    import tomllib

    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        problems.append(RuleProblem(str(path), "(syntax)", str(exc)))
    except OSError as exc:
        problems.append(RuleProblem(str(path), "(file)", str(exc)))
    return {}


def load_scoring_rules(
    operator_dir: Path | None = None, shipped_dir: Path | None = None
) -> ScoringRules:
    """The validated scoring rules; raises RulesError naming file, key and reason."""
    shipped = shipped_dir or shipped_rules_dir()
    if operator_dir is not None and not operator_dir.is_dir():
        raise RulesError([RuleProblem(str(operator_dir), "(directory)", "does not exist")])
    problems: list[RuleProblem] = []
    data = _read(shipped / SCORING_FILE, problems)
    origin = str(shipped / SCORING_FILE)
    if operator_dir is not None and (operator_dir / SCORING_FILE).is_file():
        data = deep_merge(data, _read(operator_dir / SCORING_FILE, problems))
        origin = f"{operator_dir / SCORING_FILE} (merged over the shipped file)"
    if problems:
        raise RulesError(problems)
    try:
        return ScoringRules.model_validate(data)
    except ValidationError as exc:
        raise RulesError(
            [
                RuleProblem(origin, ".".join(str(p) for p in e["loc"]) or "(top level)", e["msg"])
                for e in exc.errors()
            ]
        ) from None

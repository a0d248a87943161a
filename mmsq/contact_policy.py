"""Contact policy: turn verdicts into planned contacts without ever annoying a subscriber.

The rules (``rules/contact_policy.toml``) say who may be contacted, how often, when and with
what. ``plan_contacts`` applies them to a whole set of flagged subscribers at once (pandas) and
returns both the contacts to make and, for everyone else, the reason they are not contacted.
``next_send_time`` is the dispatch-time check: quiet hours and blackout windows in the
subscriber's local time.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mmsq.rules_loader import RuleProblem, RulesError, shipped_rules_dir

__all__ = [
    "ACTIONS",
    "SKIP_REASONS",
    "ContactPlan",
    "ContactPolicy",
    "in_holdout",
    "load_contact_policy",
    "local_day",
    "next_send_time",
    "plan_contacts",
]

FILE = "contact_policy.toml"
Action = Literal["help_sms", "ota_push"]
ACTIONS: tuple[str, ...] = ("help_sms", "ota_push")

#: Why a flagged subscriber is not contacted, in the order the checks are made.
SKIP_REASONS: tuple[str, ...] = (
    "no_remedy",  # the verdict has no remedy ladder (e.g. unreachable: wait, then suspend)
    "blacklist",  # do-not-contact list
    "complained",  # complained recently
    "holdout",  # in the measurement holdout group
    "same_reason",  # contacted about the same verdict recently
    "tier_cap",  # contacted too recently for their engagement tier
    "action_cap",  # too many contacts of this type in the period
    "budget",  # the day's budget is spent
)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _hhmm(value: str) -> time:
    try:
        hours, minutes = value.split(":")
        return time(int(hours), int(minutes))
    except ValueError as exc:
        raise ValueError(f"expected HH:MM, got {value!r}") from exc


class Window(_Frozen):
    """A daily window in local time; ``end`` before ``start`` wraps past midnight."""

    start: str
    end: str

    @field_validator("start", "end")
    @classmethod
    def _valid(cls, v: str) -> str:
        _hhmm(v)
        return v

    def contains(self, t: time) -> bool:
        start, end = _hhmm(self.start), _hhmm(self.end)
        if start <= end:
            return start <= t < end
        return t >= start or t < end


class QuietHours(Window):
    timezone: str = "Asia/Shanghai"
    region_timezones: dict[str, str] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r}") from exc
        return v

    @field_validator("region_timezones")
    @classmethod
    def _tzs(cls, v: dict[str, str]) -> dict[str, str]:
        for region, tz in v.items():
            try:
                ZoneInfo(tz)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"region {region!r}: unknown time zone {tz!r}") from exc
        return v


class Blackout(Window):
    edition: str = Field(description="shell-style pattern of the edition this window protects")


class Tier(_Frozen):
    name: str
    min_delivered: int = Field(ge=0)
    min_gap_days: int = Field(ge=0)


class ActionCap(_Frozen):
    max: int = Field(ge=0)
    per_days: int = Field(ge=1)


class Budget(_Frozen):
    daily_total: int = Field(ge=0)
    daily_per_action: dict[str, int] = Field(default_factory=dict)


class Exclusions(_Frozen):
    complained_within_days: int = Field(default=30, ge=0)
    same_reason_within_days: int = Field(default=14, ge=0)


class Holdout(_Frozen):
    share: float = Field(ge=0.0, lt=1.0)
    salt: str = Field(min_length=1)


class Step(_Frozen):
    action: Action
    template: str | None = None
    when: Literal["always", "ota_capable", "not_ota_capable"] = "always"


class ContactPolicy(_Frozen):
    """The validated ``contact_policy.toml``."""

    quiet_hours: QuietHours
    blackouts: tuple[Blackout, ...] = ()
    tiers: tuple[Tier, ...] = Field(min_length=1)
    actions: dict[Action, ActionCap] = Field(default_factory=dict)
    budget: Budget
    exclusions: Exclusions = Exclusions()
    holdout: Holdout
    ladders: dict[str, tuple[Step, ...]] = Field(default_factory=dict)
    templates: dict[str, dict[str, str]] = Field(default_factory=dict)

    @field_validator("tiers")
    @classmethod
    def _tiers_cover_zero(cls, v: tuple[Tier, ...]) -> tuple[Tier, ...]:
        if not any(t.min_delivered == 0 for t in v):
            raise ValueError("one tier must have min_delivered = 0, so every subscriber has one")
        return v

    def model_post_init(self, _: Any) -> None:
        for verdict, steps in self.ladders.items():
            for step in steps:
                if step.action == "help_sms" and (
                    step.template is None or step.template not in self.templates
                ):
                    raise ValueError(
                        f"ladders.{verdict}: help_sms step needs a template defined under "
                        f"[templates] (got {step.template!r})"
                    )

    def text(self, template: str, brand: str | None, **values: str) -> str:
        """The help text of ``template`` for ``brand`` (falling back to its default)."""
        variants = self.templates[template]
        raw = variants.get(brand or "", variants.get("default", ""))
        fields = {"brand": brand or "", "model": "", "pin": "", **values}
        return raw.format_map(fields)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_contact_policy(
    operator_dir: Path | None = None, shipped_dir: Path | None = None
) -> ContactPolicy:
    """The shipped policy with the operator's ``contact_policy.toml`` merged over it."""
    paths = [(shipped_dir or shipped_rules_dir()) / FILE]
    if operator_dir is not None and (operator_dir / FILE).is_file():
        paths.append(operator_dir / FILE)
    data: dict[str, Any] = {}
    for path in paths:
        try:
            data = _merge(data, tomllib.loads(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise RulesError([RuleProblem(str(path), "", f"cannot read: {exc}")]) from exc
    try:
        return ContactPolicy.model_validate(data)
    except ValidationError as exc:
        raise RulesError(
            [
                RuleProblem(str(paths[-1]), ".".join(str(p) for p in err["loc"]), err["msg"])
                for err in exc.errors()
            ]
        ) from exc


def in_holdout(msisdns: pd.Series, holdout: Holdout) -> pd.Series:
    """Whether each MSISDN is in the holdout: a stable hash, the same on every run and host."""
    salt = holdout.salt.encode()

    def unit(msisdn: str) -> float:
        digest = hashlib.blake2b(msisdn.encode(), key=salt[:64], digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64

    return msisdns.map(unit).lt(holdout.share)


@dataclass(frozen=True)
class ContactPlan:
    """``planned``: one row per contact (msisdn, action, reason, template, text, step,
    idempotency_key); ``skipped``: one row per subscriber not contacted (msisdn, reason, skip).
    """

    planned: pd.DataFrame
    skipped: pd.DataFrame

    def skip_counts(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self.skipped["skip"].value_counts().items()}


_PLANNED_COLUMNS = ["msisdn", "action", "reason", "template", "text", "step", "idempotency_key"]


def _recent(history: pd.DataFrame, since: datetime) -> pd.DataFrame:
    return history[history["at"] >= since] if len(history) else history


def _too_soon(
    policy: ContactPolicy, cands: pd.DataFrame, hist: pd.DataFrame, now: datetime
) -> pd.Series:
    """Contacted (any action) more recently than the subscriber's engagement tier allows."""
    tiers = sorted(policy.tiers, key=lambda t: -t.min_delivered)
    gap = pd.Series(tiers[-1].min_gap_days, index=cands.index)
    assigned = pd.Series(False, index=cands.index)
    for tier in tiers:
        hit = ~assigned & (cands["delivered"] >= tier.min_delivered)
        gap[hit] = tier.min_gap_days
        assigned |= hit
    last = hist.groupby("msisdn")["at"].max() if len(hist) else pd.Series(dtype="object")
    last_at = cands["msisdn"].map(last)
    has_last = last_at.notna()
    too_soon = pd.Series(False, index=cands.index)
    if has_last.any():
        age_days = (now - pd.to_datetime(last_at[has_last], utc=True)).dt.total_seconds() / 86400
        too_soon[has_last] = age_days < gap[has_last]
    return too_soon


def plan_contacts(
    policy: ContactPolicy,
    candidates: pd.DataFrame,
    history: pd.DataFrame,
    now: datetime,
    blacklist: set[str] | frozenset[str] = frozenset(),
    complaints: pd.DataFrame | None = None,
) -> ContactPlan:
    """Plan the day's contacts for flagged subscribers.

    ``candidates``: msisdn, verdict, brand, model, ota_capable, delivered (deliveries in the
    scoring window, for the tier), in priority order (the budget goes to the first).
    ``history``: earlier contacts (msisdn, action, reason, at) that count against the caps:
    planned, sent or delivered, not those that failed before reaching the SMSC.
    ``complaints``: msisdn, at. Times are timezone-aware.
    """
    cands = candidates.reset_index(drop=True).copy()
    cands["skip"] = pd.Series([None] * len(cands), dtype="object")

    def mark(mask: pd.Series, reason: str) -> None:
        cands.loc[mask & cands["skip"].isna(), "skip"] = reason

    mark(~cands["verdict"].isin(list(policy.ladders)), "no_remedy")
    mark(cands["msisdn"].isin(blacklist), "blacklist")
    if complaints is not None and len(complaints):
        since = now - timedelta(days=policy.exclusions.complained_within_days)
        mark(
            cands["msisdn"].isin(set(complaints.loc[complaints["at"] >= since, "msisdn"])),
            "complained",
        )
    mark(in_holdout(cands["msisdn"], policy.holdout), "holdout")

    hist = history if len(history) else pd.DataFrame(columns=["msisdn", "action", "reason", "at"])
    same = _recent(hist, now - timedelta(days=policy.exclusions.same_reason_within_days))
    same_keys = set(zip(same["msisdn"], same["reason"], strict=True))
    mark(
        pd.Series(
            [(m, v) in same_keys for m, v in zip(cands["msisdn"], cands["verdict"], strict=True)],
            index=cands.index,
            dtype=bool,
        ),
        "same_reason",
    )

    mark(_too_soon(policy, cands, hist, now), "tier_cap")

    # Expand ladders into steps; an action cap skips that step (and the subscriber if none left).
    rows: list[dict[str, Any]] = []
    budget_total = policy.budget.daily_total
    budget_action = dict(policy.budget.daily_per_action)
    used_total = 0
    used_action: dict[str, int] = {}
    counts: dict[str, pd.Series] = {}
    for action, cap in policy.actions.items():
        recent = _recent(hist, now - timedelta(days=cap.per_days))
        counts[action] = recent[recent["action"] == action].groupby("msisdn").size()
    day = now.date().isoformat()
    for i in cands.index[cands["skip"].isna()]:
        row = cands.loc[i]
        steps = [
            s
            for s in policy.ladders[row["verdict"]]
            if s.when == "always" or (s.when == "ota_capable") == bool(row["ota_capable"])
        ]
        allowed = []
        for s in steps:
            limit = policy.actions.get(s.action)
            if limit is not None and int(counts[s.action].get(row["msisdn"], 0)) >= limit.max:
                continue
            allowed.append(s)
        if not allowed:
            cands.loc[i, "skip"] = "action_cap"
            continue
        if used_total + len(allowed) > budget_total or any(
            used_action.get(s.action, 0) + 1 > budget_action.get(s.action, budget_total)
            for s in allowed
        ):
            cands.loc[i, "skip"] = "budget"
            continue
        used_total += len(allowed)
        brand = row.get("brand") if isinstance(row.get("brand"), str) else None
        for n, s in enumerate(allowed):
            used_action[s.action] = used_action.get(s.action, 0) + 1
            rows.append(
                {
                    "msisdn": row["msisdn"],
                    "action": s.action,
                    "reason": row["verdict"],
                    "template": s.template,
                    "text": policy.text(s.template, brand) if s.template else None,
                    "step": n,
                    "idempotency_key": f"{row['msisdn']}:{s.action}:{s.template or '-'}"
                    f":{row['verdict']}:{day}",
                }
            )
    planned = pd.DataFrame(rows, columns=_PLANNED_COLUMNS)
    skipped = cands.loc[cands["skip"].notna(), ["msisdn", "verdict", "skip"]].rename(
        columns={"verdict": "reason"}
    )
    return ContactPlan(planned=planned, skipped=skipped.reset_index(drop=True))


def next_send_time(policy: ContactPolicy, now: datetime, region: str | None = None) -> datetime:
    """The earliest time at or after ``now`` outside quiet hours and blackout windows, in the
    subscriber's local time (by region); ``now`` itself when sending is allowed now.
    """
    qh = policy.quiet_hours
    tz = ZoneInfo(qh.region_timezones.get(region or "", qh.timezone))
    local = now.astimezone(tz)
    windows: list[Window] = [qh, *policy.blackouts]
    for _ in range(len(windows) * 2 + 1):
        blocking = [w for w in windows if w.contains(local.time().replace(tzinfo=None))]
        if not blocking:
            return local.astimezone(now.tzinfo)
        # Jump to the end of the first blocking window (tomorrow's if it wraps past midnight).
        end = _hhmm(blocking[0].end)
        candidate = datetime.combine(local.date(), end, tzinfo=tz)
        if candidate <= local:
            candidate = datetime.combine(local.date() + timedelta(days=1), end, tzinfo=tz)
        local = candidate
    return local.astimezone(now.tzinfo)


def local_day(now: datetime, policy: ContactPolicy) -> date:
    """The planning day in the policy's default local time zone."""
    return now.astimezone(ZoneInfo(policy.quiet_hours.timezone)).date()

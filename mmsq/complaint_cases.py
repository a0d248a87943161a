"""The complaint case library (``rules/complaint_cases.toml``): what the agent says next.

Each case has a match condition on the diagnosis (subscription status, mmsq's delivery
suspension, the verdict, the cause of the latest final delivery, whether there are deliveries at
all) and a script worded for a phone conversation, in English and Chinese. Cases are tried in
file order; the first whose every given condition holds is the next step. The last case must
match everything, so every diagnosis ends with a next step.

An operator rules directory with its own ``complaint_cases.toml`` replaces the shipped file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mmsq.domain import CauseClass
from mmsq.rules_loader import RuleProblem, RulesError, shipped_rules_dir

__all__ = [
    "COMPLAINT_CASES_FILE",
    "CaseFacts",
    "CaseMatch",
    "ComplaintCase",
    "ComplaintCases",
    "Script",
    "load_complaint_cases",
]

COMPLAINT_CASES_FILE = "complaint_cases.toml"
_SUBSCRIPTION_STATES = ("active", "suspended", "unsubscribed", "cancelled", "unknown")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


@dataclass(frozen=True, slots=True)
class CaseFacts:
    """What a case can match on, taken from one diagnosis."""

    subscription: str  # a SubscriptionStatus value, or "unknown"
    suspended_by_mmsq: bool
    verdict: str | None
    last_cause: str | None
    has_deliveries: bool


class CaseMatch(_Frozen):
    """Conditions that must all hold; an absent condition matches anything."""

    subscription: tuple[str, ...] | None = None
    suspended_by_mmsq: bool | None = None
    verdict: tuple[str, ...] | None = None
    last_cause: tuple[CauseClass, ...] | None = None
    has_deliveries: bool | None = None

    @model_validator(mode="after")
    def _known_states(self) -> CaseMatch:
        bad = [s for s in self.subscription or () if s not in _SUBSCRIPTION_STATES]
        if bad:
            raise ValueError(
                f"unknown subscription state(s) {bad}; use {', '.join(_SUBSCRIPTION_STATES)}"
            )
        return self

    @property
    def is_catch_all(self) -> bool:
        return all(getattr(self, name) is None for name in type(self).model_fields)

    def matches(self, f: CaseFacts) -> bool:
        return (
            (self.subscription is None or f.subscription in self.subscription)
            and (self.suspended_by_mmsq is None or f.suspended_by_mmsq == self.suspended_by_mmsq)
            and (self.verdict is None or f.verdict in self.verdict)
            and (self.last_cause is None or f.last_cause in self.last_cause)
            and (self.has_deliveries is None or f.has_deliveries == self.has_deliveries)
        )


class Script(_Frozen):
    en: str = Field(min_length=1)
    zh: str = Field(min_length=1)


class ComplaintCase(_Frozen):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str = Field(min_length=1)
    match: CaseMatch = CaseMatch()
    script: Script
    offer_resend: bool = Field(
        default=False, description="whether the agent should offer a resend in this case"
    )


class ComplaintCases(_Frozen):
    version: int = 1
    cases: tuple[ComplaintCase, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _well_formed(self) -> ComplaintCases:
        ids = [c.id for c in self.cases]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"case ids listed twice: {dupes}")
        if not self.cases[-1].match.is_catch_all:
            raise ValueError(
                f"the last case ({self.cases[-1].id!r}) must have no match conditions, so that "
                "every diagnosis gets a next step"
            )
        return self

    def next_step(self, facts: CaseFacts) -> ComplaintCase:
        for case in self.cases:
            if case.match.matches(facts):
                return case
        return self.cases[-1]  # pragma: no cover - the last case matches everything


def load_complaint_cases(operator_dir: Path | None = None) -> ComplaintCases:
    """The validated case library (the operator's file if it has one); raises RulesError."""
    path = shipped_rules_dir() / COMPLAINT_CASES_FILE
    if operator_dir is not None and (operator_dir / COMPLAINT_CASES_FILE).is_file():
        path = operator_dir / COMPLAINT_CASES_FILE
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RulesError([RuleProblem(str(path), "(file)", str(exc))]) from None
    try:
        return ComplaintCases.model_validate(data)
    except ValidationError as exc:
        raise RulesError(
            [
                RuleProblem(
                    str(path), ".".join(str(p) for p in e["loc"]) or "(top level)", e["msg"]
                )
                for e in exc.errors()
            ]
        ) from None

"""Verdicts: what scoring concludes about one subscriber's handset and subscription."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["CANDIDATE_VERDICTS", "VERDICTS", "Verdict"]


class Verdict(StrEnum):
    """The outcome of scoring one subscriber (see docs/scoring.md)."""

    HEALTHY = "healthy"
    #: MMS settings wrong or missing: the user or an OTA settings push can fix it.
    TERMINAL_MISCONFIGURED = "terminal_misconfigured"
    #: Handset or SIM memory full.
    TERMINAL_CAPACITY = "terminal_capacity"
    #: The handset cannot do MMS.
    TERMINAL_INCAPABLE = "terminal_incapable"
    #: Powered off or out of coverage, persistently.
    UNREACHABLE = "unreachable"
    #: The number does not exist or the subscription was cancelled.
    SUBSCRIBER_INVALID = "subscriber_invalid"
    #: Barred, opted out, not subscribed, suspended by billing.
    POLICY_BLOCKED = "policy_blocked"
    #: Not enough, or not the subscriber's kind of, evidence to say.
    INSUFFICIENT_EVIDENCE = "insufficient_evidence"


VERDICTS: tuple[str, ...] = tuple(v.value for v in Verdict)
#: The verdicts chosen by weighted scores (healthy and insufficient_evidence are what is left).
CANDIDATE_VERDICTS: tuple[Verdict, ...] = (
    Verdict.SUBSCRIBER_INVALID,
    Verdict.POLICY_BLOCKED,
    Verdict.TERMINAL_INCAPABLE,
    Verdict.TERMINAL_CAPACITY,
    Verdict.TERMINAL_MISCONFIGURED,
    Verdict.UNREACHABLE,
)

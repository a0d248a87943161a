"""Ports of scoring and recovery: where aggregates, devices, states and lists come from."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Protocol

import pandas as pd

__all__ = [
    "BlacklistStore",
    "RecoveryStore",
    "ScoringSource",
    "SubscriptionStatusLookup",
    "UnknownSubscriptions",
]


class SubscriptionStatusLookup(Protocol):
    """Subscription status per MSISDN, vectorised.

    Returns a Series aligned with ``msisdns`` whose values are ``active``, ``cancelled``,
    ``suspended`` or ``unknown``.
    """

    def statuses(self, msisdns: pd.Series) -> pd.Series: ...


class UnknownSubscriptions:
    """The default lookup until a subscription store is wired: every status is unknown."""

    def statuses(self, msisdns: pd.Series) -> pd.Series:
        return pd.Series("unknown", index=msisdns.index, dtype="string")


class ScoringSource(Protocol):
    """Read side of scoring: the window summary of the daily aggregates, and devices."""

    def window_summary(
        self, first_day: date, last_day: date, msisdns: list[str] | None = None
    ) -> pd.DataFrame:
        """One row per subscriber with columns ``mmsq.features.SUMMARY_COLUMNS``; the same as
        ``summarise_window(daily_aggregates(first_day, last_day), first_day, last_day)``.
        ``msisdns`` limits it to those subscribers."""
        ...

    def subscriber_devices(self, msisdns: list[str] | None = None) -> pd.DataFrame:
        """Columns msisdn, tac: each subscriber's latest handset."""
        ...


class BlacklistStore(Protocol):
    """The do-not-contact list: excludes proactive contact, never diagnosis."""

    def upsert_blacklist(self, entries: pd.DataFrame, added_at: datetime) -> int:
        """Add or replace entries (columns msisdn, reason, until); returns rows written."""
        ...

    def remove_blacklist(self, msisdn: str) -> bool: ...

    def blacklist_active(self, on: date) -> pd.DataFrame:
        """Columns msisdn, reason: entries without ``until`` or with ``until`` >= ``on``."""
        ...


class RecoveryStore(Protocol):
    """Persistence of recovery states (only subscribers who left ``active``) and the
    append-only transition log."""

    def load_states(self, msisdns: list[str] | None = None) -> pd.DataFrame:
        """Columns ``mmsq.recovery.STATE_COLUMNS``; all subscribers when ``msisdns`` is None."""
        ...

    def apply_transitions(self, transitions: pd.DataFrame, states: pd.DataFrame) -> None:
        """Append ``transitions`` and upsert ``states``, in one transaction."""
        ...

    def transitions_for(self, msisdn: str) -> list[dict[str, Any]]: ...

    def state_for(self, msisdn: str) -> dict[str, Any] | None:
        """One subscriber's state: state, verdict, reason, since_ts, suspended_day (ISO),
        probes_sent, last_probe_ts; None while ``active``."""
        ...

    def recent_transitions(self, msisdn: str, limit: int) -> list[dict[str, Any]]:
        """One subscriber's latest transitions, newest first: at_ts, from_state, to_state,
        event, cause, evidence."""
        ...

    def transition_counts(self, start: datetime, end: datetime) -> pd.DataFrame:
        """Columns event, to_state, cause, subscribers (distinct) for ``start <= at < end``."""
        ...

    def record_run(
        self,
        run_id: str,
        as_of: date,
        started_at: datetime,
        finished_at: datetime,
        summary: dict[str, Any],
    ) -> None: ...

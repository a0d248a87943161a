"""The scoring run: window summary -> features -> verdicts -> recovery transitions persisted."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import pandas as pd
import structlog

from mmsq.devices import DeviceCatalogue
from mmsq.features import SUMMARY_COLUMNS, build_features
from mmsq.ports import Clock
from mmsq.recovery import State, plan_run
from mmsq.scoring import explain, score_subscribers
from mmsq.scoring_ports import (
    BlacklistStore,
    RecoveryStore,
    ScoringSource,
    SubscriptionStatusLookup,
    UnknownSubscriptions,
)
from mmsq.scoring_rules import ScoringRules

__all__ = ["EXPORT_COLUMNS", "ScoringResult", "ScoringService"]

log = structlog.get_logger(__name__)

#: One row per subscriber in ``mmsq score --export``.
EXPORT_COLUMNS: tuple[str, ...] = ("msisdn", "verdict", "score", "state", "reasons")


@dataclass
class ScoringResult:
    """What a run concluded: the per-subscriber frame and the counts the CLI prints."""

    run_id: str
    as_of: date
    first_day: date
    frame: pd.DataFrame
    transitions: pd.DataFrame
    by_verdict: Counter[str] = field(default_factory=Counter)
    by_transition: Counter[str] = field(default_factory=Counter)
    by_state: Counter[str] = field(default_factory=Counter)
    #: Wall seconds per stage (read, devices, features, verdicts, reasons, plan, persist).
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "as_of": self.as_of.isoformat(),
            "window": [self.first_day.isoformat(), self.as_of.isoformat()],
            "subscribers": len(self.frame),
            "by_verdict": dict(sorted(self.by_verdict.items())),
            "by_transition": dict(sorted(self.by_transition.items())),
            "by_state": dict(sorted(self.by_state.items())),
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }


def _counts(values: pd.Series) -> Counter[str]:
    return Counter({str(k): int(v) for k, v in values.value_counts().items()})


class ScoringService:
    """Scores every subscriber seen in the window and moves the recovery state machine."""

    def __init__(
        self,
        *,
        source: ScoringSource,
        recovery: RecoveryStore,
        blacklist: BlacklistStore,
        rules: ScoringRules,
        devices: DeviceCatalogue,
        clock: Clock,
        subscriptions: SubscriptionStatusLookup | None = None,
        timezone: str = "UTC",
    ) -> None:
        self.source = source
        self.recovery = recovery
        self.blacklist = blacklist
        self.rules = rules
        self.devices = devices
        self.clock = clock
        self.subscriptions = subscriptions or UnknownSubscriptions()
        self.tz = ZoneInfo(timezone)

    def today(self) -> date:
        return self.clock.now().astimezone(self.tz).date()

    def window(self, as_of: date | None = None) -> tuple[date, date]:
        last = as_of or self.today()
        return last - timedelta(days=self.rules.window.days - 1), last

    def assess(
        self,
        as_of: date | None = None,
        msisdns: list[str] | None = None,
        states: pd.DataFrame | None = None,
        seconds: dict[str, float] | None = None,
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Features and verdicts (with reasons and current state), without changing anything.

        ``msisdns`` limits the work to those subscribers (``mmsq subscriber show``);
        ``states`` are the recovery states when the caller has read them already;
        ``seconds`` receives the wall seconds of each stage.
        """
        took = seconds if seconds is not None else {}
        t = time.perf_counter()

        def lap(stage: str) -> None:
            nonlocal t
            now = time.perf_counter()
            took[stage] = took.get(stage, 0.0) + now - t
            t = now

        first, last = self.window(as_of)
        summary = self.source.window_summary(first, last, msisdns)
        lap("read")
        if states is None:
            states = self.recovery.load_states(msisdns)
        # Subscribers with a state but no report in the window (suspended ones: no newspaper
        # is sent) are scored too, with empty history.
        seen = pd.Index(summary["msisdn"]).get_indexer(states["msisdn"]) >= 0
        missing = states.loc[~seen, "msisdn"]
        if msisdns is not None:
            missing = pd.concat(
                [missing, pd.Series([m for m in msisdns if m not in set(summary["msisdn"])])]
            ).drop_duplicates()
        if len(missing):
            extra = pd.DataFrame(dict.fromkeys(SUMMARY_COLUMNS[1:], 0), index=range(len(missing)))
            extra.insert(0, "msisdn", missing.to_numpy())
            summary = pd.concat([summary, extra], ignore_index=True)
        devices = self.source.subscriber_devices(msisdns)
        status = self.subscriptions.statuses(summary["msisdn"])
        blacklist = self.blacklist.blacklist_active(last)
        lap("devices_status_lists")
        features = build_features(
            summary,
            first,
            self.rules.window.days,
            devices=devices,
            catalogue=self.devices,
            subscription_status=status,
            blacklist=blacklist,
            recent_days=self.rules.window.recent_days,
        )
        del devices, summary
        lap("features")
        scored = score_subscribers(features, self.rules)
        lap("verdicts")
        scored["reasons"] = explain(features, scored, self.rules)
        lap("reasons")
        scored.insert(0, "msisdn", features["msisdn"].to_numpy())
        scored["failed_run"] = features["failed_run"].to_numpy()
        scored["last_delivery_day"] = features["last_delivery_day"].to_numpy()
        state = features["msisdn"].map(states.set_index("msisdn")["state"]) if len(states) else None
        scored["state"] = (
            state.fillna(State.ACTIVE.value).to_numpy() if state is not None else State.ACTIVE.value
        )
        lap("verdicts")
        return features, scored

    def run(self, as_of: date | None = None) -> ScoringResult:
        """Score everyone, apply the run's transitions, record the run."""
        started = self.clock.now()
        run_id = uuid4().hex[:16]
        first, last = self.window(as_of)
        seconds: dict[str, float] = {}
        t = time.perf_counter()
        states = self.recovery.load_states()
        seconds["states"] = time.perf_counter() - t
        _features, scored = self.assess(last, states=states, seconds=seconds)
        del _features
        t = time.perf_counter()
        transitions, new_states = plan_run(
            scored, states, self.rules.recovery, last, started, run_id
        )
        seconds["plan"] = time.perf_counter() - t
        t = time.perf_counter()
        self.recovery.apply_transitions(transitions, new_states)
        seconds["persist"] = time.perf_counter() - t
        if len(new_states):
            moved = scored["msisdn"].map(new_states.set_index("msisdn")["state"])
            scored["state"] = moved.fillna(scored["state"]).to_numpy()
        result = ScoringResult(
            run_id=run_id,
            as_of=last,
            first_day=first,
            frame=scored,
            transitions=transitions,
            by_verdict=_counts(scored["verdict"]),
            by_transition=_counts(transitions["from_state"] + "->" + transitions["to_state"]),
            by_state=_counts(scored["state"]),
            seconds=seconds,
        )
        self.recovery.record_run(run_id, last, started, self.clock.now(), result.as_dict())
        log.info(
            "scoring run",
            run_id=run_id,
            **{k: v for k, v in result.as_dict().items() if k in ("subscribers", "by_verdict")},
        )
        return result

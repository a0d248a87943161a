"""Three-way reconciliation of billing (BOSS), service management (MISC) and the send list.

Every difference is classified (see ``DifferenceClass``); the content platform gets repair
actions towards billing (what is paid for is sent). All comparisons are vectorised over the
whole subscription base: one row per (MSISDN, product), one int8 status code per source.
A source whose latest snapshot is too old is reported stale and every comparison that needs it
is skipped, so a feed missing for a day never shows up as a million "differences".
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import structlog

from mmsq.msisdn import mask_msisdn
from mmsq.ports import Clock
from mmsq.subscription_ports import DifferenceExport, ReconcileRun, SendList, SubscriptionStore
from mmsq.subscriptions import STATUS_CODES, DifferenceClass, Source, SubscriptionStatus

__all__ = [
    "DIFFERENCE_COLUMNS",
    "REPAIR_COLUMNS",
    "Differences",
    "ReconcileReport",
    "ReconcileService",
    "SourceFreshness",
    "find_differences",
    "freshness",
]

log = structlog.get_logger(__name__)

DIFFERENCE_COLUMNS: tuple[str, ...] = (
    "class",
    "msisdn",
    "product",
    "boss",
    "misc",
    "platform",
    "detail",
    "action",
)
REPAIR_COLUMNS: tuple[str, ...] = ("action", "msisdn", "product", "class", "reason")

_ACTIVE = STATUS_CODES[SubscriptionStatus.ACTIVE]
_SUSPENDED = STATUS_CODES[SubscriptionStatus.SUSPENDED]
_ENDED = [STATUS_CODES[SubscriptionStatus.UNSUBSCRIBED], STATUS_CODES[SubscriptionStatus.CANCELLED]]
#: Status code -> name; code 0 ("not in this source") renders as an empty field.
_NAMES = np.array(["", *(s.value for s in SubscriptionStatus)], dtype=object)
_ACTIONS = np.array(["", "add", "remove", "suspend"], dtype=object)
_ADD, _REMOVE, _SUSPEND = 1, 2, 3
_CLASS_ORDER = list(DifferenceClass)


@dataclass(frozen=True)
class SourceFreshness:
    """How old a source's newest snapshot is on the reconciliation date."""

    source: Source
    latest: date | None
    age_days: int | None
    stale: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "latest_snapshot": self.latest.isoformat() if self.latest else None,
            "age_days": self.age_days,
            "stale": self.stale,
        }


def freshness(
    latest: Mapping[Source, date], as_of: date, stale_after_days: int
) -> dict[Source, SourceFreshness]:
    """A source is stale when it has no snapshot or its newest is older than the allowance."""
    out: dict[Source, SourceFreshness] = {}
    for source in Source:
        day = latest.get(source)
        age = (as_of - day).days if day else None
        out[source] = SourceFreshness(source, day, age, age is None or age > stale_after_days)
    return out


@dataclass
class Differences:
    """Every difference found (``DIFFERENCE_COLUMNS``, a row per class and subscription) and
    the classes that could not be computed, with why."""

    frame: pd.DataFrame
    skipped: dict[DifferenceClass, str]

    def counts(self) -> dict[str, int | None]:
        n = self.frame["class"].value_counts()
        return {
            c.value: (None if c in self.skipped else int(n.get(c.value, 0)))
            for c in DifferenceClass
        }

    def repairs(self) -> pd.DataFrame:
        """The content platform's repair actions (``REPAIR_COLUMNS``), one per subscription."""
        f = self.frame[self.frame["action"] != ""]
        reason = _repair_reasons(f)
        return pd.DataFrame(
            {
                "action": f["action"],
                "msisdn": f["msisdn"],
                "product": f["product"],
                "class": f["class"],
                "reason": reason,
            }
        ).reset_index(drop=True)


def _repair_reasons(f: pd.DataFrame) -> pd.Series:
    cls, act = f["class"], f["action"]
    reason = pd.Series("", index=f.index, dtype=object)
    reason[cls == DifferenceClass.BILLED_NOT_ON_SEND_LIST] = "billed in BOSS, not on the send list"
    reason[cls == DifferenceClass.ON_SEND_LIST_NOT_BILLED] = "on the send list, not billed in BOSS"
    pm = cls == DifferenceClass.PRODUCT_MISMATCH
    reason[pm] = "product mismatch: " + f.loc[pm, "detail"].astype(str)
    sm = cls == DifferenceClass.STATUS_MISMATCH
    reason[sm] = (
        "status mismatch: BOSS "
        + f.loc[sm, "boss"].replace("", "absent")
        + ", platform "
        + f.loc[sm, "platform"].replace("", "absent")
    )
    return reason.where(act != "", "")


def _skip_reason(needed: Collection[Source], fresh: Collection[Source]) -> str:
    missing = [s.value for s in needed if s not in fresh]
    return "stale or missing source: " + ", ".join(missing)


_Part = tuple[DifferenceClass, np.ndarray, np.ndarray | None]


def _platform_actions(b: np.ndarray, p: np.ndarray) -> np.ndarray:
    """The send list follows billing: add what is paid for, suspend or remove what is not."""
    action = np.zeros(len(b), dtype=np.int8)
    action[(b == _ACTIVE) & (p != _ACTIVE)] = _ADD
    action[(b == _SUSPENDED) & (p == _ACTIVE)] = _SUSPEND
    action[((b == 0) | np.isin(b, _ENDED)) & (p == _ACTIVE)] = _REMOVE
    return action


def _billing_vs_platform(
    num: np.ndarray, product: pd.Series, b: np.ndarray, p: np.ndarray
) -> list[_Part]:
    billed_only = np.flatnonzero((b == _ACTIVE) & (p == 0))
    sent_only = np.flatnonzero((p == _ACTIVE) & (b == 0))
    # The same subscriber billed for one product and sent another: a product mismatch.
    x_pm = np.isin(num[billed_only], num[sent_only])
    y_pm = np.isin(num[sent_only], num[billed_only])
    xi, yi = billed_only[x_pm], sent_only[y_pm]

    def product_by_number(idx: np.ndarray) -> pd.Series:
        s = pd.Series(product.iloc[idx].astype(str).to_numpy(), index=num[idx])
        return s[~s.index.duplicated()]

    detail = np.concatenate(
        [
            ("the send list has " + product_by_number(yi).reindex(num[xi])).to_numpy(object),
            ("billed for " + product_by_number(xi).reindex(num[yi])).to_numpy(object),
        ]
    )
    return [
        (DifferenceClass.PRODUCT_MISMATCH, np.concatenate([xi, yi]), detail),
        (DifferenceClass.BILLED_NOT_ON_SEND_LIST, billed_only[~x_pm], None),
        (DifferenceClass.ON_SEND_LIST_NOT_BILLED, sent_only[~y_pm], None),
    ]


def _status_mismatch(codes: Mapping[Source, np.ndarray], fresh: list[Source]) -> np.ndarray:
    """Rows where two fresh sources hold the subscription and only one says active."""
    n = len(next(iter(codes.values())))
    mismatch = np.zeros(n, dtype=bool)
    for s1, s2 in itertools.combinations(fresh, 2):
        c1, c2 = codes[s1], codes[s2]
        mismatch |= (c1 > 0) & (c2 > 0) & (c1 != c2) & ((c1 == _ACTIVE) | (c2 == _ACTIVE))
    return np.flatnonzero(mismatch)


def _missing_in_misc(codes: Mapping[Source, np.ndarray], fresh: Collection[Source]) -> np.ndarray:
    """Active in billing or on the send list, but no order relationship in MISC."""
    held = np.zeros(len(codes[Source.MISC]), dtype=bool)
    for s in (Source.BOSS, Source.PLATFORM):
        if s in fresh:
            held |= codes[s] == _ACTIVE
    return np.flatnonzero(held & (codes[Source.MISC] == 0))


def find_differences(states: pd.DataFrame, fresh: Collection[Source]) -> Differences:
    """Classify every disagreement between the fresh sources (see module docstring).

    ``states`` has ``SOURCE_STATE_COLUMNS``. A subscription may be in several classes (billed,
    not on the send list, and missing in MISC); it gets at most one platform repair action.
    """
    num = states["msisdn_num"].to_numpy(dtype=np.int64)
    product = states["product"]
    codes = {s: states[s.value].to_numpy(dtype=np.int8) for s in Source}
    b, m, p = codes[Source.BOSS], codes[Source.MISC], codes[Source.PLATFORM]
    skipped: dict[DifferenceClass, str] = {}
    parts: list[_Part] = []

    if Source.BOSS in fresh and Source.PLATFORM in fresh:
        action = _platform_actions(b, p)
        parts += _billing_vs_platform(num, product, b, p)
    else:
        action = np.zeros(len(states), dtype=np.int8)
        why = _skip_reason((Source.BOSS, Source.PLATFORM), fresh)
        for c in (
            DifferenceClass.BILLED_NOT_ON_SEND_LIST,
            DifferenceClass.ON_SEND_LIST_NOT_BILLED,
            DifferenceClass.PRODUCT_MISMATCH,
        ):
            skipped[c] = why

    fresh_sources = [s for s in Source if s in fresh]
    if len(fresh_sources) >= 2:
        parts.append(
            (DifferenceClass.STATUS_MISMATCH, _status_mismatch(codes, fresh_sources), None)
        )
    else:
        skipped[DifferenceClass.STATUS_MISMATCH] = "fewer than two fresh sources"

    if Source.MISC in fresh and (Source.BOSS in fresh or Source.PLATFORM in fresh):
        parts.append((DifferenceClass.MISSING_IN_MISC, _missing_in_misc(codes, fresh), None))
    else:
        skipped[DifferenceClass.MISSING_IN_MISC] = _skip_reason(
            (Source.MISC, Source.BOSS, Source.PLATFORM), fresh
        )

    frames = []
    for cls, idx, detail in parts:
        act = action[idx]
        if cls is DifferenceClass.STATUS_MISMATCH:
            # Only a BOSS/platform disagreement is the platform's to repair; a row that is also
            # billed-not-sent (a BOSS/MISC mismatch) carries its action in that class.
            act = np.where((b[idx] > 0) & (p[idx] > 0), act, 0)
        elif cls is DifferenceClass.MISSING_IN_MISC:
            act = np.zeros(len(idx), dtype=np.int8)
        frames.append(
            pd.DataFrame(
                {
                    "class": cls.value,
                    "msisdn_num": num[idx],
                    "product": product.iloc[idx].astype(str).to_numpy(),
                    "boss": _NAMES[b[idx]],
                    "misc": _NAMES[m[idx]],
                    "platform": _NAMES[p[idx]],
                    "detail": detail if detail is not None else "",
                    "action": _ACTIONS[act],
                }
            ).sort_values(["msisdn_num", "product"])  # stable exports, whatever the scan order
        )
    if frames:
        frame = pd.concat(frames, ignore_index=True)
    else:
        frame = pd.DataFrame(columns=["class", "msisdn_num", *DIFFERENCE_COLUMNS[2:]])
    frame.insert(1, "msisdn", "+" + frame["msisdn_num"].astype(str))
    frame = frame.drop(columns=["msisdn_num"])
    return Differences(frame.loc[:, list(DIFFERENCE_COLUMNS)], skipped)


@dataclass
class ReconcileReport:
    """What one run found; rendered as the CLI's table or its ``--json`` document."""

    run_id: str
    as_of: date
    compared: int
    sources: dict[Source, SourceFreshness]
    counts: dict[str, int | None]
    skipped: dict[str, str]
    examples: dict[str, list[dict[str, str]]]
    repairs_proposed: dict[str, int]
    repairs_applied: int
    auto_repair: list[str]
    seconds: float
    exports: dict[str, str] = field(default_factory=dict)
    trend: list[dict[str, Any]] = field(default_factory=list)

    @property
    def stale(self) -> list[str]:
        return [s.value for s, f in self.sources.items() if f.stale]

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "as_of": self.as_of.isoformat(),
            "compared": self.compared,
            "sources": {s.value: f.as_dict() for s, f in self.sources.items()},
            "stale": self.stale,
            "counts": self.counts,
            "skipped": self.skipped,
            "examples": self.examples,
            "repairs": {
                "proposed": self.repairs_proposed,
                "applied": self.repairs_applied,
                "auto_repair": self.auto_repair,
            },
            "exports": self.exports,
            "trend": self.trend,
            "seconds": round(self.seconds, 3),
        }


class ReconcileService:
    """Runs a reconciliation: compare, classify, export, repair (if enabled), record the run."""

    def __init__(
        self,
        store: SubscriptionStore,
        clock: Clock,
        timezone: str,
        stale_after_days: int = 1,
        auto_repair: Collection[DifferenceClass] = (),
        send_list: SendList | None = None,
        examples: int = 3,
    ) -> None:
        if auto_repair and send_list is None:
            raise ValueError("automatic repair needs a send list to hand the repairs to")
        self._store = store
        self._clock = clock
        self._tz = ZoneInfo(timezone)
        self._stale_after = stale_after_days
        self._auto = frozenset(auto_repair)
        self._send_list = send_list
        self._examples = examples

    def reconcile(
        self, as_of: date | None = None, export: DifferenceExport | None = None
    ) -> ReconcileReport:
        t0 = time.perf_counter()
        started = self._clock.now()
        day = as_of or started.astimezone(self._tz).date()
        run_id = uuid4().hex
        sources = freshness(self._store.latest_snapshots(), day, self._stale_after)
        fresh = {s for s, f in sources.items() if not f.stale}
        for s, f in sources.items():
            if f.stale:
                log.warning(
                    "reconcile.source_stale",
                    source=s.value,
                    latest_snapshot=f.latest.isoformat() if f.latest else None,
                    as_of=day.isoformat(),
                )
        states = self._store.source_states(
            {s: (f.latest if s in fresh else None) for s, f in sources.items()}
        )
        diffs = find_differences(states, fresh)
        counts = diffs.counts()
        repairs = diffs.repairs()

        exports: dict[str, str] = {}
        if export is not None:
            for cls in DifferenceClass:
                if cls not in diffs.skipped:
                    rows = diffs.frame[diffs.frame["class"] == cls.value]
                    exports[cls.value] = str(export.write(cls.value, rows.drop(columns="class")))
            exports["platform_repairs"] = str(export.write("platform_repairs", repairs))

        applied = self._auto_repair(run_id, repairs, sources[Source.PLATFORM].latest)
        finished = self._clock.now()
        run = ReconcileRun(
            run_id=run_id,
            as_of=day,
            started_at=started,
            finished_at=finished,
            compared=len(states),
            counts=counts,
            stale=[s.value for s in Source if s not in fresh],
            snapshots={
                s.value: (f.latest.isoformat() if f.latest else None) for s, f in sources.items()
            },
            repairs_proposed=len(repairs),
            repairs_applied=applied,
        )
        self._store.record_reconcile_run(run)
        report = ReconcileReport(
            run_id=run_id,
            as_of=day,
            compared=len(states),
            sources=sources,
            counts=counts,
            skipped={c.value: why for c, why in diffs.skipped.items()},
            examples=self._example_rows(diffs.frame),
            repairs_proposed={str(k): int(v) for k, v in repairs["action"].value_counts().items()},
            repairs_applied=applied,
            auto_repair=sorted(c.value for c in self._auto),
            seconds=time.perf_counter() - t0,
            exports=exports,
            trend=[
                {"as_of": r.as_of.isoformat(), "counts": r.counts, "stale": r.stale}
                for r in self._store.reconcile_runs(8)
            ],
        )
        log.info(
            "reconcile.summary",
            run_id=run_id,
            as_of=day.isoformat(),
            compared=len(states),
            stale=report.stale,
            repairs_proposed=len(repairs),
            repairs_applied=applied,
            **{k: v for k, v in counts.items() if v is not None},
        )
        return report

    def _example_rows(self, frame: pd.DataFrame) -> dict[str, list[dict[str, str]]]:
        out: dict[str, list[dict[str, str]]] = {}
        if frame.empty or self._examples <= 0:
            return out
        head = frame.groupby("class", sort=False).head(self._examples)
        for record in head.to_dict("records"):
            r = {str(k): str(v) for k, v in record.items() if v != ""}
            cls = r.pop("class")
            r["msisdn"] = mask_msisdn(r["msisdn"])
            out.setdefault(cls, []).append(r)
        return {c.value: out[c.value] for c in _CLASS_ORDER if c.value in out}

    def _auto_repair(self, run_id: str, repairs: pd.DataFrame, platform_as_of: date | None) -> int:
        if not self._auto or repairs.empty or platform_as_of is None or self._send_list is None:
            return 0
        todo = repairs[repairs["class"].isin([c.value for c in self._auto])]
        done = self._store.applied_repairs(platform_as_of)
        if not done.empty and not todo.empty:
            seen = todo.merge(done, on=["msisdn", "product", "action"], how="left", indicator=True)[
                "_merge"
            ].to_numpy()
            todo = todo[seen == "left_only"]
        if todo.empty:
            return 0
        self._send_list.apply(todo)
        self._store.add_repairs(run_id, self._clock.now(), platform_as_of, todo)
        log.info("reconcile.repairs_applied", run_id=run_id, repairs=len(todo))
        return len(todo)

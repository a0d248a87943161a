"""Subscriber scoring: features -> a verdict, a score and reasons an agent can read.

Everything is vectorised over the feature frame: one weighted sum per scored verdict, an
argmax, and reason texts built column-wise (only for subscribers who are not healthy).
Weights, thresholds and minimum evidence come from ``rules/scoring.toml``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mmsq.scoring_rules import ScoringRules
from mmsq.verdicts import CANDIDATE_VERDICTS, Verdict

__all__ = ["explain", "score_subscribers"]

#: What each day-count of the failure run means, in words.
_CAUSE_WORDS: dict[str, str] = {
    "notified_not_fetched": "notification delivered, MM never fetched",
    "not_fetched_unnotified": "MM not fetched and notification not delivered",
    "capacity": "handset memory full",
    "incapable": "handset cannot take MMS",
    "unreachable": "absent subscriber or powered off",
    "invalid": "number invalid or cancelled",
    "policy": "barred, opted out or suspended by billing",
    "other": "network, platform or unclassified errors",
}


def score_subscribers(features: pd.DataFrame, rules: ScoringRules) -> pd.DataFrame:
    """Verdict and score per subscriber (same index as ``features``).

    A scored verdict qualifies when its clipped weighted sum reaches ``min_score``, the failure
    run is at least ``min_failed_run`` days and the window has ``window.min_final_days`` days
    with a final report. The best qualifying verdict wins (ties in ``CANDIDATE_VERDICTS``
    order). Otherwise: healthy when delivered in the window with a short failure run (and the
    minimum evidence), else insufficient_evidence. ``best`` and ``best_score`` keep the best
    candidate either way.
    """
    n = len(features)
    run = features["failed_run"].to_numpy()
    enough = features["final_days"].to_numpy() >= rules.window.min_final_days
    names = [v for v in CANDIDATE_VERDICTS if v in rules.verdicts]
    scores = np.zeros((n, max(len(names), 1)))
    eligible = np.zeros((n, max(len(names), 1)), dtype=bool)
    for i, verdict in enumerate(names):
        rule = rules.verdicts[verdict]
        total = np.zeros(n)
        for feature, weight in rule.weights.items():
            total += weight * features[feature].to_numpy(dtype=np.float64)
        scores[:, i] = np.clip(total, 0.0, 1.0)
        eligible[:, i] = (scores[:, i] >= rule.min_score) & (run >= rule.min_failed_run) & enough
    masked = np.where(eligible, scores, -1.0)
    pick = masked.argmax(axis=1)
    picked_ok = eligible[np.arange(n), pick] if names else np.zeros(n, dtype=bool)
    best = scores.argmax(axis=1)
    labels = np.array(
        [v.value for v in names] or [Verdict.INSUFFICIENT_EVIDENCE.value], dtype=object
    )

    healthy = (features["history"].to_numpy() > 0) & (run <= rules.healthy.max_failed_run) & enough
    verdicts = np.where(
        picked_ok,
        labels[pick],
        np.where(healthy, Verdict.HEALTHY.value, Verdict.INSUFFICIENT_EVIDENCE.value),
    )
    best_score = scores[np.arange(n), best]
    score = np.where(
        picked_ok,
        scores[np.arange(n), pick],
        np.where(healthy, 1.0 - features["error_rate"].to_numpy(dtype=np.float64), best_score),
    )
    return pd.DataFrame(
        {
            "verdict": verdicts,
            "score": np.round(score, 3),
            "best": labels[best],
            "best_score": np.round(best_score, 3),
        },
        index=features.index,
    )


#: Feature columns the reasons are built from.
_EXPLAIN_COLUMNS: tuple[str, ...] = (
    "failed_run",
    "run_start_day",
    *(f"days_{cause}" for cause in _CAUSE_WORDS),
    "history",
    "delivered",
    "new_subscriber",
    "first_seen_day",
    "brand",
    "model",
    "tac",
    "device_known",
    "device_ota_cp",
    "device_not_mms_capable",
    "subscription_status",
    "blacklisted",
    "blacklist_reason",
    "final_days",
)

_INT_TEXT = np.array([str(i) for i in range(4096)], dtype=object)


def _text(values: pd.Series) -> pd.Series:
    """Integers as text through a lookup table (``astype(str)`` is slow on millions)."""
    v = values.to_numpy()
    if len(v) and (v.min() < 0 or v.max() >= len(_INT_TEXT)):
        return values.astype(str).astype(object)
    return pd.Series(_INT_TEXT[v.astype(np.int64)], index=values.index, dtype=object)


def _join(acc: pd.Series, piece: pd.Series) -> pd.Series:
    """Append a ``_when`` piece (already "; "-prefixed where present), vectorised."""
    return acc + piece


def _when(mask: pd.Series | np.ndarray, text: pd.Series) -> pd.Series:
    """``"; " + text`` where ``mask``, else ""; the leading "; " is cut once at the end."""
    return ("; " + text).where(np.asarray(mask, dtype=bool), "")


def explain(features: pd.DataFrame, scored: pd.DataFrame, rules: ScoringRules) -> pd.Series:
    """Reasons in words for each subscriber (healthy ones get only their last delivery).

    Example: "5 failed days in a row since 2026-11-18; 4 of those 5 days: notification
    delivered, MM never fetched; received 24 MMS before 2026-11-18; handset Nokia 6300 accepts
    OTA settings".
    """
    out = pd.Series("", index=features.index, dtype=object)
    healthy = scored["verdict"] == Verdict.HEALTHY.value
    if healthy.any():
        out.loc[healthy] = "delivered on " + features.loc[healthy, "last_delivery_day"].astype(str)
    rest = ~healthy
    if not rest.any():
        return out
    # Only the columns the reasons use: copying the whole feature frame costs GiBs on a
    # province.
    f = features.loc[rest, [c for c in _EXPLAIN_COLUMNS if c in features.columns]]
    s = scored.loc[rest]
    run = _text(f["failed_run"])
    acc = pd.Series("", index=f.index, dtype=object)
    has_run = f["failed_run"] > 0
    acc = _join(
        acc,
        _when(
            has_run,
            run
            + " failed days in a row since "
            + f["run_start_day"].astype(str)
            + " (days with a final report and no delivery)",
        ),
    )
    for cause, words in _CAUSE_WORDS.items():
        k = f[f"days_{cause}"]
        acc = _join(acc, _when(k > 0, _text(k) + " of those " + run + " days: " + words))
    hist = f["history"] > 0
    acc = _join(
        acc,
        _when(
            hist,
            "received " + _text(f["delivered"]) + " MMS before " + f["run_start_day"].astype(str),
        ),
    )
    new = f["new_subscriber"] > 0
    acc = _join(
        acc,
        _when(new, "never received an MMS since first seen on " + f["first_seen_day"].astype(str)),
    )
    acc = _join(
        acc,
        _when(
            ~hist & ~new,
            pd.Series(f"no MMS received in the last {rules.window.days} days", index=f.index),
        ),
    )
    device = (
        "handset " + f["brand"].fillna("").astype(str) + " " + f["model"].fillna("").astype(str)
    )
    ota = f["device_ota_cp"] > 0
    device_words = np.where(
        f["device_not_mms_capable"] > 0,
        " cannot do MMS",
        np.where(ota, " accepts OTA settings", " does not accept OTA settings"),
    )
    known = f["device_known"] > 0
    acc = _join(acc, _when(known, device + pd.Series(device_words, index=f.index, dtype=object)))
    tac = f["tac"].fillna("").astype(str)
    acc = _join(acc, _when(~known & (tac != ""), "handset TAC " + tac + " not in the device table"))
    acc = _join(acc, _when(~known & (tac == ""), pd.Series("handset unknown", index=f.index)))
    status = f["subscription_status"].astype(str)
    acc = _join(acc, _when(~status.isin(["unknown", "active"]), "subscription " + status))
    acc = _join(
        acc,
        _when(
            f["blacklisted"],
            "on the do-not-contact list ("
            + f["blacklist_reason"].fillna("").astype(str)
            + "): no proactive contact",
        ),
    )
    insufficient = s["verdict"] == Verdict.INSUFFICIENT_EVIDENCE.value
    few = f["final_days"] < rules.window.min_final_days
    acc = _join(
        acc,
        _when(
            insufficient & few,
            "only "
            + _text(f["final_days"])
            + f" days with a final report in {rules.window.days} days",
        ),
    )
    closest = (
        "not conclusive: closest is "
        + s["best"].astype(str)
        + " (score "
        + s["best_score"].map("{:.2f}".format)
        + ")"
    )
    needs = (
        s["best"]
        .map({v.value: r.min_failed_run for v, r in rules.verdicts.items()})
        .fillna(0)
        .astype(int)
    )
    short = f["failed_run"] < needs
    acc = _join(
        acc,
        _when(
            insufficient & ~few & (s["best_score"] > 0),
            closest
            + pd.Series(
                np.where(short, ", which needs " + needs.astype(str) + " failed days", ""),
                index=f.index,
                dtype=object,
            ),
        ),
    )
    out.loc[rest] = acc.str.slice(2)
    return out

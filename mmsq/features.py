"""Per-subscriber features over a window of days, from the daily aggregates (never raw events).

Two steps, both vectorised:

1. ``summarise_window``: the daily aggregates of the window folded into one row per subscriber:
   a few sums and one 64-bit *day mask* per condition (bit ``j`` set when the condition held on
   ``first_day + j``). The SQL store computes the same summary in SQL (``window_summary``) so a
   province's 45 million daily rows never cross into Python; this pandas version is the
   reference and the path for column stores.
2. ``build_features``: masks -> failure run, per-cause shares of the run, delivery history, plus
   device (TAC), subscription status and do-not-contact membership.

The aggregates do not carry editions, so *days with a final report and no delivery* stand in
for failed editions (a newspaper sends one or two editions a day).
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from mmsq.devices import DeviceCatalogue

__all__ = [
    "MASKS",
    "SUMMARY_COLUMNS",
    "SUMS",
    "bit_length",
    "build_features",
    "empty_summary",
    "popcount",
    "summarise_window",
]

#: Sums over the window, by daily-aggregate column.
SUMS: tuple[str, ...] = ("attempts", "final", "delivered")
#: Day masks: a bit is set on a day when any of the listed daily counters is above zero.
MASKS: dict[str, tuple[str, ...]] = {
    "m_final": ("final",),
    "m_delivered": ("delivered",),
    "m_nnf": ("notified_not_fetched",),
    "m_nf": ("c_not_fetched",),
    "m_capacity": ("c_terminal_capacity",),
    "m_incapable": ("c_terminal_incapable",),
    "m_unreachable": ("c_unreachable",),
    "m_invalid": ("c_subscriber_invalid",),
    "m_policy": ("c_policy_blocked", "c_subscriber_suspended"),
}
SUMMARY_COLUMNS: tuple[str, ...] = ("msisdn", *SUMS, *MASKS)
#: Cause masks counted over the failure run, and the feature each share becomes.
_RUN_CAUSES: dict[str, str] = {
    "capacity": "m_capacity",
    "incapable": "m_incapable",
    "unreachable": "m_unreachable",
    "invalid": "m_invalid",
    "policy": "m_policy",
}

_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)


def popcount(values: np.ndarray) -> np.ndarray:
    """Set bits of each 64-bit integer (SWAR, no Python loop)."""
    x = values.astype(np.uint64, copy=True)
    x -= (x >> np.uint64(1)) & _M1
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
    x = (x + (x >> np.uint64(4))) & _M4
    return ((x * _H01) >> np.uint64(56)).astype(np.int64)


def bit_length(values: np.ndarray) -> np.ndarray:
    """Index of the highest set bit plus one (0 for 0), exact for all 64-bit values."""
    x = values.astype(np.uint64, copy=True)
    for shift in (1, 2, 4, 8, 16, 32):
        x |= x >> np.uint64(shift)
    return popcount(x)


def empty_summary() -> pd.DataFrame:
    return pd.DataFrame(
        {c: pd.Series(dtype=object if c == "msisdn" else "int64") for c in SUMMARY_COLUMNS}
    )


def summarise_window(daily: pd.DataFrame, first_day: date, last_day: date) -> pd.DataFrame:
    """Fold daily aggregate rows into the window summary (one row per subscriber)."""
    if daily.empty:
        return empty_summary()
    days = pd.to_datetime(daily["day"])
    first = pd.Timestamp(first_day)
    offset = (days - first).dt.days.to_numpy()
    keep = (offset >= 0) & (days <= pd.Timestamp(last_day)).to_numpy()
    frame = daily.loc[keep]
    bit = np.left_shift(np.int64(1), offset[keep].astype(np.int64))
    parts = {"msisdn": frame["msisdn"].to_numpy()}
    for name in SUMS:
        parts[name] = (
            frame[name].fillna(0).to_numpy(dtype=np.int64)
            if name in frame
            else np.zeros(len(frame), dtype=np.int64)
        )
    for name, columns in MASKS.items():
        hit = np.zeros(len(frame), dtype=bool)
        for col in columns:
            if col in frame:  # a counter absent from the frame is zero
                hit |= frame[col].fillna(0).to_numpy() > 0
        parts[name] = np.where(hit, bit, 0)
    summary = pd.DataFrame(parts).groupby("msisdn", sort=True).sum().reset_index()
    summary["msisdn"] = summary["msisdn"].astype(object)
    return summary[list(SUMMARY_COLUMNS)]


def _latest_bits(values: np.ndarray, k: int) -> np.ndarray:
    """Each value with only its ``k`` highest set bits kept (all of them when fewer)."""
    rest = values.astype(np.uint64, copy=True)
    kept = np.zeros_like(rest)
    for _ in range(k):
        top = bit_length(rest) - 1
        bit = np.where(top >= 0, np.uint64(1) << np.maximum(top, 0).astype(np.uint64), 0)
        bit = bit.astype(np.uint64)
        kept |= bit
        rest &= ~bit
    return kept


def _day_labels(first_day: date, n: int) -> np.ndarray:
    """ISO dates of the window, plus '' at the end for "none" (index -1)."""
    return np.array([(first_day + timedelta(days=j)).isoformat() for j in range(n)] + [""])


def build_features(
    summary: pd.DataFrame,
    first_day: date,
    window_days: int,
    *,
    devices: pd.DataFrame | None = None,
    catalogue: DeviceCatalogue | None = None,
    subscription_status: pd.Series | None = None,
    blacklist: pd.DataFrame | None = None,
    recent_days: int = 7,
) -> pd.DataFrame:
    """The feature frame: one row per subscriber of ``summary``, same order.

    ``devices`` has columns msisdn, tac; ``subscription_status`` is aligned with ``summary``
    (values active, cancelled, suspended, unknown); ``blacklist`` has columns msisdn, reason.
    ``recent_days``: how many of the failure run's latest days the ``recent_share_*``
    features look at (what the handset does now, when its trouble changed during the run).
    """
    n = len(summary)
    f = pd.DataFrame({"msisdn": summary["msisdn"].to_numpy(dtype=object)})
    for name in SUMS:
        f[name] = summary[name].to_numpy(dtype=np.int64)
    m = {name: summary[name].to_numpy(dtype=np.int64).astype(np.uint64) for name in MASKS}
    labels = _day_labels(first_day, window_days)

    last_delivery = bit_length(m["m_delivered"]) - 1  # -1: no delivery in the window
    keep_above = np.where(
        last_delivery >= 0,
        ~((np.uint64(1) << (last_delivery + 1).astype(np.uint64)) - np.uint64(1)),
        ~np.uint64(0),
    ).astype(np.uint64)
    run = m["m_final"] & keep_above
    failed_run = popcount(run)
    run_start = np.where(run != 0, bit_length(run & (~run + np.uint64(1))) - 1, -1)
    first_seen = np.where(
        m["m_final"] != 0, bit_length(m["m_final"] & (~m["m_final"] + np.uint64(1))) - 1, -1
    )
    f["final_days"] = popcount(m["m_final"])
    f["failed_run"] = failed_run
    f["last_delivery_day"] = labels[last_delivery]
    f["run_start_day"] = labels[run_start]
    f["first_seen_day"] = labels[first_seen]

    denom = np.maximum(failed_run, 1).astype(np.float64)
    explained = np.zeros(n, dtype=np.uint64)
    f["days_notified_not_fetched"] = popcount(m["m_nnf"] & run)
    f["days_not_fetched_unnotified"] = popcount(m["m_nf"] & ~m["m_nnf"] & run)
    explained |= m["m_nf"] | m["m_nnf"]
    for cause, mask in _RUN_CAUSES.items():
        f[f"days_{cause}"] = popcount(m[mask] & run)
        explained |= m[mask]
    f["days_other"] = popcount(run & ~explained)
    for col in [c for c in f.columns if c.startswith("days_")]:
        f["share_" + col.removeprefix("days_")] = f[col].to_numpy() / denom
    recent = _latest_bits(run, recent_days)
    recent_denom = np.maximum(popcount(recent), 1).astype(np.float64)
    recent_masks = {
        "notified_not_fetched": m["m_nnf"],
        "not_fetched_unnotified": m["m_nf"] & ~m["m_nnf"],
        **{cause: m[name] for cause, name in _RUN_CAUSES.items()},
        "other": ~explained,
    }
    for cause, bits in recent_masks.items():
        f["recent_share_" + cause] = popcount(bits & recent) / recent_denom

    history = m["m_delivered"] != 0
    f["history"] = history.astype(np.float64)
    f["no_history"] = (~history).astype(np.float64)
    f["new_subscriber"] = ((~history) & (first_seen > 0)).astype(np.float64)
    final = f["final"].to_numpy(dtype=np.float64)
    f["error_rate"] = np.where(
        final > 0, np.clip(final - f["delivered"].to_numpy(), 0, None) / np.maximum(final, 1), 0.0
    )

    _add_device(f, devices, catalogue)
    _add_contact(f, subscription_status, blacklist)
    return f


def _add_device(
    f: pd.DataFrame, devices: pd.DataFrame | None, catalogue: DeviceCatalogue | None
) -> None:
    """Device features from the subscriber's latest IMEI's TAC."""
    if devices is not None and not devices.empty:
        tac = f["msisdn"].map(devices.set_index("msisdn")["tac"]).astype(object)
    else:
        tac = pd.Series(None, index=f.index, dtype=object)
    f["tac"] = tac
    info = (catalogue or DeviceCatalogue.empty()).lookup(tac)
    known = info["known"].to_numpy(dtype=bool)
    capable = info["mms_capable"].fillna(False).to_numpy(dtype=bool)
    ota = info["ota_cp"].fillna(False).to_numpy(dtype=bool)
    f["brand"] = info["brand"]
    f["model"] = info["model"]
    f["device_known"] = known.astype(np.float64)
    f["device_mms_capable"] = (known & capable).astype(np.float64)
    f["device_not_mms_capable"] = (known & ~capable).astype(np.float64)
    f["device_ota_cp"] = (known & ota).astype(np.float64)


def _add_contact(
    f: pd.DataFrame, subscription_status: pd.Series | None, blacklist: pd.DataFrame | None
) -> None:
    """Subscription status and do-not-contact membership."""
    if subscription_status is None:
        status = pd.Series("unknown", index=f.index, dtype=object)
    else:
        status = pd.Series(subscription_status.to_numpy(dtype=object), index=f.index).fillna(
            "unknown"
        )
    f["subscription_status"] = status
    f["subscription_cancelled"] = (status == "cancelled").to_numpy(dtype=np.float64)
    f["subscription_suspended"] = (status == "suspended").to_numpy(dtype=np.float64)
    if blacklist is not None and not blacklist.empty:
        listed = blacklist.drop_duplicates("msisdn").set_index("msisdn")["reason"]
        reason = f["msisdn"].map(listed)
        f["blacklisted"] = reason.notna().to_numpy()
        f["blacklist_reason"] = reason.astype(object)
    else:
        f["blacklisted"] = np.zeros(len(f), dtype=bool)
        f["blacklist_reason"] = pd.Series(None, index=f.index, dtype=object)

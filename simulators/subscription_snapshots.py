"""Synthetic BOSS, MISC and content-platform snapshots of one subscriber base, with drift.

Every difference class is planted on its own disjoint share of subscribers, so the expected
reconciliation counts are known exactly. Vectorised with numpy; deterministic by seed. Used by
the reconciliation benchmark and for demos.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["SNAPSHOT_HEADER", "SnapshotSpec", "write_snapshots"]

SNAPSHOT_HEADER = ("msisdn", "product", "status", "since", "channel")
_CHANNELS = np.array(["sms", "web", "ivr", "hall", "app"])


@dataclass(frozen=True)
class SnapshotSpec:
    subscribers: int = 10_000
    as_of: date = date(2026, 11, 22)
    products: tuple[str, ...] = ("ah-daily", "ah-evening")
    product_shares: tuple[float, ...] = (0.85, 0.15)
    #: Share of the base planted with each difference (disjoint sets of subscribers).
    billed_not_on_send_list: float = 0.02
    on_send_list_not_billed: float = 0.015
    status_mismatch: float = 0.01
    product_mismatch: float = 0.005
    missing_in_misc: float = 0.005
    #: Share of rows per file made unreadable (a number that is not one).
    malformed_share: float = 0.0001
    seed: int = 11


def _base(spec: SnapshotSpec, rng: np.random.Generator) -> pd.DataFrame:
    n = spec.subscribers
    digits = 13_800_000_000 + rng.choice(199_999_999, size=n, replace=False).astype(np.int64)
    msisdn = digits.astype(str)
    shares = np.asarray(spec.product_shares) / sum(spec.product_shares)
    product = np.asarray(spec.products)[rng.choice(len(spec.products), size=n, p=shares)]
    status = np.where(rng.random(n) < 0.04, "suspended", "active")
    since_days = rng.integers(1, 1500, size=n)
    since = (np.datetime64(spec.as_of) - since_days.astype("timedelta64[D]")).astype(str)
    channel = _CHANNELS[rng.integers(0, len(_CHANNELS), size=n)]
    return pd.DataFrame(
        {"msisdn": msisdn, "product": product, "status": status, "since": since, "channel": channel}
    )


def _write(frame: pd.DataFrame, path: Path, rng: np.random.Generator, bad_share: float) -> int:
    frame = frame.sample(frac=1.0, random_state=int(rng.integers(0, 2**31)))
    n_bad = int(len(frame) * bad_share)
    if n_bad:
        frame = frame.copy()
        frame.iloc[rng.choice(len(frame), n_bad, replace=False), 0] = "12345"
    body = frame.to_csv(index=False, lineterminator="\n").encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        with gzip.open(path, "wb", compresslevel=1) as fh:
            fh.write(body)
    else:
        path.write_bytes(body)
    return len(frame)


def write_snapshots(directory: Path, spec: SnapshotSpec, suffix: str = ".csv") -> dict[str, object]:
    """Write ``boss``, ``misc`` and ``platform`` snapshot files into ``directory``.

    Returns the row count of each file and the counts reconciliation should find per class.
    Half of the platform's numbers are written in E.164, half national, as real feeds mix them.
    """
    rng = np.random.default_rng(spec.seed)
    base = _base(spec, rng)
    n = len(base)
    active = np.flatnonzero(base["status"].to_numpy() == "active")
    picks = rng.permutation(active)
    sizes = [
        int(n * s)
        for s in (
            spec.billed_not_on_send_list,
            spec.on_send_list_not_billed,
            spec.status_mismatch,
            spec.product_mismatch,
            spec.missing_in_misc,
        )
    ]
    cuts = np.cumsum([0, *sizes])
    billed, sent, mismatch, product, no_misc = (
        picks[cuts[i] : cuts[i + 1]] for i in range(len(sizes))
    )

    boss = base.drop(index=pd.Index(sent))
    boss.loc[boss.index.isin(mismatch), "status"] = "suspended"
    misc = base.drop(index=pd.Index(no_misc))
    misc.loc[misc.index.isin(mismatch), "status"] = "suspended"
    platform = base.drop(index=pd.Index(billed)).copy()
    others = {p: spec.products[(i + 1) % len(spec.products)] for i, p in enumerate(spec.products)}
    in_product = platform.index.isin(product)
    platform.loc[in_product, "product"] = platform.loc[in_product, "product"].map(others)
    e164 = rng.random(len(platform)) < 0.5
    platform.loc[e164, "msisdn"] = "+86" + platform.loc[e164, "msisdn"]

    rows = {
        name: _write(frame, directory / f"{name}{suffix}", rng, spec.malformed_share)
        for name, frame in (("boss", boss), ("misc", misc), ("platform", platform))
    }
    expected = {
        "billed_not_on_send_list": len(billed),
        "on_send_list_not_billed": len(sent),
        "status_mismatch": len(mismatch),
        "product_mismatch": 2 * len(product),
        # The platform side of a product mismatch has no order in MISC either.
        "missing_in_misc": len(no_misc) + len(product),
    }
    return {"rows": rows, "expected": expected}

"""An operator's TAC list into the rules directory, and how much of the base the table covers.

``check_device_rows`` validates an operator's ``devices.csv`` row by row (the columns of
mmsq.devices): a bad row is reported with its line number and reason and left out, never
fatal. ``merge_device_rows`` merges the good rows over the operator table already in the rules
directory (by TAC) and says what was added and changed. ``device_coverage`` is the share of
subscribers with a stored device whose TAC the merged table knows, and the unknown TACs that
cover the most subscribers (what to add next).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from mmsq.devices import DEVICE_COLUMNS, DeviceCatalogue
from mmsq.rules_loader import RuleProblem

__all__ = [
    "DeviceCoverage",
    "DeviceMerge",
    "DeviceRows",
    "check_device_rows",
    "device_coverage",
    "merge_device_rows",
    "write_device_table",
]

_TAC = re.compile(r"\d{8}")
_BOOLEANS = ("true", "false")


@dataclass(frozen=True)
class DeviceRows:
    """The valid rows of a TAC list (``DEVICE_COLUMNS``, booleans as ``true``/``false``
    text) and the problems of the rows left out. ``fatal`` is a file-level problem (unreadable,
    wrong header): then there are no rows."""

    rows: pd.DataFrame
    problems: list[RuleProblem] = field(default_factory=list)
    fatal: RuleProblem | None = None


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in DEVICE_COLUMNS})


def check_device_rows(path: Path) -> DeviceRows:
    """Read ``path`` and keep the rows that are valid; the others are reported by line."""
    name = str(path)
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            lines = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        return DeviceRows(_empty(), fatal=RuleProblem(name, "(file)", str(exc)))
    header = tuple(h.strip() for h in lines[0]) if lines else ()
    if header != DEVICE_COLUMNS:
        return DeviceRows(
            _empty(),
            fatal=RuleProblem(
                name,
                "(header)",
                f"columns must be exactly {','.join(DEVICE_COLUMNS)}; got {','.join(header)}",
            ),
        )
    good: list[list[str]] = []
    problems: list[RuleProblem] = []
    first_line: dict[str, int] = {}
    for number, raw in enumerate(lines[1:], start=2):
        if not raw or all(not v.strip() for v in raw):
            continue
        where = f"line {number}"
        if len(raw) != len(DEVICE_COLUMNS):
            problems.append(
                RuleProblem(name, where, f"{len(raw)} fields, expected {len(DEVICE_COLUMNS)}")
            )
            continue
        row = dict(zip(DEVICE_COLUMNS, (v.strip() for v in raw), strict=True))
        reason = _row_problem(row)
        if reason is None and row["tac"] in first_line:
            reason = f"tac {row['tac']} is listed twice (first on line {first_line[row['tac']]})"
        if reason is not None:
            problems.append(RuleProblem(name, where, reason))
            continue
        first_line[row["tac"]] = number
        row["mms_capable"] = row["mms_capable"].lower()
        row["ota_cp"] = row["ota_cp"].lower()
        good.append([row[c] for c in DEVICE_COLUMNS])
    rows = pd.DataFrame(good, columns=list(DEVICE_COLUMNS), dtype=object) if good else _empty()
    return DeviceRows(rows, problems)


def _row_problem(row: dict[str, str]) -> str | None:
    if not _TAC.fullmatch(row["tac"]):
        return f"tac {row['tac']!r} is not 8 digits"
    for col in ("mms_capable", "ota_cp"):
        if row[col].lower() not in _BOOLEANS:
            return f"{col} {row[col]!r} is not true or false"
    if not row["model"]:
        return "model is empty"
    return None


@dataclass(frozen=True)
class DeviceMerge:
    """The operator table after an import, and what the import did to it (TAC counts)."""

    table: pd.DataFrame
    added: int
    changed: int
    unchanged: int


def merge_device_rows(existing: pd.DataFrame, incoming: pd.DataFrame) -> DeviceMerge:
    """``incoming`` over ``existing`` by TAC (both ``DEVICE_COLUMNS``; booleans as bool or
    ``true``/``false`` text). The result keeps the existing order, new TACs appended."""
    old = _as_text(existing).set_index("tac")
    new = _as_text(incoming).set_index("tac")
    known = new.index.isin(old.index)
    added = int((~known).sum())
    same = (new.loc[known] == old.loc[new.index[known]]).all(axis=1)
    changed = int((~same).sum())
    merged = pd.concat([old.loc[~old.index.isin(new.index)], new])
    order = [t for t in old.index if t in merged.index] + list(new.index[~known])
    table = merged.loc[order].reset_index()[list(DEVICE_COLUMNS)]
    return DeviceMerge(table, added, changed, int(same.sum()))


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame[list(DEVICE_COLUMNS)].astype(object).copy()
    for col in ("mms_capable", "ota_cp"):
        out[col] = out[col].map(
            lambda v: ("true" if v else "false") if isinstance(v, bool) else str(v).lower()
        )
    return out.fillna("").astype(str)


def write_device_table(table: pd.DataFrame, path: Path) -> None:
    """Write a device table (a temporary file, then renamed: a reader never sees half)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    _as_text(table).to_csv(tmp, index=False, encoding="utf-8", lineterminator="\n")
    tmp.replace(path)


@dataclass(frozen=True)
class DeviceCoverage:
    """Subscribers with a stored device, how many of them the table knows, the unknown TACs
    (distinct) and the top unknown TACs as (tac, subscribers), most subscribers first."""

    subscribers: int
    known: int
    unknown_tacs: int
    top_unknown: list[tuple[str, int]]

    @property
    def known_share(self) -> float:
        return self.known / self.subscribers if self.subscribers else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "subscribers": self.subscribers,
            "known": self.known,
            "unknown": self.subscribers - self.known,
            "known_share": round(self.known_share, 4),
            "unknown_tacs": self.unknown_tacs,
            "top_unknown": [{"tac": t, "subscribers": n} for t, n in self.top_unknown],
        }


def device_coverage(
    devices: pd.DataFrame, catalogue: DeviceCatalogue, top: int = 10
) -> DeviceCoverage:
    """``devices``: one row per subscriber (msisdn, tac, ...) as SqlStore.devices() gives."""
    tacs = devices["tac"].fillna("").astype(str).str.strip()
    tacs = tacs[tacs != ""]
    if tacs.empty:
        return DeviceCoverage(0, 0, 0, [])
    known = catalogue.lookup(tacs)["known"].to_numpy(dtype=bool)
    unknown = tacs[~known]
    counts = unknown.value_counts()
    ranked = sorted(counts.items(), key=lambda kv: (-int(kv[1]), str(kv[0])))[:top]
    return DeviceCoverage(
        subscribers=len(tacs),
        known=int(known.sum()),
        unknown_tacs=int(counts.size),
        top_unknown=[(str(t), int(n)) for t, n in ranked],
    )

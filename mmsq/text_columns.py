"""Vectorised reading of text columns from CSV-like inputs: blanks, ISO 8601 times, epochs.

Shared by the CDR ingest and the subscription snapshot import, which read the same kinds of
columns and quarantine the same kinds of bad values.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

__all__ = ["blank", "epoch_seconds", "none_if_blank", "parse_times"]

_OFFSET = r"(?:[Zz]|[+-]\d{2}:?\d{2})$"
_UTC = "UTC"


def blank(s: pd.Series) -> pd.Series:
    return s.isna() | (s.str.strip() == "")


def none_if_blank(s: pd.Series) -> pd.Series:
    stripped = s.str.strip()
    return stripped.where(stripped != "")


def parse_times(raw: pd.Series, tz: ZoneInfo) -> pd.Series:
    """ISO 8601 text -> UTC timestamps; text without an offset is read in the operator's zone.

    A CDR holds few distinct times (second resolution, one day), so each distinct text is
    parsed once and the result spread back by its code: ~20x faster than parsing every row.
    """
    codes, uniques = pd.factorize(raw)
    if len(uniques) * 2 > len(raw):
        return _parse_time_values(raw, tz)
    parsed = _parse_time_values(pd.Series(uniques, dtype="string"), tz)
    naive = parsed.dt.tz_convert(None).to_numpy(dtype="datetime64[ns]")
    values = np.append(naive, np.datetime64("NaT", "ns"))[codes]  # code -1: the NaT at the end
    return pd.Series(pd.DatetimeIndex(values).tz_localize(_UTC), index=raw.index)


def _parse_time_values(raw: pd.Series, tz: ZoneInfo) -> pd.Series:
    s = raw.str.strip()
    out = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns, UTC]")
    present = ~blank(s)
    has_offset = present & s.str.contains(_OFFSET, regex=True, na=False)
    if has_offset.any():
        out[has_offset] = pd.to_datetime(s[has_offset], format="ISO8601", utc=True, errors="coerce")
    naive = present & ~has_offset
    if naive.any():
        local = pd.to_datetime(s[naive], format="ISO8601", errors="coerce")
        out[naive] = local.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT").dt.tz_convert(
            _UTC
        )
    return out


def epoch_seconds(ts: pd.Series) -> pd.Series:
    values = ts.to_numpy(dtype="datetime64[ns]", na_value=np.datetime64("NaT"))
    secs = pd.Series(values.astype("datetime64[s]").astype("int64"), index=ts.index)
    return secs.where(ts.notna()).astype("Int64")

"""The window summary folded incrementally from slices of daily aggregates (numpy, no SQL).

Scoring needs one row per subscriber (``mmsq.features.SUMMARY_COLUMNS``: three sums and one
day mask per condition) over a month of daily aggregates: 45 million rows for a province.
Reading them all at once costs several GiB, so the store hands them over a few days at a time
and ``WindowFold.add`` folds each slice into per-subscriber arrays:

- the slice's MSISDN categories are mapped once to global subscriber numbers (a slice with
  the same categories as the one before reuses the mapping);
- a subscriber appears at most once per day, so day by day the sums are plain fancy-index
  additions and the conditions one small flag word per (subscriber, day), written with one
  fancy-index assignment (no ``np.add.at``, no Python loop over rows);
- ``summary()`` turns the flag words into the 64-bit day masks at the end.

Memory: 2 bytes per subscriber and window day for the flags plus 8 bytes per sum, whatever
the slice size; the slices themselves are the caller's to bound. The result equals
``mmsq.features.summarise_window`` on the whole window (a contract test checks it).
"""

from __future__ import annotations

from datetime import date

import numpy as np
import numpy.typing as npt
import pandas as pd

from mmsq.features import MASKS, SUMMARY_COLUMNS, SUMS, empty_summary

__all__ = ["FOLD_COLUMNS", "WindowFold"]

#: The daily-aggregate counters the fold reads (pass them as ``columns=`` to the store).
FOLD_COLUMNS: tuple[str, ...] = tuple(
    dict.fromkeys([*SUMS, *(c for cols in MASKS.values() for c in cols)])
)
_MASK_NAMES = tuple(MASKS)
_DAY = np.timedelta64(1, "D")


class WindowFold:
    """Accumulates daily-aggregate slices of ``[first_day, last_day]`` into the summary."""

    def __init__(self, first_day: date, last_day: date) -> None:
        self.first = np.datetime64(first_day, "D")
        self.days = (last_day - first_day).days + 1
        if not 1 <= self.days <= 64:
            raise ValueError("a window is 1 to 64 days (one bit per day)")
        self._msisdns: list[npt.NDArray[np.object_]] = []
        self._index: pd.Index = pd.Index([], dtype=object)
        self._n = 0
        self._sums = np.zeros((len(SUMS), 0), dtype=np.int64)
        # (day, subscriber): one row per day, written and read contiguously.
        self._flags = np.zeros((self.days, 0), dtype=np.uint16)
        self._last_categories: pd.Index | None = None
        self._last_mapping = np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return self._n

    # -- subscribers ----------------------------------------------------------------------

    def _grow(self, need: int) -> None:
        capacity = self._sums.shape[1]
        if need <= capacity:
            return
        size = max(need, int(capacity * 1.25) + 1024)
        sums = np.zeros((len(SUMS), size), dtype=np.int64)
        sums[:, : self._n] = self._sums[:, : self._n]
        flags = np.zeros((self.days, size), dtype=np.uint16)
        flags[:, : self._n] = self._flags[:, : self._n]
        self._sums, self._flags = sums, flags

    @staticmethod
    def _keys(categories: pd.Index) -> pd.Index:
        """Integer keys of E.164 MSISDNs (hashing int64 is ~20 times cheaper than text);
        the text itself when it is not all ``+`` and digits."""
        keys: pd.Index
        try:
            keys = pd.Index(categories.str.lstrip("+").astype(np.int64), dtype=np.int64)
        except (ValueError, TypeError, OverflowError):
            keys = pd.Index(np.asarray(categories, dtype=object), dtype=object)
        return keys

    def _mapping(self, categories: pd.Index) -> npt.NDArray[np.int64]:
        """Global subscriber number of each category (new subscribers are appended)."""
        last = self._last_categories
        if last is not None and (last is categories or last.equals(categories)):
            return self._last_mapping
        keys = self._keys(categories)
        if self._n and keys.dtype == self._index.dtype:
            mapping = self._index.get_indexer(keys).astype(np.int64)
        elif self._n:  # mixed key kinds: compare as text
            text: pd.Index = pd.Index(np.concatenate(self._msisdns), dtype=object)
            keys = pd.Index(np.asarray(categories, dtype=object), dtype=object)
            mapping = text.get_indexer(keys).astype(np.int64)
            self._index = text
        else:
            mapping = np.full(len(categories), -1, dtype=np.int64)
            self._index = keys[:0]
        new = np.flatnonzero(mapping < 0)
        if len(new):
            mapping[new] = np.arange(self._n, self._n + len(new))
            self._msisdns.append(np.asarray(categories[new], dtype=object))
            self._index = self._index.append(keys[new])
            self._grow(self._n + len(new))
            self._n += len(new)
        self._last_categories, self._last_mapping = categories, mapping
        return mapping

    # -- folding --------------------------------------------------------------------------

    def add(self, frame: pd.DataFrame) -> None:
        """Fold one slice: ``msisdn`` (categorical or text), ``day`` (datetime64) and at least
        the ``FOLD_COLUMNS`` counters that are present in storage (a missing one is zero).
        Each (msisdn, day) occurs at most once across all slices, as in the store."""
        if frame.empty:
            return
        msisdn = frame["msisdn"]
        if isinstance(msisdn.dtype, pd.CategoricalDtype):
            codes = np.asarray(msisdn.cat.codes, dtype=np.int64)
            categories = msisdn.cat.categories
        else:
            codes_, uniques = pd.factorize(msisdn.astype(object))
            codes, categories = codes_.astype(np.int64), pd.Index(uniques, dtype=object)
        gid = self._mapping(categories)[codes]
        del codes
        day = frame["day"].to_numpy().astype("datetime64[D]")
        if len(day) > 1 and not (day[1:] >= day[:-1]).all():
            # The store hands rows over day by day; anything else is sorted here.
            order = np.argsort(day, kind="stable")
            frame, gid, day = frame.iloc[order], gid[order], day[order]
        bounds = np.flatnonzero(np.r_[True, day[1:] != day[:-1], True])
        columns = {c: frame[c].to_numpy() for c in FOLD_COLUMNS if c in frame}
        for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            j = int((day[a] - self.first) // _DAY)
            if not 0 <= j < self.days:
                continue
            g = gid[a:b]  # unique within a day: plain fancy indexing is exact
            flags = np.zeros(b - a, dtype=np.uint16)
            for k, name in enumerate(_MASK_NAMES):
                for c in MASKS[name]:
                    if c in columns:
                        flags |= (columns[c][a:b] > 0).astype(np.uint16) << np.uint16(k)
            self._flags[j, g] = flags
            for i, c in enumerate(SUMS):
                if c in columns:
                    self._sums[i, g] += columns[c][a:b]

    def summary(self) -> pd.DataFrame:
        """One row per subscriber seen, sorted by MSISDN: ``SUMMARY_COLUMNS``."""
        if not self._n:
            return empty_summary()
        msisdn = np.concatenate(self._msisdns)
        keys = self._index.to_numpy()
        lengths = pd.Index(msisdn, dtype=object).str.len().to_numpy()
        if keys.dtype == np.int64 and lengths.min() == lengths.max():
            order = np.argsort(keys, kind="stable")  # same length: digit order is text order
        else:
            order = np.argsort(msisdn, kind="stable")
        flags = self._flags[:, : self._n][:, order]
        sums = self._sums[:, : self._n][:, order]
        data: dict[str, npt.NDArray[np.generic]] = {"msisdn": msisdn[order]}
        for j, name in enumerate(SUMS):
            data[name] = sums[j]
        bits = np.left_shift(np.uint64(1), np.arange(self.days, dtype=np.uint64))
        for k, name in enumerate(_MASK_NAMES):
            mask = np.zeros(self._n, dtype=np.uint64)
            for j in range(self.days):
                hit = (flags[j] >> np.uint16(k)) & np.uint16(1)
                mask |= hit.astype(np.uint64) * bits[j]
            data[name] = mask.view(np.int64)
        return pd.DataFrame(data, columns=list(SUMMARY_COLUMNS))

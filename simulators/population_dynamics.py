"""One night of change in the population's handset states, vectorised over all subscribers.

Temporary states end (the handset is back on, in coverage, the bill is paid) and return to the
state held before; full inboxes get cleared; then handsets in a base state may break in new ways.
Handset swaps are only flagged here: the population draws the new device.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from mmsq.simulators.handset_states import TEMPORARY, HandsetState
from mmsq.simulators.population_config import DailyRates

__all__ = ["BASE_STATES", "night_changes"]

_S = HandsetState
BASE_STATES = np.array(
    [s for s in HandsetState if s not in TEMPORARY and s is not _S.NUMBER_CANCELLED],
    dtype=np.uint8,
)

# Events on a handset in a base state, in the order their probabilities are stacked.
_EV_CANCEL, _EV_SUSPEND, _EV_OFF_WEEKS, _EV_OFF_HOURS, _EV_COVERAGE = 0, 1, 2, 3, 4
_EV_SWAP, _EV_RESET, _EV_MEMFILL, _EV_AUTODL, _EV_NONE = 5, 6, 7, 8, 9


def night_changes(
    state: NDArray[np.uint8],
    prev: NDArray[np.uint8],
    rates: DailyRates,
    rng: np.random.Generator,
) -> NDArray[np.int64]:
    """Apply one night's changes to ``state``/``prev`` in place; returns who swaps handsets."""
    s, r, n = state, rates, state.size
    u = rng.random(n)
    changed = np.zeros(n, dtype=bool)
    for st, p in (
        (_S.POWERED_OFF_HOURS, r.power_on_hours),
        (_S.POWERED_OFF_WEEKS, r.power_on_weeks),
        (_S.OUT_OF_COVERAGE, r.coverage_back),
        (_S.SUSPENDED_BILLING, r.unsuspend),
    ):
        m = (s == st) & (u < p)
        s[m] = prev[m]
        changed |= m
    m = (s == _S.MEMORY_FULL) & (u < r.memory_clear)
    s[m] = _S.HEALTHY
    changed |= m

    u2 = rng.random(n)
    u3 = rng.random(n)
    cum = np.cumsum(
        [
            r.cancel,
            r.suspend,
            r.power_off_weeks,
            r.power_off_hours,
            r.coverage_loss,
            r.handset_swap,
            r.factory_reset,
            r.memory_fill,
            r.auto_download_off,
        ]
    )
    ev = np.searchsorted(cum, u2, side="right")
    ev[changed | ~np.isin(s, BASE_STATES)] = _EV_NONE
    non_mms = s == _S.NON_MMS_HANDSET
    # Resets and full inboxes do not matter to a phone without MMS; its owner upgrades sooner.
    ev[non_mms & (ev >= _EV_SWAP)] = _EV_NONE
    ev[non_mms & (ev == _EV_NONE) & (u3 < r.non_mms_swap) & ~changed] = _EV_SWAP

    s[ev == _EV_CANCEL] = _S.NUMBER_CANCELLED
    for e, st in (
        (_EV_SUSPEND, _S.SUSPENDED_BILLING),
        (_EV_OFF_WEEKS, _S.POWERED_OFF_WEEKS),
        (_EV_OFF_HOURS, _S.POWERED_OFF_HOURS),
        (_EV_COVERAGE, _S.OUT_OF_COVERAGE),
    ):
        m = ev == e
        prev[m] = s[m]
        s[m] = st
    s[ev == _EV_RESET] = _S.SETTINGS_WRONG_APN
    s[(ev == _EV_MEMFILL) & (s == _S.HEALTHY)] = _S.MEMORY_FULL
    s[(ev == _EV_AUTODL) & (s == _S.HEALTHY)] = _S.AUTO_DOWNLOAD_OFF
    return np.flatnonzero(ev == _EV_SWAP)

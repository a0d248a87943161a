"""The simulated handset population: what happens to each message, and how handsets change.

``HandsetPopulation`` implements the ``OutcomeSource`` protocol (``simulators/outcomes.py``): the
SMSC and MMSC simulators ask it for each message's outcome and tell it what each handset
received. Per-subscriber state lives in numpy arrays, so 1.5 million subscribers are created and
advanced a simulated day in seconds; per-message calls are a binary search and a few integer
hashes.

Determinism: everything follows from the seed. The outcome of the k-th MMS (or SMS, or help
text) to a subscriber on a given day is a hash of (seed, subscriber, day, k), so results do not
depend on the order in which the simulators' threads ask about different subscribers. Daily
changes draw from a generator seeded by (seed, day). Two populations with the same config that
receive the same calls have identical ground truth and outcomes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from math import gcd
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from mmsq.simulators.devices import Device, load_device_table, luhn_check_digit, unknown_devices
from mmsq.simulators.handset_codes import (
    HEALTHY_EXPIRY,
    HEALTHY_TRANSIENT,
    MMS_VARIANTS,
    SMS_TRANSIENT,
    SMS_VARIANTS,
    UNKNOWN_CODES,
    MmsVariant,
    SmsVariant,
)
from mmsq.simulators.handset_states import (
    EXPECTED_VERDICT,
    OUT_OF_REACH,
    SETTINGS_STATES,
    STATE_NAMES,
    TEMPORARY,
    VERDICTS,
    HandsetState,
)
from mmsq.simulators.outcomes import MmsOutcome, OtaPush, SmsOutcome, TextSms
from mmsq.simulators.population_config import PopulationConfig
from mmsq.simulators.population_dynamics import BASE_STATES, night_changes
from mmsq.simulators.seeded_draws import EventKeys, WeightedPick, unit, unit_array

__all__ = ["Complaint", "HandsetPopulation", "PopulationCounters"]

_S = HandsetState
_SALT_MMS, _SALT_SMS, _SALT_TEXT, _SALT_OTA = 0x4D4D53, 0x534D53, 0x545854, 0x4F5441

# China Mobile number ranges (the newspaper is a China Mobile product in the case studies).
_PREFIXES = np.array(
    [134, 135, 136, 137, 138, 139, 147, 150, 151, 152, 157, 158, 159, 182, 183, 184, 187, 188, 198],
    dtype=np.int64,
)
_NO_COMPLAINT = np.array([_S.NUMBER_CANCELLED, _S.POWERED_OFF_WEEKS], dtype=np.uint8)
_STATE_VERDICT = np.array([VERDICTS.index(EXPECTED_VERDICT[s]) for s in HandsetState])


def _national(msisdn: str) -> int | None:
    """The 11-digit national number of a Chinese mobile MSISDN in any usual spelling."""
    digits = msisdn.strip().replace(" ", "").replace("-", "")
    if digits.startswith("+"):
        digits = digits[1:]
    if digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if len(digits) != 11 or not digits.isdigit():
        return None
    return int(digits)


@dataclass(frozen=True, slots=True)
class Complaint:
    """A subscriber calling customer service because the newspaper stopped arriving."""

    msisdn: str
    day: date
    reason: str
    days_missing: int


@dataclass
class PopulationCounters:
    """What the handsets received and what it changed (for demos and sanity checks)."""

    mms: int = 0
    sms: int = 0
    texts_received: int = 0
    texts_fixed: int = 0
    pushes_received: int = 0
    pushes_applied: int = 0
    pushes_fixed: int = 0
    pushes_broke: int = 0


class HandsetPopulation:
    """N subscribers with numbers, SIMs, handsets, regions and handset states; day by day.

    Day 0 is ``config.start_date``. ``advance_day`` applies one day of change (recoveries,
    breakage, handset swaps, complaints) and records the ground truth for the new day, which is
    the state each subscriber starts the day in: a repair by help SMS or OTA push shows from the
    next day.
    """

    def __init__(
        self, config: PopulationConfig | None = None, devices: Sequence[Device] | None = None
    ) -> None:
        cfg = config or PopulationConfig()
        self.config = cfg
        self._lock = threading.Lock()
        shipped = tuple(devices) if devices is not None else load_device_table()
        extra = unknown_devices((d.tac for d in shipped), cfg.seed)
        self.devices: tuple[Device, ...] = shipped + extra
        self._n_known_devices = len(shipped)
        self._keys = {
            salt: EventKeys(cfg.seed, salt)
            for salt in (_SALT_MMS, _SALT_SMS, _SALT_TEXT, _SALT_OTA)
        }
        self._day = 0
        self.counters = PopulationCounters()
        self._complaints: list[Complaint] = []
        self._nags: dict[int, list[int]] = {}
        self._history: list[tuple[int, NDArray[np.uint8], NDArray[np.int16]]] = []
        self._msisdn_text: NDArray[np.str_] | None = None
        self._text_index: dict[str, int] | None = None
        self._msisdn_cat: pd.CategoricalDtype | None = None
        self._build_tables()
        self._build_devices()
        self._build_subscribers()
        self._snapshot()

    # ------------------------------------------------------------------ construction

    def _build_tables(self) -> None:
        cfg = self.config
        variants: list[MmsVariant] = []

        def add(vs: Iterable[MmsVariant]) -> WeightedPick:
            vs = list(vs)
            start = len(variants)
            variants.extend(vs)
            return WeightedPick.of(range(start, start + len(vs)), [v.weight for v in vs])

        self._mms_pick = [add(MMS_VARIANTS[s]) for s in HandsetState]
        self._transient_pick = add(HEALTHY_TRANSIENT)
        self._expiry_pick = add(HEALTHY_EXPIRY)
        self._variants = tuple(variants)

        def outcome(v: MmsVariant, source: str, code: str, mm_status: str) -> MmsOutcome:
            delay = cfg.mms_report_delay_s if v.delivered else cfg.mms_failure_delay_s
            return MmsOutcome(mm_status, source, code, v.notify_status, delay)

        table = [outcome(v, v.status_source, v.status_code, v.mm_status) for v in variants]
        for v in variants:
            for source, code in UNKNOWN_CODES:
                table.append(outcome(v, source, code, code if source == "mm7" else v.mm_status))
        self.mms_table: tuple[MmsOutcome, ...] = tuple(table)
        self._no_subscriber_mms = MmsOutcome(
            "Indeterminate", "mm7", "2003", "MK:0001", cfg.mms_failure_delay_s
        )

        sms: list[SmsVariant] = []
        self._sms_pick: list[WeightedPick] = []
        for s in HandsetState:
            start = len(sms)
            sms.extend(SMS_VARIANTS[s])
            self._sms_pick.append(
                WeightedPick.of(range(start, len(sms)), [v.weight for v in SMS_VARIANTS[s]])
            )
        self._sms_transient_id = len(sms)
        sms.append(SMS_TRANSIENT)
        self._sms_variants = tuple(sms)
        self.sms_table: tuple[SmsOutcome, ...] = tuple(
            SmsOutcome(v.stat, v.err, cfg.sms_delay_s if v.delivered else cfg.sms_failure_delay_s)
            for v in sms
        )
        self._no_subscriber_sms = SmsOutcome("UNDELIV", "001", cfg.sms_failure_delay_s)

    def _build_devices(self) -> None:
        cfg = self.config
        devs = self.devices
        rng = np.random.default_rng([cfg.seed, 0xDE71CE])
        # Sales weights: a few models sell most; phones without MMS were already old.
        w = rng.lognormal(0.0, 1.0, size=len(devs))
        self._dev_weight = w
        self._dev_known = np.array([d.known for d in devs], dtype=bool)
        self._dev_mms = np.array([d.mms_capable for d in devs], dtype=bool)
        self._dev_tac = np.array([d.tac for d in devs])
        self._dev_tac_int = np.array([int(d.tac) for d in devs], dtype=np.int64)
        self._dev_help = np.array(
            [cfg.help_fix_by_brand.get(d.brand, cfg.help_fix_default) for d in devs]
        )
        pools: dict[tuple[bool, bool], tuple[NDArray[np.int64], NDArray[np.float64]]] = {}
        for known in (True, False):
            for mms in (True, False):
                idx = np.flatnonzero((self._dev_known == known) & (self._dev_mms == mms))
                if idx.size == 0:  # a custom table without such devices: fall back to any
                    idx = np.flatnonzero(self._dev_mms == mms)
                if idx.size == 0:
                    idx = np.arange(len(devs))
                pools[(known, mms)] = (idx, w[idx] / w[idx].sum())
        self._pools = pools

    def _draw_devices(
        self, rng: np.random.Generator, capable: NDArray[np.bool_]
    ) -> NDArray[np.int16]:
        out = np.empty(capable.size, dtype=np.int16)
        unknown = rng.random(capable.size) < self.config.unknown_tac_share
        for known in (True, False):
            for mms in (True, False):
                m = (unknown != known) & (capable == mms)
                k = int(m.sum())
                if k:
                    idx, p = self._pools[(known, mms)]
                    out[m] = rng.choice(idx, size=k, p=p)
        return out

    def _build_subscribers(self) -> None:
        cfg = self.config
        n = cfg.subscribers
        seq = np.random.SeedSequence([cfg.seed, 0x9097])
        rng_id, rng_state, rng_dev = (np.random.default_rng(s) for s in seq.spawn(3))
        i = np.arange(n, dtype=np.int64)
        # Unique numbers without a set: an affine permutation of the number space, random-looking.
        space = len(_PREFIXES) * 10**8
        if n > space:
            raise ValueError(f"at most {space} subscribers")
        a, b = self._coprime(rng_id, space), int(rng_id.integers(0, space))
        pick = (i * a + b) % space
        self._msisdn = _PREFIXES[pick // 10**8] * 10**8 + pick % 10**8
        self._order = np.argsort(self._msisdn)
        self._sorted = self._msisdn[self._order]
        a2, b2 = self._coprime(rng_id, 10**10), int(rng_id.integers(0, 10**10))
        self._msin = (i * a2 + b2) % 10**10
        mncs = list(cfg.imsi_mnc_shares)
        mnc_w = np.array([cfg.imsi_mnc_shares[k] for k in mncs])
        self._mnc_names = [int(k) for k in mncs]
        self._mnc = rng_id.choice(len(mncs), size=n, p=mnc_w / mnc_w.sum()).astype(np.uint8)
        self._pin = rng_id.integers(0, 10_000, size=n).astype(np.uint16)
        self._regions = list(cfg.regions)
        reg_w = np.array([cfg.regions[k] for k in self._regions])
        self._region = rng_id.choice(len(self._regions), size=n, p=reg_w / reg_w.sum()).astype(
            np.uint8
        )
        self._serial = rng_id.integers(0, 10**6, size=n).astype(np.int32)

        shares = np.array(cfg.shares())
        state = rng_state.choice(len(shares), size=n, p=shares).astype(np.uint8)
        base_shares = shares[BASE_STATES]
        if base_shares.sum() <= 0:
            base_shares = np.ones(len(BASE_STATES))
        underlying = BASE_STATES[
            rng_state.choice(len(BASE_STATES), size=n, p=base_shares / base_shares.sum())
        ]
        is_base = np.isin(state, BASE_STATES)
        self._prev = np.where(is_base, state, underlying).astype(np.uint8)
        self._state = state
        self._dev = self._draw_devices(rng_dev, self._prev != _S.NON_MMS_HANDSET)
        self._mms_seq = np.zeros(n, dtype=np.uint32)
        self._sms_seq = np.zeros(n, dtype=np.uint32)
        self._evt_seq = np.zeros(n, dtype=np.uint32)
        self._streak = np.zeros(n, dtype=np.uint16)
        self._last_complaint = np.full(n, -(10**6), dtype=np.int32)

    @staticmethod
    def _coprime(rng: np.random.Generator, space: int) -> int:
        while True:
            a = int(rng.integers(space // 3, space - 1))
            if gcd(a, space) == 1:
                return a

    # ------------------------------------------------------------------ identity look-ups

    @property
    def size(self) -> int:
        return int(self._msisdn.size)

    @property
    def day(self) -> int:
        """The current simulated day (0 = ``config.start_date``)."""
        return self._day

    @property
    def today(self) -> date:
        start: date = self.config.start_date
        return start + timedelta(days=self._day)

    def index_of(self, msisdn: str) -> int | None:
        """The subscriber's index, from any usual MSISDN spelling; None when not ours."""
        if self._text_index is None:
            # E.164 spellings (what the simulators pass) resolve with one dict lookup.
            self._text_index = {m: i for i, m in enumerate(self.msisdns().tolist())}
        found = self._text_index.get(msisdn)
        if found is not None:
            return found
        value = _national(msisdn)
        if value is None:
            return None
        pos = int(np.searchsorted(self._sorted, value))
        if pos < self._sorted.size and int(self._sorted[pos]) == value:
            return int(self._order[pos])
        return None

    def indices_of(self, msisdns: Iterable[str]) -> NDArray[np.int64]:
        """Indices for many MSISDNs (-1 for numbers that are not ours)."""
        return np.array(
            [-1 if (k := self.index_of(m)) is None else k for m in msisdns], dtype=np.int64
        )

    def msisdn_at(self, index: int) -> str:
        return f"+86{int(self._msisdn[index])}"

    def msisdns(self, indices: NDArray[np.int64] | None = None) -> NDArray[np.str_]:
        """E.164 MSISDNs of the given subscribers (all by default), vectorised."""
        if self._msisdn_text is None:
            self._msisdn_text = np.strings.add("+86", self._msisdn.astype(str))
        return self._msisdn_text if indices is None else self._msisdn_text[indices]

    def _msisdn_dtype(self) -> pd.CategoricalDtype:
        """The MSISDNs as a categorical type, built once (validating 1.5M categories is slow)."""
        if self._msisdn_cat is None:
            self._msisdn_cat = pd.CategoricalDtype(pd.Index(self.msisdns()))
        return self._msisdn_cat

    def imsi(self, msisdn: str) -> str | None:
        i = self.index_of(msisdn)
        if i is None:
            return None
        return f"460{self._mnc_names[self._mnc[i]]:02d}{int(self._msin[i]):010d}"

    def user_pin(self, msisdn: str) -> str | None:
        i = self.index_of(msisdn)
        return None if i is None else f"{int(self._pin[i]):04d}"

    def imei(self, msisdn: str) -> str | None:
        i = self.index_of(msisdn)
        if i is None:
            return None
        body = f"{self.devices[self._dev[i]].tac}{int(self._serial[i]):06d}"
        return body + str(luhn_check_digit(body))

    def region(self, msisdn: str) -> str | None:
        i = self.index_of(msisdn)
        return None if i is None else self._regions[self._region[i]]

    def imeis(self, indices: NDArray[np.int64] | None = None) -> NDArray[np.str_]:
        """IMEIs (TAC, 6-digit serial, Luhn check digit) of many subscribers, vectorised."""
        idx = np.arange(self.size) if indices is None else indices
        body = self._dev_tac_int[self._dev[idx]] * 10**6 + self._serial[idx]
        total = np.zeros(idx.size, dtype=np.int64)
        rest = body.copy()
        for pos in range(14):
            d = rest % 10
            rest //= 10
            if pos % 2 == 0:
                d = d * 2
                d = np.where(d > 9, d - 9, d)
            total += d
        check = (10 - total % 10) % 10
        return np.strings.zfill((body * 10 + check).astype(str), 15)

    def state_of(self, msisdn: str) -> HandsetState | None:
        i = self.index_of(msisdn)
        return None if i is None else HandsetState(int(self._state[i]))

    def device_of(self, msisdn: str) -> Device | None:
        i = self.index_of(msisdn)
        return None if i is None else self.devices[self._dev[i]]

    def indices_in(self, state: HandsetState) -> NDArray[np.int64]:
        """Indices of the subscribers currently in ``state``."""
        return np.flatnonzero(self._state == state)

    def state_counts(self) -> dict[str, int]:
        counts = np.bincount(self._state, minlength=len(STATE_NAMES))
        return {name: int(c) for name, c in zip(STATE_NAMES, counts, strict=True)}

    # ------------------------------------------------------------------ scenario controls

    def set_state(self, msisdn: str, state: HandsetState) -> None:
        """Put one subscriber's handset into ``state`` (demo and test scenarios)."""
        i = self._require(msisdn)
        with self._lock:
            if state in TEMPORARY and self._state[i] not in TEMPORARY:
                self._prev[i] = self._state[i]
            self._state[i] = state

    def set_device(self, msisdn: str, tac: str) -> None:
        """Give one subscriber the handset with ``tac`` (demo and test scenarios)."""
        i = self._require(msisdn)
        matches = np.flatnonzero(self._dev_tac == tac)
        if matches.size == 0:
            raise KeyError(f"no device with TAC {tac}")
        with self._lock:
            self._dev[i] = int(matches[0])

    def _require(self, msisdn: str) -> int:
        i = self.index_of(msisdn)
        if i is None:
            raise KeyError(f"not a subscriber: {msisdn}")
        return i

    # ------------------------------------------------------------------ message outcomes

    def _hash(self, salt: int, i: int, seq: int) -> int:
        return int(self._keys[salt].key(i, self._day, seq))

    def _mms_id(self, state: int, h: int) -> int:
        cfg = self.config
        uu, un, up = unit(h, 1), unit(h, 2), unit(h, 3)
        t, e = cfg.transient_share, cfg.healthy_expiry_share
        base: int
        if state == _S.HEALTHY and un < t:
            base = self._transient_pick.one(un / t)
        elif state == _S.HEALTHY and un < t + e:
            base = self._expiry_pick.one((un - t) / e)
        else:
            base = self._mms_pick[state].one(up)
        cu = cfg.unknown_code_share
        if uu < cu:
            k = min(int(uu / cu * len(UNKNOWN_CODES)), len(UNKNOWN_CODES) - 1)
            return len(self._variants) + base * len(UNKNOWN_CODES) + k
        return base

    def _mms_ids_np(self, state: NDArray[np.uint8], h: NDArray[np.uint64]) -> NDArray[np.int32]:
        cfg = self.config
        uu, un, up = unit_array(h, 1), unit_array(h, 2), unit_array(h, 3)
        t, e = cfg.transient_share, cfg.healthy_expiry_share
        out = np.empty(state.size, dtype=np.int32)
        for s in HandsetState:
            m = state == s
            if m.any():
                out[m] = self._mms_pick[s].many(up[m])
        healthy = state == _S.HEALTHY
        if t > 0:
            m = healthy & (un < t)
            out[m] = self._transient_pick.many(un[m] / t)
        if e > 0:
            m = healthy & (un >= t) & (un < t + e)
            out[m] = self._expiry_pick.many((un[m] - t) / e)
        cu = cfg.unknown_code_share
        if cu > 0:
            m = uu < cu
            k = np.minimum(
                np.floor(uu[m] / cu * len(UNKNOWN_CODES)).astype(np.int32),
                len(UNKNOWN_CODES) - 1,
            )
            out[m] = len(self._variants) + out[m] * len(UNKNOWN_CODES) + k
        return out

    def mms_outcome(self, msisdn: str) -> MmsOutcome:
        i = self.index_of(msisdn)
        if i is None:
            return self._no_subscriber_mms
        with self._lock:
            seq = int(self._mms_seq[i])
            self._mms_seq[i] = seq + 1
            self.counters.mms += 1
            oid = self._mms_id(int(self._state[i]), self._hash(_SALT_MMS, i, seq))
        return self.mms_table[oid]

    def mms_outcome_ids(self, indices: NDArray[np.int64]) -> NDArray[np.int32]:
        """Outcome ids (into ``mms_table``) for one MM to each subscriber in ``indices``.

        The same as calling ``mms_outcome`` for each in turn, vectorised: an index listed
        twice gets its first and then its second MM.
        """
        idx = np.asarray(indices, dtype=np.int64)
        with self._lock:
            order = np.argsort(idx, kind="stable")
            sorted_idx = idx[order]
            first = np.searchsorted(sorted_idx, sorted_idx, side="left")
            rank = np.empty(idx.size, dtype=np.uint32)
            rank[order] = (np.arange(idx.size) - first).astype(np.uint32)
            seq = self._mms_seq[idx] + rank
            np.add.at(self._mms_seq, idx, 1)
            self.counters.mms += int(idx.size)
            return self._mms_ids_np(
                self._state[idx], self._keys[_SALT_MMS].keys(idx, self._day, seq)
            )

    def mms_outcomes(self, msisdns: Sequence[str]) -> list[MmsOutcome]:
        """``mms_outcome`` for many MSISDNs at once (one MM each, in order)."""
        idx = self.indices_of(msisdns)
        ours = idx >= 0
        ids = self.mms_outcome_ids(idx[ours])
        out = [self._no_subscriber_mms] * len(idx)
        for pos, oid in zip(np.flatnonzero(ours).tolist(), ids.tolist(), strict=True):
            out[pos] = self.mms_table[oid]
        return out

    def edition_outcomes(self, indices: NDArray[np.int64] | None = None) -> pd.DataFrame:
        """One edition to every subscriber (or to ``indices``): outcomes as a CDR-like frame.

        Columns: msisdn, mm_status, status_source, status_code, notify_status, imei, region.
        """
        idx = np.arange(self.size, dtype=np.int64) if indices is None else indices
        ids = self.mms_outcome_ids(idx)
        cols: dict[str, object] = {"msisdn": self.msisdns(idx)}
        for name in ("mm_status", "status_source", "status_code", "notify_status"):
            values = np.array([getattr(o, name) for o in self.mms_table], dtype=object)
            cols[name] = pd.Categorical(values[ids])
        cols["imei"] = self.imeis(idx)
        cols["region"] = _categorical(self._region[idx], self._regions)
        return pd.DataFrame(cols)

    def mms_variant(self, outcome_id: int) -> tuple[MmsVariant, tuple[str, str] | None]:
        """The variant behind an outcome id, and the unknown code that replaced its code."""
        nb = len(self._variants)
        if outcome_id < nb:
            return self._variants[outcome_id], None
        base, k = divmod(outcome_id - nb, len(UNKNOWN_CODES))
        return self._variants[base], UNKNOWN_CODES[k]

    def sms_outcome(self, msisdn: str) -> SmsOutcome:
        i = self.index_of(msisdn)
        if i is None:
            return self._no_subscriber_sms
        with self._lock:
            seq = int(self._sms_seq[i])
            self._sms_seq[i] = seq + 1
            self.counters.sms += 1
            state = int(self._state[i])
            h = self._hash(_SALT_SMS, i, seq)
        if state not in OUT_OF_REACH and unit(h, 1) < self.config.sms_transient_share:
            return self.sms_table[self._sms_transient_id]
        return self.sms_table[self._sms_pick[state].one(unit(h, 2))]

    # ------------------------------------------------------------------ what handsets receive

    def _event_unit(self, salt: int, i: int) -> float:
        seq = int(self._evt_seq[i])
        self._evt_seq[i] = seq + 1
        return float(unit(self._hash(salt, i, seq), 1))

    def on_text_sms(self, sms: TextSms) -> None:
        """A help SMS: may get the subscriber to fix MMS settings or clear the inbox.

        The chance depends on the handset brand and falls with every help SMS the subscriber
        already received in the last ``nag_window_days`` days. Lost when the handset is out of
        reach.
        """
        i = self.index_of(sms.msisdn)
        if i is None:
            return
        cfg = self.config
        with self._lock:
            state = HandsetState(int(self._state[i]))
            if state in OUT_OF_REACH:
                return
            self.counters.texts_received += 1
            since = self._day - cfg.nag_window_days
            history = [d for d in self._nags.get(i, []) if d > since]
            recent = len(history)
            history.append(self._day)
            self._nags[i] = history
            if state in SETTINGS_STATES:
                p = float(self._dev_help[self._dev[i]])
            elif state is _S.MEMORY_FULL:
                p = cfg.help_fix_memory
            else:
                return
            if self._event_unit(_SALT_TEXT, i) < p * cfg.nag_decay**recent:
                self._state[i] = _S.HEALTHY
                self.counters.texts_fixed += 1

    def nag_count(self, msisdn: str) -> int:
        """Help SMS the subscriber received within the nag window up to today."""
        i = self._require(msisdn)
        since = self._day - self.config.nag_window_days
        return sum(1 for d in self._nags.get(i, []) if d > since)

    def on_ota_push(self, push: OtaPush) -> None:
        """An OMA CP push: applied by a CP-capable handset when the security checks out.

        The handset must support OTA settings, accept the push's security (the device table's
        ``cp_security``; a MAC is required and must be valid), and the user must accept the
        install. Applied settings equal to the operator profile fix wrong APN/MMSC states;
        wrong ones break a working handset.
        """
        i = self.index_of(push.msisdn)
        if i is None:
            return
        cfg = self.config
        with self._lock:
            state = HandsetState(int(self._state[i]))
            if state in OUT_OF_REACH:
                return
            self.counters.pushes_received += 1
            device = self.devices[self._dev[i]]
            if not device.ota_cp or not device.mms_capable:
                return
            if push.sec is None or push.sec.upper() != device.cp_security or not push.mac_valid:
                return
            typed_pin = push.sec.upper() in ("USERPIN", "USERNETWPIN")
            accept = cfg.ota_userpin_accept if typed_pin else cfg.ota_accept
            if self._event_unit(_SALT_OTA, i) >= accept:
                return
            self.counters.pushes_applied += 1
            if state not in SETTINGS_STATES and state is not _S.HEALTHY:
                return
            fault = self._settings_fault(push.parameters)
            if fault is None:
                if state in (_S.SETTINGS_WRONG_APN, _S.SETTINGS_WRONG_MMSC):
                    self._state[i] = _S.HEALTHY
                    self.counters.pushes_fixed += 1
            else:
                if state is _S.HEALTHY:
                    self.counters.pushes_broke += 1
                self._state[i] = fault

    def _settings_fault(self, parameters: dict[str, str]) -> HandsetState | None:
        """What is wrong with pushed MMS settings compared with the operator profile."""
        op = self.config.operator
        p = {k.strip().upper(): v.strip() for k, v in parameters.items()}
        apn = p.get("NAP-ADDRESS", p.get("APN"))
        if apn is None or apn.casefold() != op.apn.casefold():
            return _S.SETTINGS_WRONG_APN
        mmsc = p.get("ADDR", p.get("MMSC", p.get("MMSC-URL")))
        if mmsc is None or _url_key(mmsc) != _url_key(op.mmsc_url):
            return _S.SETTINGS_WRONG_MMSC
        host = p.get("PXADDR")
        if host is None or host != op.proxy_host:
            return _S.SETTINGS_WRONG_MMSC
        port = p.get("PORTNBR")
        if port is not None and op.proxy_port is not None and port != op.proxy_port:
            return _S.SETTINGS_WRONG_MMSC
        return None

    # ------------------------------------------------------------------ days

    def advance_day(self) -> None:
        """One simulated day: complaints for the day that ends, then the night's changes."""
        with self._lock:
            self._complain(self._day)
            self._day += 1
            rng = np.random.default_rng([self.config.seed, self._day, 0xDA7])
            self._transitions(rng)
            self._snapshot()

    def advance_to(self, day: int | date) -> None:
        """Advance day by day up to ``day`` (a day number or a date); never backwards."""
        target = (day - self.config.start_date).days if isinstance(day, date) else day
        if target < self._day:
            raise ValueError(f"cannot go back from day {self._day} to day {target}")
        while self._day < target:
            self.advance_day()

    def _transitions(self, rng: np.random.Generator) -> None:
        r = self.config.rates
        swap = night_changes(self._state, self._prev, r, rng)
        if swap.size:
            capable_draw = rng.random(swap.size) >= 0.03  # few new phones lack MMS
            dev = self._draw_devices(rng, capable_draw)
            self._dev[swap] = dev
            self._serial[swap] = rng.integers(0, 10**6, size=swap.size)
            w = rng.random(swap.size)
            new = np.where(
                w < r.swap_wrong_settings * 0.6,
                _S.SETTINGS_WRONG_APN,
                np.where(w < r.swap_wrong_settings, _S.SETTINGS_WRONG_MMSC, _S.HEALTHY),
            )
            self._state[swap] = np.where(self._dev_mms[dev], new, _S.NON_MMS_HANDSET)

    def _complain(self, day: int) -> None:
        cfg = self.config
        s = self._state
        failing = s != _S.HEALTHY
        self._streak = np.where(failing, np.minimum(self._streak, 60_000) + 1, 0).astype(np.uint16)
        eligible = (
            (self._streak >= cfg.complaint_after_days)
            & ~np.isin(s, _NO_COMPLAINT)
            & (day - self._last_complaint >= cfg.complaint_cooldown_days)
        )
        rng = np.random.default_rng([cfg.seed, day, 0xC0])
        who = np.flatnonzero(eligible & (rng.random(s.size) < cfg.complaint_daily))
        self._last_complaint[who] = day
        when = cfg.start_date + timedelta(days=day)
        for i in who.tolist():
            self._complaints.append(
                Complaint(self.msisdn_at(i), when, "newspaper_missing", int(self._streak[i]))
            )

    def complaints(self, day: int | date | None = None) -> list[Complaint]:
        """The complaint log (all days, or one day)."""
        if day is None:
            return list(self._complaints)
        when = self.config.start_date + timedelta(days=day) if isinstance(day, int) else day
        return [c for c in self._complaints if c.day == when]

    def complaints_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "msisdn": [c.msisdn for c in self._complaints],
                "day": [c.day.isoformat() for c in self._complaints],
                "reason": [c.reason for c in self._complaints],
                "days_missing": [c.days_missing for c in self._complaints],
            }
        )

    # ------------------------------------------------------------------ ground truth

    def _snapshot(self) -> None:
        self._history.append((self._day, self._state.copy(), self._dev.copy()))

    @property
    def days(self) -> list[int]:
        """The simulated days with ground truth recorded."""
        return [d for d, _, _ in self._history]

    def ground_truth_day(self, day: int) -> pd.DataFrame:
        """Ground truth of one day: each subscriber's state at the start of that day.

        Columns: msisdn, day, state, expected_verdict, tac, device_known, brand, model, region.
        """
        for d, state, dev in self._history:
            if d == day:
                return self._truth_frame(d, state, dev)
        raise KeyError(f"no ground truth for day {day}; recorded days {self.days[:1]}..")

    def ground_truth(self) -> pd.DataFrame:
        """Ground truth for every recorded day (one row per subscriber per day)."""
        frames = [self._truth_frame(d, s, v) for d, s, v in self._history]
        return pd.concat(frames, ignore_index=True)

    def _truth_frame(
        self, day: int, state: NDArray[np.uint8], dev: NDArray[np.int16]
    ) -> pd.DataFrame:
        devs = self.devices
        brands = sorted({d.brand for d in devs})
        models = sorted({f"{d.brand} {d.model}" for d in devs})
        brand_code = np.array([brands.index(d.brand) for d in devs])
        model_code = np.array([models.index(f"{d.brand} {d.model}") for d in devs])
        return pd.DataFrame(
            {
                "msisdn": pd.Categorical.from_codes(
                    np.arange(self.size), dtype=self._msisdn_dtype()
                ),
                "day": (self.config.start_date + timedelta(days=day)).isoformat(),
                "state": _categorical(state, STATE_NAMES),
                "expected_verdict": _categorical(_STATE_VERDICT[state], VERDICTS),
                "tac": _categorical(dev, self._dev_tac),
                "device_known": self._dev_known[dev],
                "brand": _categorical(brand_code[dev], brands),
                "model": _categorical(model_code[dev], models),
                "region": _categorical(self._region, self._regions),
            }
        )


def _categorical(codes: NDArray[np.integer[Any]], categories: Iterable[str]) -> pd.Categorical[str]:
    """A categorical column from integer codes: compact and quick for millions of rows."""
    return pd.Categorical.from_codes(codes.astype(np.int64), categories=pd.Index(list(categories)))


def _url_key(url: str) -> str:
    """A URL compared loosely: case of scheme and host, a trailing slash."""
    u = url.strip()
    scheme, sep, rest = u.partition("://")
    if not sep:
        scheme, rest = "http", u
    host, slash, path = rest.partition("/")
    return f"{scheme.lower()}://{host.lower()}{slash}{path}".rstrip("/")

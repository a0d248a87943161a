"""Planning service: flagged subscribers in, stored contacts (with their SMS segments) out.

``OutreachPlanner.plan`` applies the contact policy (``plan_contacts``), records every decision
not to contact someone, builds each contact's segments (help text as GSM 7-bit or UCS2; OTA
push from the subscriber's device profile, with the USERPIN carried by the following help SMS)
and stores it all in the outbox in one transaction before anything is sent. Planning twice is
harmless: contacts have idempotency keys, and the first plan counts against the caps.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from mmsq.contact_policy import ContactPolicy, local_day, next_send_time, plan_contacts
from mmsq.devices import DeviceProfile
from mmsq.ota_message import OtaMessage, prepare_ota_message
from mmsq.ota_profiles import OtaProfile, OtaProfiles
from mmsq.outbox import Decision, OutboxStore, PlannedContact, PlannedSegment
from mmsq.ports import Clock
from mmsq.sms_text import encode_text
from mmsq.wap_push import Requestable

__all__ = ["OutreachPlanner", "PlanSummary"]

_REQUESTABLE: tuple[Requestable, ...] = ("NETWPIN", "USERPIN", "USERNETWPIN")


@dataclass(frozen=True)
class PlanSummary:
    """What one planning run did."""

    candidates: int
    planned: int  # new contacts stored
    already_planned: int  # idempotency key already in the outbox
    segments: int
    by_action: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "candidates": self.candidates,
            "planned": self.planned,
            "already_planned": self.already_planned,
            "segments": self.segments,
            "by_action": dict(self.by_action),
            "skipped": dict(self.skipped),
        }


def _reference(key: str) -> int:
    """A concatenation reference (0-255) that stays the same when the contact is rebuilt."""
    return hashlib.blake2b(key.encode(), digest_size=1).digest()[0]


class OutreachPlanner:
    """Plans contacts into the outbox.

    ``new_pin(msisdn)`` makes the USERPIN of a push when one is needed (default: a random one of
    the profile's length); ``imsi(msisdn)`` gives the IMSI where known (usually it is not, and
    the profile then decides: USERPIN with the PIN in the help SMS, or no push).
    """

    def __init__(
        self,
        store: OutboxStore,
        policy: ContactPolicy,
        devices: Mapping[str, DeviceProfile],
        ota_profiles: OtaProfiles,
        clock: Clock,
        *,
        expiry_hours: float = 24.0,
        batch_size: int = 500,
        new_pin: Callable[[str], str] | None = None,
        imsi: Callable[[str], str | None] | None = None,
    ) -> None:
        self.store = store
        self.policy = policy
        self.devices = devices
        self.ota_profiles = ota_profiles
        self.clock = clock
        self.expiry = timedelta(hours=expiry_hours)
        self.batch_size = batch_size
        self.new_pin = new_pin
        self.imsi = imsi or (lambda _m: None)

    def _history_days(self) -> int:
        p = self.policy
        return max(
            [p.exclusions.same_reason_within_days, *(t.min_gap_days for t in p.tiers)]
            + [a.per_days for a in p.actions.values()]
        )

    def _enrich(self, candidates: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, DeviceProfile]]:
        """Fill brand, model, ota_capable and delivered from the device table where absent."""
        cands = candidates.reset_index(drop=True).copy()
        msisdns = cands["msisdn"].astype(str).tolist()
        if "tac" in cands:
            tacs = dict(zip(msisdns, cands["tac"].astype(str), strict=True))
        else:
            tacs = self.store.tacs(msisdns)
        profiles = {m: self.devices[t] for m, t in tacs.items() if t in self.devices}
        for column, value in (
            ("brand", "brand"),
            ("model", "model"),
            ("ota_capable", "ota_capable"),
        ):
            derived = [getattr(profiles[m], value) if m in profiles else None for m in msisdns]
            if column not in cands:
                cands[column] = derived
            else:
                cands[column] = cands[column].where(cands[column].notna(), pd.Series(derived))
        cands["ota_capable"] = cands["ota_capable"].fillna(False).astype(bool)
        if "delivered" not in cands:
            cands["delivered"] = 0
        cands["delivered"] = cands["delivered"].fillna(0).astype(int)
        return cands, profiles

    def _ota_profile(self, device: DeviceProfile | None) -> OtaProfile:
        name = device.settings_profile if device is not None else None
        if name and name in self.ota_profiles.profiles:
            return self.ota_profiles.profiles[name]
        return self.ota_profiles.get()

    def _fallback_template(self, verdict: str) -> str | None:
        """The help template the ladder gives handsets that cannot take a push."""
        for step in self.policy.ladders.get(verdict, ()):
            if step.action == "help_sms" and step.when == "not_ota_capable":
                return step.template
        return None

    def _ota_message(self, msisdn: str, device: DeviceProfile | None, key: str) -> OtaMessage:
        """The push for one subscriber: the handset's own security where the table names one,
        else the profile's; without the IMSI the profile decides (USERPIN or no push)."""
        profile = self._ota_profile(device)
        requested = next(
            (s for s in _REQUESTABLE if device is not None and device.cp_security == s),
            profile.security,
        )
        new_pin = self.new_pin
        return prepare_ota_message(
            profile,
            imsi=self.imsi(msisdn),
            security=requested,
            reference=_reference(key),
            new_pin=(lambda: new_pin(msisdn)) if new_pin else None,
        )

    def _build(
        self,
        planned: pd.DataFrame,
        cands: pd.DataFrame,
        profiles: dict[str, DeviceProfile],
        now: datetime,
        day: str,
        decisions: list[Decision],
    ) -> list[PlannedContact]:
        """Each planned row as a contact with its segments (decisions appended to in place)."""
        regions: dict[str, str | None] = {}
        if "region" in cands:
            regions = {
                str(m): (str(r) if isinstance(r, str) and r else None)
                for m, r in zip(cands["msisdn"], cands["region"], strict=True)
            }
        brands = {
            str(m): (b if isinstance(b, str) and b else None)
            for m, b in zip(cands["msisdn"], cands["brand"], strict=True)
        }
        pins: dict[str, str] = {}
        no_push: set[str] = set()
        contacts: list[PlannedContact] = []
        send_times: dict[str | None, datetime] = {}
        for row in planned.itertuples(index=False):
            msisdn, key = str(row.msisdn), str(row.idempotency_key)
            region = regions.get(msisdn)
            if region not in send_times:
                send_times[region] = next_send_time(self.policy, now, region)
            template = row.template if isinstance(row.template, str) else None
            text = row.text if isinstance(row.text, str) else None
            detail = None
            if row.action == "ota_push":
                message = self._ota_message(msisdn, profiles.get(msisdn), key)
                if not message.decision.pushes:
                    no_push.add(msisdn)
                    decisions.append(
                        Decision(
                            msisdn, str(row.reason), "ota_no_push", day, message.decision.reason
                        )
                    )
                    continue
                if message.decision.pin_for_help_sms:
                    pins[msisdn] = message.decision.pin_for_help_sms
                detail = message.decision.reason
                segments = tuple(
                    PlannedSegment(s.short_message, s.esm_class, s.data_coding)
                    for s in message.segments
                )
            else:
                if msisdn in no_push:
                    template = self._fallback_template(str(row.reason)) or template
                if template is not None:
                    text = self.policy.text(template, brands.get(msisdn), pin=pins.get(msisdn, ""))
                if not text:
                    decisions.append(Decision(msisdn, str(row.reason), "no_text", day, template))
                    continue
                encoded = encode_text(text, reference=_reference(key))
                segments = tuple(
                    PlannedSegment(s.short_message, s.esm_class, s.data_coding)
                    for s in encoded.segments
                )
            contacts.append(
                PlannedContact(
                    idempotency_key=key,
                    msisdn=msisdn,
                    action=str(row.action),
                    reason=str(row.reason),
                    template=template,
                    step=int(str(row.step)),
                    text=text if row.action == "help_sms" else None,
                    region=region,
                    not_before=send_times[region],
                    expires_at=now + self.expiry,
                    segments=segments,
                    detail=detail,
                )
            )
        return contacts

    def plan(
        self,
        candidates: pd.DataFrame,
        blacklist: set[str] | frozenset[str] = frozenset(),
        complaints: pd.DataFrame | None = None,
    ) -> PlanSummary:
        """Plan and store the contacts for ``candidates`` (msisdn, verdict; optionally brand,
        model, ota_capable, delivered, region, tac), in priority order."""
        now = self.clock.now()
        day = local_day(now, self.policy).isoformat()
        cands, profiles = self._enrich(candidates)
        history = pd.DataFrame(
            self.store.contact_history(now - timedelta(days=self._history_days())),
            columns=["msisdn", "action", "reason", "at"],
        )
        result = plan_contacts(self.policy, cands, history, now, blacklist, complaints)
        decisions = [
            Decision(str(r.msisdn), str(r.reason), str(r.skip), day)
            for r in result.skipped.itertuples(index=False)
        ]
        contacts = self._build(result.planned, cands, profiles, now, day, decisions)
        new = known = 0
        for i in range(0, max(len(contacts), 1), self.batch_size):
            last = i + self.batch_size >= len(contacts)
            n, k = self.store.add_planned(
                contacts[i : i + self.batch_size], decisions if last else [], now
            )
            new, known = new + n, known + k
        by_action: dict[str, int] = {}
        for c in contacts:
            by_action[c.action] = by_action.get(c.action, 0) + 1
        skipped: dict[str, int] = {}
        for d in decisions:
            skipped[d.decision] = skipped.get(d.decision, 0) + 1
        return PlanSummary(
            candidates=len(cands),
            planned=new,
            already_planned=known,
            segments=sum(len(c.segments) for c in contacts),
            by_action=by_action,
            skipped=skipped,
        )

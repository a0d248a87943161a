"""What the simulated network does with a message: the contract between the simulators.

The SMSC and MMSC simulators ask an ``OutcomeSource`` (the handset population, or a fixed
table in tests) what happens to each message, and tell it what each handset received, so that
help SMS and OTA pushes can change a handset's state. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

__all__ = [
    "FixedOutcomes",
    "MmsOutcome",
    "OtaPush",
    "OutcomeSource",
    "SmsOutcome",
    "TextSms",
]


@dataclass(frozen=True, slots=True)
class SmsOutcome:
    """The receipt an SMSC will send for one SMS: stat (DELIVRD, UNDELIV, ...), err, delay."""

    stat: str = "DELIVRD"
    err: str = "000"
    delay_s: float = 0.05


@dataclass(frozen=True, slots=True)
class MmsOutcome:
    """What the MMSC reports for one MM: the MMStatus and, for the CDR, the code and notify status.

    ``status_source``/``status_code`` are what the nightly CDR carries (``mm7``/``Expired``,
    ``cmpp``/``MK:0017``, ...); ``mm_status`` is what the MM7 DeliveryReportReq carries.
    """

    mm_status: str = "Retrieved"
    status_source: str = "mm7"
    status_code: str = "Retrieved"
    notify_status: str = "DELIVRD"
    delay_s: float = 0.05


@dataclass(frozen=True, slots=True)
class TextSms:
    """A (reassembled) text SMS as the SMSC decoded it."""

    msisdn: str
    text: str
    data_coding: int
    segments: int


@dataclass(frozen=True, slots=True)
class OtaPush:
    """A WAP Push of an OMA Client Provisioning document as the SMSC decoded it."""

    msisdn: str
    sec: str | None  # NETWPIN, USERPIN, USERNETWPIN, USERPINMAC or None
    mac: str | None
    mac_valid: bool  # the MAC checked against the handset's key (IMSI or PIN)
    xml: str  # the decoded wap-provisioningdoc
    parameters: dict[str, str] = field(default_factory=dict)  # e.g. {"NAP-ADDRESS": "cmwap"}


class OutcomeSource(Protocol):
    """The network's behaviour, as the simulators see it."""

    def sms_outcome(self, msisdn: str) -> SmsOutcome: ...

    def mms_outcome(self, msisdn: str) -> MmsOutcome: ...

    def on_text_sms(self, sms: TextSms) -> None: ...

    def on_ota_push(self, push: OtaPush) -> None: ...

    def imsi(self, msisdn: str) -> str | None:
        """The subscriber's IMSI, for checking NETWPIN MACs (None when unknown)."""
        ...

    def user_pin(self, msisdn: str) -> str | None:
        """The PIN the subscriber would type for a USERPIN push (None when unknown)."""
        ...

    def imei(self, msisdn: str) -> str | None:
        """The IMEI of the subscriber's current handset, for the CDR (None when unknown)."""
        ...

    def region(self, msisdn: str) -> str | None:
        """The subscriber's region, for the CDR (None when unknown)."""
        ...


@dataclass
class FixedOutcomes:
    """An OutcomeSource with one answer per MSISDN (and a default): for tests and the CLI."""

    sms: dict[str, SmsOutcome] = field(default_factory=dict)
    mms: dict[str, MmsOutcome] = field(default_factory=dict)
    default_sms: SmsOutcome = SmsOutcome()
    default_mms: MmsOutcome = MmsOutcome()
    imsis: dict[str, str] = field(default_factory=dict)
    pins: dict[str, str] = field(default_factory=dict)
    imeis: dict[str, str] = field(default_factory=dict)
    regions: dict[str, str] = field(default_factory=dict)
    texts: list[TextSms] = field(default_factory=list)
    pushes: list[OtaPush] = field(default_factory=list)

    def sms_outcome(self, msisdn: str) -> SmsOutcome:
        return self.sms.get(msisdn, self.default_sms)

    def mms_outcome(self, msisdn: str) -> MmsOutcome:
        return self.mms.get(msisdn, self.default_mms)

    def on_text_sms(self, sms: TextSms) -> None:
        self.texts.append(sms)

    def on_ota_push(self, push: OtaPush) -> None:
        self.pushes.append(push)

    def imsi(self, msisdn: str) -> str | None:
        return self.imsis.get(msisdn)

    def user_pin(self, msisdn: str) -> str | None:
        return self.pins.get(msisdn)

    def imei(self, msisdn: str) -> str | None:
        return self.imeis.get(msisdn)

    def region(self, msisdn: str) -> str | None:
        return self.regions.get(msisdn)

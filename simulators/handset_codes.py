"""What the network reports for each handset state: MMS and SMS outcomes with their weights.

Each variant records the cause class the shipped rules (``rules/status_codes.toml``) give its
codes, so a unit test can check that the population says what it means. The mix of namespaces
(MM7, OMA X-Mms-Status, CMPP, SGIP, SMGP, SMPP) is what a province's MMSC CDRs carry when its
notification pushes go through several gateways. Cause classes are plain strings here: the
simulator does not depend on the engine's enums.
"""

from __future__ import annotations

from dataclasses import dataclass

from mmsq.simulators.handset_states import HandsetState

__all__ = [
    "HEALTHY_EXPIRY",
    "HEALTHY_TRANSIENT",
    "MMS_VARIANTS",
    "SMS_TRANSIENT",
    "SMS_VARIANTS",
    "UNKNOWN_CODES",
    "MmsVariant",
    "SmsVariant",
]


@dataclass(frozen=True, slots=True)
class MmsVariant:
    """One way an MM can end for a handset in some state, with the causes the rules give it.

    ``mm_status`` goes into the MM7 DeliveryReportReq; ``status_source``/``status_code`` and
    ``notify_status`` into the CDR. ``cause`` is the class of (status_source, status_code),
    ``notify_cause`` that of ``notify_status`` in the notification namespace (``cmpp``),
    ``mm_status_cause`` that of ``mm_status`` in ``mm7``; an empty ``notify_status`` means the
    notification was never attempted. ``delivered`` selects the report delay.
    """

    weight: float
    mm_status: str
    status_source: str
    status_code: str
    notify_status: str
    cause: str
    notify_cause: str | None
    mm_status_cause: str

    @property
    def delivered(self) -> bool:
        return self.cause == "delivered"


@dataclass(frozen=True, slots=True)
class SmsVariant:
    """One SMSC receipt for an SMS to a handset in some state: stat, MAP ``err``, its cause."""

    weight: float
    stat: str
    err: str
    cause: str

    @property
    def delivered(self) -> bool:
        return self.stat == "DELIVRD"


def _v(
    weight: float,
    mm_status: str,
    source: str,
    code: str,
    notify: str,
    cause: str,
    notify_cause: str | None,
) -> MmsVariant:
    mm_cause = {
        "Retrieved": "delivered",
        "Expired": "not_fetched",
        "Deferred": "not_fetched",
        "Unrecognised": "terminal_incapable",
        "NotSupported": "terminal_incapable",
        "Unreachable": "unreachable",
        "Indeterminate": "unknown",
    }[mm_status]
    return MmsVariant(weight, mm_status, source, code, notify, cause, notify_cause, mm_cause)


_OK = "delivered"
_NF = "not_fetched"
_CAP = "terminal_capacity"
_INC = "terminal_incapable"
_UNR = "unreachable"
_INV = "subscriber_invalid"
_SUS = "subscriber_suspended"
_POL = "policy_blocked"
_UNK = "unknown"
_NET = "network_transient"

_S = HandsetState

MMS_VARIANTS: dict[HandsetState, tuple[MmsVariant, ...]] = {
    _S.HEALTHY: (
        _v(0.50, "Retrieved", "mm7", "Retrieved", "DELIVRD", _OK, _OK),
        _v(0.20, "Retrieved", "mms", "0x81", "DELIVRD", _OK, _OK),
        _v(0.12, "Retrieved", "cmpp", "DELIVRD", "DELIVRD", _OK, _OK),
        _v(0.06, "Retrieved", "sgip", "0", "DELIVRD", _OK, _OK),
        _v(0.06, "Retrieved", "smgp", "DELIVRD", "DELIVRD", _OK, _OK),
        _v(0.06, "Retrieved", "smpp", "DELIVRD", "DELIVRD", _OK, _OK),
    ),
    # Wrong MMS settings: the notification push arrives (an SMS), the fetch over packet data
    # never does; the MM expires, or the handset answers Deferred after a failed fetch.
    _S.SETTINGS_WRONG_APN: (
        _v(0.55, "Expired", "mm7", "Expired", "DELIVRD", _NF, _OK),
        _v(0.25, "Expired", "mms", "0x80", "DELIVRD", _NF, _OK),
        _v(0.20, "Deferred", "mm7", "Deferred", "DELIVRD", _NF, _OK),
    ),
    _S.SETTINGS_WRONG_MMSC: (
        _v(0.40, "Expired", "mm7", "Expired", "DELIVRD", _NF, _OK),
        _v(0.20, "Expired", "mms", "0x80", "DELIVRD", _NF, _OK),
        _v(0.30, "Deferred", "mm7", "Deferred", "DELIVRD", _NF, _OK),
        _v(0.10, "Deferred", "mms", "0x83", "DELIVRD", _NF, _OK),
    ),
    # Android answers Deferred when automatic retrieval is off (AOSP NotificationTransaction).
    _S.AUTO_DOWNLOAD_OFF: (
        _v(0.60, "Deferred", "mm7", "Deferred", "DELIVRD", _NF, _OK),
        _v(0.25, "Deferred", "mms", "0x83", "DELIVRD", _NF, _OK),
        _v(0.15, "Expired", "mm7", "Expired", "DELIVRD", _NF, _OK),
    ),
    _S.MEMORY_FULL: (
        _v(0.30, "Expired", "cmpp", "MK:0017", "MK:0017", _CAP, _CAP),
        _v(0.10, "Expired", "cmpp", "MK:0208", "MK:0208", _CAP, _CAP),
        _v(0.05, "Expired", "cmpp", "MC:0055", "MC:0055", _CAP, _CAP),
        _v(0.08, "Expired", "cmpp", "MB:1031", "DELIVRD", _CAP, _OK),
        _v(0.12, "Expired", "sgip", "26", "DELIVRD", _CAP, _OK),
        _v(0.06, "Expired", "sgip", "43", "DELIVRD", _CAP, _OK),
        _v(0.04, "Expired", "sgip", "79", "DELIVRD", _CAP, _OK),
        _v(0.10, "Expired", "smgp", "EXPIREDS713S", "DELIVRD", _CAP, _OK),
        _v(0.15, "Expired", "cmpp", "MK:0017", "DELIVRD", _CAP, _OK),
    ),
    # Powered off: the notification itself fails (absent subscriber), the MM expires unfetched.
    _S.POWERED_OFF_HOURS: (
        _v(0.40, "Expired", "cmpp", "MK:0024", "MK:0024", _UNR, _UNR),
        _v(0.15, "Expired", "mm7", "Expired", "MK:0024", _NF, _UNR),
        _v(0.10, "Unreachable", "cmpp", "MK:0009", "MK:0009", _UNR, _UNR),
        _v(0.10, "Expired", "smpp", "EXPIRED", "EXPIRED", _UNR, _UNR),
        _v(0.10, "Expired", "sgip", "4", "MK:0024", _UNR, _UNR),
        _v(0.10, "Expired", "smgp", "ERR:602", "MK:0024", _UNR, _UNR),
        _v(0.05, "Unreachable", "mms", "0x87", "MK:0024", _UNR, _UNR),
    ),
    _S.POWERED_OFF_WEEKS: (
        _v(0.35, "Expired", "cmpp", "EXPIRED", "EXPIRED", _UNR, _UNR),
        _v(0.25, "Expired", "cmpp", "MK:0024", "MK:0024", _UNR, _UNR),
        _v(0.15, "Expired", "mm7", "Expired", "EXPIRED", _NF, _UNR),
        _v(0.10, "Expired", "cmpp", "MI:0024", "MI:0024", _UNR, _UNR),
        _v(0.10, "Expired", "smpp", "EXPIRED", "EXPIRED", _UNR, _UNR),
        _v(0.05, "Expired", "smgp", "ERR:615", "EXPIRED", _UNR, _UNR),
    ),
    _S.OUT_OF_COVERAGE: (
        _v(0.30, "Expired", "cmpp", "MK:0008", "MK:0008", _UNR, _UNR),
        _v(0.20, "Expired", "cmpp", "MN:0036", "MN:0036", _UNR, _UNR),
        _v(0.15, "Expired", "mm7", "Expired", "MK:0008", _NF, _UNR),
        _v(0.15, "Expired", "sgip", "15", "MK:0008", _UNR, _UNR),
        _v(0.10, "Expired", "sgip", "55", "MN:0059", _UNR, _UNR),
        _v(0.10, "Unreachable", "smgp", "ERR:617", "MN:0036", _UNR, _UNR),
    ),
    # No MMS: the push SMS arrives but the handset cannot use it; sometimes a code says so,
    # often the MM just expires and only the device profile tells why.
    _S.NON_MMS_HANDSET: (
        _v(0.35, "Unrecognised", "mm7", "Unrecognised", "DELIVRD", _INC, _OK),
        _v(0.10, "Unrecognised", "mms", "0x84", "DELIVRD", _INC, _OK),
        _v(0.10, "NotSupported", "mm7", "NotSupported", "DELIVRD", _INC, _OK),
        _v(0.10, "Expired", "cmpp", "MK:0016", "MK:0016", _INC, _INC),
        _v(0.05, "Expired", "cmpp", "MK:0007", "MK:0007", _INC, _INC),
        _v(0.30, "Expired", "mm7", "Expired", "DELIVRD", _NF, _OK),
    ),
    _S.NUMBER_CANCELLED: (
        _v(0.35, "Indeterminate", "cmpp", "MK:0001", "MK:0001", _INV, _INV),
        _v(0.15, "Indeterminate", "mm7", "2003", "MK:0001", _INV, _INV),
        _v(0.10, "Indeterminate", "cmpp", "MI:0010", "MI:0010", _INV, _INV),
        _v(0.10, "Indeterminate", "cmpp", "DB:0100", "UNDELIV", _INV, _UNK),
        _v(0.10, "Indeterminate", "sgip", "29", "MK:0001", _INV, _INV),
        _v(0.10, "Indeterminate", "smgp", "ERR:613", "MK:0001", _INV, _INV),
        _v(0.05, "Indeterminate", "mm7", "2002", "MK:0001", _INV, _INV),
        _v(0.05, "Indeterminate", "cmpp", "DB:0101", "DB:0101", _INV, _INV),
    ),
    _S.SUSPENDED_BILLING: (
        _v(0.35, "Indeterminate", "cmpp", "DB:0102", "DB:0102", _SUS, _SUS),
        _v(0.20, "Indeterminate", "cmpp", "DB:0103", "DB:0103", _SUS, _SUS),
        _v(0.15, "Indeterminate", "sgip", "56", "UNDELIV", _SUS, _UNK),
        _v(0.10, "Indeterminate", "sgip", "108", "DB:0102", _SUS, _SUS),
        _v(0.10, "Indeterminate", "smgp", "ERR:601", "DB:0102", _SUS, _SUS),
        _v(0.10, "Indeterminate", "mm7", "2001", "UNDELIV", _POL, _UNK),
    ),
}

# Noise on healthy handsets: network or platform trouble (the notification may not have gone out),
# and MMs that simply were not fetched in time (phone briefly off, no data that evening).
HEALTHY_TRANSIENT: tuple[MmsVariant, ...] = (
    _v(0.35, "Indeterminate", "mm7", "4006", "", _NET, None),
    _v(0.15, "Indeterminate", "mm7", "3000", "", _NET, None),
    _v(0.25, "Indeterminate", "cmpp", "MA:0051", "MA:0051", _NET, _NET),
    _v(0.10, "Indeterminate", "cmpp", "MC:0151", "DELIVRD", _NET, _OK),
    _v(0.10, "Indeterminate", "sgip", "33", "DELIVRD", _NET, _OK),
    _v(0.05, "Indeterminate", "sgip", "11", "DELIVRD", _NET, _OK),
)
HEALTHY_EXPIRY: tuple[MmsVariant, ...] = (
    _v(0.6, "Expired", "mm7", "Expired", "DELIVRD", _NF, _OK),
    _v(0.4, "Expired", "cmpp", "MK:0024", "MK:0024", _UNR, _UNR),
)

# Codes the shipped rules do not know (vendor extensions, new gateway codes). They replace the
# CDR code of whatever the state produced; the notification status stays the state's own.
UNKNOWN_CODES: tuple[tuple[str, str], ...] = (
    ("cmpp", "MK:0099"),
    ("cmpp", "LT:0003"),
    ("cmpp", "MB:0999"),
    ("mm7", "SystemFailure"),
    ("sgip", "250"),
    ("smgp", "ERR:999"),
)

_REACHABLE_SMS = (SmsVariant(1.0, "DELIVRD", "000", _OK),)
SMS_VARIANTS: dict[HandsetState, tuple[SmsVariant, ...]] = {
    _S.HEALTHY: _REACHABLE_SMS,
    _S.SETTINGS_WRONG_APN: _REACHABLE_SMS,
    _S.SETTINGS_WRONG_MMSC: _REACHABLE_SMS,
    _S.AUTO_DOWNLOAD_OFF: _REACHABLE_SMS,
    _S.MEMORY_FULL: _REACHABLE_SMS,
    _S.NON_MMS_HANDSET: _REACHABLE_SMS,
    # MAP 27 absent subscriber, MAP 6 absent subscriber SM.
    _S.POWERED_OFF_HOURS: (
        SmsVariant(0.7, "EXPIRED", "027", _UNR),
        SmsVariant(0.3, "UNDELIV", "027", _UNR),
    ),
    _S.POWERED_OFF_WEEKS: (
        SmsVariant(0.8, "EXPIRED", "027", _UNR),
        SmsVariant(0.2, "UNDELIV", "006", _UNR),
    ),
    _S.OUT_OF_COVERAGE: (
        SmsVariant(0.6, "EXPIRED", "027", _UNR),
        SmsVariant(0.4, "UNDELIV", "027", _UNR),
    ),
    # MAP 1 unknown subscriber; MAP 13 call barred.
    _S.NUMBER_CANCELLED: (
        SmsVariant(0.8, "UNDELIV", "001", _INV),
        SmsVariant(0.2, "REJECTD", "001", _INV),
    ),
    _S.SUSPENDED_BILLING: (
        SmsVariant(0.7, "UNDELIV", "013", _POL),
        SmsVariant(0.3, "REJECTD", "013", _POL),
    ),
}
# Occasional SMSC trouble on an SMS to a reachable handset: MAP 34 system failure.
SMS_TRANSIENT = SmsVariant(1.0, "UNDELIV", "034", _NET)

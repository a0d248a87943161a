"""The states a simulated subscriber's handset can be in, and the verdict each one deserves.

The population keeps one state per subscriber per day. ``EXPECTED_VERDICT`` is the ground truth
the engine's scoring is measured against (docs/simulated-population.md explains the mapping).
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "EXPECTED_VERDICT",
    "OUT_OF_REACH",
    "SETTINGS_STATES",
    "STATE_NAMES",
    "TEMPORARY",
    "VERDICTS",
    "HandsetState",
]


class HandsetState(IntEnum):
    """A subscriber's handset state; the value is what the population stores in its arrays."""

    HEALTHY = 0
    SETTINGS_WRONG_APN = 1
    SETTINGS_WRONG_MMSC = 2
    AUTO_DOWNLOAD_OFF = 3
    MEMORY_FULL = 4
    POWERED_OFF_HOURS = 5
    POWERED_OFF_WEEKS = 6
    OUT_OF_COVERAGE = 7
    NON_MMS_HANDSET = 8
    NUMBER_CANCELLED = 9
    SUSPENDED_BILLING = 10

    @property
    def label(self) -> str:
        """The state's name as written in configuration and ground truth (``memory_full``)."""
        return self.name.lower()

    @classmethod
    def from_label(cls, label: str) -> HandsetState:
        return cls[label.strip().upper()]


STATE_NAMES: tuple[str, ...] = tuple(s.label for s in HandsetState)

VERDICTS: tuple[str, ...] = (
    "healthy",
    "terminal_misconfigured",
    "terminal_capacity",
    "terminal_incapable",
    "unreachable",
    "subscriber_invalid",
    "policy_blocked",
)

EXPECTED_VERDICT: dict[HandsetState, str] = {
    HandsetState.HEALTHY: "healthy",
    HandsetState.SETTINGS_WRONG_APN: "terminal_misconfigured",
    HandsetState.SETTINGS_WRONG_MMSC: "terminal_misconfigured",
    HandsetState.AUTO_DOWNLOAD_OFF: "terminal_misconfigured",
    HandsetState.MEMORY_FULL: "terminal_capacity",
    HandsetState.POWERED_OFF_HOURS: "unreachable",
    HandsetState.POWERED_OFF_WEEKS: "unreachable",
    HandsetState.OUT_OF_COVERAGE: "unreachable",
    HandsetState.NON_MMS_HANDSET: "terminal_incapable",
    HandsetState.NUMBER_CANCELLED: "subscriber_invalid",
    # Billing suspension is not the handset's fault and no help SMS can fix it: the engine must
    # hold delivery and leave it to billing, which is what its policy_blocked verdict does.
    HandsetState.SUSPENDED_BILLING: "policy_blocked",
}

# States a help SMS or an OTA push can repair (the handset works, its MMS settings do not).
SETTINGS_STATES = frozenset(
    {
        HandsetState.SETTINGS_WRONG_APN,
        HandsetState.SETTINGS_WRONG_MMSC,
        HandsetState.AUTO_DOWNLOAD_OFF,
    }
)

# States that end by themselves and return the handset to the state it was in before.
TEMPORARY = frozenset(
    {
        HandsetState.POWERED_OFF_HOURS,
        HandsetState.POWERED_OFF_WEEKS,
        HandsetState.OUT_OF_COVERAGE,
        HandsetState.SUSPENDED_BILLING,
    }
)

# States in which the handset receives no SMS at all (so help SMS and OTA pushes are lost).
OUT_OF_REACH = frozenset(
    {
        HandsetState.POWERED_OFF_HOURS,
        HandsetState.POWERED_OFF_WEEKS,
        HandsetState.OUT_OF_COVERAGE,
        HandsetState.NUMBER_CANCELLED,
        HandsetState.SUSPENDED_BILLING,
    }
)

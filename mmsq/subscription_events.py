"""Real-time subscription changes: idempotent by event id, never rolled back by a late event."""

from __future__ import annotations

import structlog

from mmsq.msisdn import MsisdnNormaliser, mask_msisdn
from mmsq.ports import Clock
from mmsq.subscription_ports import SubscriptionStore
from mmsq.subscriptions import (
    EventResult,
    SubscriptionEvent,
    SubscriptionState,
    Transition,
    decide,
)

__all__ = ["InvalidEventError", "SubscriptionEventService"]

log = structlog.get_logger(__name__)


class InvalidEventError(ValueError):
    """The event cannot be applied at all (an MSISDN that is not a number, say)."""


class SubscriptionEventService:
    """Applies one change from BOSS, MISC or the platform to mmsq's subscription state."""

    def __init__(
        self, store: SubscriptionStore, normaliser: MsisdnNormaliser, clock: Clock
    ) -> None:
        self._store = store
        self._normaliser = normaliser
        self._clock = clock

    def apply_event(self, event: SubscriptionEvent) -> EventResult:
        """Store the event and apply it.

        The same event id twice changes nothing and answers ``duplicate``; an event older than
        the state it would change is stored but answers ``stale`` and changes nothing.
        """
        msisdn = self._normaliser.normalise(event.msisdn)
        if msisdn is None:
            raise InvalidEventError(f"invalid MSISDN {mask_msisdn(event.msisdn)}")
        normalised = event.model_copy(update={"msisdn": msisdn})
        event_ts = int(event.event_time.timestamp())

        def transition(state: SubscriptionState | None) -> Transition:
            return decide(state, event.kind, event_ts)

        result = self._store.apply_event(normalised, event_ts, self._clock.now(), transition)
        log.info(
            "subscriptions.event",
            event_id=event.event_id,
            msisdn=msisdn,
            product=event.product,
            kind=event.kind.value,
            source=event.source.value,
            outcome=result.outcome.value,
            status=result.status.value if result.status else None,
        )
        return result

"""What the HTTP API needs, built elsewhere (the composition root) and handed to ``create_app``."""

from __future__ import annotations

from dataclasses import dataclass

from mmsq.agents import AgentService
from mmsq.audit import AuditLog
from mmsq.diagnosis import DiagnosisService
from mmsq.msisdn import MsisdnNormaliser
from mmsq.ports import Clock
from mmsq.rate_limit import RateLimits
from mmsq.resend import ResendService
from mmsq.subscription_events import SubscriptionEventService

__all__ = ["ApiServices"]


@dataclass(frozen=True)
class ApiServices:
    """The services behind the endpoints; nothing here opens a connection by itself."""

    agents: AgentService
    resends: ResendService
    diagnosis: DiagnosisService
    audit: AuditLog
    subscription_events: SubscriptionEventService
    rate_limiter: RateLimits
    normaliser: MsisdnNormaliser
    clock: Clock
    max_body_bytes: int = 16384
    threads: int = 4

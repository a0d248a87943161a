"""Dispatch service: moves planned segments from the outbox to the SMSC link and stores what
comes back, with a bound on what a crash can duplicate.

The dispatcher claims segments (marking them ``submitting`` in the database) only while fewer
than ``window`` of its segments are between claim and stored answer, so after a SIGKILL at any
moment at most ``window`` segments were written without their answer being stored; those, and
only those, go out again after the restart (``requeue_in_flight``). Segments wait for their
subscriber's next allowed send time (quiet hours, blackouts, by region); contacts that cannot
be sent before they expire end ``expired`` with the reason.

Two ways to run it: ``start()``/``stop(timeout)`` (a background thread, for the daemon) or
``dispatch_once(until_idle=True)`` (in the caller's thread, for the CLI and tests).
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog

from mmsq.contact_policy import ContactPolicy, next_send_time
from mmsq.domain import Classification
from mmsq.outbox import (
    GatewayEvent,
    NullMetrics,
    OutboxStore,
    OutreachMetrics,
    Receipt,
    ReceiptMatch,
    SmsGateway,
    SubmitResult,
)
from mmsq.ports import Clock

__all__ = ["DispatchConfig", "DispatchSummary", "Dispatcher", "StatusLookup"]

_log = structlog.get_logger("mmsq.dispatch")


class StatusLookup(Protocol):
    """The rules' classifier (``mmsq.classify.Classifier``)."""

    def lookup(
        self, namespace: str, code: str, error_code: str | None = None
    ) -> Classification: ...


@dataclass(frozen=True)
class DispatchConfig:
    """``window``: segments between claim and stored answer (the crash duplicate bound);
    ``receipt_grace_s``: how long a receipt may wait for its submit answer before it counts as
    unmatched; ``housekeeping_s``: how often expiry, settling and queue depth run."""

    window: int = 10
    receipt_grace_s: float = 600.0
    housekeeping_s: float = 2.0
    idle_poll_s: float = 1.0


@dataclass
class DispatchSummary:
    """What a dispatch run did (counts of segments unless named otherwise)."""

    requeued: int = 0  # found in flight after a restart, put back to planned
    submitted: int = 0
    accepted: int = 0
    retried: int = 0
    failed: int = 0
    handed_back: int = 0  # never written when the link stopped
    receipts: int = 0
    duplicate_receipts: int = 0
    unmatched_receipts: int = 0
    expired: int = 0  # contacts
    deferred: int = 0  # segments planned but not yet due (quiet hours, retry delay)
    next_due: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Dispatcher:
    """Moves the outbox to the SMSC; see the module docstring."""

    def __init__(
        self,
        store: OutboxStore,
        gateway: SmsGateway,
        policy: ContactPolicy,
        classifier: StatusLookup,
        clock: Clock,
        metrics: OutreachMetrics | None = None,
        config: DispatchConfig | None = None,
    ) -> None:
        self.store = store
        self.gateway = gateway
        self.policy = policy
        self.classifier = classifier
        self.clock = clock
        self.metrics: OutreachMetrics = metrics or NullMetrics()
        self.config = config or DispatchConfig()
        self.summary = DispatchSummary()
        self._events: queue.SimpleQueue[GatewayEvent] = queue.SimpleQueue()
        self._in_flight = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._regions: list[str | None] = []
        self._regions_at = -1e9
        self._housekeeping_at = -1e9
        self._claim_idle_until = 0.0

    # -- classification ------------------------------------------------------------------

    def _status_cause(self, status: int) -> str | None:
        """None when a submit_sm error is worth retrying, else the cause class."""
        c = self.classifier.lookup("smpp_command", f"0x{status:02X}")
        return None if c.retry else str(c.cause)

    def _receipt_cause(self, stat: str, err: str | None) -> str:
        return str(self.classifier.lookup("smpp", stat, err).cause)

    # -- running -------------------------------------------------------------------------

    def _begin(self) -> None:
        self.summary = DispatchSummary()
        self.summary.requeued = self.store.requeue_in_flight(self.clock.now())
        if self.summary.requeued:
            _log.info(
                "requeued segments in flight at the last stop", segments=self.summary.requeued
            )
        self._in_flight = 0
        self._stop.clear()
        self.gateway.start(self._events.put)

    def _end(self, timeout: float) -> None:
        self.gateway.stop(timeout)
        self._drain(0.0)
        self._housekeeping(force=True)

    def start(self) -> None:
        """Run in a background thread until ``stop``."""
        if self._thread is not None:
            raise RuntimeError("the dispatcher is already running")
        self._begin()
        self._thread = threading.Thread(target=self._run_forever, name="dispatcher", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Ask a running ``dispatch_once`` or thread to finish (safe from a signal handler)."""
        self._stop.set()

    def stop(self, timeout: float = 10.0) -> DispatchSummary:
        """Stop claiming, let the link answer what it wrote (up to ``timeout``), store it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout + 15.0)
            self._thread = None
        return self.summary

    def _run_forever(self) -> None:
        try:
            while not self._stop.is_set():
                self._step(0.2)
        except Exception:
            _log.exception("dispatcher failed")
        finally:
            self._end(timeout=5.0)

    def dispatch_once(
        self,
        until_idle: bool = True,
        max_seconds: float | None = None,
        receipt_wait_s: float = 0.0,
        stop_timeout: float = 5.0,
    ) -> DispatchSummary:
        """Dispatch in this thread: until nothing is due and nothing is in flight (then wait up
        to ``receipt_wait_s`` for the receipts of accepted contacts), or until ``max_seconds``,
        or forever when not ``until_idle`` (until ``stop()`` from another thread)."""
        self._begin()
        started = time.monotonic()
        idle_since: float | None = None
        try:
            while not self._stop.is_set():
                if max_seconds is not None and time.monotonic() - started > max_seconds:
                    break
                active = self._step(0.05)
                if not until_idle or active:
                    idle_since = None
                    continue
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since >= receipt_wait_s or not self._awaiting():
                    break
        finally:
            self._end(stop_timeout)
        return self.summary

    def _awaiting(self) -> bool:
        return self.store.awaiting_outcome() > 0

    # -- one step ------------------------------------------------------------------------

    def _step(self, block_s: float) -> bool:
        """Store what came back, keep house, refill the window. True while work is in hand."""
        got = self._drain(block_s if self._in_flight or self._claim_idle() else 0.0)
        self._housekeeping()
        claimed = self._refill()
        if claimed == 0 and self._in_flight == 0 and not got:
            due, next_due = self.store.pending(self.clock.now())
            self.summary.deferred, self.summary.next_due = due, next_due
            if due and not self.gateway.healthy():
                # Work to do but no link (yet): look again shortly, without spinning.
                self._claim_idle_until = time.monotonic() + 0.05
                return True
            if due == 0:
                # Nothing to send now: do not spin on the database.
                self._claim_idle_until = time.monotonic() + self.config.idle_poll_s
                return False
        return True

    def _claim_idle(self) -> bool:
        return time.monotonic() < self._claim_idle_until

    def _drain(self, block_s: float) -> int:
        events: list[GatewayEvent] = []
        try:
            events.append(
                self._events.get(timeout=block_s) if block_s else self._events.get_nowait()
            )
            while len(events) < 5000:
                events.append(self._events.get_nowait())
        except queue.Empty:
            pass
        if not events:
            return 0
        results = [e for e in events if isinstance(e, SubmitResult)]
        receipts = [e for e in events if isinstance(e, Receipt)]
        # Answers first: a receipt in the same batch may be for a segment answered just now.
        if results:
            self._record_results(results)
        if receipts:
            self._count_receipts(self.store.record_receipts(receipts, self._receipt_cause))
        return len(events)

    def _record_results(self, results: list[SubmitResult]) -> None:
        s, m = self.summary, self.metrics
        for r in results:
            if r.status == 0:
                s.accepted += 1
                m.submit_result("accepted")
            elif r.status < 0:
                s.handed_back += 1
            else:
                cause = self._status_cause(r.status)
                if cause is None:
                    s.retried += 1
                    m.submit_result("retry")
                else:
                    s.failed += 1
                    m.submit_result(cause)
                    _log.warning("submit_sm refused", status=f"0x{r.status:02X}", cause=cause)
        matches = self.store.record_results(
            results, self._status_cause, self._receipt_cause, self.clock.now()
        )
        self._in_flight = max(0, self._in_flight - len(results))
        self._count_receipts(matches)

    def _count_receipts(self, matches: list[ReceiptMatch]) -> None:
        s = self.summary
        for match in matches:
            if not match.matched:
                continue  # waiting for its submit answer; counted when settled
            if match.duplicate:
                s.duplicate_receipts += 1
                continue
            s.receipts += 1
            self.metrics.receipt(match.stat or "", match.lag_s)

    def _housekeeping(self, force: bool = False) -> None:
        mono = time.monotonic()
        if not force and mono - self._housekeeping_at < self.config.housekeeping_s:
            return
        self._housekeeping_at = mono
        now = self.clock.now()
        reason = None
        if not self.gateway.healthy():
            reason = f"SMSC link {self.gateway.state} until the expiry"
        expired = self.store.expire(now, reason)
        if expired:
            self.summary.expired += expired
            _log.info("contacts expired unsent", contacts=expired)
        settled = self.store.settle_waiting_receipts(
            now - timedelta(seconds=self.config.receipt_grace_s)
        )
        if settled:
            self.summary.unmatched_receipts += settled
            self.metrics.unmatched_receipt(settled)
        due, _ = self.store.pending(now)
        self.metrics.queue_depth(due, self._in_flight)

    def _blocked_regions(self, now: datetime) -> dict[str | None, datetime]:
        mono = time.monotonic()
        if mono - self._regions_at > 5.0:
            self._regions = self.store.due_regions(now)
            self._regions_at = mono
        blocked: dict[str | None, datetime] = {}
        for region in self._regions:
            allowed = next_send_time(self.policy, now, region)
            if allowed > now:
                blocked[region] = allowed
        return blocked

    def _refill(self) -> int:
        if self._stop.is_set() or self._claim_idle() or not self.gateway.healthy():
            return 0
        free = self.config.window - self._in_flight
        if free <= 0:
            return 0
        now = self.clock.now()
        batch = self.store.claim(free, now, self._blocked_regions(now))
        if batch:
            self._in_flight += len(batch)
            self.summary.submitted += len(batch)
            self.gateway.submit(batch)
        return len(batch)

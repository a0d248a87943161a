"""A background thread that keeps the MM7 outbox moving (the daemon starts one).

It runs ``MmsOutbox.dispatch_once`` in a loop, sleeps until the next item falls due (or an
enqueue wakes it), and never dies silently: an error is logged and the loop goes on after a
pause.
"""

from __future__ import annotations

import threading
from datetime import datetime

import structlog

from mmsq.mms_outbox import MmsOutbox
from mmsq.ports import Clock

__all__ = ["MmsDispatcher"]

log = structlog.get_logger(__name__)


class MmsDispatcher:
    """``start()`` / ``stop(timeout)``; ``idle_wait_s`` bounds each sleep (seconds)."""

    def __init__(
        self,
        outbox: MmsOutbox,
        clock: Clock,
        *,
        batch: int = 100,
        idle_wait_s: float = 5.0,
        error_wait_s: float = 5.0,
    ) -> None:
        self._outbox = outbox
        self._clock = clock
        self._batch = batch
        self._idle_wait_s = idle_wait_s
        self._error_wait_s = error_wait_s
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        outbox.add_waker(self._wake.set)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="mms-dispatcher")
        self._thread.start()

    def stop(self, timeout: float | None = 30.0) -> bool:
        """Stop after the SubmitReq in flight are answered; True if the thread ended in time.

        An item whose answer did not come before the process ends stays ``submitting`` and
        is recovered (sent again at most once) when its lease runs out.
        """
        thread = self._thread
        if thread is None:
            return True
        self._stopping.set()
        self._wake.set()
        thread.join(timeout)
        if thread.is_alive():
            return False
        self._thread = None
        return True

    def _wait_s(self, now: datetime) -> float:
        nxt = self._outbox.store.next_wakeup()
        if nxt is None:
            return self._idle_wait_s
        return min(self._idle_wait_s, max((nxt - now).total_seconds(), 0.05))

    def _run(self) -> None:
        log.info("mms_dispatcher.started")
        while not self._stopping.is_set():
            self._wake.clear()  # before the pass: an enqueue during it is not missed
            try:
                summary = self._outbox.dispatch_once(limit=self._batch)
                if summary.claimed >= self._batch:
                    continue  # more may be due right now
                wait = self._wait_s(self._clock.now())
            except Exception:
                log.exception("mms_dispatcher.error")
                wait = self._error_wait_s
            self._wake.wait(wait)
        log.info("mms_dispatcher.stopped")

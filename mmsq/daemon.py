"""The daemon's life: start the HTTP server and the scheduler, wait for a signal, stop in order.

Shutdown order on SIGTERM or SIGINT, each step logged:

1. stop taking work: the scheduler starts nothing new and waits for running jobs
   (bounded by ``shutdown_grace_s``; jobs check ``stopping()`` between units of work);
2. shutdown hooks: components checkpoint and disconnect (an SMPP dispatcher unbinds);
3. the HTTP server stops accepting and finishes the requests in flight;
4. ``daemon.stopped`` with ``clean=true``, exit code 0.

A second signal while stopping gives up waiting: exit code 1 at once. If the running jobs
outlast the grace, the daemon exits 1 without waiting further; whatever they were doing is
redone at the next start (ingest is idempotent, files leave the inbox only when ingested).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Protocol

import structlog

from mmsq.shutdown import ShutdownHooks

__all__ = ["EXIT_FORCED", "Daemon", "HttpServerPort", "SchedulerPort"]

log = structlog.get_logger("mmsq.daemon")

EXIT_FORCED = 1


class SchedulerPort(Protocol):
    def start(self) -> None: ...

    def shutdown(self, wait: bool = True) -> None: ...

    @property
    def running(self) -> bool: ...

    def job_names(self) -> list[str]: ...


class HttpServerPort(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...

    @property
    def url(self) -> str: ...


class Daemon:
    """Owns the order of start-up and shutdown; the parts come from the composition root."""

    def __init__(
        self,
        *,
        scheduler: SchedulerPort,
        http: HttpServerPort,
        hooks: ShutdownHooks,
        shutdown_grace_s: float,
        stop_event: threading.Event | None = None,
        on_close: Callable[[], None] = lambda: None,
        on_start: Sequence[Callable[[], None]] = (),
    ) -> None:
        self.scheduler = scheduler
        self.http = http
        self.hooks = hooks
        self.grace_s = shutdown_grace_s
        self.stop_event = stop_event or threading.Event()
        self._on_close = on_close
        # Background workers (the MM7 outbox dispatcher) start with the daemon, after the
        # HTTP server and scheduler, and stop through shutdown hooks.
        self._on_start = tuple(on_start)
        self._signal: str | None = None
        self._forced = threading.Event()

    def stopping(self) -> bool:
        """True once shutdown began: long jobs poll this between units of work."""
        return self.stop_event.is_set()

    def request_stop(self, reason: str = "requested") -> None:
        if self.stop_event.is_set():
            self._forced.set()
        self._signal = self._signal or reason
        self.stop_event.set()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.stop_event.is_set():
            log.warning("daemon.forced", signal=name)
            self._forced.set()
            return
        self.request_stop(name)

    def _install_signals(self) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)

    def run(self) -> int:
        """Run until a signal (or ``request_stop``); returns the process exit code."""
        self._install_signals()
        try:
            self.http.start()
            self.scheduler.start()
            for start in self._on_start:
                start()
            log.info(
                "daemon.started",
                http=self.http.url,
                jobs=self.scheduler.job_names(),
                hooks=self.hooks.names(),
            )
            while not self.stop_event.wait(1.0):
                pass
        except BaseException:
            self._stop_quietly()
            raise
        return self._shutdown()

    def _shutdown(self) -> int:
        started = time.monotonic()
        log.info("daemon.stopping", reason=self._signal, grace_s=self.grace_s)
        drained = threading.Event()

        def drain() -> None:
            self.scheduler.shutdown(wait=True)
            drained.set()

        threading.Thread(target=drain, name="mmsq-drain", daemon=True).start()
        deadline = started + self.grace_s
        while not drained.wait(0.2):
            if self._forced.is_set() or time.monotonic() >= deadline:
                log.error(
                    "daemon.stopped",
                    clean=False,
                    reason="forced by a second signal"
                    if self._forced.is_set()
                    else f"running jobs outlasted the shutdown grace of {self.grace_s:g}s",
                )
                return EXIT_FORCED
        log.info("daemon.jobs_drained", seconds=round(time.monotonic() - started, 3))
        failed = self.hooks.run()
        self.http.stop()
        self._on_close()
        log.info(
            "daemon.stopped",
            clean=True,
            failed_hooks=failed,
            seconds=round(time.monotonic() - started, 3),
        )
        return 0

    def _stop_quietly(self) -> None:
        def scheduler_off() -> None:
            self.scheduler.shutdown(wait=False)

        steps: tuple[Callable[[], None], ...] = (scheduler_off, self.http.stop, self._on_close)
        for step in steps:
            try:
                step()
            except Exception as exc:
                log.warning("daemon.cleanup_failed", error=f"{type(exc).__name__}: {exc}")

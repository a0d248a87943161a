"""Group commit for the audit trail: one writer thread, many waiting requests.

Each request hands its entry to the writer and waits (without holding a worker thread) until
the entry is stored; the writer stores everything that queued up meanwhile in one statement.
Every answer still leaves only after its audit entry is written, at a fraction of the cost of
one transaction per call (and with PostgreSQL's synchronous commit on, one flush per batch).
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable

from mmsq.audit import AuditEntry, AuditLog

__all__ = ["GroupCommitAudit"]

_Done = Callable[[BaseException | None], None]


def _settle(fut: asyncio.Future[None], exc: BaseException | None) -> None:
    if fut.done():
        return
    if exc is None:
        fut.set_result(None)
    else:
        fut.set_exception(exc)


class GroupCommitAudit:
    """Writes audit entries in batches of up to ``max_batch`` on a background thread."""

    def __init__(self, log: AuditLog, max_batch: int = 256) -> None:
        self._log = log
        self._max = max_batch
        self._queue: queue.SimpleQueue[tuple[AuditEntry, _Done] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    async def write(self, entry: AuditEntry) -> None:
        """Store ``entry``; returns once it is committed, raises if it could not be."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()

        def done(exc: BaseException | None) -> None:
            loop.call_soon_threadsafe(_settle, fut, exc)

        self._start()
        self._queue.put((entry, done))
        await fut

    def _start(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="mmsq-audit-writer", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            stop = False
            while len(batch) < self._max:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            error: BaseException | None = None
            try:
                self._log.append_many([entry for entry, _ in batch])
            except Exception as exc:  # each waiting request answers 503
                error = exc
            for _, done in batch:
                done(error)
            if stop:
                return

    def close(self) -> None:
        """Write what is queued, then stop the writer thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=30)

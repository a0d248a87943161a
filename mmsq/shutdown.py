"""Shutdown hooks: what components do between "no more work" and "process exits".

The daemon runs them after the scheduler has stopped and its running jobs have finished,
and before the HTTP server stops: an SMPP dispatcher checkpoints its outbox and unbinds here.
Hooks run newest first (like a stack of context managers); a failing hook is logged and the
others still run.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

__all__ = ["ShutdownHooks"]

log = structlog.get_logger("mmsq.shutdown")


class ShutdownHooks:
    """Named callables run once at shutdown, in reverse order of registration."""

    def __init__(self) -> None:
        self._hooks: list[tuple[str, Callable[[], None]]] = []
        self._ran = False

    def add(self, name: str, hook: Callable[[], None]) -> None:
        self._hooks.append((name, hook))

    def names(self) -> list[str]:
        return [name for name, _ in self._hooks]

    def run(self) -> list[str]:
        """Run every hook once; returns the names of those that failed."""
        if self._ran:
            return []
        self._ran = True
        failed = []
        for name, hook in reversed(self._hooks):
            try:
                hook()
            except Exception as exc:
                failed.append(name)
                log.error(
                    "shutdown.hook_failed",
                    hook=name,
                    error=f"{type(exc).__name__}: {exc}",
                    exc_info=True,
                )
            else:
                log.info("shutdown.hook_done", hook=name)
        return failed

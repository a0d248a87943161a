"""Readiness: a registry of named health checks, evaluated together for ``/readyz``.

Components register a check when they are built (the database, the schema, the scheduler;
later the SMPP bind). A check returns a short detail on success and raises on failure; one
failing or raising check makes the whole daemon not ready, never crashes the probe.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import structlog

__all__ = ["CheckResult", "HealthCheck", "HealthRegistry", "Readiness"]

log = structlog.get_logger("mmsq.health")

#: Returns a short detail when healthy (or None); raises with the reason when not.
HealthCheck = Callable[[], str | None]


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Readiness:
    ok: bool
    checks: tuple[CheckResult, ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "status": "ready" if self.ok else "not ready",
            "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in self.checks},
        }


class HealthRegistry:
    """Named health checks, run in registration order."""

    def __init__(self) -> None:
        self._checks: dict[str, HealthCheck] = {}

    def add(self, name: str, check: HealthCheck) -> None:
        if name in self._checks:
            raise ValueError(f"health check {name!r} is already registered")
        self._checks[name] = check

    def names(self) -> list[str]:
        return list(self._checks)

    def check(self) -> Readiness:
        results = []
        for name, check in self._checks.items():
            try:
                results.append(CheckResult(name, True, check() or "ok"))
            except Exception as exc:
                results.append(CheckResult(name, False, f"{type(exc).__name__}: {exc}"))
        failing = [r.name for r in results if not r.ok]
        if failing:
            log.warning("health.not_ready", failing=failing)
        return Readiness(not failing, tuple(results))

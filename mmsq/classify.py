"""Classify status codes into cause classes, from the status-code rules."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from mmsq.domain import CauseClass, Classification
from mmsq.rules_model import CodeEntry, Namespace, StatusCodeRules, parse_int_code

__all__ = ["UNKNOWN", "Classifier"]

UNKNOWN = Classification(cause=CauseClass.UNKNOWN, final=True, retry=False, known=False)


def _from_entry(e: CodeEntry) -> Classification:
    return Classification(
        cause=e.cause, final=e.final, retry=e.retry, known=True, provenance=e.provenance
    )


@dataclass
class Classifier:
    """Looks up (namespace, code[, secondary code]) in the rules; never raises on bad input.

    Unknown codes classify as ``unknown`` and are counted per (namespace, code) in
    ``unknown_seen`` so that ingest summaries and reports can list them.
    """

    rules: StatusCodeRules
    unknown_seen: dict[tuple[str, str], int] = field(default_factory=dict)
    _index: dict[str, dict[str, CodeEntry]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._index = {
            name: {ns.normalise(c.code): c for c in ns.codes}
            for name, ns in self.rules.namespaces.items()
        }

    def namespaces(self) -> Iterable[str]:
        return self.rules.namespaces.keys()

    def lookup(self, namespace: str, code: str, error_code: str | None = None) -> Classification:
        """Classify one code. ``error_code`` refines entries that ask for it (SMPP ``err:``)."""
        ns_name = namespace.strip().lower()
        ns = self.rules.namespaces.get(ns_name)
        if ns is None or not code.strip():
            return self._unknown(ns_name, code)
        entry = self._index[ns_name].get(ns.normalise(code))
        if entry is None:
            ranged = self._in_range(ns, code)
            return ranged if ranged is not None else self._unknown(ns_name, code)
        if entry.refine_with and error_code and error_code.strip():
            refined = self._refine(entry.refine_with, error_code)
            if refined is not None:
                return refined
        return _from_entry(entry)

    def _refine(self, ns_name: str, code: str) -> Classification | None:
        ns = self.rules.namespaces[ns_name]
        entry = self._index[ns_name].get(ns.normalise(code))
        if entry is not None:
            return _from_entry(entry)
        return self._in_range(ns, code)

    @staticmethod
    def _in_range(ns: Namespace, code: str) -> Classification | None:
        if not ns.ranges:
            return None
        value = parse_int_code(code)
        if value is None:
            return None
        for r in ns.ranges:
            if r.from_ <= value <= r.to:
                return Classification(
                    cause=r.cause,
                    final=r.final,
                    retry=r.retry,
                    known=True,
                    provenance=r.provenance,
                )
        return None

    def _unknown(self, ns_name: str, code: str) -> Classification:
        key = (ns_name, code.strip())
        self.unknown_seen[key] = self.unknown_seen.get(key, 0) + 1
        return UNKNOWN

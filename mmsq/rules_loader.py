"""Load the shipped rules, merge an operator's rules directory over them, validate."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mmsq.rules_model import RuleSet, normalise_code

__all__ = ["RuleProblem", "RulesError", "load_rules", "merge_status_codes", "shipped_rules_dir"]

_FILES = {"status_codes": "status_codes.toml"}


@dataclass(frozen=True)
class RuleProblem:
    file: str
    key: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: {self.reason}"


class RulesError(Exception):
    """One or more rule files are invalid; ``problems`` says where and why."""

    def __init__(self, problems: list[RuleProblem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


def shipped_rules_dir() -> Path:
    return Path(str(resources.files("mmsq.rules")))


def _read(path: Path, problems: list[RuleProblem]) -> dict[str, Any] | None:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        problems.append(RuleProblem(str(path), "(syntax)", str(exc)))
    except OSError as exc:
        problems.append(RuleProblem(str(path), "(file)", str(exc)))
    return None


def merge_status_codes(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Operator entries replace shipped ones with the same (namespace, code); others are added."""
    merged = {**base, "namespaces": {k: dict(v) for k, v in base.get("namespaces", {}).items()}}
    if "version" in override:
        merged["version"] = override["version"]
    for name, ns in override.get("namespaces", {}).items():
        target = merged["namespaces"].setdefault(name, {})
        for key, value in ns.items():
            if key == "codes":
                match = str(ns.get("match", target.get("match", "casefold")))
                aliases = {**target.get("aliases", {}), **ns.get("aliases", {})}

                def key_of(
                    entry: dict[str, Any], m: str = match, a: dict[str, str] = aliases
                ) -> str:
                    return normalise_code(str(entry.get("code", "")), m, a)

                by_code = {key_of(c): c for c in target.get("codes", [])}
                for c in value:
                    by_code[key_of(c)] = c
                target["codes"] = list(by_code.values())
            elif key == "ranges":
                target["ranges"] = [*value, *target.get("ranges", [])]
            else:
                target[key] = value
    return merged


def load_rules(operator_dir: Path | None = None, shipped_dir: Path | None = None) -> RuleSet:
    """The validated rule set; raises RulesError listing every problem found."""
    shipped = shipped_dir or shipped_rules_dir()
    problems: list[RuleProblem] = []
    if operator_dir is not None and not operator_dir.is_dir():
        raise RulesError([RuleProblem(str(operator_dir), "(directory)", "does not exist")])
    data: dict[str, Any] = {}
    for key, fname in _FILES.items():
        base = _read(shipped / fname, problems) or {}
        origin = str(shipped / fname)
        if operator_dir is not None and (operator_dir / fname).is_file():
            override = _read(operator_dir / fname, problems) or {}
            base = merge_status_codes(base, override)
            origin = f"{operator_dir / fname} (merged over the shipped file)"
        data[key] = (base, origin)
    if problems:
        raise RulesError(problems)
    try:
        return RuleSet.model_validate({k: v for k, (v, _) in data.items()})
    except ValidationError as exc:
        for err in exc.errors():
            section = str(err["loc"][0]) if err["loc"] else ""
            file = data.get(section, (None, section))[1]
            key = ".".join(str(p) for p in err["loc"][1:]) or "(top level)"
            problems.append(RuleProblem(file, key, err["msg"]))
        raise RulesError(problems) from None

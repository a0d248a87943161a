"""Rules are data: the pydantic models that every file in ``rules/`` is validated into.

An operator changes behaviour by editing TOML; these models are the contract for those files.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mmsq.domain import CauseClass

__all__ = [
    "CodeEntry",
    "CodeRange",
    "Namespace",
    "RuleSet",
    "StatusCodeRules",
    "normalise_code",
    "parse_int_code",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def parse_int_code(text: str) -> int | None:
    """Read a numeric status code written as decimal (``"0026"``) or hex (``"0x58"``)."""
    t = text.strip().lower()
    try:
        if t.startswith("0x"):
            return int(t, 16)
        return int(t, 10)
    except ValueError:
        return None


def normalise_code(code: str, match: str, aliases: dict[str, str] | None = None) -> str:
    """The lookup key of ``code`` under a namespace's ``match`` mode and ``aliases``."""
    text = code.strip()
    aliases = aliases or {}
    if match == "integer":
        value = parse_int_code(text)
        return str(value) if value is not None else text.casefold()
    if match == "casefold":
        folded = {k.casefold(): v.casefold() for k, v in aliases.items()}
        text = text.casefold()
        return folded.get(text, text)
    return aliases.get(text, text)


class CodeEntry(_Frozen):
    """One status code in a namespace and what it means."""

    code: str
    cause: CauseClass
    final: bool = True
    retry: bool = False
    provenance: str = Field(min_length=1, description="where the meaning comes from")
    note: str = ""
    refine_with: str | None = Field(
        default=None,
        description="namespace in which the report's secondary error code refines this entry",
    )


class CodeRange(_Frozen):
    """A rule for a numeric range (e.g. OMA's unassigned 0xC0-0xDF are transient)."""

    from_: int = Field(alias="from")
    to: int
    cause: CauseClass
    final: bool = True
    retry: bool = False
    provenance: str = Field(min_length=1)

    @model_validator(mode="after")
    def _ordered(self) -> CodeRange:
        if self.to < self.from_:
            raise ValueError(f"range 'to' ({self.to}) is below 'from' ({self.from_})")
        return self


class Namespace(_Frozen):
    """A family of status codes: how codes are matched, and the entries."""

    description: str = ""
    match: Literal["exact", "casefold", "integer"] = "casefold"
    aliases: dict[str, str] = Field(default_factory=dict)
    codes: tuple[CodeEntry, ...] = ()
    ranges: tuple[CodeRange, ...] = ()

    @model_validator(mode="after")
    def _codes_readable(self) -> Namespace:
        if self.match == "integer":
            bad = [c.code for c in self.codes if parse_int_code(c.code) is None]
            if bad:
                raise ValueError(f"integer namespace has non-numeric codes: {bad[:5]}")
        seen: set[str] = set()
        for c in self.codes:
            key = self.normalise(c.code)
            if key in seen:
                raise ValueError(f"code {c.code!r} is listed twice")
            seen.add(key)
        return self

    def normalise(self, code: str) -> str:
        """The lookup key of a code in this namespace."""
        return normalise_code(code, self.match, self.aliases)


class StatusCodeRules(_Frozen):
    """``rules/status_codes.toml``: every namespace of status codes."""

    version: str = ""
    namespaces: dict[str, Namespace]

    @field_validator("namespaces")
    @classmethod
    def _lower_names(cls, v: dict[str, Namespace]) -> dict[str, Namespace]:
        for name in v:
            if name != name.lower():
                raise ValueError(f"namespace names are lower case: {name!r}")
        return v

    @model_validator(mode="after")
    def _refinements_exist(self) -> StatusCodeRules:
        for ns_name, ns in self.namespaces.items():
            for c in ns.codes:
                if c.refine_with is not None and c.refine_with not in self.namespaces:
                    raise ValueError(
                        f"{ns_name}.{c.code}: refine_with names unknown namespace {c.refine_with!r}"
                    )
        return self


class RuleSet(_Frozen):
    """All rules the engine runs on, loaded and validated once at start-up."""

    status_codes: StatusCodeRules

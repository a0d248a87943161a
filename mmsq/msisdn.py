"""MSISDN normalisation to E.164 and masking for logs and reports.

The fast path is vectorised: numbers that match the default region's mobile numbering
pattern (taken from phonenumbers' own metadata) are accepted with one regex over the whole
column. Everything else goes through ``phonenumbers.parse``, once per distinct value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pandas as pd
import phonenumbers
from phonenumbers import PhoneMetadata

__all__ = ["MsisdnNormaliser", "mask_msisdn", "mask_text"]

_SEPARATORS = r"[\s\-().]"
_MSISDN_IN_TEXT = re.compile(r"(?<![\w])(\+?)(\d{3})(\d{4,11})(\d{4})(?!\w)")


def mask_msisdn(msisdn: str) -> str:
    """``+8613800138000`` -> ``+86138****8000``: enough to tell numbers apart, not to call."""
    digits = msisdn.lstrip("+")
    if len(digits) < 8:
        return "****"
    prefix = "+" if msisdn.startswith("+") else ""
    keep_head = len(digits) - 8 if len(digits) > 11 else 3
    return f"{prefix}{digits[:keep_head]}{'*' * 4}{digits[-4:]}"


def mask_text(text: str) -> str:
    """Mask every number of 11 to 18 digits that stands alone in ``text``."""
    return _MSISDN_IN_TEXT.sub(lambda m: mask_msisdn(m.group(0)), text)


@dataclass
class MsisdnNormaliser:
    """Normalises MSISDNs to E.164 for one default region (national numbers are read in it)."""

    default_region: str
    _cc: str = field(init=False)
    _mobile: str = field(init=False)
    _cache: dict[str, str | None] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._cc = str(phonenumbers.country_code_for_region(self.default_region))
        meta = PhoneMetadata.metadata_for_region(self.default_region)
        pattern = meta.mobile.national_number_pattern if meta and meta.mobile else None
        self._mobile = pattern or r"\d{6,14}"

    def normalise(self, raw: str) -> str | None:
        """E.164 text for one number, or None when it is not a valid number."""
        if raw in self._cache:
            return self._cache[raw]
        cleaned = re.sub(_SEPARATORS, "", raw.strip())
        result: str | None = None
        if cleaned:
            try:
                num = phonenumbers.parse(cleaned, self.default_region)
            except phonenumbers.NumberParseException:
                num = None
            if num is not None and phonenumbers.is_valid_number(num):
                result = phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)
        if len(self._cache) < 100_000:
            self._cache[raw] = result
        return result

    def normalise_series(self, raw: pd.Series) -> pd.Series:
        """Vectorised normalisation: E.164 strings, ``<NA>`` where the number is invalid."""
        s = raw.astype("string").str.strip()
        prefix = "+" + self._cc
        intl = s.str.startswith(prefix, na=False)
        # National number, or the national part of an E.164 one: one regex pass over all rows.
        nn = s.where(~intl, s.str.slice(len(prefix)))
        valid = nn.str.fullmatch(self._mobile, na=False)
        out: pd.Series = (prefix + nn).where(valid).astype("string")
        rest = ~valid & s.notna() & (s != "")
        if rest.any():
            uniq = pd.unique(s[rest].to_numpy())
            mapping = {v: self.normalise(str(v)) for v in uniq}
            out[rest] = s[rest].map(mapping).astype("string")
        return out

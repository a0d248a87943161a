"""Handset models by TAC (``rules/devices.csv``): can the handset take an OTA settings push,
with which security, and which settings profile suits it.

The engine's own reader (the simulated population has its own, so that the two cannot share a
bug). An operator's ``devices.csv`` in the rules directory adds models or replaces shipped ones
with the same TAC.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mmsq.rules_loader import RuleProblem, RulesError, shipped_rules_dir

__all__ = ["DeviceProfile", "load_device_profiles"]

FILE = "devices.csv"
_COLUMNS = ("tac", "brand", "model", "mms_capable", "ota_cp", "cp_security", "settings_profile")
_SECURITY = frozenset({"NETWPIN", "USERPIN", "USERNETWPIN", "none"})
_BOOL = {"true": True, "false": False}


@dataclass(frozen=True, slots=True)
class DeviceProfile:
    """One handset model (first 8 digits of the IMEI: the TAC)."""

    tac: str
    brand: str
    model: str
    mms_capable: bool
    ota_cp: bool
    cp_security: str  # NETWPIN, USERPIN, USERNETWPIN or none
    settings_profile: str

    @property
    def ota_capable(self) -> bool:
        """Takes an authenticated OMA CP push of MMS settings."""
        return self.mms_capable and self.ota_cp and self.cp_security != "none"


def _read(path: Path, problems: list[RuleProblem]) -> dict[str, DeviceProfile]:
    out: dict[str, DeviceProfile] = {}
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in _COLUMNS if c not in (reader.fieldnames or ())]
            if missing:
                problems.append(RuleProblem(str(path), "(header)", f"missing {missing}"))
                return out
            for line, row in enumerate(reader, 2):
                where = f"line {line}"
                tac = (row["tac"] or "").strip()
                sec = (row["cp_security"] or "").strip()
                mms = _BOOL.get((row["mms_capable"] or "").strip().lower())
                ota = _BOOL.get((row["ota_cp"] or "").strip().lower())
                if len(tac) != 8 or not tac.isdigit():
                    problems.append(RuleProblem(str(path), where, f"tac {tac!r} is not 8 digits"))
                elif mms is None or ota is None:
                    problems.append(RuleProblem(str(path), where, "booleans are true or false"))
                elif sec not in _SECURITY:
                    problems.append(RuleProblem(str(path), where, f"cp_security {sec!r}"))
                else:
                    out[tac] = DeviceProfile(
                        tac,
                        row["brand"].strip(),
                        row["model"].strip(),
                        mms,
                        ota,
                        sec,
                        (row["settings_profile"] or "").strip(),
                    )
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(RuleProblem(str(path), "(file)", f"cannot read: {exc}"))
    return out


def load_device_profiles(
    operator_dir: Path | None = None, shipped_dir: Path | None = None
) -> Mapping[str, DeviceProfile]:
    """The device table by TAC; raises RulesError naming each bad line."""
    problems: list[RuleProblem] = []
    table = _read((shipped_dir or shipped_rules_dir()) / FILE, problems)
    if operator_dir is not None and (operator_dir / FILE).is_file():
        table.update(_read(operator_dir / FILE, problems))
    if problems:
        raise RulesError(problems)
    return table

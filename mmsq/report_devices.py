"""Handset names for the report: the device table (``devices.csv``) read tolerantly.

The table maps a TAC (the first 8 digits of an IMEI) to brand and model. A missing file is not
an error: every handset is then "unknown" and the device match rate is 0, which is what the
report should say. Rows that cannot be read are skipped and counted, never fatal.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

__all__ = ["UNKNOWN", "DeviceName", "DeviceTable", "load_device_table"]

DEVICE_COLUMNS = (
    "tac",
    "brand",
    "model",
    "mms_capable",
    "ota_cp",
    "cp_security",
    "settings_profile",
)


@dataclass(frozen=True, slots=True)
class DeviceName:
    brand: str
    model: str


UNKNOWN = DeviceName("unknown", "unknown")


@dataclass(frozen=True)
class DeviceTable:
    """TAC -> handset name; ``source`` says where it came from, ``skipped`` how many bad rows."""

    names: dict[str, DeviceName] = field(default_factory=dict)
    source: str = "none"
    skipped: int = 0

    def name(self, tac: str | None) -> DeviceName:
        if tac is None:
            return UNKNOWN
        return self.names.get(tac, UNKNOWN)

    def knows(self, tac: str | None) -> bool:
        return tac is not None and tac in self.names


def _parse(text: str, source: str) -> DeviceTable:
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or not {"tac", "brand", "model"} <= set(reader.fieldnames):
        return DeviceTable(source=f"{source} (no tac,brand,model header)")
    names: dict[str, DeviceName] = {}
    skipped = 0
    for row in reader:
        tac = (row.get("tac") or "").strip()
        brand = (row.get("brand") or "").strip()
        model = (row.get("model") or "").strip()
        if len(tac) != 8 or not tac.isdigit() or not brand:
            skipped += 1
            continue
        names[tac] = DeviceName(brand, model or "unknown")
    return DeviceTable(names, source, skipped)


def load_device_table(path: Path | None = None, rules_dir: Path | None = None) -> DeviceTable:
    """The first that exists of: ``path``, ``rules_dir/devices.csv``, the shipped
    ``mmsq.rules/devices.csv``; an empty table when none does."""
    candidates = [p for p in (path, rules_dir / "devices.csv" if rules_dir else None) if p]
    for candidate in candidates:
        if candidate.is_file():
            return _parse(candidate.read_text(encoding="utf-8-sig"), str(candidate))
    shipped = resources.files("mmsq.rules").joinpath("devices.csv")
    if shipped.is_file():
        return _parse(shipped.read_text(encoding="utf-8-sig"), "mmsq.rules/devices.csv")
    return DeviceTable()

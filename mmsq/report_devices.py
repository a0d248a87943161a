"""Handset names for the report, from the one device table (``mmsq.devices``).

The table maps a TAC (the first 8 digits of an IMEI) to brand and model. A missing file is not
an error: every handset is then "unknown" and the device match rate is 0, which is what the
report should say. A file given to the report alone (``report.devices_file``), or an operator
table that does not validate, is read tolerantly: rows that cannot be read are skipped and
counted, never fatal.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from mmsq.devices import DEVICES_FILE, DeviceCatalogue, load_devices
from mmsq.rules_loader import RulesError

__all__ = ["UNKNOWN", "DeviceName", "DeviceTable", "load_device_table"]


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


def _from_catalogue(catalogue: DeviceCatalogue, source: str) -> DeviceTable:
    t = catalogue.table
    names = {
        str(tac): DeviceName(str(brand), str(model) or "unknown")
        for tac, brand, model in zip(t["tac"], t["brand"], t["model"], strict=True)
    }
    return DeviceTable(names, source)


def load_device_table(path: Path | None = None, rules_dir: Path | None = None) -> DeviceTable:
    """The report's device names: ``path`` (``report.devices_file``) read tolerantly when it
    exists; otherwise the one device table (``mmsq.devices.load_devices``: the shipped
    ``devices.csv`` with ``rules_dir/devices.csv`` merged over it by TAC). An operator table
    that does not validate is read tolerantly instead (bad rows skipped and counted): a report
    never fails over its device names. An empty table when there is none."""
    if path is not None and path.is_file():
        return _parse(path.read_text(encoding="utf-8-sig"), str(path))
    operator = rules_dir / DEVICES_FILE if rules_dir is not None else None
    has_operator = operator is not None and operator.is_file()
    try:
        catalogue = load_devices(rules_dir if has_operator else None)
    except RulesError:
        if operator is not None and has_operator:
            return _parse(operator.read_text(encoding="utf-8-sig"), str(operator))
        catalogue = DeviceCatalogue.empty()
    if not len(catalogue):
        return DeviceTable()
    shipped = "mmsq.rules/devices.csv"
    return _from_catalogue(catalogue, f"{shipped} + {operator}" if has_operator else shipped)

"""Handset models for the simulated population: the shipped TAC table plus models it lacks.

The population reads ``rules/devices.csv`` with its own small reader (simulators never borrow the
engine's code), then adds white-label and regional models under TACs that the shipped table does
not know, so that the engine's device match rate stays below 100% as in the field (one operator
matched 94.7% of IMEIs to a model). The TACs in both lists are illustrative, not GSMA allocations.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

__all__ = [
    "DEVICE_COLUMNS",
    "Device",
    "load_device_table",
    "luhn_check_digit",
    "unknown_devices",
]

DEVICE_COLUMNS = (
    "tac",
    "brand",
    "model",
    "mms_capable",
    "ota_cp",
    "cp_security",
    "settings_profile",
)
_SECURITIES = frozenset({"NETWPIN", "USERPIN", "USERNETWPIN", "none"})
_BOOLS = {"true": True, "false": False}


@dataclass(frozen=True, slots=True)
class Device:
    """One handset model under one TAC; ``known`` says whether the shipped table lists it."""

    tac: str
    brand: str
    model: str
    mms_capable: bool
    ota_cp: bool
    cp_security: str  # the OMA CP security the handset accepts, or "none"
    settings_profile: str
    known: bool = True


def _device(row: dict[str, str], where: str) -> Device:
    tac = row["tac"].strip()
    if len(tac) != 8 or not tac.isdigit():
        raise ValueError(f"{where}: tac {tac!r} is not 8 digits")
    try:
        mms, ota = _BOOLS[row["mms_capable"].strip()], _BOOLS[row["ota_cp"].strip()]
    except KeyError as exc:
        raise ValueError(f"{where}: boolean columns must be true or false") from exc
    sec = row["cp_security"].strip()
    if sec not in _SECURITIES:
        raise ValueError(f"{where}: cp_security {sec!r} is not one of {sorted(_SECURITIES)}")
    return Device(
        tac=tac,
        brand=row["brand"].strip(),
        model=row["model"].strip(),
        mms_capable=mms,
        ota_cp=ota,
        cp_security=sec,
        settings_profile=row["settings_profile"].strip(),
    )


def load_device_table(path: Path | None = None) -> tuple[Device, ...]:
    """Read a device table (default: the shipped ``rules/devices.csv``); raises on a bad row."""
    if path is None:
        path = Path(str(resources.files("mmsq.rules").joinpath("devices.csv")))
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        if tuple(reader.fieldnames or ()) != DEVICE_COLUMNS:
            raise ValueError(f"{path}: header must be {','.join(DEVICE_COLUMNS)}")
        devices = tuple(_device(row, f"{path}:{n}") for n, row in enumerate(reader, start=2))
    tacs = [d.tac for d in devices]
    if len(set(tacs)) != len(tacs):
        raise ValueError(f"{path}: duplicate TACs")
    return devices


# Models sold in the province that the shipped table does not list (regional brands, white-label
# "shanzhai" phones, late arrivals): brand, model, MMS, OTA CP, CP security.
_UNLISTED: tuple[tuple[str, str, bool, bool, str], ...] = (
    ("K-Touch", "T660", True, True, "NETWPIN"),
    ("K-Touch", "W700", True, False, "none"),
    ("Gionee", "GN205", True, True, "NETWPIN"),
    ("Gionee", "GN700W", True, False, "none"),
    ("Meizu", "M9", True, False, "none"),
    ("Meizu", "MX3", True, False, "none"),
    ("TCL", "J320T", True, True, "NETWPIN"),
    ("Amoi", "N820", True, True, "NETWPIN"),
    ("Konka", "V926", True, False, "none"),
    ("Tianyu", "A6", True, True, "USERPIN"),
    ("Bird", "S590", True, True, "USERPIN"),
    ("Haier", "HT-I617", True, False, "none"),
    ("Hisense", "HS-T96", True, True, "NETWPIN"),
    ("Changhong", "C100", False, False, "none"),
    ("Doov", "D3", True, False, "none"),
    ("Generic", "Shanzhai A8", True, False, "none"),
    ("Generic", "Shanzhai P168", False, False, "none"),
    ("Generic", "Senior phone S1", False, False, "none"),
    ("Philips", "Xenium 9@9k", True, True, "USERPIN"),
    ("Alcatel", "OT-S853", True, True, "USERPIN"),
)


def unknown_devices(
    known_tacs: Iterable[str], seed: int, tacs_per_model: int = 2
) -> tuple[Device, ...]:
    """Handset models the shipped table lacks, under fresh TACs (deterministic by ``seed``)."""
    taken = set(known_tacs)
    rnd = random.Random(f"unlisted-tacs/{seed}")  # noqa: S311 - simulated data, not secrets
    out: list[Device] = []
    for brand, model, mms, ota, sec in _UNLISTED:
        for _ in range(tacs_per_model):
            while True:
                tac = rnd.choice(("86", "35", "99")) + f"{rnd.randrange(10**6):06d}"
                if tac not in taken:
                    taken.add(tac)
                    break
            profile = "default" if mms else "legacy"
            out.append(Device(tac, brand, model, mms, ota, sec, profile, known=False))
    return tuple(out)


def luhn_check_digit(digits: str) -> int:
    """The Luhn check digit that completes ``digits`` (the 14 digits of TAC and serial)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:  # doubled: the rightmost payload digit sits next to the check digit
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return (10 - total % 10) % 10

"""The device table (``rules/devices.csv``): what each handset model (by TAC) can do.

Columns, exactly: ``tac,brand,model,mms_capable,ota_cp,cp_security,settings_profile``; the
booleans are ``true``/``false``; ``cp_security`` is the OMA CP security the handset accepts
(``NETWPIN``, ``USERPIN``, ``USERNETWPIN`` or ``none``; an empty cell reads as ``none``).
An operator's ``devices.csv`` in the rules directory adds models and replaces shipped rows
with the same TAC. Without a shipped table every handset is unknown, which scoring treats as
"no evidence" rather than as an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mmsq.rules_loader import RuleProblem, RulesError, shipped_rules_dir

__all__ = [
    "DEVICE_COLUMNS",
    "DeviceCatalogue",
    "DeviceProfile",
    "load_device_profiles",
    "load_devices",
    "read_device_table",
]

DEVICES_FILE = "devices.csv"
DEVICE_COLUMNS: tuple[str, ...] = (
    "tac",
    "brand",
    "model",
    "mms_capable",
    "ota_cp",
    "cp_security",
    "settings_profile",
)
_BOOLEANS = {"true": True, "false": False}
_SECURITY = frozenset({"NETWPIN", "USERPIN", "USERNETWPIN", "none"})


@dataclass(frozen=True, slots=True)
class DeviceProfile:
    """One handset model (first 8 digits of the IMEI: the TAC), as outreach needs it."""

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


def read_device_table(path: Path) -> pd.DataFrame:
    """Read and validate one device table; raises RulesError listing each bad line."""
    problems: list[RuleProblem] = []
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise RulesError([RuleProblem(str(path), "(file)", str(exc))]) from None
    if tuple(raw.columns) != DEVICE_COLUMNS:
        raise RulesError(
            [
                RuleProblem(
                    str(path),
                    "(header)",
                    f"columns must be exactly {','.join(DEVICE_COLUMNS)}; got "
                    f"{','.join(map(str, raw.columns))}",
                )
            ]
        )
    frame: pd.DataFrame = raw.apply(lambda s: s.str.strip())
    frame.loc[frame["cp_security"] == "", "cp_security"] = "none"
    line = pd.Series(range(2, len(frame) + 2), index=frame.index)
    bad_tac = ~frame["tac"].str.fullmatch(r"\d{8}")
    problems += [
        RuleProblem(str(path), f"line {n}", f"tac {t!r} is not 8 digits")
        for n, t in zip(line[bad_tac], frame["tac"][bad_tac], strict=True)
    ]
    for col in ("mms_capable", "ota_cp"):
        bad = ~frame[col].str.lower().isin(_BOOLEANS)
        problems += [
            RuleProblem(str(path), f"line {n}", f"{col} {v!r} is not true or false")
            for n, v in zip(line[bad], frame[col][bad], strict=True)
        ]
    bad_sec = ~frame["cp_security"].isin(_SECURITY)
    problems += [
        RuleProblem(
            str(path),
            f"line {n}",
            f"cp_security {v!r} is not one of {', '.join(sorted(_SECURITY))}",
        )
        for n, v in zip(line[bad_sec], frame["cp_security"][bad_sec], strict=True)
    ]
    dup = frame["tac"].duplicated(keep=False) & ~bad_tac
    problems += [
        RuleProblem(str(path), f"line {n}", f"tac {t} is listed twice")
        for n, t in zip(line[dup], frame["tac"][dup], strict=True)
    ]
    if problems:
        raise RulesError(problems)
    for col in ("mms_capable", "ota_cp"):
        frame[col] = frame[col].str.lower().map(_BOOLEANS).astype(bool)
    return frame


@dataclass(frozen=True)
class DeviceCatalogue:
    """Handset models by TAC; ``lookup`` is vectorised."""

    table: pd.DataFrame

    @classmethod
    def empty(cls) -> DeviceCatalogue:
        return cls(pd.DataFrame({c: pd.Series(dtype=object) for c in DEVICE_COLUMNS}))

    def __len__(self) -> int:
        return len(self.table)

    def lookup(self, tacs: pd.Series) -> pd.DataFrame:
        """One row per input TAC (same index): brand, model, mms_capable, ota_cp, known.

        Unknown or missing TACs give ``known = False`` and ``<NA>`` capabilities.
        """
        table = self.table.set_index("tac")
        hit = tacs.map(table["model"])
        known = hit.notna()
        out = pd.DataFrame(index=tacs.index)
        out["known"] = known.to_numpy(dtype=bool)
        out["brand"] = tacs.map(table["brand"]).astype(object)
        out["model"] = hit.astype(object)
        for col in ("mms_capable", "ota_cp"):
            out[col] = tacs.map(table[col]).astype("boolean")
        return out

    def profiles(self) -> dict[str, DeviceProfile]:
        """Every model as a ``DeviceProfile``, by TAC."""
        return {
            str(r.tac): DeviceProfile(
                str(r.tac),
                str(r.brand),
                str(r.model),
                bool(r.mms_capable),
                bool(r.ota_cp),
                str(r.cp_security),
                str(r.settings_profile),
            )
            for r in self.table.itertuples(index=False)
        }


def load_devices(
    operator_dir: Path | None = None, shipped_dir: Path | None = None
) -> DeviceCatalogue:
    """The shipped device table with the operator's rows merged over it (by TAC)."""
    shipped = (shipped_dir or shipped_rules_dir()) / DEVICES_FILE
    frames = []
    if shipped.is_file():
        frames.append(read_device_table(shipped))
    if operator_dir is not None and (operator_dir / DEVICES_FILE).is_file():
        frames.append(read_device_table(operator_dir / DEVICES_FILE))
    if not frames:
        return DeviceCatalogue.empty()
    merged = pd.concat(frames, ignore_index=True).drop_duplicates("tac", keep="last")
    return DeviceCatalogue(merged.reset_index(drop=True))


def load_device_profiles(
    operator_dir: Path | None = None, shipped_dir: Path | None = None
) -> Mapping[str, DeviceProfile]:
    """The device table by TAC, as ``load_devices`` reads it; raises RulesError naming each
    bad line."""
    return load_devices(operator_dir, shipped_dir).profiles()

"""Operator OTA settings profiles (``rules/ota_profiles.toml``) validated into frozen models.

A profile holds what an operator pushes to fix MMS on a handset (APN, WAP proxy, MMSC) and
how the push is authenticated. Operators change profiles by editing rules, not code.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from mmsq.ota_cp import MmsSettings, NapAuth
from mmsq.rules_loader import RuleProblem, RulesError, shipped_rules_dir

__all__ = [
    "OTA_PROFILES_FILE",
    "NapAuthProfile",
    "OtaProfile",
    "OtaProfiles",
    "load_ota_profiles",
]

OTA_PROFILES_FILE = "ota_profiles.toml"

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _text(v: str) -> str:
    # Control characters (NUL above all) cannot travel in a WBXML inline string intact.
    if _CONTROL.search(v):
        raise ValueError("control characters are not allowed")
    return v


def _ipv4(v: str) -> str:
    try:
        ipaddress.IPv4Address(v)
    except ValueError as exc:
        raise ValueError(f"{v!r} is not an IPv4 address (PXADDRTYPE is IPV4)") from exc
    return v


def _url(v: str) -> str:
    if not re.fullmatch(r"https?://[^\s/?#]+[^\s]*", v):
        raise ValueError(f"{v!r} is not an http:// or https:// URL")
    return v


Text = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_text)]
Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$")]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NapAuthProfile(_Frozen):
    """NAPAUTHINFO of the access point."""

    auth_type: Literal["PAP", "CHAP"] = "PAP"
    auth_name: Annotated[str, AfterValidator(_text)] = ""
    auth_secret: Annotated[str, AfterValidator(_text)] = ""


class OtaProfile(_Frozen):
    """One operator's MMS settings and its push security policy."""

    name: Text
    apn: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]{0,99}$")]
    proxy_address: Annotated[str, AfterValidator(_ipv4)]
    proxy_port: int = Field(ge=1, le=65535)
    mmsc_url: Annotated[str, Field(max_length=400), AfterValidator(_url)]
    napid: Id = "MMS_NAP"
    proxy_id: Id = "MMS_PROXY"
    physical_proxy_id: Id = "MMS_PXP"
    bearer: Literal["GSM-GPRS", "GSM-CSD", "GSM-SMS", "GSM-USSD"] | None = None
    port_service: Literal["OTA-HTTP-PO", "OTA-HTTP-TLS-PO", "CO-WSP", "CO-SEC-WSP"] | None = None
    application_name: Text | None = None
    nap_auth: NapAuthProfile | None = None
    security: Literal["NETWPIN", "USERPIN", "USERNETWPIN"] = "NETWPIN"
    without_imsi: Literal["USERPIN", "NO_PUSH"] = "USERPIN"
    pin_length: int = Field(default=4, ge=4, le=8)
    source_port: int = Field(default=9200, ge=0, le=65535)
    compact_wbxml: bool = False

    def settings(self) -> MmsSettings:
        """The core's view of this profile: what goes into the provisioning document."""
        auth = None
        if self.nap_auth is not None:
            a = self.nap_auth
            auth = NapAuth(a.auth_type, a.auth_name, a.auth_secret)
        return MmsSettings(
            name=self.name,
            apn=self.apn,
            proxy_address=self.proxy_address,
            proxy_port=self.proxy_port,
            mmsc_url=self.mmsc_url,
            napid=self.napid,
            proxy_id=self.proxy_id,
            physical_proxy_id=self.physical_proxy_id,
            bearer=self.bearer,
            nap_auth=auth,
            port_service=self.port_service,
            application_name=self.application_name,
        )


class OtaProfiles(_Frozen):
    """``rules/ota_profiles.toml``: the profiles by name and the default one."""

    version: str = ""
    default: str
    profiles: dict[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")], OtaProfile]

    @model_validator(mode="after")
    def _default_exists(self) -> OtaProfiles:
        if self.default not in self.profiles:
            raise ValueError(
                f"default profile {self.default!r} is not defined "
                f"(profiles: {', '.join(sorted(self.profiles)) or 'none'})"
            )
        return self

    def get(self, name: str | None = None) -> OtaProfile:
        """The named profile, or the default; KeyError names the known ones."""
        key = name or self.default
        try:
            return self.profiles[key]
        except KeyError:
            known = ", ".join(sorted(self.profiles))
            raise KeyError(f"no OTA profile {key!r} (known: {known})") from None


def _read(path: Path, problems: list[RuleProblem]) -> dict[str, Any] | None:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        problems.append(RuleProblem(str(path), "(syntax)", str(exc)))
    except OSError as exc:
        problems.append(RuleProblem(str(path), "(file)", str(exc)))
    return None


def load_ota_profiles(
    operator_dir: Path | None = None, shipped_dir: Path | None = None
) -> OtaProfiles:
    """Shipped profiles with an operator directory's profiles merged over them, validated.

    An operator profile replaces the shipped profile of the same name as a whole (no key-by-key
    mixing of two operators' settings). Raises RulesError listing every problem.
    """
    shipped = (shipped_dir or shipped_rules_dir()) / OTA_PROFILES_FILE
    problems: list[RuleProblem] = []
    if operator_dir is not None and not operator_dir.is_dir():
        raise RulesError([RuleProblem(str(operator_dir), "(directory)", "does not exist")])
    data = _read(shipped, problems) or {}
    origin = str(shipped)
    override_path = operator_dir / OTA_PROFILES_FILE if operator_dir is not None else None
    if override_path is not None and override_path.is_file():
        override = _read(override_path, problems) or {}
        data = {
            **data,
            **{k: v for k, v in override.items() if k != "profiles"},
            "profiles": {**data.get("profiles", {}), **override.get("profiles", {})},
        }
        origin = f"{override_path} (merged over the shipped file)"
    if problems:
        raise RulesError(problems)
    try:
        return OtaProfiles.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(top level)"
            problems.append(RuleProblem(origin, key, err["msg"]))
        raise RulesError(problems) from None

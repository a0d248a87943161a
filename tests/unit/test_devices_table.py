"""The shipped device table (`rules/devices.csv`): shape, values, and the simulator's reading."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

import mmsq.rules
from mmsq.simulators.devices import DEVICE_COLUMNS, load_device_table, unknown_devices

SHIPPED = Path(mmsq.rules.__file__).parent / "devices.csv"
BRANDS = {
    "Nokia",
    "Samsung",
    "Motorola",
    "Sony Ericsson",
    "Huawei",
    "ZTE",
    "Lenovo",
    "Coolpad",
    "Apple",
    "Xiaomi",
    "OPPO",
    "vivo",
}


def _rows() -> list[dict[str, str]]:
    with SHIPPED.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_header_is_exactly_the_documented_columns() -> None:
    with SHIPPED.open(encoding="utf-8") as fh:
        assert fh.readline().rstrip("\n") == ",".join(DEVICE_COLUMNS)


def test_rows_are_well_formed() -> None:
    rows = _rows()
    assert 150 <= len(rows) <= 300
    tacs = [r["tac"] for r in rows]
    assert len(set(tacs)) == len(tacs)
    for r in rows:
        assert len(r["tac"]) == 8, r
        assert r["tac"].isdigit(), r
        assert r["mms_capable"] in {"true", "false"}, r
        assert r["ota_cp"] in {"true", "false"}, r
        assert r["cp_security"] in {"NETWPIN", "USERPIN", "USERNETWPIN", "none"}, r
        assert r["settings_profile"], r
        assert r["brand"].strip(), r
        assert r["model"].strip(), r
        if r["ota_cp"] == "false":
            assert r["cp_security"] == "none", r
        if r["mms_capable"] == "false":
            assert r["ota_cp"] == "false", r


def test_covers_the_market_and_a_few_phones_without_mms() -> None:
    rows = _rows()
    assert {r["brand"] for r in rows} == BRANDS
    no_mms = [r for r in rows if r["mms_capable"] == "false"]
    assert 5 <= len(no_mms) <= 30


def test_simulator_reads_the_shipped_table() -> None:
    devices = load_device_table()
    assert len(devices) == len(_rows())
    assert all(d.known for d in devices)


def test_simulator_refuses_a_malformed_table(tmp_path: Path) -> None:
    bad = tmp_path / "devices.csv"
    bad.write_text(",".join(DEVICE_COLUMNS) + "\n1234,Nokia,1100,false,false,none,legacy\n")
    with pytest.raises(ValueError, match="not 8 digits"):
        load_device_table(bad)


def test_unlisted_devices_never_reuse_a_shipped_tac() -> None:
    shipped = {d.tac for d in load_device_table()}
    extra = unknown_devices(shipped, seed=1)
    assert extra
    assert not any(d.known for d in extra)
    assert not {d.tac for d in extra} & shipped
    assert len({d.tac for d in extra}) == len(extra)
    assert unknown_devices(shipped, seed=1) == extra


def test_engine_reader_names_a_bad_security_and_builds_profiles(tmp_path: Path) -> None:
    from mmsq.devices import load_device_profiles, read_device_table
    from mmsq.rules_loader import RulesError

    header = "tac,brand,model,mms_capable,ota_cp,cp_security,settings_profile\n"
    bad = tmp_path / "bad.csv"
    bad.write_text(header + "86012345,Acme,A1,true,true,PIN,default\n", encoding="utf-8")
    with pytest.raises(RulesError, match=r"line 2.*cp_security 'PIN'"):
        read_device_table(bad)
    good = tmp_path / "rules"
    good.mkdir()
    (good / "devices.csv").write_text(
        header
        + "86012345,Acme,A1,true,true,USERPIN,default\n"
        + "86012346,Acme,A0,false,false,,\n",
        encoding="utf-8",
    )
    profiles = load_device_profiles(good, shipped_dir=tmp_path / "none")
    assert list(profiles) == ["86012345", "86012346"]
    assert profiles["86012346"].cp_security == "none"
    assert not profiles["86012346"].ota_capable
    assert profiles["86012345"].ota_capable
    assert profiles["86012345"].cp_security == "USERPIN"

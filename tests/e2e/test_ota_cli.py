"""`mmsq ota` as an operator runs it: real processes, the shipped and an operator's profiles."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.ota_tree import EXAMPLE_WBXML, tree_of_xml

EXAMPLE_PROFILE = """
default = "example"

[profiles.example]
name = "Example MMS"
apn = "mms.example.net"
proxy_address = "10.1.2.3"
proxy_port = 8080
mmsc_url = "http://mmsc.example.net/mms"
bearer = "GSM-GPRS"
application_name = "Example MMS"
security = "NETWPIN"
without_imsi = "NO_PUSH"
source_port = 2948
nap_auth = { auth_type = "PAP", auth_name = "mms", auth_secret = "mms" }
"""


def run(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MMSQ_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "mmsq", "ota", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def operator_rules(tmp_path: Path) -> dict[str, str]:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "ota_profiles.toml").write_text(EXAMPLE_PROFILE, encoding="utf-8")
    return {"MMSQ_RULES__DIR": str(rules)}


def test_preview_json_with_netwpin_on_the_shipped_profile(tmp_path: Path) -> None:
    r = run(["preview", "13800138000", "--imsi", "460001234567890", "--json"], tmp_path)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["msisdn"] == "+86138****8000"
    assert doc["profile"] == "china-mobile"
    assert doc["security"]["method"] == "NETWPIN"
    assert doc["security"]["pin_for_help_sms"] is None
    assert len(doc["security"]["mac"]) == 40
    assert doc["push_header_hex"].startswith("01062f1f2db69180")
    assert all(s["udh_hex"].startswith("0b05040b8423f0") for s in doc["segments"])
    assert tree_of_xml(doc["document_xml"])[2][1][2][3] == ("parm", "NAP-ADDRESS", "cmwap")
    if doc["decoded_xml"] is not None:
        assert tree_of_xml(doc["decoded_xml"]) == tree_of_xml(doc["document_xml"])


def test_preview_reproduces_the_reference_message_with_an_operator_profile(
    tmp_path: Path,
) -> None:
    r = run(
        ["preview", "+8613800138000", "--security", "userpin", "--pin", "1234", "--json"],
        tmp_path,
        operator_rules(tmp_path),
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["wbxml_hex"] == EXAMPLE_WBXML.hex()
    assert doc["security"]["mac"] == "6A4F4C740FF39B7E9EA81813BEE7668B104B7CD6"
    assert doc["security"]["pin_for_help_sms"] == "1234"
    assert [s["udh_hex"][-2:] for s in doc["segments"]] == ["01", "02", "03"]
    assert doc["segments"][0]["udh_hex"] == "0b05040b840b840003000301"


def test_preview_without_imsi_under_a_no_push_profile_shows_no_segments(tmp_path: Path) -> None:
    r = run(["preview", "13800138000"], tmp_path, operator_rules(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "-- security: no_push --" in r.stdout
    assert "needs the IMSI" in r.stdout
    assert "SMS segments" not in r.stdout
    assert "13800138000" not in r.stdout


def test_preview_text_shows_udh_and_payload_apart(tmp_path: Path) -> None:
    r = run(["preview", "13800138000", "--pin", "4321", "--security", "USERPIN"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "PIN to put in the help SMS: 4321" in r.stdout
    assert "  UDH     0b 05 04 0b 84 23 f0 00 03 00 03 01" in r.stdout
    assert "  payload 01 06 2f 1f 2d b6 91 81 92" in r.stdout


def test_bad_input_exits_2_with_a_message_not_a_traceback(tmp_path: Path) -> None:
    for args, words in [
        (["preview", "13800138000", "--imsi", "12x"], "IMSI"),
        (["preview", "13800138000", "--security", "USERPINMAC"], "security must be one of"),
        (["preview", "13800138000", "--profile", "nope"], "china-mobile"),
        (["preview", "12"], "MSISDN"),
    ]:
        r = run(args, tmp_path)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert words in r.stderr
        assert "Traceback" not in r.stderr


def test_profiles_lists_the_default_and_rejects_a_broken_file(tmp_path: Path) -> None:
    r = run(["profiles"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "* china-mobile: APN cmwap, proxy 10.0.0.172:80" in r.stdout
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "ota_profiles.toml").write_text(EXAMPLE_PROFILE.replace("10.1.2.3", "x"), "utf-8")
    r = run(["profiles", str(bad)], tmp_path)
    assert r.returncode == 2
    assert "profiles.example.proxy_address" in r.stderr

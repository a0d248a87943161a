"""OTA profiles as rules: the shipped default, operator overrides, problems named by key."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmsq.ota_message import prepare_ota_message, random_pin
from mmsq.ota_profiles import OtaProfile, load_ota_profiles
from mmsq.rules_loader import RulesError
from mmsq.wap_push import SecurityMethod
from tests.ota_tree import EXAMPLE_WBXML

OPERATOR = """
default = "example"

[profiles.example]
name = "Example MMS"
apn = "mms.example.net"
proxy_address = "10.1.2.3"
proxy_port = 8080
mmsc_url = "http://mmsc.example.net/mms"
bearer = "GSM-GPRS"
application_name = "Example MMS"
security = "USERPIN"
source_port = 2948
nap_auth = { auth_type = "PAP", auth_name = "mms", auth_secret = "mms" }
"""


def operator_dir(tmp_path: Path, body: str) -> Path:
    (tmp_path / "ota_profiles.toml").write_text(body, encoding="utf-8")
    return tmp_path


def test_shipped_default_is_china_mobile_style() -> None:
    profiles = load_ota_profiles()
    p = profiles.get()
    assert profiles.default == "china-mobile"
    assert (p.apn, p.mmsc_url, p.proxy_address, p.proxy_port) == (
        "cmwap",
        "http://mmsc.monternet.com",
        "10.0.0.172",
        80,
    )
    assert (p.security, p.without_imsi, p.source_port) == ("NETWPIN", "USERPIN", 9200)


def test_operator_profiles_are_added_and_their_default_wins(tmp_path: Path) -> None:
    profiles = load_ota_profiles(operator_dir(tmp_path, OPERATOR))
    assert set(profiles.profiles) == {"china-mobile", "example"}
    assert profiles.get().name == "Example MMS"


def test_operator_profile_replaces_a_shipped_one_as_a_whole(tmp_path: Path) -> None:
    body = OPERATOR.replace("[profiles.example]", "[profiles.china-mobile]").replace(
        'default = "example"', ""
    )
    p = load_ota_profiles(operator_dir(tmp_path, body)).get()
    assert (p.apn, p.napid) == ("mms.example.net", "MMS_NAP")  # shipped CMCC ids are gone


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (
            ('proxy_address = "10.1.2.3"', 'proxy_address = "10.1.2"'),
            "profiles.example.proxy_address",
        ),
        (
            ('mmsc_url = "http://mmsc.example.net/mms"', 'mmsc_url = "mmsc"'),
            "profiles.example.mmsc_url",
        ),
        (("proxy_port = 8080", "proxy_port = 0"), "profiles.example.proxy_port"),
        (('security = "USERPIN"', 'security = "USERPINMAC"'), "profiles.example.security"),
        (('name = "Example MMS"', 'name = "Bad\\u0000"'), "profiles.example.name"),
        (('bearer = "GSM-GPRS"', 'colour = "red"'), "profiles.example.colour"),
        (('default = "example"', 'default = "nowhere"'), "(top level)"),
    ],
)
def test_bad_profiles_are_reported_by_file_and_key(
    tmp_path: Path, change: tuple[str, str], key: str
) -> None:
    with pytest.raises(RulesError) as info:
        load_ota_profiles(operator_dir(tmp_path, OPERATOR.replace(*change, 1)))
    assert [p.key for p in info.value.problems] == [key]
    assert "ota_profiles.toml" in info.value.problems[0].file


def test_unknown_profile_name_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match="china-mobile"):
        load_ota_profiles().get("nope")


def test_toml_syntax_error_is_a_rules_problem(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="syntax"):
        load_ota_profiles(operator_dir(tmp_path, "default = "))


def test_operator_example_profile_gives_the_reference_message(tmp_path: Path) -> None:
    profile = load_ota_profiles(operator_dir(tmp_path, OPERATOR)).get()
    message = prepare_ota_message(profile, pin="1234")
    assert message.wbxml == EXAMPLE_WBXML
    assert message.security is not None
    assert message.security.mac == "6A4F4C740FF39B7E9EA81813BEE7668B104B7CD6"
    assert message.headers_length == 50
    assert [len(s.payload) for s in message.segments] == [128, 128, 103]
    assert message.segments[0].udh.hex() == "0b05040b840b840003000301"


def test_no_imsi_and_no_push_policy_gives_no_segments() -> None:
    profile = load_ota_profiles().get().model_copy(update={"without_imsi": "NO_PUSH"})
    message = prepare_ota_message(profile)
    assert (message.decision.action, message.pdu, message.segments) == ("no_push", None, ())
    assert '<parm name="NAP-ADDRESS" value="cmwap"/>' in message.xml


def test_no_imsi_falls_back_to_a_generated_pin_of_the_profile_length() -> None:
    profile: OtaProfile = load_ota_profiles().get().model_copy(update={"pin_length": 6})
    message = prepare_ota_message(profile, new_pin=lambda: "246810")
    assert message.decision.method is SecurityMethod.USERPIN
    assert message.decision.pin_for_help_sms == "246810"
    pin = prepare_ota_message(profile).decision.pin_for_help_sms
    assert pin is not None
    assert len(pin) == 6
    assert pin.isdigit()


def test_random_pin_has_the_asked_length() -> None:
    assert len(random_pin(8)) == 8

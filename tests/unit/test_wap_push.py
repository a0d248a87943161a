"""WSP push header, SEC/MAC keys and test vectors, and the per-subscriber security decision."""

from __future__ import annotations

import pytest

from mmsq.wap_push import (
    PushSecurity,
    SecurityMethod,
    compute_mac,
    decide_security,
    encode_uintvar,
    encode_value_length,
    imsi_key,
    mac_key,
    push_headers,
    push_pdu,
)
from tests.ota_tree import EXAMPLE_WBXML, NOWSMS_WBXML


def no_pin() -> str:
    raise AssertionError("no PIN should be generated here")


@pytest.mark.parametrize(
    ("imsi", "key"),
    [
        ("234150123456789", "29 43 51 10 32 54 76 98"),
        ("123456789012345", "19 32 54 76 98 10 32 54"),
        ("21407650123456", "21 41 70 56 10 32 54 F6"),
    ],
)
def test_imsi_key_is_the_ef_imsi_semi_octet_form(imsi: str, key: str) -> None:
    assert imsi_key(imsi) == bytes.fromhex(key)


@pytest.mark.parametrize(
    "bad",
    ["", "12345", "1234567890123456", "23415012345678x", "\uff12\uff13\uff14\uff11\uff15\uff10"],
)
def test_imsi_key_refuses_what_is_not_an_imsi(bad: str) -> None:
    with pytest.raises(ValueError, match="IMSI"):
        imsi_key(bad)


def test_userpin_mac_vector() -> None:
    key = mac_key(SecurityMethod.USERPIN, pin="1234")
    assert compute_mac(key, EXAMPLE_WBXML) == "6A4F4C740FF39B7E9EA81813BEE7668B104B7CD6"


def test_netwpin_mac_vector() -> None:
    key = mac_key(SecurityMethod.NETWPIN, imsi="234150123456789")
    assert compute_mac(key, EXAMPLE_WBXML) == "BB8007579D34A5737E1F00F072F0B9A14BB15734"


def test_netwpin_mac_equals_nowsms_output() -> None:
    key = mac_key(SecurityMethod.NETWPIN, imsi="123456789012345")
    assert compute_mac(key, NOWSMS_WBXML) == "C483EC25F7E3E0CF100380DA5F6714CF204A5EC5"


def test_usernetwpin_key_is_imsi_key_then_pin() -> None:
    key = mac_key(SecurityMethod.USERNETWPIN, imsi="234150123456789", pin="1234")
    assert key == bytes.fromhex("2943511032547698") + b"1234"
    assert compute_mac(key, EXAMPLE_WBXML) == "0DCA750F48A9E1C098BB838A674C60558091BF39"


def test_userpinmac_is_refused() -> None:
    with pytest.raises(ValueError, match="not supported"):
        mac_key(SecurityMethod.USERPINMAC, pin="12345678")


@pytest.mark.parametrize("bad", ["", "12", "12a4", "\uff11\uff12\uff13\uff14", "12345678901234567"])
def test_pins_are_4_to_16_digits(bad: str) -> None:
    with pytest.raises(ValueError, match="PIN"):
        mac_key(SecurityMethod.USERPIN, pin=bad)


@pytest.mark.parametrize(
    ("n", "encoded"),
    [(0, "00"), (47, "2f"), (127, "7f"), (128, "8100"), (16383, "ff7f"), (16384, "818000")],
)
def test_uintvar(n: int, encoded: str) -> None:
    assert encode_uintvar(n) == bytes.fromhex(encoded)


def test_value_length_short_form_and_length_quote() -> None:
    assert encode_value_length(30) == b"\x1e"
    assert encode_value_length(31) == b"\x1f\x1f"
    assert encode_value_length(45) == b"\x1f\x2d"


def test_userpin_push_header_matches_kannel() -> None:
    security = PushSecurity(SecurityMethod.USERPIN, "6A4F4C740FF39B7E9EA81813BEE7668B104B7CD6")
    pdu = push_pdu(EXAMPLE_WBXML, security)
    expected = (
        bytes.fromhex("01 06 2F 1F 2D B6 91 81 92")
        + b"6A4F4C740FF39B7E9EA81813BEE7668B104B7CD6"
        + b"\x00"
    )
    assert len(expected) == 50
    assert pdu == expected + EXAMPLE_WBXML


@pytest.mark.parametrize(("method", "sec"), [(m, 0x80 | m.value) for m in SecurityMethod])
def test_sec_parameter_value_per_method(method: SecurityMethod, sec: int) -> None:
    headers = push_headers(PushSecurity(method, "0" * 40))
    assert headers[3:5] == bytes((0x91, sec))
    assert headers[5] == 0x92


def test_unauthenticated_push_is_the_bare_content_type() -> None:
    assert push_pdu(b"\x03", None, tid=0xF9) == bytes.fromhex("F9 06 01 B6 03")


def test_mac_must_be_uppercase_hex() -> None:
    with pytest.raises(ValueError, match="uppercase"):
        PushSecurity(SecurityMethod.USERPIN, "6a4f4c740ff39b7e9ea81813bee7668b104b7cd6")


def test_netwpin_with_imsi_needs_no_pin() -> None:
    d = decide_security("NETWPIN", "USERPIN", imsi="234150123456789", pin=None, new_pin=no_pin)
    assert (d.action, d.method, d.pin_for_help_sms) == ("push", SecurityMethod.NETWPIN, None)
    assert d.security_for(EXAMPLE_WBXML).mac.startswith("BB8007579D")
    assert "2943" not in repr(d)  # the key is never printed


def test_netwpin_without_imsi_falls_back_to_userpin_with_the_pin_for_the_help_sms() -> None:
    d = decide_security("NETWPIN", "USERPIN", imsi=None, pin=None, new_pin=lambda: "1234")
    assert (d.action, d.method, d.pin_for_help_sms) == ("push", SecurityMethod.USERPIN, "1234")
    assert "IMSI" in d.reason
    assert d.security_for(EXAMPLE_WBXML).mac == "6A4F4C740FF39B7E9EA81813BEE7668B104B7CD6"


def test_netwpin_without_imsi_and_no_push_policy_sends_nothing() -> None:
    d = decide_security("USERNETWPIN", "NO_PUSH", imsi=None, pin="1234", new_pin=no_pin)
    assert (d.action, d.method, d.pushes) == ("no_push", None, False)
    with pytest.raises(ValueError, match="no push"):
        d.security_for(EXAMPLE_WBXML)


def test_userpin_uses_the_given_pin() -> None:
    d = decide_security("USERPIN", "NO_PUSH", imsi=None, pin="9876", new_pin=no_pin)
    assert (d.method, d.pin_for_help_sms) == (SecurityMethod.USERPIN, "9876")


def test_usernetwpin_with_imsi_makes_a_pin_when_none_is_given() -> None:
    d = decide_security(
        "USERNETWPIN", "NO_PUSH", imsi="234150123456789", pin=None, new_pin=lambda: "1234"
    )
    assert (d.method, d.pin_for_help_sms) == (SecurityMethod.USERNETWPIN, "1234")
    assert d.security_for(EXAMPLE_WBXML).mac == "0DCA750F48A9E1C098BB838A674C60558091BF39"

"""The preview's JSON document and text: every part an operator checks before a push."""

from __future__ import annotations

import pytest

from mmsq.ota_message import prepare_ota_message
from mmsq.ota_preview import OtaPreview, parse_security
from mmsq.ota_profiles import load_ota_profiles


def preview(**kwargs: str) -> OtaPreview:
    message = prepare_ota_message(load_ota_profiles().get(), **kwargs)  # type: ignore[arg-type]
    return OtaPreview("+86138****8000", "china-mobile", message, None, "not decoded")


def test_parse_security_accepts_any_case_and_refuses_userpinmac() -> None:
    assert parse_security(" usernetwpin ") == "USERNETWPIN"
    assert parse_security(None) is None
    with pytest.raises(ValueError, match="NETWPIN, USERPIN, USERNETWPIN"):
        parse_security("USERPINMAC")


def test_json_document_holds_security_header_and_segments_apart() -> None:
    doc = preview(security="USERPIN", pin="1234").as_dict()
    assert doc["security"] == {
        "action": "push",
        "method": "USERPIN",
        "reason": doc["security"]["reason"],
        "pin_for_help_sms": "1234",
        "mac": doc["security"]["mac"],
    }
    assert doc["push_header_hex"].startswith("01062f1f2db6918192")
    assert len(doc["push_header_hex"]) == 100
    for s in doc["segments"]:
        assert s["short_message_hex"] == s["udh_hex"] + s["payload_hex"]
        assert (s["esm_class"], s["data_coding"]) == (0x40, 0x04)
    payload = bytes.fromhex("".join(s["payload_hex"] for s in doc["segments"]))
    assert payload == bytes.fromhex(doc["push_header_hex"] + doc["wbxml_hex"])


def test_text_shows_the_pin_mac_and_each_segment() -> None:
    text = preview(security="USERPIN", pin="1234").as_text()
    assert "PIN to put in the help SMS: 1234" in text
    assert "MAC (HMAC-SHA1, uppercase hex): " in text
    assert "[1/3] esm_class=0x40 data_coding=0x04 140 octets" in text
    assert "-- decoded XML (not decoded) --" in text


def test_no_push_preview_has_no_header_nor_segments() -> None:
    p = preview()
    no_push = OtaPreview(
        p.msisdn_masked,
        p.profile,
        prepare_ota_message(
            load_ota_profiles().get().model_copy(update={"without_imsi": "NO_PUSH"})
        ),
        None,
        "n/a",
    )
    doc = no_push.as_dict()
    assert (doc["security"]["action"], doc["push_header_hex"], doc["segments"]) == (
        "no_push",
        None,
        [],
    )
    assert "SMS segments" not in no_push.as_text()

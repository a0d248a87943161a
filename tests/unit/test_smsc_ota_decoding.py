"""The SMSC simulator's OMA CP decoders: WSP push, WBXML provisioning documents, MACs.

The WBXML is spelled out token by token from the worked example of the OMA CP reference
(the MMS settings document, 309 octets, as Kannel and libwbxml encode it); MAC vectors are
the reference's, checked there against Kannel and NowSMS.
"""

from __future__ import annotations

import hashlib

import defusedxml.ElementTree
import pytest

from mmsq.simulators.ota_push import (
    OtaDecodeError,
    decode_ota_push,
    imsi_key,
    mac_is_valid,
    mac_of,
)
from mmsq.simulators.wbxml_prov import WbxmlError, decode_prov
from mmsq.simulators.wsp_push import WspError, decode_push, read_uintvar
from tests.ota_cp_vectors import (
    NETWPIN_MAC,
    USERPIN_MAC,
    WORKED_EXAMPLE,
    characteristic,
    parm,
    s,
    wsp_push,
)

END = b"\x01"


def test_hand_encoded_worked_example_matches_the_reference_bytes() -> None:
    assert len(WORKED_EXAMPLE) == 309
    assert hashlib.sha1(WORKED_EXAMPLE).hexdigest() == "bc38d4af5a1caeebdba3ee96389d4c16bf345a03"


def test_worked_example_decodes_to_the_mms_settings() -> None:
    doc = decode_prov(WORKED_EXAMPLE)
    p = doc.parameters
    assert p["NAP-ADDRESS"] == "mms.example.net"
    assert p["PXADDR"] == "10.1.2.3"
    assert p["PORTNBR"] == "8080"
    assert p["ADDR"] == "http://mmsc.example.net/mms"
    assert p["TO-PROXY"] == "MMS_PROXY"
    assert p["NAME"] == "Example MMS"
    assert p["BEARER"] == "GSM-GPRS"
    assert p["NAPDEF/NAPAUTHINFO/AUTHTYPE"] == "PAP"
    assert p["APPLICATION/APPID"] == "w4"
    assert '<characteristic type="APPLICATION">' in doc.xml
    assert '<parm name="ADDR" value="http://mmsc.example.net/mms"/>' in doc.xml
    assert doc.xml.startswith('<?xml version="1.0"?>\n<wap-provisioningdoc version="1.0">')


def test_compact_operator_form_decodes_identically() -> None:
    # Real operator messages stay on attribute page 1 inside APPLICATION: 10 octets shorter.
    compact = WORKED_EXAMPLE.replace(b"\x36\x00\x00\x06", b"\x36\x06")
    compact = compact.replace(b"\x87\x00\x01\x39\x00\x00\x06", b"\x87\x39\x06")
    compact = compact.replace(b"\x87\x00\x01\x34\x00\x00\x06", b"\x87\x34\x06")
    assert len(compact) == 299  # NAME (0x07) and value= (0x06) exist on page 1 as well
    assert decode_prov(compact).xml == decode_prov(WORKED_EXAMPLE).xml


def test_string_table_references_and_literal_free_values() -> None:
    table = b"mms.example.net\x00"
    doc = b"".join(
        [
            b"\x03\x0b\x6a" + bytes([len(table)]) + table,
            b"\xc5\x46\x01",
            characteristic(b"\x55", parm(b"\x08", b"\x83\x00")),  # STR_T offset 0
            END,
        ]
    )
    assert decode_prov(doc).parameters["NAP-ADDRESS"] == "mms.example.net"


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"\x03\x01\x6a\x00\xc5\x01", "public id"),  # not a provisioning document
        (WORKED_EXAMPLE[:-1], "not closed"),
        (WORKED_EXAMPLE + b"\x00", "after the end"),
        (b"\x03\x0b\x6a\x00\xc5\x7e\x01\x01", "unknown attribute token"),
        (b"\x03\x0b\x6a\x00\xc5\x46\x01\xc6\x56\x01\x87\x07\x06\xff\x01\x01\x01", "value token"),
        (b"\x03\x0b\x6a\x00\x49\x01", "unknown tag"),
    ],
    ids=["public-id", "truncated", "trailing", "attr", "value", "tag"],
)
def test_malformed_wbxml_is_refused(raw: bytes, why: str) -> None:
    with pytest.raises(WbxmlError, match=why):
        decode_prov(raw)


def test_wsp_push_header_with_sec_and_mac() -> None:
    pdu = wsp_push(1, USERPIN_MAC)
    assert pdu[:9] == bytes.fromhex("01062F1F2DB6918192")  # the reference's 50-octet header
    push = decode_push(pdu)
    assert (push.tid, push.content_type) == (1, "application/vnd.wap.connectivity-wbxml")
    assert (push.sec, push.mac, push.body) == ("USERPIN", USERPIN_MAC, WORKED_EXAMPLE)


def test_wsp_push_without_security_and_with_text_content_type() -> None:
    assert decode_push(wsp_push(None, None)).sec is None
    text_ct = b"application/vnd.wap.connectivity-wbxml\x00"
    pdu = bytes([0xF9, 0x06, len(text_ct)]) + text_ct + b"body"
    push = decode_push(pdu)
    assert (push.tid, push.content_type, push.body) == (
        0xF9,
        "application/vnd.wap.connectivity-wbxml",
        b"body",
    )


def test_uintvar() -> None:
    assert read_uintvar(b"\x2f", 0) == (47, 1)
    assert read_uintvar(b"\x81\x00", 0) == (128, 2)
    with pytest.raises(WspError):
        read_uintvar(b"\x81", 0)


@pytest.mark.parametrize(
    "pdu",
    [b"\x01\x06", b"\x01\x08\x01\xb6", b"\x01\x06\x30\xb6"],
    ids=["short", "not-push", "headers-too-long"],
)
def test_malformed_wsp_is_refused(pdu: bytes) -> None:
    with pytest.raises(WspError):
        decode_push(pdu)


def test_imsi_keys_in_semi_octet_form() -> None:
    assert imsi_key("234150123456789").hex().upper() == "2943511032547698"
    assert imsi_key("123456789012345").hex().upper() == "1932547698103254"
    assert imsi_key("21407650123456").hex().upper() == "21417056103254F6"


def test_mac_vectors_from_the_reference() -> None:
    assert mac_of(b"1234", WORKED_EXAMPLE) == USERPIN_MAC
    assert mac_of(imsi_key("234150123456789"), WORKED_EXAMPLE) == NETWPIN_MAC
    nowsms = bytes.fromhex(
        "030B6A0674657374310045C6560187070683000101C655018707068300018711060374657374315F4E41"
        "5049440001871006AB0187080603746573743200018709068901871401C65A01870C069A01870D060367"
        "707273757365726E616D650001870E06036770727370617373776F72640001010101"
    )
    assert mac_of(imsi_key("123456789012345"), nowsms) == "C483EC25F7E3E0CF100380DA5F6714CF204A5EC5"
    key = imsi_key("234150123456789") + b"1234"
    assert mac_of(key, WORKED_EXAMPLE) == "0DCA750F48A9E1C098BB838A674C60558091BF39"


def test_mac_checked_against_what_the_handset_holds() -> None:
    body = WORKED_EXAMPLE
    assert mac_is_valid("USERPIN", USERPIN_MAC, body, None, "1234")
    assert not mac_is_valid("USERPIN", USERPIN_MAC, body, None, "4321")
    assert not mac_is_valid("USERPIN", USERPIN_MAC.lower(), body, None, "1234")  # uppercase only
    assert mac_is_valid("NETWPIN", NETWPIN_MAC, body, "234150123456789", None)
    assert not mac_is_valid("NETWPIN", NETWPIN_MAC, body, "234150123456780", None)
    assert not mac_is_valid("NETWPIN", NETWPIN_MAC, body, None, None)  # IMSI unknown
    assert mac_is_valid(
        "USERNETWPIN", "0DCA750F48A9E1C098BB838A674C60558091BF39", body, "234150123456789", "1234"
    )
    assert not mac_is_valid(None, None, body, "234150123456789", "1234")


def test_userpinmac_pin_carries_its_own_mac_digits() -> None:
    digest = bytes.fromhex(mac_of(b"1234", WORKED_EXAMPLE))
    pin = "1234" + "".join(str(digest[i] % 10) for i in range(4))
    assert mac_is_valid("USERPINMAC", None, WORKED_EXAMPLE, None, pin)
    assert not mac_is_valid("USERPINMAC", None, WORKED_EXAMPLE, None, "12340000")


def test_ota_push_decoded_for_the_outcome_source() -> None:
    push = decode_ota_push("8613800138000", wsp_push(0, NETWPIN_MAC), "234150123456789", None)
    assert (push.msisdn, push.sec, push.mac, push.mac_valid) == (
        "8613800138000",
        "NETWPIN",
        NETWPIN_MAC,
        True,
    )
    assert push.parameters["ADDR"] == "http://mmsc.example.net/mms"
    assert "wap-provisioningdoc" in push.xml


def test_push_that_is_not_oma_cp_is_a_decode_error() -> None:
    with pytest.raises(OtaDecodeError, match="content type"):
        decode_ota_push("1", bytes([1, 6, 1, 0xAE]) + b"x", None, None)  # 0x2E: SI, not CP
    with pytest.raises(OtaDecodeError, match="WBXML"):
        decode_ota_push("1", wsp_push(1, USERPIN_MAC, WORKED_EXAMPLE[:100]), None, "1234")


def test_decoded_xml_is_well_formed_even_with_markup_in_values() -> None:
    doc = b"".join(
        [
            b"\x03\x0b\x6a\x00\xc5\x46\x01",
            characteristic(b"\x55", parm(b"\x07", s('a&b "c" <d>'))),
            END,
        ]
    )
    decoded = decode_prov(doc)
    root = defusedxml.ElementTree.fromstring(decoded.xml)
    assert root.find("characteristic/parm").get("value") == 'a&b "c" <d>'
    assert defusedxml.ElementTree.fromstring(decode_prov(WORKED_EXAMPLE).xml).tag == (
        "wap-provisioningdoc"
    )

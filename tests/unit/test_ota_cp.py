"""The OMA CP document model and its WBXML: the reference's bytes, tokens and XML text."""

from __future__ import annotations

import hashlib

import pytest

from mmsq.ota_cp import (
    Characteristic,
    Parm,
    ProvisioningDoc,
    build_mms_document,
    encode_wbxml,
    render_xml,
)
from tests.ota_tree import EXAMPLE_SETTINGS, EXAMPLE_WBXML, tree_of_doc, tree_of_xml


def one_parm(name: str, value: str | None, ctype: str = "NAPDEF") -> bytes:
    """The WBXML of a document holding one characteristic with one parm, minus the frame."""
    body = encode_wbxml(ProvisioningDoc((Characteristic(ctype, (Parm(name, value),)),)))
    return body[7:-2]  # header, <wap-provisioningdoc version=1.0> ... and the two ENDs


def test_worked_example_is_reproduced_byte_for_byte() -> None:
    body = encode_wbxml(build_mms_document(EXAMPLE_SETTINGS))
    assert body == EXAMPLE_WBXML
    assert len(body) == 309
    assert hashlib.sha1(body).hexdigest() == "bc38d4af5a1caeebdba3ee96389d4c16bf345a03"


def test_header_is_wbxml_1_3_prov_1_0_utf8_without_string_table() -> None:
    body = encode_wbxml(build_mms_document(EXAMPLE_SETTINGS))
    assert body[:4] == bytes((0x03, 0x0B, 0x6A, 0x00))
    assert body[4:7] == bytes((0xC5, 0x46, 0x01))  # <wap-provisioningdoc version="1.0">


def test_compact_form_stays_on_attribute_page_one_inside_application() -> None:
    compact = encode_wbxml(build_mms_document(EXAMPLE_SETTINGS), compact=True)
    assert len(compact) == 299
    assert bytes.fromhex("c6000155018736060377340001") in compact
    assert (
        compact[: EXAMPLE_WBXML.index(bytes.fromhex("c6000155"))]
        == EXAMPLE_WBXML[: EXAMPLE_WBXML.index(bytes.fromhex("c6000155"))]
    )


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("NAP-ADDRTYPE", "APN", "87 09 06 89 01"),
        ("PXADDRTYPE", "IPV4", "87 21 06 85 01"),
        ("BEARER", "GSM-GPRS", "87 10 06 ab 01"),
        ("AUTHTYPE", "PAP", "87 0c 06 9a 01"),
        ("SERVICE", "OTA-HTTP-PO", "87 24 06 d2 01"),
        ("PORTNBR", "8080", "87 23 06 03 38 30 38 30 00 01"),
    ],
)
def test_whole_values_defined_by_the_spec_become_value_tokens(
    name: str, value: str, expected: str
) -> None:
    assert one_parm(name, value)[3:] == bytes.fromhex(expected)


def test_appid_w4_is_an_inline_string_on_page_one_name_token() -> None:
    got = one_parm("APPID", "w4", "APPLICATION")
    assert got == bytes.fromhex("c6 00 01 55 01 87 36 00 00 06 03 77 34 00 01")


def test_values_are_matched_case_sensitively_and_never_by_substring() -> None:
    assert one_parm("NAP-ADDRTYPE", "apn")[3:] == bytes.fromhex("87 09 06 03 61 70 6e 00 01")
    shared = one_parm("NAME", "SHARED APN IPV4")[3:]
    assert shared == bytes.fromhex("87 07 06 03") + b"SHARED APN IPV4\x00\x01"


def test_tetra_bearers_are_inline_because_decoders_misspell_their_tokens() -> None:
    assert (
        one_parm("BEARER", "TETRA-SDS")[3:] == bytes.fromhex("87 10 06 03") + b"TETRA-SDS\x00\x01"
    )


def test_unknown_names_and_types_are_sent_inline() -> None:
    got = one_parm("X-VENDOR", "1", "X-EXT")
    assert got == bytes.fromhex("c6 50 03") + b"X-EXT\x00\x01" + bytes.fromhex(
        "87 05 03"
    ) + b"X-VENDOR\x00" + bytes.fromhex("06 03 31 00 01")


def test_utf8_names_are_inline_utf8() -> None:
    assert "中国移动彩信".encode() + b"\x00" in one_parm("NAME", "中国移动彩信")


def test_a_parm_without_value_and_an_empty_characteristic() -> None:
    doc = ProvisioningDoc((Characteristic("NAPDEF", (Parm("INTERNET"),)), Characteristic("PORT")))
    assert encode_wbxml(doc)[7:] == bytes.fromhex("c6 55 01 87 14 01 01 86 53 01 01")


def test_nul_cannot_be_encoded() -> None:
    with pytest.raises(ValueError, match="NUL"):
        one_parm("NAME", "a\x00b")


def test_xml_rendering_holds_the_same_tree_as_the_model() -> None:
    doc = build_mms_document(EXAMPLE_SETTINGS)
    xml = render_xml(doc)
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE wap-provisioningdoc')
    assert tree_of_xml(xml) == tree_of_doc(doc)


def test_xml_rendering_escapes_markup_and_keeps_whitespace() -> None:
    odd = 'a & <b> "c"\td\ne  f'
    doc = ProvisioningDoc((Characteristic("BOOTSTRAP", (Parm("NAME", odd),)),))
    assert tree_of_xml(render_xml(doc)) == tree_of_doc(doc)


def test_mms_document_links_application_to_proxy_and_proxy_to_nap() -> None:
    doc = build_mms_document(EXAMPLE_SETTINGS)
    types = [c.type for c in doc.characteristics]
    assert types == ["BOOTSTRAP", "NAPDEF", "PXLOGICAL", "APPLICATION"]
    app = doc.characteristics[3]
    assert Parm("APPID", "w4") in app.items
    assert Parm("TO-PROXY", EXAMPLE_SETTINGS.proxy_id) in app.items
    physical = doc.characteristics[2].items[2]
    assert isinstance(physical, Characteristic)
    assert Parm("TO-NAPID", EXAMPLE_SETTINGS.napid) in physical.items

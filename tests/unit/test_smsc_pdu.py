"""The SMSC simulator's SMPP 3.4 PDU codec, against PDU bodies written out by hand."""

from __future__ import annotations

from datetime import datetime

import pytest

from mmsq.simulators.smpp_pdu import (
    Cmd,
    PduError,
    Status,
    Tlv,
    decode_bind,
    decode_submit_sm,
    encode_bind_resp,
    encode_deliver_sm,
    encode_submit_sm_resp,
)
from mmsq.simulators.smsc import receipt_text

SUBMIT_BODY = b"".join(
    [
        b"\x00",  # service_type ""
        b"\x05\x00" + b"10086\x00",  # source: alphanumeric TON, "10086"
        b"\x01\x01" + b"8613800138000\x00",  # destination: international, ISDN
        b"\x40\x00\x00",  # esm_class UDHI, protocol_id, priority_flag
        b"\x00\x00",  # schedule_delivery_time, validity_period (both empty)
        b"\x01\x00\x08\x00",  # registered_delivery, replace_if_present, data_coding UCS2, default id
        b"\x08" + bytes.fromhex("050003010201") + "你".encode("utf-16-be"),
        b"\x04\x26\x00\x01\x01",  # TLV more_messages_to_send = 1
    ]
)


def test_submit_sm_fields() -> None:
    sm = decode_submit_sm(SUBMIT_BODY)
    assert (sm.source_addr, sm.destination_addr) == ("10086", "8613800138000")
    assert (sm.esm_class, sm.registered_delivery, sm.data_coding) == (0x40, 1, 8)
    assert sm.message == bytes.fromhex("050003010201") + "你".encode("utf-16-be")
    assert sm.tlvs == {0x0426: b"\x01"}


def test_message_payload_replaces_an_empty_short_message() -> None:
    head = SUBMIT_BODY[: SUBMIT_BODY.index(b"\x08\x05\x00\x03")]
    body = head + b"\x00" + b"\x04\x24\x00\x03abc"
    assert decode_submit_sm(body).message == b"abc"
    with pytest.raises(PduError):  # both at once is not allowed
        decode_submit_sm(head + b"\x01x" + b"\x04\x24\x00\x03abc")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (SUBMIT_BODY[:20], Status.INVCMDLEN),
        (SUBMIT_BODY[:40], Status.INVMSGLEN),  # short_message cut short
        (SUBMIT_BODY[:-2], Status.INVOPTPARSTREAM),  # TLV cut short
        (b"\x00\x01\x01" + b"9" * 30, Status.INVCMDLEN),  # address without terminator
    ],
    ids=["truncated", "short-message", "tlv", "no-nul"],
)
def test_malformed_submit_sm(body: bytes, status: int) -> None:
    with pytest.raises(PduError) as info:
        decode_submit_sm(body)
    assert info.value.status == status


def test_bind_body() -> None:
    req = decode_bind(b"mmsq\x00secret\x00VMA\x00\x34\x01\x01\x00")
    assert (req.system_id, req.password, req.system_type, req.interface_version) == (
        "mmsq",
        "secret",
        "VMA",
        0x34,
    )
    with pytest.raises(PduError):
        decode_bind(b"mmsq\x00secret\x00")


def test_responses_on_the_wire() -> None:
    assert encode_submit_sm_resp(Status.OK, 7, "1a") == bytes.fromhex(
        "00000013800000040000000000000007316100"
    )
    assert encode_submit_sm_resp(Status.THROTTLED, 8, "") == bytes.fromhex(
        "00000010800000040000005800000008"
    )
    ok = encode_bind_resp(Cmd.BIND_TRANSCEIVER, Status.OK, 1, "SMSC")
    assert ok[4:8] == bytes.fromhex("80000009")
    assert ok.endswith(b"SMSC\x00\x02\x10\x00\x01\x34")  # sc_interface_version 3.4


def test_deliver_sm_layout() -> None:
    pdu = encode_deliver_sm(5, "8613800138000", "10086", 0x04, 0, b"id:1", b"\x00\x1e\x00\x021\x00")
    assert pdu[:16] == bytes.fromhex("0000003d000000050000000000000005")
    body = pdu[16:]
    assert body.startswith(b"\x00\x01\x018613800138000\x00\x01\x0110086\x00\x04")
    assert body.endswith(b"\x04id:1" + b"\x00\x1e\x00\x021\x00")
    assert Tlv.RECEIPTED_MESSAGE_ID == 0x001E


def test_receipt_text_follows_appendix_b() -> None:
    text = receipt_text(
        "1a2b",
        "UNDELIV",
        "001",
        datetime(2026, 11, 22, 7, 5),
        datetime(2026, 11, 22, 7, 6),
        "hello",
    )
    assert text == (
        "id:1a2b sub:001 dlvrd:000 submit date:2611220705 done date:2611220706 "
        "stat:UNDELIV err:001 text:hello"
    )

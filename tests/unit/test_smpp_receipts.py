"""SMPP delivery receipts: text variants, TLV preference, message-id correlation forms."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmsq.adapters.smpp_receipt import (
    ReceiptParseError,
    message_id_variants,
    normalise_message_id,
    parse_receipt,
)

SPEC = (
    "id:0123456789 sub:001 dlvrd:001 submit date:2611220700 done date:2611220705 "
    "stat:DELIVRD err:000 text:Hello"
)


def test_spec_example_is_read_field_by_field() -> None:
    r = parse_receipt(SPEC, source_addr="8613800138000")
    assert r.message_id == "0123456789"
    assert (r.sub, r.dlvrd, r.stat, r.err, r.text) == ("001", "001", "DELIVRD", "000", "Hello")
    assert r.submit_date == datetime(2026, 11, 22, 7, 0, tzinfo=UTC)
    assert r.done_date == datetime(2026, 11, 22, 7, 5, tzinfo=UTC)
    report = r.to_report()
    assert (report.status_source, report.status_code, report.error_code, report.msisdn) == (
        "smpp",
        "DELIVRD",
        "000",
        "8613800138000",
    )


@pytest.mark.parametrize(
    ("text", "mid", "stat", "err"),
    [
        (
            "id:5F3A9C0B sub:001 dlvrd:000 submit date:261122070012 done date:261122071530 stat:UNDELIV err:027 Text:x",
            "5F3A9C0B",
            "UNDELIV",
            "027",
        ),
        (
            "stat:expired id:a1b2c3d4-e5f6-7788-99aa-bbccddeeff00 err:6",
            "a1b2c3d4-e5f6-7788-99aa-bbccddeeff00",
            "EXPIRED",
            "6",
        ),
        (
            "id:77 submit_date:20261122070000 done_date:20261122070500 stat:DELIVRD",
            "77",
            "DELIVRD",
            None,
        ),
        ("ID: 42  STAT: REJECTD  ERR: 0x0B", "42", "REJECTD", "0x0B"),
    ],
)
def test_vendor_variants_are_tolerated(text: str, mid: str, stat: str, err: str | None) -> None:
    r = parse_receipt(text)
    assert (r.message_id, r.stat, r.err) == (mid, stat, err)


def test_dates_with_seconds_and_four_digit_years() -> None:
    r = parse_receipt("id:1 submit date:261122070012 done date:20261122071530 stat:DELIVRD")
    assert r.submit_date == datetime(2026, 11, 22, 7, 0, 12, tzinfo=UTC)
    assert r.done_date == datetime(2026, 11, 22, 7, 15, 30, tzinfo=UTC)


def test_tlvs_win_over_the_text() -> None:
    r = parse_receipt(
        SPEC,
        tlvs={
            "receipted_message_id": b"ABC123\x00",
            "message_state": 5,
            "network_error_code": b"\x03\x00\x1b",
        },
    )
    assert (r.message_id, r.stat, r.err) == ("ABC123", "UNDELIV", "27")


def test_ascii_network_error_code_is_accepted() -> None:
    assert parse_receipt("id:1 stat:UNDELIV", tlvs={"network_error_code": b"032"}).err == "032"


def test_receipt_without_any_id_is_refused() -> None:
    with pytest.raises(ReceiptParseError, match="no message id"):
        parse_receipt("sub:001 dlvrd:001 stat:DELIVRD")


@pytest.mark.parametrize(
    ("mid", "canonical"),
    [("0000123", "123"), (" 5F3A9C0B\x00", "5f3a9c0b"), ("0x00ff", "ff"), ("0", "0"), ("", "")],
)
def test_message_ids_are_normalised(mid: str, canonical: str) -> None:
    assert normalise_message_id(mid) == canonical


def test_hex_and_decimal_forms_of_one_id_share_a_variant() -> None:
    assert message_id_variants("0x1F4") & message_id_variants("500")
    assert message_id_variants("00500") & message_id_variants("1f4")
    assert not message_id_variants("501") & message_id_variants("zz9")


@given(st.text(max_size=300))
def test_arbitrary_text_never_raises_anything_but_a_parse_error(text: str) -> None:
    with contextlib.suppress(ReceiptParseError):
        parse_receipt(text)

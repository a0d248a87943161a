"""SMPP 3.4 delivery receipts: spec text, vendor variants, TLV precedence, id correlation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmsq.adapters.smpp_receipt import (
    ReceiptParseError,
    SmppReceipt,
    dec_to_hex,
    hex_to_dec,
    message_id_variants,
    normalise_message_id,
    parse_receipt,
)

# SMPP 3.4 Appendix B layout, filled in.
SPEC_TEXT = (
    "id:0123456789 sub:001 dlvrd:001 submit date:0610191018 done date:0610191018 "
    "stat:DELIVRD err:000 text:Hello world, this is"
)


def test_spec_example_reads_every_field() -> None:
    r = parse_receipt(SPEC_TEXT)
    assert r == SmppReceipt(
        message_id="0123456789",
        sub="001",
        dlvrd="001",
        submit_date=datetime(2006, 10, 19, 10, 18, tzinfo=UTC),
        done_date=datetime(2006, 10, 19, 10, 18, tzinfo=UTC),
        stat="DELIVRD",
        err="000",
        text="Hello world, this is",
    )


def test_receipt_converts_to_a_domain_delivery_report() -> None:
    report = parse_receipt(SPEC_TEXT, source_addr="254712345678").to_report()
    assert report.status_source == "smpp"
    assert report.status_code == "DELIVRD"
    assert report.error_code == "000"
    assert report.message_id == "0123456789"
    assert report.msisdn == "254712345678"
    assert report.submitted_at == datetime(2006, 10, 19, 10, 18, tzinfo=UTC)
    assert report.done_at == datetime(2006, 10, 19, 10, 18, tzinfo=UTC)


def test_report_without_source_addr_has_empty_msisdn() -> None:
    assert parse_receipt(SPEC_TEXT).to_report().msisdn == ""


def test_kannel_style_receipt_with_hex_id() -> None:
    r = parse_receipt(
        "id:5F3A9C0B12 sub:001 dlvrd:000 submit date:2611220700 done date:2611220712 "
        "stat:UNDELIV err:027 text:Your MMS is waiting"
    )
    assert r.message_id == "5F3A9C0B12"
    assert (r.stat, r.err, r.dlvrd) == ("UNDELIV", "027", "000")


def test_receipt_can_arrive_as_bytes() -> None:
    assert parse_receipt(SPEC_TEXT.encode("ascii")).message_id == "0123456789"


def test_dates_with_seconds_and_four_digit_years_are_read() -> None:
    r = parse_receipt("id:77 submit date:261122070012 done date:20261122071530 stat:DELIVRD")
    assert r.submit_date == datetime(2026, 11, 22, 7, 0, 12, tzinfo=UTC)
    assert r.done_date == datetime(2026, 11, 22, 7, 15, 30, tzinfo=UTC)


def test_dates_take_the_smsc_time_zone_when_given() -> None:
    cst = timezone(timedelta(hours=8))
    r = parse_receipt("id:1 done date:2611221505 stat:DELIVRD", tz=cst)
    assert r.done_date == datetime(2026, 11, 22, 15, 5, tzinfo=cst)
    assert r.done_date.astimezone(UTC).hour == 7


@pytest.mark.parametrize("date", ["2613220700", "26112207001", "abc", "261122250000"])
def test_impossible_or_odd_length_dates_are_dropped(date: str) -> None:
    assert parse_receipt(f"id:1 done date:{date} stat:DELIVRD").done_date is None


def test_missing_sub_dlvrd_err_dates_and_text_give_none() -> None:
    r = parse_receipt("id:123456 stat:EXPIRED")
    assert (r.sub, r.dlvrd, r.err, r.text, r.submit_date, r.done_date) == (None,) * 6
    assert r.stat == "EXPIRED"


@pytest.mark.parametrize(
    ("text", "mid", "stat", "err"),
    [
        (
            "id:42 sub:001 dlvrd:001 submit date:2611220700 done date:2611220701 stat:DELIVRD err:000 Text:Hi",
            "42",
            "DELIVRD",
            "000",
        ),
        ("stat:delivrd err:0 id:abc123", "abc123", "DELIVRD", "0"),
        ("ID: 42  Sub: 001  Dlvrd: 001  Stat:  REJECTD  Err: 0x0B", "42", "REJECTD", "0x0B"),
        (
            "id:77 submit_date:20261122070000 done_date:20261122070500 stat:DELIVRD",
            "77",
            "DELIVRD",
            None,
        ),
        ("id:c0ffee-1234_abcd.01 stat:ENROUTE", "c0ffee-1234_abcd.01", "ENROUTE", None),
    ],
)
def test_vendor_spelling_order_and_spacing_variants_are_tolerated(
    text: str, mid: str, stat: str, err: str | None
) -> None:
    r = parse_receipt(text)
    assert (r.message_id, r.stat, r.err) == (mid, stat, err)


def test_capitalised_text_field_is_read_and_its_contents_do_not_override_fields() -> None:
    r = parse_receipt("id:9 stat:UNDELIV err:001 Text:re id:1 stat:DELIVRD")
    assert (r.message_id, r.stat, r.err) == ("9", "UNDELIV", "001")
    assert r.text == "re id:1 stat:DELIVRD"


def test_long_stat_spelling_is_not_truncated() -> None:
    assert parse_receipt("id:1 stat:DELIVERED").stat == "DELIVERED"


def test_ids_up_to_64_characters_are_accepted() -> None:
    mid = "a1b2c3d4" * 8
    assert parse_receipt(f"id:{mid} stat:DELIVRD").message_id == mid


def test_ids_longer_than_64_characters_are_refused_not_truncated() -> None:
    with pytest.raises(ReceiptParseError, match="64"):
        parse_receipt(f"id:{'9' * 65} stat:DELIVRD")


def test_tlvs_override_the_text() -> None:
    r = parse_receipt(
        SPEC_TEXT,
        tlvs={
            "receipted_message_id": b"5F3A9C0B\x00",
            "message_state": 5,
            "network_error_code": b"\x03\x00\x1b",
        },
        source_addr="8613800138000",
    )
    assert (r.message_id, r.stat, r.err) == ("5F3A9C0B", "UNDELIV", "27")
    assert r.sub == "001"  # text fields without a TLV counterpart are kept
    assert r.to_report().error_code == "27"


@pytest.mark.parametrize(
    ("state", "stat"),
    [
        (1, "ENROUTE"),
        (2, "DELIVRD"),
        (3, "EXPIRED"),
        (4, "DELETED"),
        (5, "UNDELIV"),
        (6, "ACCEPTD"),
        (7, "UNKNOWN"),
        (8, "REJECTD"),
        (9, "SKIPPED"),
        (b"\x02", "DELIVRD"),
        ("8", "REJECTD"),
        ("UNDELIVERABLE", "UNDELIV"),
    ],
)
def test_message_state_tlv_maps_to_stat_spelling(state: object, stat: str) -> None:
    assert parse_receipt("id:1 stat:ENROUTE", tlvs={"message_state": state}).stat == stat


def test_out_of_range_message_state_falls_back_to_the_text() -> None:
    assert parse_receipt("id:1 stat:EXPIRED", tlvs={"message_state": 42}).stat == "EXPIRED"


@pytest.mark.parametrize(
    ("code", "err"),
    [
        (b"\x03\x00\x1b", "27"),
        (b"\x01\x00\x22", "34"),
        (b"\x03\x01\x00", "256"),
        (b"032", "032"),
        ("027", "027"),
        (11, "11"),
    ],
)
def test_network_error_code_tlv_is_read_as_decimal(code: object, err: str) -> None:
    assert parse_receipt("id:1 stat:UNDELIV err:999", tlvs={"network_error_code": code}).err == err


def test_tlv_only_receipt_with_empty_text_is_accepted() -> None:
    r = parse_receipt(b"", tlvs={"receipted_message_id": "ABCDEF01\x00", "message_state": 2})
    assert (r.message_id, r.stat) == ("ABCDEF01", "DELIVRD")


def test_receipt_without_any_id_is_refused() -> None:
    with pytest.raises(ReceiptParseError, match="no message id"):
        parse_receipt("sub:001 dlvrd:001 done date:2611220705 stat:DELIVRD err:000")


def test_empty_receipted_message_id_tlv_does_not_hide_a_missing_id() -> None:
    with pytest.raises(ReceiptParseError, match="no message id"):
        parse_receipt("stat:DELIVRD", tlvs={"receipted_message_id": b"\x00"})


@pytest.mark.parametrize("text", ["", "Hello, are you coming tonight?", "STOP", "\x00\x00"])
def test_text_that_is_not_a_receipt_is_refused(text: str) -> None:
    with pytest.raises(ReceiptParseError, match="not a delivery receipt"):
        parse_receipt(text)


def test_an_id_alone_is_not_a_receipt() -> None:
    with pytest.raises(ReceiptParseError, match="not a delivery receipt"):
        parse_receipt("my order id: 12345 please call")


@pytest.mark.parametrize(
    ("mid", "canonical"),
    [
        ("0000123", "123"),
        ("123", "123"),
        (" 5F3A9C0B\x00", "5f3a9c0b"),
        ("005F3A", "5f3a"),
        ("0x00FF", "ff"),
        ("0", "0"),
        ("000", "0"),
        ("", ""),
        ("a1b2c3d4-E5F6-0000", "a1b2c3d4-e5f6-0000"),
        ("0msg-01", "0msg-01"),  # not a number: zeros are significant
    ],
)
def test_message_ids_are_normalised_for_correlation(mid: str, canonical: str) -> None:
    assert normalise_message_id(mid) == canonical


def test_hex_and_decimal_helpers_reinterpret_valid_ids_only() -> None:
    assert hex_to_dec("1F4") == "500"
    assert dec_to_hex("500") == "1f4"
    assert dec_to_hex("00500") == "1f4"
    assert dec_to_hex("1f4") is None
    assert hex_to_dec("zz9") is None
    assert hex_to_dec("") is None


def test_hex_id_from_submit_sm_resp_matches_decimal_id_in_receipt() -> None:
    # submit_sm_resp message_id "1F4" (hex); the receipt says id:500 (decimal).
    assert message_id_variants("1F4") & message_id_variants("500")
    assert message_id_variants("0x01F4") & message_id_variants("0000500")
    # an all-digit hex id: submit_sm_resp "1234" (hex) is 4660 in the receipt
    assert message_id_variants("1234") & message_id_variants("4660")


def test_variants_contain_the_canonical_form_and_nothing_unrelated() -> None:
    assert message_id_variants("00500") == frozenset({"500", "1f4", "1280"})
    assert message_id_variants("msg-01") == frozenset({"msg-01"})
    assert message_id_variants("") == frozenset()
    assert not message_id_variants("501") & message_id_variants("500")


_RECEIPT_WORDS = st.sampled_from(
    [
        "id:",
        "ID: ",
        "sub:",
        "dlvrd:",
        "submit date:",
        "done date:",
        "stat:",
        "err:",
        "text:",
        "Text:",
        "DELIVRD",
        "0x",
        "\x00",
        " ",
        "0610191018",
        "20261122071530",
        "5F3A",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=20), _RECEIPT_WORDS), max_size=30).map("".join))
def test_arbitrary_text_raises_only_receipt_parse_error(text: str) -> None:
    try:
        r = parse_receipt(text)
    except ReceiptParseError:
        return
    assert r.message_id
    assert len(r.message_id) <= 64
    r.to_report()

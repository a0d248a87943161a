"""Text SMS encoding: alphabet choice and segment counts at the boundaries."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmsq.sms_text import DC_DEFAULT, DC_UCS2, ESM_UDHI, encode_text, gsm7_septets


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("a" * 160, "gsm7", 1),
        ("a" * 161, "gsm7", 2),
        ("a" * 306, "gsm7", 2),
        ("a" * 307, "gsm7", 3),
        ("{" * 80, "gsm7", 1),  # 160 septets: every brace is an escape pair
        ("{" * 81, "gsm7", 2),
        ("中" * 70, "ucs2", 1),
        ("中" * 71, "ucs2", 2),
        ("中" * 134, "ucs2", 2),
        ("中" * 135, "ucs2", 3),
        ("a" * 159 + "€", "gsm7", 2),  # the euro sign costs two septets
        ("ça", "ucs2", 1),  # ç is not in the GSM default alphabet (Ç is)
    ],
)
def test_segment_counts(text: str, encoding: str, segments: int) -> None:
    sms = encode_text(text)
    assert (sms.encoding, sms.count) == (encoding, segments)


def test_single_segment_has_no_udh() -> None:
    seg = encode_text("Hello").segments[0]
    assert (seg.esm_class, seg.data_coding, seg.short_message) == (0, DC_DEFAULT, b"Hello")
    seg = encode_text("你好").segments[0]
    assert (seg.esm_class, seg.data_coding, seg.short_message) == (
        0,
        DC_UCS2,
        "你好".encode("utf-16-be"),
    )


def test_concatenated_parts_carry_reference_total_and_sequence() -> None:
    sms = encode_text("中" * 150, reference=0x2A)
    assert [s.short_message[:6] for s in sms.segments] == [
        bytes((5, 0, 3, 0x2A, 3, n)) for n in (1, 2, 3)
    ]
    assert all(s.esm_class == ESM_UDHI and len(s.short_message) <= 140 for s in sms.segments)


def test_escape_pair_and_surrogate_pair_never_straddle_parts() -> None:
    gsm = encode_text("a" * 152 + "€" + "b" * 10)
    assert gsm.segments[0].short_message[-1] != 0x1B
    emoji = encode_text("中" * 66 + "😀" + "中" * 10)
    first = emoji.segments[0].short_message[6:]
    assert not 0xD8 <= first[-2] <= 0xDB


def test_too_long_text_is_refused() -> None:
    with pytest.raises(ValueError, match="255"):
        encode_text("中" * 67 * 256)


@given(st.text(max_size=600))
def test_parts_reassemble_to_the_text(text: str) -> None:
    sms = encode_text(text)
    bodies = [
        s.short_message[6:] if s.esm_class & ESM_UDHI else s.short_message for s in sms.segments
    ]
    if sms.encoding == "ucs2":
        assert b"".join(bodies).decode("utf-16-be") == text
    else:
        assert list(b"".join(bodies)) == gsm7_septets(text)

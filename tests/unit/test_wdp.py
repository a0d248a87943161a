"""WDP over SMS: UDH bytes, the one-SMS and per-segment capacities, reassembly."""

from __future__ import annotations

import pytest

from mmsq.wap_push import PushSecurity, SecurityMethod, push_pdu
from mmsq.wdp import SmsSegment, segment_datagram
from tests.ota_tree import EXAMPLE_WBXML


def information_elements(udh: bytes) -> dict[int, bytes]:
    """Read a UDH (UDHL first) into {IEI: data}, independently of the encoder."""
    assert udh[0] == len(udh) - 1
    ies: dict[int, bytes] = {}
    i = 1
    while i < len(udh):
        iei, length = udh[i], udh[i + 1]
        ies[iei] = udh[i + 2 : i + 2 + length]
        i += 2 + length
    assert i == len(udh)
    return ies


def reassemble(segments: list[SmsSegment]) -> bytes:
    ordered = sorted(segments, key=lambda s: information_elements(s.udh).get(0, b"\0\1\1")[2])
    return b"".join(s.short_message[s.short_message[0] + 1 :] for s in ordered)


def test_133_octets_fit_one_sms_with_the_port_element_only() -> None:
    (seg,) = segment_datagram(bytes(133))
    assert seg.udh == bytes.fromhex("06 05 04 0B 84 23 F0")
    assert len(seg.short_message) == 140
    assert (seg.esm_class, seg.data_coding) == (0x40, 0x04)


def test_134_octets_need_two_segments_of_128_and_6() -> None:
    segments = segment_datagram(bytes(range(134)))
    assert [len(s.payload) for s in segments] == [128, 6]
    assert segments[0].udh == bytes.fromhex("0B 05 04 0B 84 23 F0 00 03 00 02 01")
    assert segments[1].udh == bytes.fromhex("0B 05 04 0B 84 23 F0 00 03 00 02 02")
    assert reassemble(segments) == bytes(range(134))


@pytest.mark.parametrize(("size", "count"), [(256, 2), (257, 3), (128 * 255, 255)])
def test_each_segment_carries_128_octets(size: int, count: int) -> None:
    segments = segment_datagram(bytes(size))
    assert len(segments) == count
    assert all(len(s.payload) == 128 for s in segments[:-1])
    assert all(len(s.short_message) <= 140 for s in segments)
    assert all(s.total == count for s in segments)


def test_more_than_255_segments_is_refused() -> None:
    with pytest.raises(ValueError, match="255"):
        segment_datagram(bytes(128 * 255 + 1))


def test_port_element_is_in_every_segment_with_configurable_source_and_reference() -> None:
    segments = segment_datagram(bytes(300), src_port=2948, reference=0xA7)
    for n, seg in enumerate(segments, start=1):
        ies = information_elements(seg.udh)
        assert ies[0x05] == bytes.fromhex("0B 84 0B 84")
        assert ies[0x00] == bytes((0xA7, 3, n))


def test_worked_example_segments_as_kannel_sent_them() -> None:
    mac = "6A4F4C740FF39B7E9EA81813BEE7668B104B7CD6"
    pdu = push_pdu(EXAMPLE_WBXML, PushSecurity(SecurityMethod.USERPIN, mac))
    segments = segment_datagram(pdu, src_port=2948, reference=0)
    assert [len(s.payload) for s in segments] == [128, 128, 103]
    assert [len(s.short_message) for s in segments] == [140, 140, 115]
    assert [s.udh for s in segments] == [
        bytes.fromhex(f"0B 05 04 0B 84 0B 84 00 03 00 03 0{n}") for n in (1, 2, 3)
    ]
    assert reassemble(segments) == pdu


@pytest.mark.parametrize(
    "kwargs", [{"reference": 256}, {"reference": -1}, {"src_port": 70000}, {"dest_port": -1}]
)
def test_out_of_range_header_fields_are_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=r"port|reference"):
        segment_datagram(bytes(200), **kwargs)


def test_empty_datagram_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        segment_datagram(b"")

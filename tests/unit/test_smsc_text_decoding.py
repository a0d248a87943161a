"""The SMSC simulator's own text decoders: GSM 7-bit, UDH, data_coding, reassembly.

Vectors are built by hand here (septets packed with a bit string, UDH octets spelled out),
never by an encoder of the project.
"""

from __future__ import annotations

import pytest

from mmsq.simulators.gsm7 import decode_septets, fill_bits, unpack_septets
from mmsq.simulators.smpp_pdu import SubmitSm, Tlv
from mmsq.simulators.sms_reassembly import Kind, Reassembler, split_segment
from mmsq.simulators.sms_userdata import (
    Alphabet,
    Concat,
    UserDataError,
    alphabet_of,
    decode_units,
    parse_udh,
)

# GSM 03.38 septet values of a few characters, from the table in 3GPP TS 23.038 6.2.1.
G = {"H": 0x48, "e": 0x65, "l": 0x6C, "o": 0x6F, " ": 0x20, "@": 0x00, "£": 0x01, "§": 0x5F}


def pack(septets: list[int], fill: int = 0) -> bytes:
    """Reference packer: a little-endian bit string, septet after septet, after fill bits."""
    bits = "0" * fill + "".join(format(s, "07b")[::-1] for s in septets)
    bits += "0" * (-len(bits) % 8)
    return bytes(int(bits[i : i + 8][::-1], 2) for i in range(0, len(bits), 8))


def test_default_alphabet_and_extension_table() -> None:
    assert decode_septets(bytes([0x48, 0x65, 0x6C, 0x6C, 0x6F])) == "Hello"
    assert decode_septets(bytes([0x00, 0x01, 0x02, 0x5F, 0x60, 0x11, 0x10])) == "@£$§¿_Δ"
    assert decode_septets(bytes([0x1B, 0x65, 0x1B, 0x28, 0x1B, 0x29, 0x1B, 0x3C])) == "€{}["
    assert decode_septets(bytes([0x1B, 0x14, 0x1B, 0x2F, 0x1B, 0x3D, 0x1B, 0x40])) == "^\\~|"


def test_unknown_extension_code_shows_the_default_character() -> None:
    assert decode_septets(bytes([0x1B, 0x41])) == "A"


def test_classic_packed_vector_hellohello() -> None:
    # The textbook example: "hellohello" packs to E8 32 9B FD 46 97 D9 EC 37.
    packed = bytes.fromhex("E8329BFD4697D9EC37")
    assert decode_septets(unpack_septets(packed)) == "hellohello"


def test_packed_after_a_udh_skips_the_fill_bits() -> None:
    assert fill_bits(6) == 1  # 05 00 03 rr tt nn: 48 bits, 1 fill bit to reach 49
    assert fill_bits(7) == 0  # 06 08 04 ...: 56 bits, already a septet boundary
    text = [G[c] for c in "Hello Hello"]
    assert decode_septets(unpack_septets(pack(text, 1), 1)) == "Hello Hello"


@pytest.mark.parametrize("pad", [0x00, 0x0D])
def test_seven_spare_bits_are_not_read_as_a_character(pad: int) -> None:
    seven = [G[c] for c in "Hello H"]  # 7 septets = 49 bits in 7 octets: 7 spare bits
    packed = pack([*seven, pad])  # the padding septet fills the last octet exactly
    assert len(packed) == 7
    assert decode_septets(unpack_septets(packed)) == "Hello H"


def test_alphabets_named_by_data_coding() -> None:
    assert alphabet_of(0x00) is Alphabet.GSM7
    assert alphabet_of(0x01) is Alphabet.ASCII
    assert alphabet_of(0x03) is Alphabet.LATIN1
    assert alphabet_of(0x08) is Alphabet.UCS2
    assert alphabet_of(0x04) is Alphabet.BINARY
    assert alphabet_of(0x02) is Alphabet.BINARY
    assert alphabet_of(0xF5) is Alphabet.BINARY  # 8-bit data, class 1
    assert alphabet_of(0xF0) is Alphabet.GSM7
    assert alphabet_of(0x18) is Alphabet.UCS2  # general group, UCS2 with class
    assert alphabet_of(0x10) is Alphabet.GSM7


def test_udh_concatenation_and_ports() -> None:
    udh = parse_udh(bytes.fromhex("050003A70302") + b"rest")
    assert (udh.length, udh.concat) == (6, Concat(0xA7, 3, 2))
    udh16 = parse_udh(bytes.fromhex("06080412340201") + b"x")
    assert (udh16.length, udh16.concat) == (7, Concat(0x1234, 2, 1))
    push = parse_udh(bytes.fromhex("0B05040B840B8400030A0201"))
    assert (push.dest_port, push.src_port, push.concat) == (2948, 2948, Concat(10, 2, 1))


@pytest.mark.parametrize(
    "raw",
    [b"", bytes.fromhex("0A0003"), bytes.fromhex("050003010300"), bytes.fromhex("0300050101")],
    ids=["empty", "udhl-too-long", "seq-zero", "element-past-header"],
)
def test_bad_udh_is_refused(raw: bytes) -> None:
    with pytest.raises(UserDataError):
        parse_udh(raw)


def test_ucs2_surrogate_pair_and_odd_length() -> None:
    assert decode_units(Alphabet.UCS2, "你好😀".encode("utf-16-be")) == "你好😀"
    with pytest.raises(UserDataError):
        decode_units(Alphabet.UCS2, b"\x4f")
    with pytest.raises(UserDataError):
        decode_units(Alphabet.UCS2, b"\xd8\x3d")  # a lone high surrogate


def _sm(
    message: bytes, esm: int = 0, dc: int = 0, tlvs: dict[int, bytes] | None = None
) -> SubmitSm:
    return SubmitSm("10086", "8613800138000", esm, 1, dc, message, tlvs or {})


def test_ucs2_reassembly_across_a_split_surrogate_pair() -> None:
    body = "新闻😀".encode("utf-16-be")  # 4E 30 95 FB D8 3D DE 00
    parts = [body[:6], body[6:]]  # the pair D83D|DE00 is cut in two
    r = Reassembler()
    done = []
    for seq, part in enumerate(parts, 1):
        sm = _sm(bytes([5, 0, 3, 0x42, 2, seq]) + part, esm=0x40, dc=8)
        done.append(r.add(sm, split_segment(sm)))
    assert done[0] is None
    assert done[1] is not None
    assert (done[1].text(), done[1].segments) == ("新闻😀", 2)


def test_unpacked_gsm7_with_udh_and_sar_tlvs() -> None:
    r = Reassembler()
    # smpplib-style: one septet per octet after the UDH (no top bit set: read as unpacked).
    first = _sm(bytes([5, 0, 3, 9, 2, 1]) + b"Hello ", esm=0x40)
    assert r.add(first, split_segment(first)) is None
    second = _sm(bytes([5, 0, 3, 9, 2, 2]) + bytes([0x1B, 0x65]), esm=0x40)
    msg = r.add(second, split_segment(second))
    assert msg is not None
    assert msg.text() == "Hello €"
    sar = {Tlv.SAR_MSG_REF_NUM: b"\x01\x00", Tlv.SAR_TOTAL_SEGMENTS: b"\x02"}
    a = _sm("été ".encode("latin-1"), dc=3, tlvs={**sar, Tlv.SAR_SEGMENT_SEQNUM: b"\x01"})
    b = _sm("à Pékin".encode("latin-1"), dc=3, tlvs={**sar, Tlv.SAR_SEGMENT_SEQNUM: b"\x02"})
    assert r.add(b, split_segment(b)) is None  # out of order is fine
    whole = r.add(a, split_segment(a))
    assert whole is not None
    assert whole.text() == "été à Pékin"


def test_packed_gsm7_segments_with_udh() -> None:
    r = Reassembler()
    out = None
    for seq, chunk in enumerate(["Hello ", "Hello"], 1):
        packed = pack([G[c] for c in chunk], fill_bits(6))
        sm = _sm(bytes([5, 0, 3, 7, 2, seq]) + packed, esm=0x40)
        out = r.add(sm, split_segment(sm, "packed"))
    assert out is not None
    assert out.text() == "Hello Hello"


def test_wap_push_segments_are_kept_binary() -> None:
    sm = _sm(bytes.fromhex("0605040B840B84") + b"\x01\x06\x01\xb6", esm=0x40, dc=0xF5)
    seg = split_segment(sm)
    assert (seg.kind, seg.units, seg.dest_port) == (Kind.PUSH, b"\x01\x06\x01\xb6", 2948)


def test_receipt_excerpt_is_the_first_twenty_characters() -> None:
    sm = _sm("MMS 设置帮助。请打开数据连接并重启手机后再试一次。谢谢".encode("utf-16-be"), dc=8)
    assert split_segment(sm).excerpt() == "MMS 设置帮助。请打开数据连接并重启手"

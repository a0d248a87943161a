"""The GSM 7-bit default alphabet and its extension table (3GPP TS 23.038 section 6.2.1), and
septet unpacking with fill bits (3GPP TS 23.040 section 9.2.3.24).

Decoding only: the simulator reads what clients send and never encodes GSM 7-bit text.
"""

from __future__ import annotations

__all__ = ["ESCAPE", "decode_septets", "fill_bits", "unpack_septets"]

ESCAPE = 0x1B

# Index = septet value. 0x1B is the escape to the extension table (decoded separately).
_DEFAULT = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
assert len(_DEFAULT) == 128

_EXTENSION = {
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
    # 23.038: the escape repeated is reserved for another table; display a space meanwhile.
    0x1B: " ",
}


def decode_septets(septets: bytes) -> str:
    """Septet values (one per octet, 0-127) to text, following escapes into the extension
    table. An unknown extension code shows as the default-alphabet character (23.038 note)."""
    if ESCAPE not in septets:
        return "".join([_DEFAULT[s & 0x7F] for s in septets])
    out: list[str] = []
    escaped = False
    for octet in septets:
        s = octet & 0x7F
        if escaped:
            out.append(_EXTENSION.get(s, _DEFAULT[s]))
            escaped = False
        elif s == ESCAPE:
            escaped = True
        else:
            out.append(_DEFAULT[s])
    if escaped:  # a lone escape at the very end shows as a space
        out.append(" ")
    return "".join(out)


def fill_bits(udh_octets: int) -> int:
    """Fill bits after a UDH of ``udh_octets`` octets (UDHL included) so that the first
    septet starts on a septet boundary (23.040 section 9.2.3.24)."""
    return (7 - (udh_octets * 8) % 7) % 7


def unpack_septets(packed: bytes, fill: int = 0) -> bytes:
    """Unpack GSM 7-bit packed octets (bit 0 of octet 0 first) after ``fill`` fill bits.

    SMPP carries no septet count, so 7 spare bits at the end look like one more septet: a
    trailing ``@`` (zero padding) or CR (the padding 23.038 section 6.1.2.3.1 prescribes) that
    exactly completes the last octet is taken as padding and dropped.
    """
    bits = len(packed) * 8 - fill
    if bits < 7:
        return b""
    n = bits // 7
    value = int.from_bytes(packed, "little") >> fill
    septets = bytes([(value >> (7 * i)) & 0x7F for i in range(n)])
    if (n * 7 + fill) % 8 == 0 and septets[-1] in (0x00, 0x0D):
        septets = septets[:-1]
    return septets

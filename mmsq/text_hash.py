"""Hashes of text columns, exactly as pandas makes them, without a Python object per row.

``pd.util.hash_array`` of a text column encodes each value to UTF-8 in Python and hashes it
with SipHash-2-4 (key ``"0123456789123456"``), then mixes the 64 bits (splitmix64). Arrow
already holds the UTF-8 bytes, so here SipHash runs over them in numpy, all rows of one
length at a time, in blocks of rows that stay in the CPU cache (numpy releases the GIL, so
another thread can run meanwhile). The result is the same, value for value: a unit test holds
it to pandas' own. The bytes are reached through pandas' Arrow protocol: the core imports
no I/O library, pyarrow included.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = ["hash_text"]

_U64 = npt.NDArray[np.uint64]

#: pandas' default hash key, as SipHash's two key words.
_K0, _K1 = (int(k) for k in np.frombuffer(b"0123456789123456", dtype="<u8"))
_V0 = np.uint64(_K0 ^ 0x736F6D6570736575)
_V1 = np.uint64(_K1 ^ 0x646F72616E646F6D)
_V2 = np.uint64(_K0 ^ 0x6C7967656E657261)
_V3 = np.uint64(_K1 ^ 0x7465646279746573)
_FF = np.uint64(0xFF)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
#: What pandas gives a missing value.
_MISSING = np.uint64(np.iinfo(np.uint64).max)
#: Rows hashed at a time: a few arrays of this many words stay in the cache.
_BLOCK = 1 << 14


def _rotl(x: _U64, bits: int, tmp: _U64) -> None:
    np.right_shift(x, np.uint64(64 - bits), out=tmp)
    np.left_shift(x, np.uint64(bits), out=x)
    x |= tmp


def _rounds(v0: _U64, v1: _U64, v2: _U64, v3: _U64, tmp: _U64, n: int) -> None:
    for _ in range(n):
        v0 += v1
        _rotl(v1, 13, tmp)
        v1 ^= v0
        _rotl(v0, 32, tmp)
        v2 += v3
        _rotl(v3, 16, tmp)
        v3 ^= v2
        v0 += v3
        _rotl(v3, 21, tmp)
        v3 ^= v0
        v2 += v1
        _rotl(v1, 17, tmp)
        v1 ^= v2
        _rotl(v2, 32, tmp)


def _siphash(words: _U64) -> _U64:
    """SipHash-2-4 of rows of little-endian words (the last one holding the tail bytes and
    the length in its top byte, as SipHash pads), then pandas' splitmix64 mixing."""
    n = len(words)
    v0 = np.full(n, _V0)
    v1 = np.full(n, _V1)
    v2 = np.full(n, _V2)
    v3 = np.full(n, _V3)
    tmp = np.empty(n, dtype=np.uint64)
    for j in range(words.shape[1]):
        m = np.ascontiguousarray(words[:, j])
        v3 ^= m
        _rounds(v0, v1, v2, v3, tmp, 2)
        v0 ^= m
    v2 ^= _FF
    _rounds(v0, v1, v2, v3, tmp, 4)
    v0 ^= v1
    v0 ^= v2
    v0 ^= v3
    np.right_shift(v0, np.uint64(30), out=tmp)
    v0 ^= tmp
    v0 *= _MIX1
    np.right_shift(v0, np.uint64(27), out=tmp)
    v0 ^= tmp
    v0 *= _MIX2
    np.right_shift(v0, np.uint64(31), out=tmp)
    v0 ^= tmp
    return v0


def _padded(text: npt.NDArray[np.uint8], length: int) -> _U64:
    """Rows of ``length`` bytes -> rows of SipHash words (zero padded, length in the top
    byte of the last word)."""
    width = (length // 8 + 1) * 8
    padded = np.zeros((len(text), width), dtype=np.uint8)
    padded[:, :length] = text
    padded[:, width - 1] = length & 0xFF
    return padded.view("<u8")


def _large_strings(values: pd.Series) -> Any:
    """The column as one Arrow array of large strings (what pandas' Arrow-backed ``string``
    dtype holds already), through the ``__arrow_array__`` protocol of its pandas array."""
    text: Any = values.astype("string").array  # a pandas StringArray: it speaks Arrow
    arr = text.__arrow_array__()
    if hasattr(arr, "combine_chunks"):
        arr = arr.combine_chunks()
    if str(arr.type) != "large_string":
        arr = arr.cast("large_string")
    return arr


def hash_text(values: pd.Series) -> _U64:
    """``pd.util.hash_array`` of a text column (missing values included), as uint64."""
    arr = _large_strings(values)
    n = len(arr)
    out = np.empty(n, dtype=np.uint64)
    if not n:
        return out
    _, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[arr.offset : arr.offset + n + 1]
    data = (
        np.frombuffer(data_buf, dtype=np.uint8)
        if data_buf is not None
        else np.zeros(0, dtype=np.uint8)
    )
    lengths = np.diff(offsets)
    first, last = int(lengths.min()), int(lengths.max())
    if first == last:  # one length (MSISDNs, most ids): the bytes are one matrix already
        text = data[int(offsets[0]) : int(offsets[0]) + n * first].reshape(n, first)
        for a in range(0, n, _BLOCK):
            out[a : a + _BLOCK] = _siphash(_padded(text[a : a + _BLOCK], first))
    else:
        for length in np.unique(lengths).tolist():
            rows = np.flatnonzero(lengths == length)
            for a in range(0, len(rows), _BLOCK):
                block = rows[a : a + _BLOCK]
                at = offsets[block][:, None] + np.arange(length, dtype=np.int64)
                out[block] = _siphash(_padded(data[at], length))
    if arr.null_count:
        out[np.asarray(arr.is_null())] = _MISSING
    return out

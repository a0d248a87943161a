"""The columnar block layout of stored events, aggregates and devices (Arrow IPC, zstd).

A block is one Arrow IPC stream in a BLOB/bytea column. MSISDNs are int64 E.164 digits inside
blocks (``+8613800138000`` is ``8613800138000``): eight bytes, and sortable.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mmsq.aggregates import COUNT_COLUMNS

__all__ = [
    "AGGREGATE_SCHEMA",
    "DEVICE_PARTS",
    "DEVICE_SCHEMA",
    "EVENT_SCHEMA",
    "PARTS",
    "SEGMENT_ROWS",
    "decode",
    "decode_columns",
    "encode",
    "encode_framed",
    "key_partition",
    "msisdn_digits",
    "msisdn_text",
]

#: MSISDN partitions of aggregate blocks (an ingest rewrites the ones it touches).
PARTS = 64
#: MSISDN partitions of device blocks: small ones (about 370 subscribers for 1.5M), because an
#: agent's diagnosis reads one per request; an ingest rewrites only those whose devices changed.
DEVICE_PARTS = 4096
#: Events per segment: small enough that a per-subscriber look-up decodes little.
SEGMENT_ROWS = 16384

_TEXT_CODES = pa.dictionary(pa.int32(), pa.string())
#: Segments written by revision 0002's data migration hold plain strings where this schema
#: has dictionaries; readers go by column name and accept either.
EVENT_SCHEMA = pa.schema(
    [
        ("event_key", pa.int64()),
        ("msisdn", pa.int64()),
        ("message_id", pa.string()),
        ("edition", _TEXT_CODES),
        ("status_source", _TEXT_CODES),
        ("status_code", _TEXT_CODES),
        ("error_code", _TEXT_CODES),
        ("cause", _TEXT_CODES),
        ("final", pa.bool_()),
        ("notify_ok", pa.int8()),
        ("imei", pa.string()),
        ("region", _TEXT_CODES),
        ("submitted_ts", pa.int64()),
        ("done_ts", pa.int64()),
        ("day", pa.date32()),
    ]
)
AGGREGATE_SCHEMA = pa.schema(
    [("msisdn", pa.int64()), *((c, pa.int32()) for c in COUNT_COLUMNS), ("last_ts", pa.int64())]
)
DEVICE_SCHEMA = pa.schema(
    [("msisdn", pa.int64()), ("imei", pa.string()), ("tac", pa.string()), ("seen_ts", pa.int64())]
)

_SMALL = pa.ipc.IpcWriteOptions(compression=pa.Codec("zstd", compression_level=1))
_FAST = pa.ipc.IpcWriteOptions(compression="lz4")
_LZ4_FRAME_MAGIC = b"\x04\x22\x4d\x18"


def encode(table: pa.Table, fast_read: bool = False) -> bytes:
    """One Arrow IPC stream: zstd (small), or lz4 where reading speed matters more than size
    (aggregate blocks, which scoring reads by the month)."""
    sink = pa.BufferOutputStream()
    options = _FAST if fast_read else _SMALL
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def encode_framed(table: pa.Table) -> bytes:
    """One Arrow IPC stream, uncompressed, inside one LZ4 frame: for small blocks read one at
    a time (device blocks), where per-buffer compression costs more to set up than to run
    (a few hundred rows decode in tens of microseconds instead of hundreds)."""
    sink = pa.BufferOutputStream()
    with (
        pa.CompressedOutputStream(sink, "lz4") as frame,
        pa.ipc.new_stream(frame, table.schema) as writer,
    ):
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def decode(data: bytes) -> pa.Table:
    """A block written by ``encode`` or ``encode_framed`` (told apart by the LZ4 frame magic)."""
    if data[:4] == _LZ4_FRAME_MAGIC:
        return pa.ipc.open_stream(pa.CompressedInputStream(pa.BufferReader(data), "lz4")).read_all()
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all()


def decode_columns(data: bytes, names: Sequence[str]) -> pa.Table:
    """Only the named columns of a block (the others are not even decompressed); a name the
    block lacks is left out. Columns come in the block's order."""
    buf = pa.py_buffer(data)
    schema = pa.ipc.open_stream(buf).schema
    wanted = set(names)
    fields = [i for i, name in enumerate(schema.names) if name in wanted]
    options = pa.ipc.IpcReadOptions(included_fields=fields)
    return pa.ipc.open_stream(buf, options=options).read_all()


def msisdn_digits(msisdn: pd.Series) -> npt.NDArray[np.int64]:
    """E.164 text (``+8613800138000``) -> int64 digits, vectorised in Arrow."""
    arr = pa.array(msisdn, type=pa.string(), from_pandas=True)
    digits = pc.utf8_ltrim(arr, characters="+")
    return np.asarray(pc.cast(digits, pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)


def msisdn_text(digits: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray | pa.Array:
    """int64 digits -> E.164 text."""
    return pc.binary_join_element_wise("+", pc.cast(digits, pa.string()), "")


def key_partition(
    done_ts: npt.NDArray[np.int64],
    done_known: npt.NDArray[np.bool_],
    submitted_ts: npt.NDArray[np.int64],
) -> npt.NDArray[np.int64]:
    """Partition of an event key: the UTC day of the done time, so that an identity (which
    includes the done time) always lands in the same partition; pending events (no done time)
    go to ``-1 - UTC day of submission``."""
    return np.where(done_known, done_ts // 86400, -1 - submitted_ts // 86400)

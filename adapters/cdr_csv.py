"""The MMSC's nightly CDR export: CSV with a header row, UTF-8, optionally gzip.

Read in byte chunks cut at line ends, each parsed by pyarrow; rows with the wrong number of
columns or bytes that are not UTF-8 are quarantined with their line number, never fatal.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from mmsq.domain import QuarantinedRecord
from mmsq.ingest import INPUT_COLUMNS, REQUIRED_COLUMNS
from mmsq.ports import RawChunk

__all__ = ["CdrFileError", "CdrFileReader"]


class CdrFileError(ValueError):
    """The file cannot be read at all (missing, empty, no header, required columns absent)."""


def _is_gzip(fh: IO[bytes]) -> bool:
    magic = fh.read(2)
    fh.seek(0)
    return magic == b"\x1f\x8b"


_NEWLINE = ord("\n")


def _last_newline(view: memoryview, end: int) -> int:
    """Position of the last newline before ``end``, or -1 (searched backwards, 64 KiB at a
    time: it is near the end unless a line is longer than a chunk)."""
    pos = end
    while pos > 0:
        start = max(0, pos - 65536)
        found = view[start:pos].tobytes().rfind(b"\n")
        if found >= 0:
            return start + found
        pos = start
    return -1


def _count_newlines(data: npt.NDArray[np.uint8], step: int = 1 << 20) -> int:
    """Newlines in ``data``, counted a MiB at a time: one comparison of the whole chunk made
    a 32 MiB mask of fresh pages per chunk; a MiB-sized one is reused."""
    return sum(
        int(np.count_nonzero(data[a : a + step] == _NEWLINE)) for a in range(0, len(data), step)
    )


def _read_csv(
    data: npt.NDArray[np.uint8],
    header: list[str],
    kind: pa.DataType,
    on_invalid: Callable[[Any], str],
    columns: tuple[str, ...] = INPUT_COLUMNS,
) -> pa.Table:
    """Every input column as ``kind`` (string or binary), in one block, one thread."""
    return pacsv.read_csv(
        pa.BufferReader(pa.py_buffer(data)),
        read_options=pacsv.ReadOptions(
            column_names=header, use_threads=False, block_size=len(data) + 1
        ),
        parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid, ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(header, kind),
            include_columns=[h for h in header if h in columns],
            strings_can_be_null=False,
        ),
    )


def _text_column(col: pa.ChunkedArray, undecodable: np.ndarray) -> pd.Series:
    """A text column as pandas strings; rows whose bytes are not UTF-8 become <NA> and are
    flagged in ``undecodable``. Arrow's large strings are what pandas' ``string`` dtype holds,
    so a column read as text is wrapped without a copy."""
    if pa.types.is_large_string(col.type):
        return pd.Series(pd.arrays.ArrowStringArray(col), copy=False)
    if pa.types.is_string(col.type):
        return pd.Series(pd.arrays.ArrowStringArray(col.cast(pa.large_string())), copy=False)
    try:
        text = col.cast(pa.large_string())
        return pd.Series(pd.arrays.ArrowStringArray(text), copy=False)
    except (pa.ArrowInvalid, UnicodeDecodeError):
        decoded: list[str | None] = []
        for i, v in enumerate(col.to_pylist()):
            try:
                decoded.append(v.decode("utf-8") if v is not None else None)
            except UnicodeDecodeError:
                undecodable[i] = True
                decoded.append(None)
        return pd.Series(decoded, dtype="string")


class CdrFileReader:
    """Streams one CDR file as raw chunks of text columns with their line numbers."""

    #: Columns read (others are ignored) and columns the header must name.
    columns: tuple[str, ...] = INPUT_COLUMNS
    required: tuple[str, ...] = REQUIRED_COLUMNS

    def __init__(self, path: Path, chunk_bytes: int = 32 * 1024 * 1024) -> None:
        self.path = path
        self.source = str(path)
        self.chunk_bytes = chunk_bytes
        self.total_bytes: int | None = path.stat().st_size if path.exists() else None

    def chunks(self) -> Iterator[RawChunk]:
        if not self.path.is_file():
            raise CdrFileError(f"{self.path}: no such file")
        with self.path.open("rb") as raw_fh:
            fh: io.BufferedIOBase = (
                gzip.GzipFile(fileobj=raw_fh, mode="rb") if _is_gzip(raw_fh) else raw_fh
            )
            try:
                yield from self._stream(fh, raw_fh)
            finally:
                fh.close()

    def _stream(self, fh: io.BufferedIOBase, raw_fh: IO[bytes]) -> Iterator[RawChunk]:
        header_line = fh.readline()
        if not header_line.strip():
            raise CdrFileError(f"{self.path}: empty file or no header row")
        try:
            header = [
                h.strip().lower() for h in header_line.decode("utf-8-sig").rstrip("\r\n").split(",")
            ]
        except UnicodeDecodeError as exc:
            raise CdrFileError(f"{self.path}: header row is not UTF-8") from exc
        missing = [c for c in self.required if c not in header]
        if missing:
            raise CdrFileError(f"{self.path}: header lacks required column(s) {', '.join(missing)}")
        next_line = 2
        tail = b""
        buf = np.empty(0, dtype=np.uint8)
        while True:
            # Read behind the last chunk's partial line into one buffer, kept from chunk to
            # chunk: the parser copies what it keeps, so the buffer is free again once a chunk
            # is parsed, and a fresh 32 MiB block per chunk would be pages the kernel zeroes
            # each time. The chunk handed to the parser is a view of it (no copies).
            if len(buf) < len(tail) + self.chunk_bytes + 1:
                buf = np.empty(len(tail) + self.chunk_bytes + 1, dtype=np.uint8)
            buf[: len(tail)] = np.frombuffer(tail, dtype=np.uint8)
            view = buf.data
            end, limit = len(tail), len(tail) + self.chunk_bytes
            while end < limit:
                got = fh.readinto(view[end:limit])
                if not got:
                    break
                end += got
            if end == len(tail):  # end of file
                if not tail:
                    return
                size = end
                if buf[size - 1] != _NEWLINE:
                    buf[size] = _NEWLINE  # the spare byte
                    size += 1
                tail = b""
            else:
                cut = _last_newline(view, end)
                if cut < 0:
                    tail = view[:end].tobytes()
                    continue
                size = cut + 1
                tail = view[size:end].tobytes()
            data = buf[:size]
            lines = _count_newlines(data)
            chunk = self._parse(data, header, next_line)
            chunk.bytes_read = raw_fh.tell()
            next_line += lines
            yield chunk

    def _parse(self, data: npt.NDArray[np.uint8], header: list[str], first_line: int) -> RawChunk:
        bad: list[QuarantinedRecord] = []
        skipped: list[int] = []

        def on_invalid(row: pacsv.InvalidRow) -> str:
            line = first_line + (row.number - 1 if row.number is not None else 0)
            skipped.append(row.number or 0)
            if row.text.strip():
                bad.append(
                    QuarantinedRecord(
                        self.source,
                        line,
                        f"wrong column count: {row.actual_columns} "
                        f"(header has {row.expected_columns})",
                        row.text,
                    )
                )
            return "skip"

        def read(kind: pa.DataType) -> pa.Table:
            bad.clear()
            skipped.clear()
            return _read_csv(data, header, kind, on_invalid, self.columns)

        # Text columns straight away (Arrow validates UTF-8); a chunk with bytes that are not
        # UTF-8 is read again as binary, and only those rows are quarantined.
        try:
            table = read(pa.large_string())
        except pa.ArrowInvalid:
            table = read(pa.large_binary())
        n = table.num_rows
        # Line of each kept row: its index, plus the rows skipped before it.
        idx = np.arange(n, dtype=np.int64)
        if skipped:
            sk = np.sort(np.asarray(skipped, dtype=np.int64)) - 1  # 0-based physical rows
            # kept row i is physical row p where p - (#skipped <= p) == i
            positions = np.setdiff1d(np.arange(n + len(sk), dtype=np.int64), sk, assume_unique=True)
            idx = positions[:n]
        lines = first_line + idx
        columns: dict[str, pd.Series] = {}
        undecodable = np.zeros(n, dtype=bool)
        # Empty lines: every column empty (byte lengths, text or binary alike); only the rows
        # whose first column is empty need a look at the others.
        empty = np.ones(n, dtype=bool)
        for name in table.column_names:
            empty &= pc.equal(pc.binary_length(table.column(name)), 0).to_numpy(
                zero_copy_only=False
            )
            if not empty.any():
                break
        for name in table.column_names:
            columns[name] = _text_column(table.column(name), undecodable)
        frame = pd.DataFrame(columns)
        frame["_line"] = lines
        for bad_row in np.flatnonzero(undecodable & ~empty):
            i = int(bad_row)
            raw = ",".join(
                (table.column(c)[i].as_py() or b"").decode("utf-8", "replace")
                for c in table.column_names
            )
            bad.append(
                QuarantinedRecord(self.source, int(lines[i]), "bytes that are not UTF-8", raw)
            )
        keep = ~(empty | undecodable)
        if not keep.all():
            frame = frame[keep].reset_index(drop=True)
        return RawChunk(source=self.source, frame=frame, quarantined=bad)

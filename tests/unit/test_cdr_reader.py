"""The CDR reader's chunking: one read buffer kept from chunk to chunk changes nothing."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mmsq.adapters.cdr_csv import CdrFileReader

HEADER = "msisdn,message_id,edition,submitted_at,done_at,status_source,status_code,imei"


def _frame(path: Path, chunk_bytes: int) -> tuple[pd.DataFrame, list[tuple[int, str]], int]:
    chunks = list(CdrFileReader(path, chunk_bytes=chunk_bytes).chunks())
    frame = pd.concat([c.frame for c in chunks], ignore_index=True)
    bad = [(q.line, q.raw) for c in chunks for q in c.quarantined]
    return frame, bad, len(chunks)


def test_small_chunks_read_what_one_chunk_reads(tmp_path: Path) -> None:
    rows = [
        f"1380013{i:04d},id{i},ed-{i % 7},2026-11-22T07:00:{i % 60:02d}+08:00,,mm7,Retrieved,"
        for i in range(4000)
    ]
    rows[10] = "too,few"
    rows[2500] = "1380000000,long," + "x" * 9000 + ",2026-11-22T07:00:00+08:00,,mm7,Retrieved,"
    rows[3999] = "last,row,without,newline,,mm7,Retrieved,"
    path = tmp_path / "cdr.csv"
    path.write_text(HEADER + "\n" + "\n".join(rows))
    whole, whole_bad, n_whole = _frame(path, 1 << 24)
    # 2 KiB chunks: many of them, and one line longer than four chunks.
    small, small_bad, n_small = _frame(path, 2048)
    assert n_whole <= 2  # the last line, without its newline, may come on its own
    assert n_small > 100
    pd.testing.assert_frame_equal(small, whole)
    assert small_bad == whole_bad == [(12, "too,few")]
    assert small["_line"].iloc[-1] == 4001
    assert small.loc[small["message_id"] == "long", "edition"].str.len().tolist() == [9000]

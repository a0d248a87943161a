"""Digest of every table of a SQLite store: to check that a change to the ingest stores the
same bytes as the code before it.

    python bench/store_digest.py STORE.db [--out digest.json]

Each table's rows are hashed in storage order (rowid, or primary key for tables without one),
every column, blobs byte for byte. What differs between two runs of the same ingest by
design is normalised: batch ids (uuid4) become their order of first appearance, wall-clock
timestamps (``*_at``, ``first_seen``, ``last_seen``) are left out, and the stage seconds of an
ingest summary are dropped. Compare the output of the code before and after a change on the
same sequence of ingests (a first ingest, the same file again, a file mixing new, stored and
repeated rows).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

#: Columns whose values are the wall clock of the run, not data.
_CLOCK_COLUMNS = {"started_at", "finished_at", "first_seen", "last_seen", "created_at"}


def _order_by(db: sqlite3.Connection, table: str) -> str:
    """Storage order: rowid, or the primary key of a WITHOUT ROWID table."""
    sql = db.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
    if "WITHOUT ROWID" not in sql.upper():
        return "rowid"
    pk = [
        (r[5], r[1])
        for r in db.execute(f'PRAGMA table_info("{table}")').fetchall()
        if r[5]  # position in the primary key
    ]
    return ", ".join(f'"{name}"' for _, name in sorted(pk))


def digest(path: Path) -> dict[str, dict[str, Any]]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    batches: dict[str, int] = {}

    def batch(value: Any) -> Any:
        return batches.setdefault(value, len(batches)) if isinstance(value, str) else value

    out: dict[str, dict[str, Any]] = {}
    tables = [
        r[0]
        for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    ]
    # Batches numbered in the order they were started, whatever table names them first.
    if "ingest_batches" in tables:
        for (b,) in db.execute("SELECT batch_id FROM ingest_batches ORDER BY started_at, rowid"):
            batch(b)
    for table in tables:
        names = [r[1] for r in db.execute(f'PRAGMA table_info("{table}")')]
        h = hashlib.sha256()
        n = 0
        cur = db.execute(f'SELECT * FROM "{table}" ORDER BY {_order_by(db, table)}')
        for row in cur:
            values: list[Any] = []
            for name, raw in zip(names, row, strict=True):
                if name in _CLOCK_COLUMNS:
                    continue
                value = raw
                if name == "batch_id":
                    value = batch(raw)
                elif table == "ingest_batches" and name == "summary" and raw:
                    doc = json.loads(raw)
                    doc.pop("seconds", None)
                    doc.pop("batch_id", None)
                    value = json.dumps(doc, sort_keys=True)
                values.append(value)
            h.update(repr(values).encode())
            n += 1
        out[table] = {"rows": n, "sha256": h.hexdigest()}
    db.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("store", type=Path)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    result = digest(args.store)
    text = json.dumps(result, indent=1, sort_keys=True)
    if args.out is not None:
        args.out.write_text(text + "\n")
    for table, d in result.items():
        print(f"{table:32} {d['rows']:>10,} {d['sha256'][:16]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The CDR inbox directory: which files are complete, and where handled files go.

Convention for the MMSC's export (README "Operations"): write the file under a name that does
not match (``name.csv.gz.part`` or a dot-file) in the inbox or on the same filesystem, then
rename it to ``name.csv`` / ``name.csv.gz``. A rename is atomic, so a matching name is a
complete file. As a second guard for exporters that write in place, a matching file is taken
only once it has not been modified for ``settle_s`` seconds.
"""

from __future__ import annotations

import errno
import os
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from mmsq.inbox import InboxScan

__all__ = ["CDR_SUFFIXES", "DirectoryInbox"]

CDR_SUFFIXES = (".csv", ".csv.gz")
_IGNORED_SUFFIXES = (".part", ".tmp", ".partial")


def _is_cdr_name(name: str) -> bool:
    lower = name.lower()
    return (
        not name.startswith(".")
        and lower.endswith(CDR_SUFFIXES)
        and not lower.endswith(_IGNORED_SUFFIXES)
    )


class DirectoryInbox:
    """Implements the Inbox port on three directories; never deletes or overwrites a file."""

    def __init__(
        self,
        inbox: Path,
        done: Path,
        failed: Path,
        settle_s: float,
        wall_time: Callable[[], float] = time.time,
    ) -> None:
        self.inbox = inbox
        self.done = done
        self.failed = failed
        self.settle_s = settle_s
        self._wall_time = wall_time

    def ensure_dirs(self) -> None:
        for d in (self.inbox, self.done, self.failed):
            d.mkdir(parents=True, exist_ok=True)

    def scan(self) -> InboxScan:
        now = self._wall_time()
        ready: list[tuple[float, str, Path]] = []
        settling = 0
        with os.scandir(self.inbox) as entries:
            for entry in entries:
                if not _is_cdr_name(entry.name):
                    continue
                try:
                    if not entry.is_file(follow_symlinks=False):
                        continue
                    mtime = entry.stat(follow_symlinks=False).st_mtime
                except FileNotFoundError:
                    continue
                if now - mtime < self.settle_s:
                    settling += 1
                else:
                    ready.append((mtime, entry.name, Path(entry.path)))
        ready.sort()
        return InboxScan([p for _, _, p in ready], settling)

    def mark_done(self, path: Path) -> Path:
        return self._move(path, self.done)

    def mark_failed(self, path: Path, reason: str) -> Path:
        dest = self._move(path, self.failed)
        sidecar = dest.with_name(dest.name + ".error.txt")
        stamp = datetime.fromtimestamp(self._wall_time(), UTC).isoformat(timespec="seconds")
        sidecar.write_text(
            f"file: {path.name}\nfailed at: {stamp}\nreason: {reason}\n", encoding="utf-8"
        )
        return dest

    def _move(self, path: Path, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        dest = directory / path.name
        if dest.exists():
            # The same name again (a re-export): keep both, the newer one stamped.
            stamp = datetime.fromtimestamp(self._wall_time(), UTC).strftime("%Y%m%dT%H%M%S%fZ")
            dest = directory / f"{stamp}-{path.name}"
        try:
            path.rename(dest)
        except OSError as exc:
            if exc.errno != errno.EXDEV:  # another filesystem: copy, then remove the original
                raise
            shutil.move(str(path), str(dest))
        return dest

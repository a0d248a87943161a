"""Published editions as directories: the MM a resend repeats (``EditionSource``).

``<root>/<edition>/`` holds the edition as the content platform published it: media files
(text, images, audio), optionally ``presentation.smil`` and ``subject.txt``. Without a SMIL,
one is written that shows every part in name order. ``content_ref`` names a subdirectory
(a variant of the edition) when set.
"""

from __future__ import annotations

import mimetypes
import re
from pathlib import Path

from mmsq.mms import MmsContent, MmsPart
from mmsq.mms_content import ContentUnavailableError

__all__ = ["EditionDirectory"]

_SAFE = re.compile(r"^[\w.\-]+$")
_SPECIAL = {"presentation.smil", "subject.txt"}
_TYPES = {
    ".txt": "text/plain; charset=utf-8",
    ".smil": "application/smil",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".amr": "audio/amr",
    ".mid": "audio/midi",
}


def _content_type(path: Path) -> str:
    known = _TYPES.get(path.suffix.lower())
    if known:
        return known
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"


def _smil(parts: list[MmsPart]) -> str:
    body = []
    for part in parts:
        tag = {"text": "text", "image": "img", "audio": "audio"}.get(
            part.content_type.split("/", 1)[0], "ref"
        )
        body.append(f'<par dur="8000ms"><{tag} src="cid:{part.content_id}"/></par>')
    return "<smil><head><layout/></head><body>" + "".join(body) + "</body></smil>"


class EditionDirectory:
    """Reads ``<root>/<edition>[/<content_ref>]``; names with path separators are refused."""

    def __init__(self, root: Path, max_bytes: int = 300 * 1024) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def edition(self, edition: str, content_ref: str | None) -> MmsContent:
        names = [edition] + ([content_ref] if content_ref else [])
        for name in names:
            if not _SAFE.match(name) or name in {".", ".."}:
                raise ContentUnavailableError(f"not a valid edition name: {name!r}")
        folder = self.root.joinpath(*names)
        if not folder.is_dir():
            raise ContentUnavailableError(f"edition {'/'.join(names)} not found in {self.root}")
        files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        parts = [
            MmsPart(p.name, _content_type(p), p.read_bytes(), p.name)
            for p in files
            if p.name not in _SPECIAL
        ]
        if not parts:
            raise ContentUnavailableError(f"edition {'/'.join(names)} has no media files")
        smil_file = folder / "presentation.smil"
        subject_file = folder / "subject.txt"
        content = MmsContent(
            subject=(
                subject_file.read_text(encoding="utf-8").strip()
                if subject_file.is_file()
                else edition
            ),
            smil=smil_file.read_text(encoding="utf-8") if smil_file.is_file() else _smil(parts),
            parts=tuple(parts),
        )
        if content.size > self.max_bytes:
            raise ContentUnavailableError(
                f"edition {'/'.join(names)} is {content.size} bytes, over {self.max_bytes}"
            )
        return content

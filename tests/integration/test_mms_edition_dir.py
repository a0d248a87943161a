"""Published editions read from directories: the MM a resend repeats."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmsq.adapters.mms_edition_dir import EditionDirectory
from mmsq.mms_content import ContentUnavailableError


def test_edition_directory_becomes_an_mm_with_a_smil_in_name_order(tmp_path: Path) -> None:
    folder = tmp_path / "ah-daily-20261122-am"
    folder.mkdir()
    (folder / "01.txt").write_text("今日要闻", encoding="utf-8")
    (folder / "02.png").write_bytes(b"\x89PNG\r\n\x1a\n....")
    (folder / "subject.txt").write_text("安徽手机报 11月22日 早版\n", encoding="utf-8")
    content = EditionDirectory(tmp_path).edition("ah-daily-20261122-am", None)
    assert content.subject == "安徽手机报 11月22日 早版"
    assert [(p.content_id, p.content_type) for p in content.parts] == [
        ("01.txt", "text/plain; charset=utf-8"),
        ("02.png", "image/png"),
    ]
    assert content.smil.index("cid:01.txt") < content.smil.index("cid:02.png")


def test_variant_and_own_smil_are_used(tmp_path: Path) -> None:
    folder = tmp_path / "ed" / "low"
    folder.mkdir(parents=True)
    (folder / "a.txt").write_text("x", encoding="utf-8")
    (folder / "presentation.smil").write_text("<smil>own</smil>", encoding="utf-8")
    content = EditionDirectory(tmp_path).edition("ed", "low")
    assert content.smil == "<smil>own</smil>"
    assert content.subject == "ed"


@pytest.mark.parametrize(
    ("edition", "ref", "why"),
    [
        ("absent", None, "not found"),
        ("..", None, "not a valid edition name"),
        ("ed", "../../etc", "not a valid edition name"),
        ("empty", None, "no media files"),
        ("big", None, "over 100"),
    ],
)
def test_unusable_edition_is_refused_with_the_reason(
    tmp_path: Path, edition: str, ref: str | None, why: str
) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "big").mkdir()
    (tmp_path / "big" / "a.txt").write_bytes(b"x" * 200)
    with pytest.raises(ContentUnavailableError, match=why):
        EditionDirectory(tmp_path, max_bytes=100).edition(edition, ref)

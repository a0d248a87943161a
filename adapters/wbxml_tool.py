"""libwbxml's ``wbxml2xml`` as an independent decoder of the WBXML mmsq produces.

Used by ``mmsq ota preview`` to show what a handset's parser would make of the bytes. The tool
(Debian package libwbxml2-utils) is optional: without it the preview says so and goes on.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Wbxml2Xml", "WbxmlDecodeError"]


class WbxmlDecodeError(RuntimeError):
    """wbxml2xml could not run, or rejected the document; the message says which and why."""


@dataclass(frozen=True)
class Wbxml2Xml:
    """Runs ``wbxml2xml`` on a WBXML body; ``language`` forces the table (PROV10)."""

    executable: str
    language: str = "PROV10"
    timeout_s: float = 30.0

    @classmethod
    def find(cls) -> Wbxml2Xml | None:
        """The tool on PATH, or None when it is not installed."""
        exe = shutil.which("wbxml2xml")
        return cls(exe) if exe else None

    def decode(self, body: bytes) -> str:
        """The XML text libwbxml decodes ``body`` (the WBXML only, no WSP header) to."""
        with tempfile.TemporaryDirectory(prefix="mmsq-wbxml-") as tmp:
            src = Path(tmp) / "doc.wbxml"
            src.write_bytes(body)
            try:
                done = subprocess.run(  # noqa: S603 - fixed argument list, no shell
                    [self.executable, "-l", self.language, "-m", "1", "-o", "-", str(src)],
                    capture_output=True,
                    timeout=self.timeout_s,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise WbxmlDecodeError(f"wbxml2xml could not run: {exc}") from exc
        stdout = done.stdout.decode("utf-8", errors="replace")
        if done.returncode != 0 or not stdout.lstrip().startswith("<?xml"):
            why = done.stderr.decode("utf-8", errors="replace").strip() or stdout.strip()
            raise WbxmlDecodeError(f"wbxml2xml failed (exit {done.returncode}): {why}")
        return stdout

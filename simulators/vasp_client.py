"""The MMSC simulator's outgoing side: one HTTP POST to the VASP, over the standard library.

A seam: the simulator takes any ``ReportPoster``; this one opens a fresh connection per POST and
always closes it, so nothing leaks when the VASP is down or slow.
"""

from __future__ import annotations

import http.client
from collections.abc import Mapping
from typing import Protocol
from urllib.parse import urlsplit

__all__ = ["HttpPoster", "ReportPoster"]


class ReportPoster(Protocol):
    """POSTs a body and returns (HTTP status, response body); raises OSError when it cannot."""

    def post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout: float
    ) -> tuple[int, bytes]: ...


class HttpPoster:
    """``ReportPoster`` over ``http.client`` (http and https URLs)."""

    def post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout: float
    ) -> tuple[int, bytes]:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise OSError(f"cannot POST to {url!r}: an http(s) URL is required")
        conn_cls = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        conn = conn_cls(parts.hostname, parts.port, timeout=timeout)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        try:
            conn.request("POST", path, body=body, headers=dict(headers))
            response = conn.getresponse()
            return response.status, response.read()
        except http.client.HTTPException as exc:  # a broken answer counts as a failed attempt
            raise OSError(f"bad HTTP answer from the VASP: {exc!r}") from exc
        finally:
            conn.close()

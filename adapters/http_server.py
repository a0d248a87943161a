"""uvicorn in a thread of the daemon's process, on a socket bound before it starts.

Binding in the caller's thread makes "address in use" an ordinary start-up error, and port 0
(a free port, for tests) is known at once. uvicorn installs no signal handlers off the main
thread: the daemon owns SIGTERM/SIGINT and stops this server last, after jobs and hooks.
"""

from __future__ import annotations

import asyncio
import socket
import threading

import uvicorn
from starlette.types import ASGIApp

__all__ = ["ThreadedHttpServer", "bind_socket"]


def bind_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A TCP socket bound to ``host:port`` (IPv6 when the host has a colon), not yet
    listening; ``reuse_port`` lets other sockets bind the same address (``SO_REUSEPORT``).
    An address that cannot be bound raises OSError naming it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    return sock


class ThreadedHttpServer:
    """Serves an ASGI app from a background thread until ``stop``."""

    def __init__(self, app: ASGIApp, host: str, port: int, graceful_s: float = 10.0) -> None:
        self._app = app
        self.host = host
        self.port = port
        self._graceful_s = graceful_s
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        sock = bind_socket(self.host, self.port)
        sock.listen(128)
        self._sock = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=int(max(1, self._graceful_s)),
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(
            target=lambda: asyncio.run(server.serve(sockets=[sock])),
            name="mmsq-http",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(self._graceful_s + 5)
            self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

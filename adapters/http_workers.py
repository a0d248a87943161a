"""Several processes serving one address, each with a listening socket of its own.

``mmsq api --workers N`` used uvicorn's supervisor, whose workers share one listening socket.
A worker woken for a new connection accepts every connection waiting at that moment, so a
burst of new connections (a client's connection pool starting) can land mostly on one
process; with keep-alive those connections stay there for their lifetime. Measured with 32
connections on two workers: 27 and 5, 19 and 13, 17 and 15 in three runs. The process with
most connections answers slowest, which sets the 99th percentile of latency.

Here each worker binds the address with ``SO_REUSEPORT`` and listens on a socket of its own:
the kernel spreads new connections over the workers by a hash of their addresses, evenly in
the long run, whatever the workers are doing. The parent binds the address first without
listening (so that port 0 becomes one port for all, and an address in use is a start-up
error) and supervises: a worker that dies is started again; SIGTERM or SIGINT stops them all
gracefully (uvicorn finishes the requests in flight).

Linux balances ``SO_REUSEPORT`` sockets (since 3.9). Where the option is missing, callers
fall back to uvicorn's shared socket (``reuse_port_supported``).
"""

from __future__ import annotations

import multiprocessing
import signal
import socket
import threading
import time
from typing import Any

import structlog

from mmsq.adapters.http_server import bind_socket

__all__ = ["ReusePortWorkers", "reuse_port_supported"]

log = structlog.get_logger("mmsq.api")

#: A worker that dies sooner than this after starting is restarted only after this long (a
#: worker that cannot start at all would otherwise be restarted in a tight loop).
_MIN_LIFETIME_S = 5.0


def reuse_port_supported() -> bool:
    return hasattr(socket, "SO_REUSEPORT")


def _serve(app: str, host: str, port: int, options: dict[str, Any]) -> None:
    """A worker process: its own listening socket on the shared address, then uvicorn."""
    import uvicorn

    sock = bind_socket(host, port, reuse_port=True)
    sock.listen(2048)
    config = uvicorn.Config(app, factory=True, **options)
    uvicorn.Server(config).run(sockets=[sock])


class ReusePortWorkers:
    """``workers`` processes serving the ASGI app that the factory ``app`` ("module:function")
    builds, on ``host:port``; ``options`` are uvicorn's (log level, access log...)."""

    def __init__(
        self, app: str, host: str, port: int, workers: int, options: dict[str, Any]
    ) -> None:
        self.app = app
        self.host = host
        self.workers = workers
        self.options = options
        # Bound, not listening: it reserves the address and receives no connection.
        self._reserved = bind_socket(host, port, reuse_port=True)
        self.port: int = self._reserved.getsockname()[1]
        self._stop = threading.Event()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _start(self, ctx: Any) -> Any:
        proc = ctx.Process(
            target=_serve,
            args=(self.app, self.host, self.port, self.options),
            name="mmsq-api-worker",
        )
        proc.start()
        proc.started_at = time.monotonic()
        return proc

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        """Serve until SIGTERM or SIGINT (or ``stop``), restarting workers that die."""
        ctx = multiprocessing.get_context("spawn")
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self._stop.set())
        procs = [self._start(ctx) for _ in range(self.workers)]
        log.info(
            f"mmsq api running on {self.url} with {self.workers} worker processes "
            "(each listening with SO_REUSEPORT)",
            workers=self.workers,
        )
        try:
            while not self._stop.wait(0.5):
                for i, proc in enumerate(procs):
                    if proc.is_alive():
                        continue
                    lived = time.monotonic() - proc.started_at
                    log.warning("api worker exited; starting another", exitcode=proc.exitcode)
                    if lived < _MIN_LIFETIME_S and self._stop.wait(_MIN_LIFETIME_S):
                        break
                    procs[i] = self._start(ctx)
        finally:
            for proc in procs:
                if proc.is_alive():
                    proc.terminate()  # SIGTERM: uvicorn's graceful shutdown
            deadline = time.monotonic() + 30
            for proc in procs:
                proc.join(max(0.0, deadline - time.monotonic()))
                if proc.is_alive():
                    proc.kill()
                    proc.join()
            self._reserved.close()

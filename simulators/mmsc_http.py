"""The MMSC simulator on HTTP: a threading server for MM7 SubmitReq, and a report loop.

``MmscServer`` binds 127.0.0.1 (port 0 picks a free port), answers each POST with
``MmscSimulator.handle_submit``, and can refuse connections for a while (``pause`` closes the
listener, ``resume`` binds the same port again). ``close`` stops everything and joins every
thread, so tests leave no socket or thread behind.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self

import structlog

from mmsq.simulators.mm7_peer import Mm7Error, build_fault
from mmsq.simulators.mmsc import MmscSimulator

__all__ = ["MmscServer"]

log = structlog.get_logger(__name__)


class _HttpServer(ThreadingHTTPServer):
    """One listener; handler threads are joined on close (``block_on_close``)."""

    daemon_threads = False
    block_on_close = True

    def __init__(
        self, address: tuple[str, int], simulator: MmscSimulator, stopping: threading.Event
    ) -> None:
        self.simulator = simulator
        self.stopping = stopping
        super().__init__(address, _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        """A broken client connection is logged, not printed as a traceback on stderr."""
        log.warning("mmsc.connection_error", client=str(client_address), exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    """POST = an MM7 request; one request per connection (HTTP/1.0), so close never waits."""

    server: _HttpServer
    protocol_version = "HTTP/1.0"
    timeout = 15  # a client that stops sending does not hold a thread for ever
    server_version = "mmsq-mmsc-sim"

    def do_POST(self) -> None:
        sim = self.server.simulator
        if not sim.authorised(self.headers.get("Authorization")):
            body = build_fault(Mm7Error(4001, "HTTP basic authentication failed", fault=True))
            self._reply(401, body, {"WWW-Authenticate": 'Basic realm="MM7"'})
            return
        length = self.headers.get("Content-Length", "")
        if not length.strip().isdigit():
            self._reply(411, b"Content-Length required\n", content_type="text/plain")
            return
        size = int(length)
        if size > sim.config.max_body_bytes:
            self._reply(413, b"request too large\n", content_type="text/plain")
            return
        body = self.rfile.read(size)
        delay = sim.faults.response_delay_s
        if delay > 0:
            self.server.stopping.wait(delay)
        try:
            status, payload = sim.handle_submit(body, self.headers.get("Content-Type"))
        except Exception:  # a bug or a failing OutcomeSource: answer 3000, keep serving
            log.exception("mmsc.submit_failed")
            status, payload = 500, build_fault(Mm7Error(3000, "internal error", fault=True))
        self._reply(status, payload)

    def do_GET(self) -> None:
        self._reply(405, b"MM7 requests are POSTed\n", {"Allow": "POST"}, "text/plain")

    def _reply(
        self,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
        content_type: str = 'text/xml; charset="utf-8"',
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Access lines go to structlog at debug level, not to stderr."""
        log.debug("mmsc.http", line=format % args)


class MmscServer:
    """Serves an ``MmscSimulator`` over HTTP; optionally sends due reports in the background."""

    def __init__(
        self, simulator: MmscSimulator, host: str = "127.0.0.1", port: int = 0, path: str = "/mm7"
    ) -> None:
        self.simulator = simulator
        self.host = host
        self.port = port
        self.path = path
        self._stopping = threading.Event()
        self._httpd: _HttpServer | None = None
        self._serve_thread: threading.Thread | None = None
        self._report_thread: threading.Thread | None = None
        self._state_lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.path}"

    @property
    def paused(self) -> bool:
        return self._httpd is None

    def start(self) -> Self:
        """Bind and serve (the chosen port is kept, so ``resume`` binds the same one)."""
        with self._state_lock:
            self._listen()
        return self

    def _listen(self) -> None:
        httpd = _HttpServer((self.host, self.port), self.simulator, self._stopping)
        self.port = int(httpd.server_address[1])
        thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="mmsc-http"
        )
        thread.start()
        self._httpd, self._serve_thread = httpd, thread
        log.info("mmsc.listening", url=self.url)

    def _unlisten(self) -> None:
        httpd, thread = self._httpd, self._serve_thread
        self._httpd = self._serve_thread = None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if thread is not None:
            thread.join()

    def pause(self) -> None:
        """Stop accepting: the listener is closed, so clients get connection refused."""
        with self._state_lock:
            self._unlisten()
        log.info("mmsc.paused", port=self.port)

    def resume(self) -> None:
        """Accept again on the same port."""
        with self._state_lock:
            if self._httpd is None:
                self._listen()

    def start_report_loop(self, interval_s: float = 0.1) -> None:
        """Send due delivery reports from a background thread every ``interval_s`` (wall time)."""
        if self._report_thread is not None:
            return

        def loop() -> None:
            while not self._stopping.wait(interval_s):
                try:
                    self.simulator.deliver_due()
                except Exception:  # the loop must not die silently: log and go on
                    log.exception("mmsc.report_loop_error")

        self._report_thread = threading.Thread(target=loop, name="mmsc-reports")
        self._report_thread.start()

    def close(self) -> None:
        """Stop serving and the report loop; join every thread; close the socket."""
        self._stopping.set()
        with self._state_lock:
            self._unlisten()
        if self._report_thread is not None:
            self._report_thread.join()
            self._report_thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

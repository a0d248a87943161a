"""structlog configuration: JSON lines off a terminal, readable console on one; MSISDNs masked."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from mmsq.msisdn import mask_text

__all__ = ["configure_logging", "mask_msisdns", "route_stdlib_logging"]


def mask_msisdns(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Processor: mask every phone number in every string value of the event."""
    for key, value in list(event.items()):
        if isinstance(value, str):
            event[key] = mask_text(value)
        elif isinstance(value, int) and not isinstance(value, bool) and value > 10**9:
            event[key] = mask_text(str(value))
    return event


def configure_logging(level: str = "INFO", fmt: str = "auto") -> None:
    """Configure structlog once, at start-up (never at import time)."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            mask_msisdns,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level]),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


class _StdlibToStructlog(logging.Handler):
    """Sends stdlib log records (APScheduler, uvicorn) through structlog's processors."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            logger = structlog.get_logger(record.name)
            logger.log(record.levelno, record.getMessage(), logger=record.name)
        except Exception:
            self.handleError(record)


def route_stdlib_logging(level: str = "WARNING") -> None:
    """Send the stdlib loggers of long-running processes (the daemon) to structlog, masked."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _StdlibToStructlog):
            root.removeHandler(handler)
    root.addHandler(_StdlibToStructlog())
    root.setLevel(logging.getLevelNamesMapping()[level])

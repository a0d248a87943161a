"""The agent HTTP API (FastAPI): an entry point like the CLI, over services built elsewhere."""

from mmsq.api.app import create_app, serve_app, use_threads
from mmsq.api.services import ApiServices

__all__ = ["ApiServices", "create_app", "serve_app", "use_threads"]

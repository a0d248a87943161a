"""The ``Mailer`` port: hands a finished email to a mail server."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Protocol

__all__ = ["MailError", "Mailer"]


class MailError(Exception):
    """The message was not accepted; the text says by whom and why (never a password)."""


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> None:
        """Deliver ``message`` to its To recipients; raise MailError when that fails."""
        ...

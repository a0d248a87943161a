"""The ``Mailer`` port over SMTP (smtplib): STARTTLS or implicit TLS, optional AUTH."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage

import structlog

from mmsq.mailer import MailError
from mmsq.settings import ReportSettings

__all__ = ["SmtpConfig", "SmtpMailer"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SmtpConfig:
    host: str = "localhost"
    port: int = 587
    starttls: bool = True
    ssl: bool = False
    username: str | None = None
    password: str | None = None
    timeout_s: float = 30.0

    @classmethod
    def from_settings(cls, r: ReportSettings) -> SmtpConfig:
        return cls(
            host=r.smtp_host,
            port=r.smtp_port,
            starttls=r.smtp_starttls,
            ssl=r.smtp_ssl,
            username=r.smtp_username,
            password=r.smtp_password.get_secret_value() if r.smtp_password else None,
            timeout_s=r.smtp_timeout_s,
        )


class SmtpMailer:
    """One SMTP connection per message: a weekly email does not need a kept-open session.

    ``ssl_context`` is the seam for TLS trust (the system's CA store by default).
    """

    def __init__(self, config: SmtpConfig, ssl_context: ssl.SSLContext | None = None) -> None:
        self.config = config
        self._context = ssl_context

    def _tls(self) -> ssl.SSLContext:
        return self._context or ssl.create_default_context()

    def send(self, message: EmailMessage) -> None:
        c = self.config
        where = f"SMTP {c.host}:{c.port}"
        try:
            smtp: smtplib.SMTP = (
                smtplib.SMTP_SSL(c.host, c.port, timeout=c.timeout_s, context=self._tls())
                if c.ssl
                else smtplib.SMTP(c.host, c.port, timeout=c.timeout_s)
            )
            with smtp:
                smtp.ehlo()
                if c.starttls and not c.ssl:
                    smtp.starttls(context=self._tls())
                    smtp.ehlo()
                if c.username:
                    smtp.login(c.username, c.password or "")
                refused = smtp.send_message(message)
        except smtplib.SMTPAuthenticationError as exc:
            raise MailError(f"{where}: authentication failed ({exc.smtp_code})") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise MailError(f"{where}: {exc}") from exc
        if refused:
            log.warning("report.recipients_refused", server=where, refused=sorted(refused))

"""The weekly report email through a real SMTP server (aiosmtpd on 127.0.0.1)."""

from __future__ import annotations

import csv
import email
import io
import re
import socket
import ssl
import subprocess
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from mmsq.adapters.smtp_mailer import SmtpConfig, SmtpMailer
from mmsq.adapters.sql_report import SqlReportSource
from mmsq.adapters.sql_store import SqlStore
from mmsq.mailer import MailError
from mmsq.report import ReportConfig, send_weekly_report
from mmsq.report_data import ReportWeek
from mmsq.report_devices import load_device_table
from tests.report_dataset import DEVICES_CSV, MSISDNS, NATIONAL, insert_dataset

WEEK = ReportWeek(2026, 47)


class FixedClock:
    def now(self) -> datetime:
        return datetime(2026, 11, 23, 1, tzinfo=UTC)


@dataclass
class Inbox:
    """An aiosmtpd handler that keeps what it receives."""

    messages: list[Envelope] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:  # noqa: N802 (aiosmtpd hook name)
        self.messages.append(envelope)
        if session.auth_data is not None:
            self.logins.append(session.auth_data.login.decode())
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def authenticator(
    server: Any, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"mmsq",
        b"s3cret",
    )
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture
def source(tmp_path: Path) -> Iterator[SqlReportSource]:
    store = SqlStore.from_url(f"sqlite:///{tmp_path / 'mmsq.db'}")
    store.upgrade()
    insert_dataset(store)
    yield SqlReportSource(store, timezone="Asia/Shanghai")
    store.close()


def config(tmp_path: Path, **kw: Any) -> ReportConfig:
    base: dict[str, Any] = {
        "sender": "mmsq@report.example",
        "recipients": ("noc@example.com", "manager@example.com"),
        "p90_limit_s": 3600.0,
        "timezone": "Asia/Shanghai",
        "send_attempts": 3,
        "retry_backoff_s": 30.0,
        "spool_dir": tmp_path / "spool",
    }
    base.update(kw)
    return ReportConfig(**base)


def parts(msg: EmailMessage) -> dict[str, Any]:
    """The parts a reader sees: text, html, images by Content-ID, attachments by name."""
    found: dict[str, Any] = {"images": {}, "attachments": {}}
    for part in msg.walk():
        ctype = part.get_content_type()
        if part.is_multipart():
            continue
        if part.get_filename() and part.get_content_disposition() == "attachment":
            found["attachments"][part.get_filename()] = part.get_payload(decode=True)
        elif ctype == "image/png":
            found["images"][part["Content-ID"].strip("<>")] = part.get_payload(decode=True)
        elif ctype == "text/plain":
            found["text"] = part.get_content()
        elif ctype == "text/html":
            found["html"] = part.get_content()
    return found


def unzip(data: bytes) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {n: zf.read(n).decode("utf-8-sig") for n in zf.namelist()}


def assert_no_msisdn(*texts: str) -> None:
    for text in texts:
        for number in MSISDNS + NATIONAL:
            assert number not in text
        # Nor any other number that looks like a Chinese mobile number.
        assert not re.search(r"(?<!\d)(?:\+?86)?1[3-9]\d{9}(?!\d)", text)


def test_report_email_arrives_with_consistent_parts(
    smtp_server: tuple[Inbox, int], source: SqlReportSource, tmp_path: Path
) -> None:
    inbox, port = smtp_server
    mailer = SmtpMailer(SmtpConfig(host="127.0.0.1", port=port, starttls=False))
    run = send_weekly_report(
        source,
        mailer,
        config(tmp_path),
        devices=load_device_table(DEVICES_CSV),
        clock=FixedClock(),
        week=WEEK,
    )
    assert run.sent
    assert run.attempts == 1
    assert run.spooled is None
    [envelope] = inbox.messages
    assert sorted(envelope.rcpt_tos) == ["manager@example.com", "noc@example.com"]
    assert envelope.content is not None
    raw = envelope.content if isinstance(envelope.content, bytes) else envelope.content.encode()
    msg = email.message_from_bytes(raw, _class=EmailMessage, policy=email.policy.default)
    assert msg.get_content_type() == "multipart/mixed"
    assert "2026-W47" in msg["Subject"]
    assert "60.0%" in msg["Subject"]
    p = parts(msg)

    # Text and HTML give the same headline: 6 delivered of 10 final outcomes, -6.7 pp.
    for body in (p["text"], p["html"]):
        assert "60.0%" in body
        assert "-6.7 pp" in body
        assert "ed-1118-am" in body
        assert "not available yet" in body.lower()
    assert "<script" not in p["html"].lower()
    # Every image the HTML references is in the message, and every image is referenced.
    referenced = set(re.findall(r'src="cid:([^"]+)"', p["html"]))
    assert referenced
    assert referenced == set(p["images"])
    assert all(
        png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 2000 for png in p["images"].values()
    )

    # The attachment holds the detail tables with the same figures.
    [(name, data)] = p["attachments"].items()
    assert name == "mmsq-report-2026-W47.zip"
    files = unzip(data)
    assert {
        "README.txt",
        "summary.csv",
        "days.csv",
        "editions.csv",
        "regions.csv",
        "handset_models.csv",
        "handset_tacs.csv",
        "causes.csv",
        "unknown_codes.csv",
    } <= set(files)
    days = {r["day"]: r for r in csv.DictReader(io.StringIO(files["days.csv"]))}
    assert (days["2026-11-16"]["final"], days["2026-11-16"]["delivered"]) == ("7", "4")
    assert days["2026-11-17"]["success_rate"] == ""  # no final outcome: n/a
    editions = {r["edition"]: r for r in csv.DictReader(io.StringIO(files["editions.csv"]))}
    assert editions["ed-1118-am"]["p90_over_limit"] == "True"
    assert float(editions["ed-1116-am"]["p90_s"]) == pytest.approx(264.0)
    assert "recovery:" in files["README.txt"]

    # No subscriber number anywhere: HTML, text, attachments, headers.
    assert_no_msisdn(p["text"], p["html"], *files.values(), str(msg["Subject"]))


class FlakyMailer:
    """Fails the first ``failures`` sends, then hands over to the real mailer."""

    def __init__(self, inner: SmtpMailer, failures: int) -> None:
        self.inner, self.failures = inner, failures

    def send(self, message: EmailMessage) -> None:
        if self.failures:
            self.failures -= 1
            raise MailError("SMTP 127.0.0.1: 421 service not available")
        self.inner.send(message)


def test_failed_send_is_retried_with_backoff(
    smtp_server: tuple[Inbox, int], source: SqlReportSource, tmp_path: Path
) -> None:
    inbox, port = smtp_server
    waits: list[float] = []
    mailer = FlakyMailer(SmtpMailer(SmtpConfig(host="127.0.0.1", port=port, starttls=False)), 2)
    run = send_weekly_report(
        source,
        mailer,
        config(tmp_path),
        devices=load_device_table(DEVICES_CSV),
        clock=FixedClock(),
        week=WEEK,
        sleep=waits.append,
    )
    assert run.sent
    assert run.attempts == 3
    assert waits == [30.0, 60.0]
    assert len(inbox.messages) == 1
    assert not (tmp_path / "spool").exists()


def test_send_that_keeps_failing_is_spooled_not_lost(
    source: SqlReportSource, tmp_path: Path
) -> None:
    closed = free_port()  # nothing listens there: connection refused
    waits: list[float] = []
    run = send_weekly_report(
        source,
        SmtpMailer(SmtpConfig(host="127.0.0.1", port=closed, starttls=False, timeout_s=5)),
        config(tmp_path, send_attempts=2, retry_backoff_s=5.0),
        devices=load_device_table(DEVICES_CSV),
        clock=FixedClock(),
        week=WEEK,
        sleep=waits.append,
    )
    assert not run.sent
    assert run.attempts == 2
    assert waits == [5.0]
    assert run.error is not None
    assert str(closed) in run.error
    assert run.spooled is not None
    assert run.spooled.parent == tmp_path / "spool"
    kept = email.message_from_bytes(
        run.spooled.read_bytes(), _class=EmailMessage, policy=email.policy.default
    )
    assert kept["Subject"] == run.message["Subject"]
    assert parts(kept)["attachments"]


def test_login_over_plain_connection_when_the_server_allows_it(
    source: SqlReportSource, tmp_path: Path
) -> None:
    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticator,
        auth_require_tls=False,
    )
    controller.start()
    try:
        good = SmtpConfig(
            host="127.0.0.1", port=port, starttls=False, username="mmsq", password="s3cret"
        )
        run = send_weekly_report(
            source,
            SmtpMailer(good),
            config(tmp_path),
            devices=load_device_table(None),
            clock=FixedClock(),
            week=WEEK,
        )
        assert run.sent
        assert inbox.logins == ["mmsq"]
        bad = SmtpMailer(
            SmtpConfig(
                host="127.0.0.1",
                port=port,
                starttls=False,
                username="mmsq",
                password="wrong-password",
            )
        )
        with pytest.raises(MailError, match="authentication failed") as exc:
            bad.send(run.message)
        assert "wrong-password" not in str(exc.value)
    finally:
        controller.stop()


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    try:
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                str(key),
                "-out",
                str(cert),
                "-days",
                "1",
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot make a test certificate with openssl: {exc}")
    return cert, key


def test_starttls_then_login(source: SqlReportSource, tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=server_tls,
        require_starttls=True,
        authenticator=authenticator,
    )
    controller.start()
    try:
        client_tls = ssl.create_default_context(cafile=str(cert))
        mailer = SmtpMailer(
            SmtpConfig(
                host="127.0.0.1", port=port, starttls=True, username="mmsq", password="s3cret"
            ),
            ssl_context=client_tls,
        )
        run = send_weekly_report(
            source,
            mailer,
            config(tmp_path),
            devices=load_device_table(None),
            clock=FixedClock(),
            week=WEEK,
        )
        assert run.sent
        assert inbox.logins == ["mmsq"]
        assert len(inbox.messages) == 1
        # Without STARTTLS this server refuses the mail.
        plain = SmtpMailer(SmtpConfig(host="127.0.0.1", port=port, starttls=False))
        with pytest.raises(MailError):
            plain.send(run.message)
    finally:
        controller.stop()

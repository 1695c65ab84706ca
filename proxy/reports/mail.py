"""Sending a message by e-mail: SMTP, STARTTLS, login with a password from the environment
or a file. The password is read when a message is sent and never logged or stored."""

from __future__ import annotations

import os
import smtplib
import ssl
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from governance.schema import Notification, Smtp

FROM_DEFAULT = "hearthgate@localhost"


class MailError(Exception):
    """A message could not be sent; the text names the server, never the password."""


def password_of(smtp: Smtp) -> str | None:
    if smtp.password_env:
        value = os.environ.get(smtp.password_env)
        if value is None:
            raise MailError(f"the environment variable {smtp.password_env} is not set")
        return value
    if smtp.password_file:
        try:
            return Path(smtp.password_file).read_text().strip()
        except OSError as exc:
            raise MailError(f"cannot read {smtp.password_file}: {exc.strerror}") from None
    return None


def send(
    target: Notification, subject: str, body: str, context: ssl.SSLContext | None = None
) -> None:
    """Send one message to every address of an ``email`` target (blocking: run in a thread)."""
    smtp = target.smtp
    assert smtp is not None and target.to, "validated by the schema"
    message = EmailMessage()
    message["From"] = smtp.sender or smtp.user or FROM_DEFAULT
    message["To"] = ", ".join(target.to)
    message["Subject"] = subject
    message.set_content(body)
    where = f"{smtp.host}:{smtp.port}"
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=20) as client:
            if smtp.starttls:
                client.starttls(context=context or ssl.create_default_context())
            password = password_of(smtp)
            if smtp.user and password is not None:
                client.login(smtp.user, password)
            client.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(f"e-mail via {where} failed: {type(exc).__name__}") from None

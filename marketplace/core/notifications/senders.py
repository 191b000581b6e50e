"""Senders deliver one email each; which one is used is set by ``MARKETPLACE_EMAIL_BACKEND``."""

from __future__ import annotations

import logging
import smtplib
import sys
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Protocol

from flask import current_app

log = logging.getLogger(__name__)


class DeliveryError(Exception):
    """The sender could not hand the email over; delivery will be retried."""


class Sender(Protocol):
    def send(self, to: str, subject: str, body: str) -> None: ...


class ConsoleSender:
    """Prints emails to standard output: the embedded default for development."""

    def send(self, to: str, subject: str, body: str) -> None:
        print(
            f"\n--- email to {to} ---\nSubject: {subject}\n\n{body}\n--- end of email ---",
            file=sys.stdout,
            flush=True,
        )


class SmtpSender:
    def __init__(
        self,
        host: str,
        port: int,
        username: str | None,
        password: str | None,
        starttls: bool,
        timeout: int,
        sender: str,
    ):
        self.host, self.port = host, port
        self.username, self.password = username, password
        self.starttls, self.timeout, self.sender = starttls, timeout, sender

    def send(self, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message["Message-ID"] = make_msgid(domain="marketplace.example")
        message.set_content(body)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.username:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as error:
            raise DeliveryError(f"SMTP delivery failed: {error}") from error


class NotifySender:
    """GOV.UK Notify, through one email template with ((subject)) and ((body)) placeholders."""

    def __init__(self, api_key: str, template_id: str, base_url: str):
        from notifications_python_client.notifications import NotificationsAPIClient

        self.client = NotificationsAPIClient(api_key, base_url=base_url)
        self.template_id = template_id

    def send(self, to: str, subject: str, body: str) -> None:
        from notifications_python_client.errors import APIError

        try:
            self.client.send_email_notification(
                email_address=to,
                template_id=self.template_id,
                personalisation={"subject": subject, "body": body},
            )
        except (APIError, OSError) as error:
            raise DeliveryError(f"GOV.UK Notify refused the email: {error}") from error


def get_sender() -> Sender:
    """The sender named by the configuration."""
    config = current_app.config
    backend = config["EMAIL_BACKEND"]
    if backend == "console":
        return ConsoleSender()
    if backend == "smtp":
        return SmtpSender(
            config["SMTP_HOST"],
            config["SMTP_PORT"],
            config["SMTP_USERNAME"],
            config["SMTP_PASSWORD"],
            config["SMTP_STARTTLS"],
            config["SMTP_TIMEOUT"],
            config["MAIL_FROM"],
        )
    if backend == "notify":
        if not config.get("NOTIFY_API_KEY") or not config.get("NOTIFY_TEMPLATE_ID"):
            raise RuntimeError(
                "MARKETPLACE_NOTIFY_API_KEY and MARKETPLACE_NOTIFY_TEMPLATE_ID are required"
            )
        return NotifySender(
            config["NOTIFY_API_KEY"], config["NOTIFY_TEMPLATE_ID"], config["NOTIFY_BASE_URL"]
        )
    raise RuntimeError(
        f"unknown MARKETPLACE_EMAIL_BACKEND {backend!r}: use console, smtp or notify"
    )

"""A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps every message it receives, for tests.

    with SmtpSink() as sink:
        app.config.update(EMAIL_BACKEND="smtp", SMTP_HOST=sink.host, SMTP_PORT=sink.port)
        ...
        message = sink.wait_for(lambda m: m.to == "someone@example.org")

aiosmtpd's ``Controller`` does not accept port 0, so a free port is picked first (and picked
again if another process takes it in between).
"""

from __future__ import annotations

import email
import email.policy
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Self

from aiosmtpd.controller import Controller

HOST = "127.0.0.1"


def free_port(host: str = HOST) -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class ReceivedEmail:
    """One message as the SMTP server received it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage

    @property
    def subject(self) -> str:
        # A subject longer than a line is folded after "Subject:", and Python's parser keeps the
        # folding whitespace as the start of the value, where a mail program shows none.
        return str(self.message["Subject"]).lstrip()

    @property
    def to(self) -> str:
        return str(self.message["To"])

    @property
    def sender(self) -> str:
        return str(self.message["From"])

    @property
    def body(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""

    def links(self) -> list[str]:
        """Every http(s) address in the plain-text body, in order."""
        return re.findall(r"https?://[^\s<>\"')]+", self.body)


class _Collector:
    """aiosmtpd handler: accept every message and keep it."""

    def __init__(self, sink: SmtpSink):
        self.sink = sink

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(
            envelope.original_content or envelope.content, policy=email.policy.default
        )
        self.sink._received(ReceivedEmail(envelope.mail_from, tuple(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


class SmtpSink:
    """An SMTP server on loopback collecting messages; start() / stop() or use it as a context."""

    def __init__(self, host: str = HOST):
        self.host = host
        self.port: int | None = None
        self._messages: list[ReceivedEmail] = []
        self._condition = threading.Condition()
        self._controller: Controller | None = None

    def start(self) -> Self:
        last_error: OSError | None = None
        for _ in range(5):
            port = free_port(self.host)
            controller = Controller(_Collector(self), hostname=self.host, port=port)
            try:
                controller.start()
            except OSError as error:  # the port was taken between the probe and the bind
                last_error = error
                continue
            self._controller, self.port = controller, port
            return self
        raise RuntimeError(f"could not start the SMTP sink: {last_error}")

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _received(self, received: ReceivedEmail) -> None:
        with self._condition:
            self._messages.append(received)
            self._condition.notify_all()

    @property
    def messages(self) -> list[ReceivedEmail]:
        with self._condition:
            return list(self._messages)

    def clear(self) -> None:
        with self._condition:
            self._messages.clear()

    def wait_for(
        self,
        predicate: Callable[[ReceivedEmail], bool] = lambda message: True,
        timeout: float = 10.0,
    ) -> ReceivedEmail:
        """The first message matching ``predicate``, waiting up to ``timeout`` seconds for it."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while True:
                for message in self._messages:
                    if predicate(message):
                        return message
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [(m.to, m.subject) for m in self._messages]
                    raise AssertionError(f"no matching email within {timeout}s; received: {seen}")
                self._condition.wait(remaining)

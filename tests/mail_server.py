"""A real SMTP server in the test process (aiosmtpd), on a free loopback port: what it received,
parsed, and answers to refuse with (a queue: each DATA takes the next, then accepts)."""

import email
import email.policy
import threading
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from scripts.chrome import free_port


class MailServer:
    """`login`: (user, password) the server asks for (over plain SMTP: loopback only).
    `starttls`: a server TLS context it offers STARTTLS with; `implicit_tls`: one it speaks
    TLS with from the first byte (smtps)."""

    def __init__(self, login: tuple[str, str] | None = None, *, starttls=None, implicit_tls=None):
        self.received: list[tuple[list[str], EmailMessage]] = []
        self.refusals: list[str] = []  # e.g. "451 4.3.0 Try again later": the next DATA gets it
        self._lock = threading.Lock()
        self.port = free_port()
        auth = {"authenticator": self._authenticate, "auth_require_tls": bool(starttls)} if login else {}
        tls = {"tls_context": starttls} if starttls else {}
        self._login = login
        self._implicit = implicit_tls is not None
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port, ssl_context=implicit_tls,
                                      **auth, **tls)

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        given = (auth_data.login.decode(), auth_data.password.decode())
        return AuthResult(success=given == self._login, handled=False)  # handled=False: aiosmtpd answers 535

    @property
    def url(self) -> str:
        return f"{'smtps' if self._implicit else 'smtp'}://127.0.0.1:{self.port}"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        with self._lock:
            if self.refusals:
                return self.refusals.pop(0)
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            self.received.append((list(envelope.rcpt_tos), message))
        return "250 OK"

    def messages(self) -> list[EmailMessage]:
        with self._lock:
            return [message for _, message in self.received]

    def __enter__(self) -> "MailServer":
        self._controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self._controller.stop()


def attachment(message: EmailMessage, content_type: str):
    """The first attachment of `content_type`: (filename, bytes)."""
    for part in message.iter_attachments():
        if part.get_content_type() == content_type:
            return part.get_filename(), part.get_payload(decode=True)
    raise AssertionError(f"no {content_type} attachment")


def html_part(message: EmailMessage) -> str:
    return message.get_body(("html",)).get_content()


def related_image(message: EmailMessage) -> bytes | None:
    """The PNG shown inside the HTML part, if any."""
    for part in message.walk():
        if part.get_content_type() == "image/png" and part.get("Content-ID"):
            return part.get_payload(decode=True)
    return None

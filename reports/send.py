"""Sending a report over SMTP (smtplib): `SMTP_URL` read once into an `SmtpServer`, then one
connection a message.

`smtp://user:pass@host:587` says STARTTLS when the server offers it (a password is never sent
in clear to a server that is not on this machine); `smtps://host:465` is TLS from the first
byte. The message goes as MAIL, RCPT for each recipient, then DATA: just before DATA the
caller's `before_data` runs (the send record notes that the server may now take the mail),
so a failure before it is known not to have sent anything.
"""

import email.policy
import ipaddress
import smtplib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import getaddresses
from urllib.parse import unquote, urlsplit

TIMEOUT = 30.0  # seconds for each step of the conversation
PORTS = {"smtp": 25, "smtps": 465}
NOT_SET = "SMTP_URL is not set: there is no mail server to send through."


class SendError(Exception):
    """The mail was not sent: the server could not be reached, or refused it. `delivering`: the
    failure came once DATA had started, so the server may have taken the mail after all."""

    def __init__(self, message: str, *, delivering: bool = False):
        super().__init__(message)
        self.delivering = delivering


@dataclass(frozen=True)
class SmtpServer:
    scheme: str  # "smtp" (STARTTLS when offered) or "smtps" (implicit TLS)
    host: str
    port: int
    user: str = ""
    password: str = field(default="", repr=False)

    def __str__(self) -> str:
        """Where mail goes, without the password (for pages and logs)."""
        who = f"{self.user}@" if self.user else ""
        return f"{self.scheme}://{who}{self.host}:{self.port}"


def parse_smtp_url(url: str) -> SmtpServer | None:
    """An SMTP_URL as an SmtpServer, None when empty; ValueError naming what is wrong."""
    url = str(url or "").strip()
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in PORTS or not parts.hostname:
        raise ValueError("SMTP_URL must look like smtp://user:password@host:587 or smtps://user:password@host:465")
    try:
        port = parts.port or PORTS[parts.scheme]
    except ValueError:
        raise ValueError("SMTP_URL has a port that is not a number from 1 to 65535") from None
    return SmtpServer(parts.scheme, parts.hostname, port, unquote(parts.username or ""), unquote(parts.password or ""))


def deliver(server: SmtpServer | None, message: EmailMessage,
            before_data: Callable[[], None] = lambda: None) -> dict[str, str]:
    """Send `message` to its To addresses; the recipients the server refused, with its answer
    (the others got it). SendError when nothing was sent, or when DATA failed."""
    if server is None:
        raise SendError(NOT_SET)
    recipients = [address for _, address in getaddresses(message.get_all("To", []))]
    try:
        with _connect(server) as smtp:
            return _transaction(smtp, message, recipients, before_data)
    except SendError:
        raise
    except smtplib.SMTPAuthenticationError as error:
        raise SendError(f"The mail server {server.host} refused the user name or password: {_said(error)}") from None
    except smtplib.SMTPResponseException as error:
        raise SendError(f"The mail server {server.host} refused: {_said(error)}") from None
    except (smtplib.SMTPException, OSError) as error:
        raise SendError(f"Could not talk to the mail server {server}: {error or type(error).__name__}") from None


def _connect(server: SmtpServer) -> smtplib.SMTP:
    if server.scheme == "smtps":
        smtp = smtplib.SMTP_SSL(server.host, server.port, timeout=TIMEOUT, context=ssl.create_default_context())
        smtp.ehlo()
    else:
        smtp = smtplib.SMTP(server.host, server.port, timeout=TIMEOUT)
        smtp.ehlo()
        if smtp.has_extn("starttls"):
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        elif server.user and not _loopback(server.host):
            smtp.close()
            raise SendError(f"The mail server {server} offers no STARTTLS: the password is not sent unencrypted. "
                            "Use smtps:// or a server that offers STARTTLS.")
    if server.user:
        smtp.login(server.user, server.password)
    return smtp


def _transaction(smtp: smtplib.SMTP, message: EmailMessage, recipients: list[str],
                 before_data: Callable[[], None]) -> dict[str, str]:
    sender = message["From"].addresses[0].addr_spec
    code, said = smtp.mail(sender)
    if code != 250:
        raise smtplib.SMTPSenderRefused(code, said, sender)
    refused = {}
    for address in recipients:
        code, said = smtp.rcpt(address)
        if code not in (250, 251):
            refused[address] = f"{code} {said.decode(errors='replace')}"
    if len(refused) == len(recipients):
        smtp.rset()
        raise SendError("The mail server refused every recipient: " + "; ".join(f"{a}: {r}" for a, r in refused.items()))
    content = message.as_bytes(policy=email.policy.SMTP)  # lines end in CRLF on the wire (render.wire_bytes)
    before_data()
    try:
        code, said = smtp.data(content)
    except smtplib.SMTPResponseException as error:  # an answer: the server did not take it
        raise SendError(f"The mail server refused the message: {_said(error)}") from None
    except (smtplib.SMTPException, OSError) as error:
        raise SendError(f"The connection ended while the mail server was taking the message ({error}): it may "
                        "have been sent.", delivering=True) from None
    if code != 250:  # smtplib's data() hands back the final answer without raising
        raise SendError(f"The mail server refused the message: {code} {' '.join(said.decode(errors='replace').split())}")
    return refused


def _said(error: smtplib.SMTPResponseException) -> str:
    text = error.smtp_error.decode(errors="replace") if isinstance(error.smtp_error, bytes) else str(error.smtp_error)
    return f"{error.smtp_code} {' '.join(text.split())}"


def _loopback(host: str) -> bool:
    """Whether `host` is this machine (a local relay: no one can listen in between)."""
    try:
        return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError):
        return False

"""Reports over TLS with a real SMTP server (aiosmtpd): STARTTLS when the server offers it,
smtps:// from the first byte, the password only ever inside TLS, and a certificate that is not
trusted refused with a clear message. The test's own authority signs the server's certificate,
and SSL_CERT_FILE makes it the one the sender trusts."""

import datetime
import ipaddress
import ssl
from email.message import EmailMessage

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from reports.send import SendError, deliver, parse_smtp_url
from tests.mail_server import MailServer

LOGIN = ("reports@example.com", "s3cret words")


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _certificate(subject: str, key, issuer: str, issuer_key, *, authority: bool, ip: str | None = None):
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=authority, path_length=None), critical=True)
               # what Python 3.13's strict verification asks of every certificate in the chain
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                              critical=False))
    if authority:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False),
            critical=True)
    if ip:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
                                        critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(thing) -> bytes:
    if isinstance(thing, x509.Certificate):
        return thing.public_bytes(serialization.Encoding.PEM)
    return thing.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption())


@pytest.fixture
def tls(tmp_path, monkeypatch):
    """A server context for 127.0.0.1 signed by an authority the sender trusts (SSL_CERT_FILE)."""
    authority_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    authority = _certificate("Test authority", authority_key, "Test authority", authority_key, authority=True)
    server = _certificate("127.0.0.1", server_key, "Test authority", authority_key, authority=False, ip="127.0.0.1")
    (tmp_path / "authority.pem").write_bytes(_pem(authority))
    (tmp_path / "server.pem").write_bytes(_pem(server) + _pem(authority))
    (tmp_path / "server.key").write_bytes(_pem(server_key))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "authority.pem"))
    return context


def _message() -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = LOGIN[0], "staff@example.com", "Week 49"
    message.set_content("Revenue 1,234.50 USD")
    return message


def _with_login(url: str) -> str:
    return url.replace("://", "://reports%40example.com:s3cret%20words@", 1)


def test_starttls_is_used_when_offered_and_the_login_goes_inside_it(tls):
    # auth_require_tls: the server refuses a login before STARTTLS, so a delivery proves the order
    with MailServer(login=LOGIN, starttls=tls) as server:
        assert deliver(parse_smtp_url(_with_login(server.url)), _message()) == {}
        assert [to for to, _ in server.received] == [["staff@example.com"]]
        assert server.messages()[0]["Subject"] == "Week 49"


def test_smtps_speaks_tls_from_the_first_byte(tls):
    with MailServer(login=LOGIN, implicit_tls=tls) as server:
        assert server.url.startswith("smtps://")
        assert deliver(parse_smtp_url(_with_login(server.url)), _message()) == {}
        assert server.messages()[0].get_content().strip() == "Revenue 1,234.50 USD"


def test_a_certificate_the_sender_does_not_trust_is_refused_and_nothing_is_sent(tls, monkeypatch, tmp_path):
    stranger_key = ec.generate_private_key(ec.SECP256R1())
    stranger = _certificate("Stranger", stranger_key, "Stranger", stranger_key, authority=True)
    (tmp_path / "stranger.pem").write_bytes(_pem(stranger))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "stranger.pem"))  # trusts another authority only
    for kind in ("starttls", "implicit_tls"):
        with MailServer(login=LOGIN, **{kind: tls}) as server:
            with pytest.raises(SendError, match="Could not talk to the mail server .*CERTIFICATE_VERIFY_FAILED"):
                deliver(parse_smtp_url(_with_login(server.url)), _message())
            assert server.received == []

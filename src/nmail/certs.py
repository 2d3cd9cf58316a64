"""TLS certificates: the self-signed one `init` makes, loading, reloading, describing.

Listeners ask `Certificates.context()` at each handshake, so a reload (SIGHUP)
applies to new connections without dropping the ones already open.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class CertificateError(Exception):
    """The certificate or key files cannot be used."""


def generate_self_signed(hostname: str, cert_path: Path, key_path: Path, days: int = 3650) -> None:
    """Write a self-signed certificate for `hostname` (and localhost) and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    sans: list[x509.GeneralName] = [x509.DNSName(hostname)]
    if hostname != "localhost":
        sans.append(x509.DNSName("localhost"))
    sans.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key_bytes)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    subject: str
    issuer: str
    sans: tuple[str, ...]
    not_before: dt.datetime
    not_after: dt.datetime
    self_signed: bool

    @property
    def days_left(self) -> int:
        return (self.not_after - dt.datetime.now(dt.UTC)).days


def describe(cert_path: Path) -> CertificateInfo:
    """Subject, SANs and validity of the first certificate in a PEM file."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except FileNotFoundError:
        raise CertificateError(f"{cert_path}: not found") from None
    except ValueError as exc:
        raise CertificateError(f"{cert_path}: not a PEM certificate ({exc})") from None
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        sans = tuple(str(v) for v in ext.value.get_values_for_type(x509.DNSName)) + tuple(
            str(v) for v in ext.value.get_values_for_type(x509.IPAddress)
        )
    except x509.ExtensionNotFound:
        sans = ()
    return CertificateInfo(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        sans=sans,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        self_signed=cert.issuer == cert.subject,
    )


def server_context(cert_path: Path, key_path: Path) -> ssl.SSLContext:
    """A server SSLContext: TLS 1.2 and newer only (RFC 8996)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    try:
        ctx.load_cert_chain(str(cert_path), str(key_path))
    except FileNotFoundError as exc:
        raise CertificateError(f"{exc.filename}: not found") from None
    except (ssl.SSLError, OSError) as exc:
        raise CertificateError(f"cannot load {cert_path} / {key_path}: {exc}") from None
    return ctx


class Certificates:
    """The current server context; `reload()` swaps it atomically."""

    def __init__(self, cert_path: Path | None, key_path: Path | None) -> None:
        self.cert_path = cert_path
        self.key_path = key_path
        self._lock = threading.Lock()
        self._context: ssl.SSLContext | None = None
        if cert_path and key_path:
            self._context = server_context(cert_path, key_path)

    @property
    def available(self) -> bool:
        return self._context is not None

    def context(self) -> ssl.SSLContext | None:
        with self._lock:
            return self._context

    def reload(self) -> None:
        """Re-read the files; on error keep the old context and raise."""
        if not (self.cert_path and self.key_path):
            return
        fresh = server_context(self.cert_path, self.key_path)
        with self._lock:
            self._context = fresh

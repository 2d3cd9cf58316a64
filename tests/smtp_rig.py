"""Shared pieces of the SMTP tests: a protocol driver, a recording backend,
a server on an event loop thread (asyncio or uvloop), a self-signed certificate.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from nmail.delivery.envelope import ClientInfo, Envelope
from nmail.directory.model import Account, Resolution
from nmail.policy import recipients, relay, senders
from nmail.policy.decision import ACCEPT, Decision
from nmail.protocols.smtp import AuthCredentials, Event, SmtpConnection, SmtpOptions
from nmail.servers.smtp import AuthOutcome, SmtpServer, SmtpServerSettings
from support import LoopThread

T = TypeVar("T")


# -- the sans-IO connection, driven synchronously ------------------------------------


def accept_all(event: Event) -> Decision:
    return ACCEPT


class Driver:
    """Feeds an SmtpConnection and answers its decisions with `decide`."""

    def __init__(
        self,
        options: SmtpOptions | None = None,
        *,
        decide: Callable[[Event], Decision] = accept_all,
        tls_active: bool = False,
        plaintext_auth_allowed: bool = True,
    ) -> None:
        self.conn = SmtpConnection(
            options or SmtpOptions(hostname="mx.test"),
            tls_active=tls_active,
            plaintext_auth_allowed=plaintext_auth_allowed,
        )
        self.decide = decide
        self.events: list[Event] = []
        self.greeting = self.conn.data_to_send().decode()

    def send(self, data: bytes | str) -> list[str]:
        """Feed bytes, answer every decision, return the reply lines sent."""
        self.conn.receive_data(data.encode() if isinstance(data, str) else data)
        while (event := self.conn.next_event()) is not None:
            self.events.append(event)
            if event.needs_decision:
                decision = self.decide(event)
                if isinstance(event, AuthCredentials) and decision.accepted:
                    self.conn.auth_succeeded(event.username)
                else:
                    self.conn.answer(decision)
        out = self.conn.data_to_send().decode()
        return out.split("\r\n")[:-1]

    def last(self, data: bytes | str) -> str:
        """The last reply line after sending `data`."""
        lines = self.send(data)
        assert lines, f"no reply to {data!r}"
        return lines[-1]

    def of_type(self, kind: type[Event]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


def final_lines(lines: list[str]) -> list[str]:
    """The last line of each reply (drops the 250- continuation lines)."""
    return [line for line in lines if len(line) < 4 or line[3] != "-"]


# -- a backend that records what it is asked -------------------------------------------


def account(address: str, account_id: int = 1) -> Account:
    userid, domain = address.split("@")
    return Account(account_id, domain, userid, userid, 0, False, False, True, True)


@dataclass
class RecordingBackend:
    """Accepts mail for known users of hosted domains; remembers every call."""

    hosted: tuple[str, ...] = ("test.local",)
    users: dict[str, str] = field(default_factory=lambda: {"bob@test.local": "Secret-42"})
    relay_networks: tuple[str, ...] = ()
    fail_on: str | None = None  # an address whose check raises
    auth_delay: float = 0.0  # what authenticate() asks the server to wait after a failure
    auth_refusal: Decision | None = None
    senders_seen: list[str] = field(default_factory=list)
    recipients_seen: list[str] = field(default_factory=list)
    clients: list[ClientInfo] = field(default_factory=list)
    accepted: list[tuple[Envelope, bytes]] = field(default_factory=list)
    auth_attempts: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def check_sender(self, client: ClientInfo, sender: str, size_hint: int | None) -> Decision:
        with self.lock:
            self.senders_seen.append(sender)
            self.clients.append(client)
        if sender == self.fail_on:
            raise RuntimeError("database is on fire")
        if client.auth_user:
            return senders.check_sender_owned(sender, {client.auth_user})
        return ACCEPT

    def check_recipient(
        self, client: ClientInfo, sender: str, address: str, size_hint: int | None
    ) -> tuple[Decision, Resolution | None]:
        with self.lock:
            self.recipients_seen.append(address)
        if address == self.fail_on:
            raise RuntimeError("database is on fire")
        domain = address.rpartition("@")[2]
        if domain not in self.hosted:
            decision = relay.check_relay(
                client_ip=client.ip,
                authenticated=client.auth_user is not None,
                relay_networks=self.relay_networks,
            )
            resolution = Resolution(address, False, (), (address,))
            return decision, resolution if decision.accepted else None
        if address not in self.users:
            return recipients.unknown_user(address), None
        return ACCEPT, Resolution(address, True, (account(address),))

    def accept(self, envelope: Envelope, content: bytes) -> Decision:
        if envelope.sender == self.fail_on and self.fail_on is not None:
            raise RuntimeError("disk is on fire")
        with self.lock:
            self.accepted.append((envelope, content))
            number = len(self.accepted)
        return Decision(250, "2.0.0", f"Ok: queued as T{number}")

    def authenticate(self, username: str, password: str, client_ip: str) -> AuthOutcome:
        with self.lock:
            self.auth_attempts.append((username, client_ip))
        if self.users.get(username) == password:
            return AuthOutcome(True, username)
        return AuthOutcome(False, None, self.auth_refusal, self.auth_delay)


# -- a server on a loop thread -----------------------------------------------------------


class ServerRig:
    """Starts SMTP servers on 127.0.0.1:0 on one loop thread; closes them all at the end.

    On uvloop the servers get their own thread pool (the production path);
    on asyncio they use the loop's default executor.
    """

    def __init__(self, loop_kind: str) -> None:
        self.loop = LoopThread(loop_kind)
        self.servers: list[SmtpServer] = []
        self.executor = ThreadPoolExecutor(4) if loop_kind == "uvloop" else None

    def start(
        self,
        settings: SmtpServerSettings,
        backend: RecordingBackend,
        tls: ssl.SSLContext | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> SmtpServer:
        """`sleep`: how the server waits a guessing client's RCPT delay."""
        server = SmtpServer(
            settings, backend, (lambda: tls) if tls else None, executor=self.executor,
            sleep=sleep,
        )
        self.loop.run(server.start("127.0.0.1", 0))
        self.servers.append(server)
        return server

    def close(self) -> None:
        for server in self.servers:
            self.loop.run(server.close(grace=0))
        self.loop.close()
        if self.executor is not None:
            self.executor.shutdown(wait=True)


def read_reply(sock: socket.socket | ssl.SSLSocket, buf: bytearray) -> str:
    """Read one complete SMTP reply (all its lines) from a raw socket."""
    while True:
        lines = bytes(buf).split(b"\r\n")
        for i, line in enumerate(lines[:-1]):
            if (len(line) >= 4 and line[3:4] == b" ") or len(line) == 3:
                consumed = sum(len(x) + 2 for x in lines[: i + 1])
                del buf[:consumed]
                return b"\r\n".join(lines[: i + 1]).decode()
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection; buffered: " + repr(bytes(buf)))
        buf += chunk


# -- TLS ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SelfSignedCert:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.cert))
        return ctx


def make_certificate(directory: Path) -> SelfSignedCert:
    """A self-signed certificate for localhost and 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "cert.pem"
    key_path = directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return SelfSignedCert(cert_path, key_path)

"""A POP3 server on 127.0.0.1 for poplib tests: real Directory, MailStore, throttle.

The server runs on an event loop in a background thread; tests talk to it
with poplib from the test thread. The login delay is recorded, never slept.
"""

from __future__ import annotations

import contextlib
import poplib
import socket
import ssl
from pathlib import Path

from sqlalchemy import Engine

from nmail.certs import generate_self_signed, server_context
from nmail.directory import Account, Directory, LoginThrottle
from nmail.directory.cache import DirectoryCache
from nmail.directory.login import LoginService
from nmail.directory.passwords import fast_hashing
from nmail.mailstore.store import MailStore, NewMessage
from nmail.servers.pop3 import Pop3Server, Pop3Settings, StoreBackend
from nmail.servers.pop3_backend import ACCOUNT_CHECK_INTERVAL
from nmail.timers import Timers
from support import FakeClock, LoopThread

PASSWORD = "Correct-horse-42"
LOOPBACK_ONLY = Pop3Settings()
NO_PLAINTEXT = Pop3Settings(plaintext_auth_networks=())




class Pop3Rig:
    """Directory + MailStore + throttle for bob@example.com, and servers on demand."""

    def __init__(self, engine: Engine, tmp_path: Path, loop: str = "asyncio") -> None:
        self.engine = engine
        self.tmp_path = tmp_path
        self.directory = Directory(engine, passwords=fast_hashing())
        self.directory.add_domain("example.com")
        self.account: Account = self.directory.add_account("example.com", "Bob", "bob", PASSWORD)
        self.mail_dir = tmp_path / "mail"
        self.store = MailStore(engine, self.mail_dir, "mail.example.com")
        self.store.ensure_account(self.account)
        self.lookups = DirectoryCache(self.directory)
        self.clock = FakeClock()
        self.throttle = LoginThrottle(clock=self.clock, max_failures=3, lockout=600.0)
        self.sleeps: list[float] = []
        self.loop = LoopThread(loop)
        self.servers: list[Pop3Server] = []
        self.clients: list[poplib.POP3] = []
        self.cert = tmp_path / "tls" / "cert.pem"
        self.key = tmp_path / "tls" / "key.pem"
        self._tls: ssl.SSLContext | None = None
        self._generation = 0

    @property
    def maildir(self) -> Path:
        return self.mail_dir / "example.com" / "bob" / "Maildir"

    def tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            generate_self_signed("localhost", self.cert, self.key)
            self._tls = server_context(self.cert, self.key)
        return self._tls

    def replace_certificate(self) -> None:
        """A new certificate and key, as `nmail tls` reload (SIGHUP) would install."""
        self._generation += 1
        self.cert = self.tmp_path / f"tls-{self._generation}" / "cert.pem"
        self.key = self.cert.parent / "key.pem"
        generate_self_signed("localhost", self.cert, self.key)
        self._tls = server_context(self.cert, self.key)

    def client_context(self) -> ssl.SSLContext:
        self.tls_context()
        return ssl.create_default_context(cafile=str(self.cert))

    def start(
        self, settings: Pop3Settings = LOOPBACK_ONLY, *, tls: bool = False,
        store: MailStore | None = None, check_interval: float = ACCOUNT_CHECK_INTERVAL,
        timers: Timers | None = None,
    ) -> Pop3Server:
        login = LoginService(self.directory, self.throttle)
        backend = StoreBackend(
            login, store or self.store, self.mail_dir, self.lookups,
            check_interval=check_interval,
        )

        async def record_sleep(seconds: float) -> None:
            self.sleeps.append(seconds)

        provider = self.tls_context if tls else None
        server = Pop3Server(backend, settings, provider, sleep=record_sleep, timers=timers)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        sock.setblocking(False)
        self.loop.run(server.start(sock))
        self.servers.append(server)
        return server

    def stop(self, server: Pop3Server) -> None:
        self.loop.run(server.stop(grace=5.0))
        self.servers.remove(server)

    def connect(self, server: Pop3Server) -> poplib.POP3:
        client = poplib.POP3("127.0.0.1", server.port, timeout=10)
        self.clients.append(client)
        return client

    def connect_ssl(self, server: Pop3Server) -> poplib.POP3_SSL:
        client = poplib.POP3_SSL(
            "127.0.0.1", server.port, timeout=10, context=self.client_context()
        )
        self.clients.append(client)
        return client

    def login(self, server: Pop3Server) -> poplib.POP3:
        client = self.connect(server)
        client.user("bob@example.com")
        client.pass_(PASSWORD)
        return client

    def deliver(self, *contents: bytes) -> list[int]:
        stored = self.store.store([NewMessage(self.account, "INBOX", b"", c) for c in contents])
        return [m.uid for m in stored]

    def close(self) -> None:
        for client in self.clients:
            with contextlib.suppress(OSError):
                client.close()
        for server in list(self.servers):
            self.stop(server)
        self.loop.close()
        self.lookups.close()
        self.store.close()

"""POP3 listeners: `pop3` (110, STLS) and `pop3s` (995, implicit TLS).

The conversation is `protocols.pop3.Pop3Session`; `Pop3Connection` feeds it
from the socket and answers its events through a `Pop3Backend`.
`StoreBackend` is the real backend (Directory + LoginThrottle + MailStore);
the runtime wires a listener with `start_pop3_server(runtime, name, sock)`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING

from nmail.mailstore.maildrop import LOCK_FILE, PIECE, MailboxLock
from nmail.servers.delays import Sleep, delay_until_stop
from nmail.servers.limits import ConnectionLimits, RefusalLog
from nmail.servers.pop3_backend import (
    LoginOutcome,
    Maildrop,
    Pop3Backend,
    StoreBackend,
    StoreMaildrop,
)
from nmail.servers.pop3_connection import Pop3Connection
from nmail.servers.pop3_settings import Pop3Settings
from nmail.servers.tls_gate import TlsGate
from nmail.timers import Timers

if TYPE_CHECKING:
    from nmail.runtime import Runtime

__all__ = [
    "LOCK_FILE",
    "PIECE",
    "LoginOutcome",
    "MailboxLock",
    "Maildrop",
    "Pop3Backend",
    "Pop3Server",
    "Pop3Settings",
    "StoreBackend",
    "StoreMaildrop",
    "start_pop3_server",
]

log = logging.getLogger(__name__)

TlsProvider = Callable[[], "ssl.SSLContext | None"]


class Pop3Server:
    """One POP3 listener."""

    def __init__(
        self,
        backend: Pop3Backend,
        settings: Pop3Settings,
        tls: TlsProvider | None = None,
        *,
        sleep: Sleep = asyncio.sleep,
        timers: Timers | None = None,
        stop_grace: float = 10.0,
    ) -> None:
        """tls: returns the current server context (None: no TLS), asked at each
        handshake so a reloaded certificate applies to new connections.
        sleep: how a login delay is waited (tests pass a recorder); a stop cuts it short.
        timers: the clock of idle timeouts and the session time limit (default: the
        event loop; tests pass one they move, see nmail/timers.py).
        stop_grace: how long stop() lets a busy session finish its step."""
        self.backend = backend
        self.settings = settings
        self._tls = tls
        self.sleep = sleep
        self.timers = timers
        self.stop_grace = stop_grace
        self._stopped = asyncio.Event()
        self._networks = [
            ipaddress.ip_network(n, strict=False) for n in settings.plaintext_auth_networks
        ]
        self._server: asyncio.Server | None = None
        self._connections: set[Pop3Connection] = set()
        self._limits = ConnectionLimits(settings.max_connections, settings.max_connections_per_ip)
        self._refusals = RefusalLog(log, "pop3" if not settings.implicit_tls else "pop3s")
        self._all_gone: asyncio.Event | None = None
        self.stopping = False

    async def start(self, sock: socket.socket) -> None:
        """Serve on an already bound, listening socket."""
        loop = asyncio.get_running_loop()
        if self.settings.implicit_tls:
            if self.tls_context() is None:
                log.warning("pop3s listener without a TLS certificate: every handshake fails")
            # The handshake counts against the limits too (servers/tls_gate.py).
            context, handshake = self._implicit_tls_context(), self.settings.handshake_timeout
            self._server = await loop.create_server(
                lambda: TlsGate(
                    self.admit, self._limits, lambda: Pop3Connection(self), context, handshake
                ),
                sock=sock,
            )
        else:
            self._server = await loop.create_server(lambda: Pop3Connection(self), sock=sock)

    def _implicit_tls_context(self) -> ssl.SSLContext:
        """The pop3s listener's context: TLS 1.2+, and at each handshake it hands over
        to the provider's current context (certificate and key), so a reload applies
        to the next connection. The listener does the handshake itself, before any
        byte reaches the session: nothing can be read in plaintext."""
        listener = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        listener.minimum_version = ssl.TLSVersion.TLSv1_2
        listener.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE

        def use_current(
            connection: ssl.SSLObject, _server_name: str | None, _listener: ssl.SSLContext
        ) -> int | None:
            current = self.tls_context()
            if current is None:
                return ssl.ALERT_DESCRIPTION_INTERNAL_ERROR
            connection.context = current
            return None

        # Called for every ClientHello, with or without SNI.
        listener.sni_callback = use_current
        return listener

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def connection_count(self) -> int:
        """Sessions not finished yet (their maildrop lock not yet released)."""
        return len(self._connections)

    def tls_context(self) -> ssl.SSLContext | None:
        return self._tls() if self._tls is not None else None

    def plaintext_allowed(self, ip: str) -> bool:
        """Whether USER/PASS/AUTH may be used without TLS from this address."""
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self._networks)

    def admit(self, ip: str) -> bytes | None:
        """None to serve a new connection from `ip`; else the -ERR line to close it with."""
        refusal = self._limits.admit(ip)
        if refusal is not None:
            self._refusals.refused(ip, refusal)
        if refusal is None:
            return None
        if refusal == "busy":
            return b"-ERR [SYS/TEMP] Too many connections, try again later\r\n"
        return b"-ERR [SYS/TEMP] Too many connections from your address, try later\r\n"

    def register(self, connection: Pop3Connection) -> None:
        self._connections.add(connection)
        self._limits.add(connection, connection.client_ip)

    def unregister(self, connection: Pop3Connection) -> None:
        self._connections.discard(connection)
        self._limits.remove(connection)
        if not self._connections and self._all_gone is not None:
            self._all_gone.set()

    async def login_delay(self, seconds: float) -> None:
        """Hold a failed login back `seconds`, or until the server stops."""
        await delay_until_stop(self.sleep, seconds, self._stopped)

    async def stop(self, grace: float | None = None) -> None:
        """Stop accepting; close idle sessions (no UPDATE: nothing is deleted); let busy
        ones finish their step for up to `grace` seconds (default: stop_grace), then
        cut them. Login delays end at once."""
        grace = self.stop_grace if grace is None else grace
        self.stopping = True
        self._stopped.set()
        if self._server is not None:
            self._server.close()
        self._all_gone = asyncio.Event()
        for connection in list(self._connections):
            if connection.busy is None:
                connection.abort()
        if self._connections:
            try:
                await asyncio.wait_for(self._all_gone.wait(), grace)
            except TimeoutError:
                for connection in list(self._connections):
                    connection.abort()
                    if connection.busy is not None:
                        connection.busy.cancel()
        if self._server is not None:
            await self._server.wait_closed()


async def start_pop3_server(runtime: Runtime, name: str, sock: socket.socket) -> Pop3Server:
    """Start the `pop3` or `pop3s` listener on `sock` with the runtime's parts."""
    config = runtime.config
    backend = StoreBackend(runtime.login, runtime.store, config.mail_dir, runtime.intake.lookups)
    settings = Pop3Settings(
        implicit_tls=name == "pop3s",
        default_domain=config.pop3.default_domain,
        plaintext_auth_networks=config.smtp.plaintext_auth_networks,
        max_connections=config.pop3.max_connections,
        max_connections_per_ip=config.pop3.max_connections_per_ip,
    )
    server = Pop3Server(
        backend, settings, runtime.certificates.context, sleep=runtime.sleep,
        stop_grace=config.stop_timeout,
    )
    await server.start(sock)
    return server

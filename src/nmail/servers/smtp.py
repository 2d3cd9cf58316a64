"""The SMTP listeners (port 25, submission 587, submissions 465) on asyncio.

Make an SmtpServer with its settings, a backend (delivery.Intake) and a TLS
context provider (certificates.context, so reloads apply to new
handshakes); `await start(host, port)`; `await close(grace)` stops
accepting, lets transactions finish, then says 421 4.3.2 to the rest.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from nmail.config import Config, SmtpSettings
from nmail.directory.login import LoginService
from nmail.policy.relay import ip_in_networks, parse_networks
from nmail.protocols.smtp import SmtpOptions
from nmail.protocols.smtp import replies as r
from nmail.protocols.smtp.replies import Reply
from nmail.servers.data_spool import spill_factory
from nmail.servers.delays import Sleep
from nmail.servers.limits import ConnectionLimits, RefusalLog, SharedRow
from nmail.servers.smtp_auth import IntakeBackend, MailIntake
from nmail.servers.smtp_backend import AuthOutcome, InlineChecks, SmtpBackend
from nmail.servers.smtp_session import SmtpSession
from nmail.servers.smtp_setup import SessionSetup
from nmail.servers.tls_gate import TlsGate

__all__ = [
    "AuthOutcome",
    "SmtpBackend",
    "SmtpRole",
    "SmtpServer",
    "SmtpServerSettings",
    "start_smtp_server",
]

log = logging.getLogger("nmail.smtp")

SmtpRole = Literal["smtp", "submission", "submissions"]
_ROLES: dict[str, SmtpRole] = {
    "smtp": "smtp",
    "submission": "submission",
    "submissions": "submissions",
}
TlsContextProvider = Callable[[], ssl.SSLContext | None]


@dataclass(frozen=True, slots=True)
class SmtpServerSettings:
    """One SMTP listener.

    role: "smtp" (port 25: STARTTLS offered, AUTH after it), "submission"
    (587: STARTTLS, AUTH required before MAIL), "submissions" (465: implicit
    TLS, AUTH required). Plaintext AUTH is offered only to clients in
    smtp.plaintext_auth_networks.
    """

    role: SmtpRole
    hostname: str
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    postmaster_address: str | None = None
    idle_timeout: float = 300.0
    min_data_rate: float = 500.0  # bytes/s that extend the idle deadline (config_sessions)
    max_session_time: float = 3600.0
    tls_handshake_timeout: float = 30.0
    shutdown_grace: float = 30.0
    # Where messages past 1 MiB wait while they arrive (None: in memory).
    spool_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.role not in ("smtp", "submission", "submissions"):
            raise ValueError(f"unknown SMTP role {self.role!r}")
        for cidr in self.smtp.plaintext_auth_networks:
            ipaddress.ip_network(cidr, strict=False)  # ValueError names the bad one


def _no_tls() -> ssl.SSLContext | None:
    return None


class SmtpServer:
    """An SMTP listener feeding sans-IO connections and calling a backend."""

    def __init__(
        self,
        settings: SmtpServerSettings,
        backend: SmtpBackend,
        tls_context: TlsContextProvider | None = None,
        *,
        executor: Executor | None = None,
        shared_counts: SharedRow | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """`shared_counts`: the connection limits count every worker's sessions.
        `sleep`: how the delay before a guessing client's RCPT replies, and a failed
        AUTH's, is waited (tests pass a recorder); a stop cuts it short."""
        self.settings = settings
        self._sleep = sleep
        self.backend = backend
        self.tls_context = tls_context or _no_tls
        self.executor = executor
        self._server: asyncio.Server | None = None
        self._sessions: set[SmtpSession] = set()
        self._limits = ConnectionLimits(
            settings.smtp.max_connections, settings.smtp.max_connections_per_ip, shared_counts
        )
        self._refusals = RefusalLog(log, f"{settings.role} (SMTP)")
        self._closing = False
        self._stopping = asyncio.Event()
        self._networks = parse_networks(settings.smtp.plaintext_auth_networks)
        self._auth_by_ip: dict[str, bool] = {}
        self._setups: dict[bool, SessionSetup] = {}

    @property
    def closing(self) -> bool:
        return self._closing

    @property
    def sessions(self) -> int:
        """Connections currently open."""
        return len(self._sessions)

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """(host, port) of every bound socket."""
        if self._server is None:
            return []
        return [s.getsockname()[:2] for s in self._server.sockets]

    @property
    def port(self) -> int:
        return self.addresses[0][1]

    async def start(
        self, host: str = "127.0.0.1", port: int = 0, *, sock: socket.socket | None = None
    ) -> None:
        """Start listening on host:port, or on an already bound socket."""
        if self._server is not None:
            raise RuntimeError("SMTP server already started")
        loop = asyncio.get_running_loop()
        tls: ssl.SSLContext | None = None
        timeout: float | None = None
        if self.settings.role == "submissions":
            tls = self._implicit_tls_context()
            timeout = self.settings.tls_handshake_timeout
            if self.tls_context() is None:
                log.error("submissions listener has no TLS certificate: handshakes will fail")
        factory: Callable[[], asyncio.Protocol] = self._new_session
        if tls is not None and timeout is not None:
            # The handshake counts against the limits too (servers/tls_gate.py).
            context, handshake = tls, timeout
            factory = lambda: TlsGate(  # noqa: E731
                self.admit, self._limits, self._new_session, context, handshake
            )
        if sock is not None:
            self._server = await loop.create_server(factory, sock=sock, backlog=512)
        else:
            self._server = await loop.create_server(
                factory, host, port, backlog=512, reuse_address=True
            )

    async def close(self, grace: float | None = None) -> None:
        """Stop accepting; let transactions finish within `grace` seconds; 421 the rest."""
        self._closing = True
        self._stopping.set()  # cuts login delays short
        if self._server is not None:
            self._server.close()
        for session in list(self._sessions):
            session.shutdown()
        tasks = [s.task for s in self._sessions if s.task is not None]
        if tasks:
            wait = self.settings.shutdown_grace if grace is None else grace
            await asyncio.wait(tasks, timeout=max(wait, 0.0))
        leftover = list(self._sessions)
        for session in leftover:
            session.force_close()
        rest = [s.task for s in leftover if s.task is not None]
        if rest:
            await asyncio.wait(rest, timeout=5.0)
        if self._server is not None:
            await self._server.wait_closed()

    async def stop(self) -> None:
        """close() with the configured grace (the runtime's listener interface)."""
        await self.close()

    # -- sessions ------------------------------------------------------------------

    def admit(self, ip: str) -> Reply | None:
        """None to serve a new connection from `ip`; else the 421 to close it with."""
        refusal = self._limits.admit(ip)
        if refusal is None:
            return None
        self._refusals.refused(ip, refusal)
        return r.SERVER_BUSY if refusal == "busy" else r.TOO_MANY_CONNECTIONS

    def session_started(self, session: SmtpSession) -> None:
        self._sessions.add(session)
        self._limits.add(session, session.client_ip)
        if self._closing:
            session.shutdown()

    def session_finished(self, session: SmtpSession) -> None:
        self._sessions.discard(session)
        self._limits.remove(session)

    def _implicit_tls_context(self) -> ssl.SSLContext:
        """The listener's context for implicit TLS.

        It holds no certificate itself: at each ClientHello (with or without
        SNI) it switches the handshake to the provider's current context, so
        a reloaded certificate serves the next connection. The listener, not
        the session, wraps the socket, so no client byte can arrive before
        TLS is in place. Protocol versions stay this context's: TLS 1.2+.
        """
        front = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        front.minimum_version = ssl.TLSVersion.TLSv1_2
        front.options |= ssl.OP_NO_COMPRESSION

        def switch(ssl_object: ssl.SSLObject, name: str | None, _: ssl.SSLContext) -> int | None:
            current = self._current_tls_context()
            if current is None:
                return ssl.ALERT_DESCRIPTION_HANDSHAKE_FAILURE
            ssl_object.context = current
            return None

        front.sni_callback = switch
        return front

    def _current_tls_context(self) -> ssl.SSLContext | None:
        """The provider's context, never allowing less than TLS 1.2 (RFC 8996)."""
        context = self.tls_context()
        if context is not None and context.minimum_version < ssl.TLSVersion.TLSv1_2:
            context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context

    def _plaintext_auth_allowed(self, ip: str) -> bool:
        # Asked at every connection; parsing the address costs more than the rest.
        found = self._auth_by_ip.get(ip)
        if found is None:
            found = ip_in_networks(ip, self._networks)
            if len(self._auth_by_ip) >= 4096:
                self._auth_by_ip.clear()
            self._auth_by_ip[ip] = found
        return found

    def _new_session(self) -> SmtpSession:
        return SmtpSession(self, self._setup())

    def _setup(self) -> SessionSetup:
        # Whether STARTTLS is offered can change with a certificate reload.
        has_tls = self.tls_context() is not None
        setup = self._setups.get(has_tls)
        if setup is None:
            setup = self._setups[has_tls] = self._make_setup(has_tls)
        return setup

    def _make_setup(self, has_tls: bool) -> SessionSetup:
        s = self.settings
        options = SmtpOptions(
            hostname=s.hostname,
            banner=s.smtp.banner,
            max_message_size=s.smtp.max_message_size,
            max_recipients=s.smtp.max_recipients,
            max_bad_commands=s.smtp.max_bad_commands,
            rcpt_error_soft_limit=s.smtp.rcpt_error_soft_limit,
            rcpt_error_hard_limit=s.smtp.rcpt_error_hard_limit,
            rcpt_error_delay=s.smtp.rcpt_error_delay,
            starttls_available=has_tls and s.role != "submissions",
            auth_available=True,
            auth_required=s.role != "smtp",
            postmaster_address=s.postmaster_address,
        )
        return SessionSetup(
            options=options,
            backend=self.backend,
            inline=self.backend if isinstance(self.backend, InlineChecks) else None,
            executor=self.executor,
            tls_context=self._current_tls_context,
            implicit_tls=s.role == "submissions",
            plaintext_auth_allowed=self._plaintext_auth_allowed,
            idle_timeout=s.idle_timeout,
            min_data_rate=s.min_data_rate,
            max_session_time=s.max_session_time,
            handshake_timeout=s.tls_handshake_timeout,
            stopping=self._stopping,
            spill=None if s.spool_dir is None else spill_factory(s.spool_dir),
            sleep=self._sleep,
        )


class CertificateSource(Protocol):
    def context(self) -> ssl.SSLContext | None: ...


class SmtpRuntime(Protocol):
    """The parts of nmail.runtime.Runtime an SMTP listener uses."""

    @property
    def config(self) -> Config: ...

    @property
    def intake(self) -> MailIntake: ...

    @property
    def login(self) -> LoginService: ...

    @property
    def certificates(self) -> CertificateSource: ...

    @property
    def executor(self) -> Executor: ...

    @property
    def sleep(self) -> Sleep: ...

    @property
    def connection_counts(self) -> Mapping[str, SharedRow]:
        """Per listener name: this worker's row of counts shared with the others."""
        ...


async def start_smtp_server(runtime: SmtpRuntime, role: str, sock: socket.socket) -> SmtpServer:
    """Start the `role` listener on a bound socket, wired to the runtime's core."""
    if role not in _ROLES:
        raise ValueError(f"unknown SMTP role {role!r}")
    config = runtime.config
    settings = SmtpServerSettings(
        role=_ROLES[role],
        hostname=config.hostname,
        smtp=config.smtp,
        postmaster_address=f"postmaster@{config.hostname}",  # policy/postmaster.py
        shutdown_grace=config.stop_timeout,
        spool_dir=config.data_dir / "spool",
        idle_timeout=config.smtp_timing.idle_timeout,
        min_data_rate=config.smtp_timing.min_data_rate,
        max_session_time=config.smtp_timing.max_session_time,
    )
    backend = IntakeBackend(runtime.intake, runtime.login)
    server = SmtpServer(
        settings,
        backend,
        runtime.certificates.context,
        executor=runtime.executor,
        shared_counts=runtime.connection_counts.get(role),
        sleep=runtime.sleep,
    )
    await server.start(sock=sock)
    return server

"""One SMTP connection on the event loop: bytes from the socket into an
SmtpConnection, its events to the backend, replies back.

The backend answers from memory on the loop where it can (InlineChecks),
else in an executor (see smtp_calls).

An asyncio.Protocol rather than streams: data arrives in large chunks and
is handed to the sans-IO connection as is, with no per-line awaits.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar, cast

from nmail.delivery.envelope import ClientInfo, Envelope
from nmail.directory.model import Resolution
from nmail.policy.decision import Decision
from nmail.protocols.smtp import (
    AuthCredentials,
    Event,
    MailFrom,
    MessageData,
    ProtocolError,
    RcptTo,
    SmtpConnection,
    SmtpOptions,
    StartTls,
)
from nmail.protocols.smtp import replies as r
from nmail.servers import tls_upgrade
from nmail.servers.smtp_backend import InlineChecks, SmtpBackend
from nmail.servers.smtp_calls import LOCAL_ERROR, answer_now, call_blocking, wait_decision

if TYPE_CHECKING:
    from nmail.servers.smtp import SmtpServer

log = logging.getLogger("nmail.smtp")

T = TypeVar("T")
AUTH_UNAVAILABLE = Decision(454, "4.7.0", "Temporary authentication failure")
# Stop reading from a client that pipelines this much while we wait on the backend.
MAX_PENDING_INPUT = 1 << 20


@dataclass(frozen=True, slots=True)
class SessionSetup:
    """What every session of one listener shares."""

    options: SmtpOptions
    backend: SmtpBackend
    inline: InlineChecks | None  # the backend's answers from memory, if it offers them
    executor: Executor | None
    tls_context: Callable[[], ssl.SSLContext | None]
    implicit_tls: bool  # the listener wraps connections in TLS before connection_made
    plaintext_auth_allowed: Callable[[str], bool]
    idle_timeout: float
    handshake_timeout: float


class SmtpSession(asyncio.Protocol):
    """The asyncio side of one client connection."""

    def __init__(self, server: SmtpServer, setup: SessionSetup) -> None:
        self._server = server
        self._setup = setup
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._conn: SmtpConnection | None = None
        self._ip = ""
        self._tls_description: str | None = None
        self._client_info: ClientInfo | None = None
        self._resolutions: list[Resolution] = []
        self._waiter: asyncio.Future[None] | None = None
        self._write_waiter: asyncio.Future[None] | None = None
        self._waiting_for_client = False
        self._reading_paused = False
        self._write_paused = False
        self._lost = False
        self._last_activity = self._loop.time()
        self._idle_timer: asyncio.TimerHandle | None = None
        self.task: asyncio.Task[None] | None = None

    @property
    def client_ip(self) -> str:
        return self._ip

    # -- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport; they behave as one.
        self._transport = cast(asyncio.Transport, transport)
        transport = self._transport
        peer = transport.get_extra_info("peername")
        self._ip = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        refusal = self._server.admit(self._ip)
        if refusal is not None:
            # Over a connection limit: one 421 instead of the greeting, and close.
            log.info("SMTP %s refused: %s", self._ip, refusal.lines[0])
            self._lost = True
            transport.write(refusal.encode())
            transport.close()
            return
        # Implicit TLS: the listener did the handshake before connection_made.
        self._tls_description = tls_upgrade.describe(transport)
        self._conn = SmtpConnection(
            self._setup.options,
            tls_active=self._setup.implicit_tls,
            plaintext_auth_allowed=self._setup.plaintext_auth_allowed(self._ip),
        )
        self._idle_timer = self._loop.call_later(self._setup.idle_timeout, self._check_idle)
        self.task = self._loop.create_task(self._run())
        self._server.session_started(self)

    def data_received(self, data: bytes) -> None:
        conn = self._conn
        assert conn is not None
        conn.receive_data(data)
        self._last_activity = self._loop.time()
        self._wake()
        if (
            not self._waiting_for_client
            and not self._reading_paused
            and conn.buffered > MAX_PENDING_INPUT
            and self._transport is not None
        ):
            self._transport.pause_reading()
            self._reading_paused = True

    def eof_received(self) -> bool | None:
        self._lost = True
        self._wake()
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._wake()
        if self._write_waiter is not None and not self._write_waiter.done():
            self._write_waiter.set_result(None)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._write_waiter is not None and not self._write_waiter.done():
            self._write_waiter.set_result(None)

    # -- what the server asks -----------------------------------------------------------

    def shutdown(self) -> None:
        """The server is closing: say 421 now if idle, else once the transaction ends."""
        self._wake()

    def force_close(self) -> None:
        """The grace period is over: 421 whatever the session was doing."""
        self._say_goodbye(r.SERVICE_SHUTTING_DOWN)
        if self.task is not None:
            self.task.cancel()

    # -- the session's task -----------------------------------------------------------

    async def _run(self) -> None:
        conn = self._conn
        assert conn is not None
        try:
            while not self._lost:
                event = conn.next_event()
                if event is not None:
                    await self._handle(event)
                    continue
                self._flush()
                if conn.closed:
                    break
                if self._server.closing and not conn.busy:
                    self._say_goodbye(r.SERVICE_SHUTTING_DOWN)
                    break
                if self._write_paused:
                    await self._drain()
                await self._wait_for_client()
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("SMTP session from %s failed", self._ip)
            self._say_goodbye(r.LOCAL_ERROR)
        finally:
            self._finish()

    async def _handle(self, event: Event) -> None:
        conn = self._conn
        assert conn is not None
        if isinstance(event, MailFrom):
            client = self._client()
            inline = self._setup.inline
            decision = None
            if inline is not None:
                decision = self._now(
                    inline.check_sender_now, client, event.address, event.params.size
                )
            if decision is None:
                decision = await self._call(
                    self._setup.backend.check_sender, client, event.address, event.params.size
                )
            if decision is None:
                conn.reject(LOCAL_ERROR)
                return
            if decision.accepted:
                self._resolutions = []
            conn.answer(decision)
        elif isinstance(event, RcptTo):
            await self._recipient(event)
        elif isinstance(event, MessageData):
            await self._message(event)
        elif isinstance(event, AuthCredentials):
            await self._authenticate(event)
        elif isinstance(event, StartTls):
            self._flush()
            if await self._start_tls():
                conn.tls_started()
            else:
                self._lost = True
        elif isinstance(event, ProtocolError):
            log.debug("SMTP %s: %s", self._ip, event.reply.encode().decode("utf-8", "replace"))

    async def _recipient(self, event: RcptTo) -> None:
        conn = self._conn
        assert conn is not None
        sender = conn.sender or ""
        client = self._client()
        size = conn.mail_params.size
        inline = self._setup.inline
        answer = None
        if inline is not None:
            answer = self._now(inline.check_recipient_now, client, sender, event.address, size)
        if answer is None:
            answer = await self._call(
                self._setup.backend.check_recipient, client, sender, event.address, size
            )
        if answer is None:
            conn.reject(LOCAL_ERROR)
            return
        decision, resolution = answer
        if decision.accepted and resolution is None:
            log.error("backend accepted %s without resolving it", event.address)
            conn.reject(LOCAL_ERROR)
            return
        if decision.accepted and resolution is not None:
            self._resolutions.append(resolution)
        conn.answer(decision)

    async def _message(self, event: MessageData) -> None:
        conn = self._conn
        assert conn is not None
        params = conn.mail_params
        accepted = conn.recipients
        envelope = Envelope(
            sender=conn.sender or "",
            recipients=tuple(self._resolutions),
            client=self._client(),
            smtputf8=params.smtputf8,
            dsn_envid=params.envid,
            dsn_ret=params.ret,
            dsn_notify=tuple(",".join(p.notify) if p.notify else None for _, p in accepted),
            dsn_orcpt=tuple(p.orcpt for _, p in accepted),
        )
        decision = None
        inline = self._setup.inline
        if inline is not None:
            started = self._now(inline.accept_now, envelope, event.content)
            if started is not None:
                decision = await wait_decision(self._loop, self._ip, started)
        if decision is None:
            decision = await self._call(self._setup.backend.accept, envelope, event.content)
        self._resolutions = []
        if self._lost:
            return
        conn.answer(decision if decision is not None else LOCAL_ERROR)

    async def _authenticate(self, event: AuthCredentials) -> None:
        conn = self._conn
        assert conn is not None
        if event.authzid and event.authzid != event.username:
            conn.auth_failed()  # no proxy authorization
            return
        outcome = await self._call(
            self._setup.backend.authenticate, event.username, event.password, self._ip
        )
        if outcome is None:
            conn.auth_failed(AUTH_UNAVAILABLE)
        elif outcome.ok:
            conn.auth_succeeded(outcome.account_address or event.username)
        else:
            if outcome.delay > 0:
                await asyncio.sleep(outcome.delay)
            if not self._lost:
                conn.auth_failed(outcome.reply)

    def _now(self, fn: Callable[..., T | None], *args: object) -> T | None:
        return answer_now(self._ip, fn, *args)

    async def _call(self, fn: Callable[..., T], *args: object) -> T | None:
        return await call_blocking(self._loop, self._setup.executor, self._ip, fn, *args)

    def _client(self) -> ClientInfo:
        conn = self._conn
        assert conn is not None
        helo, protocol, auth = conn.helo or "", conn.received_protocol, conn.authenticated_as
        known = self._client_info
        if (
            known is None
            or known.helo != helo
            or known.protocol != protocol
            or known.auth_user != auth
            or known.tls != self._tls_description
        ):
            known = self._client_info = ClientInfo(
                ip=self._ip, helo=helo, protocol=protocol, auth_user=auth, tls=self._tls_description
            )
        return known

    async def _start_tls(self) -> bool:
        """Handshake on the current transport; False (logged) when it fails."""
        transport = self._transport
        context = self._setup.tls_context()
        if transport is None or context is None:
            log.error("SMTP TLS requested by %s but no certificate is loaded", self._ip)
            return False
        new = await tls_upgrade.upgrade(
            self._loop, transport, self, context, self._setup.handshake_timeout, f"SMTP {self._ip}"
        )
        if new is None:
            transport.abort()
            return False
        self._transport = new
        self._tls_description = tls_upgrade.describe(new)
        self._last_activity = self._loop.time()
        return True

    # -- plumbing --------------------------------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait_for_client(self) -> None:
        if self._reading_paused and self._transport is not None:
            self._transport.resume_reading()
            self._reading_paused = False
        self._waiter = self._loop.create_future()
        self._waiting_for_client = True
        self._last_activity = self._loop.time()
        try:
            await self._waiter
        finally:
            self._waiting_for_client = False
            self._waiter = None

    async def _drain(self) -> None:
        self._write_waiter = self._loop.create_future()
        try:
            await self._write_waiter
        finally:
            self._write_waiter = None

    def _flush(self) -> None:
        conn = self._conn
        if conn is None or self._transport is None or self._lost:
            return
        out = conn.data_to_send()
        if out:
            self._transport.write(out)

    def _say_goodbye(self, final: r.Reply) -> None:
        if self._conn is not None:
            self._conn.terminate(final)
        self._flush()

    def _check_idle(self) -> None:
        self._idle_timer = None
        if self._lost or self._conn is None or self._conn.closed:
            return
        timeout = self._setup.idle_timeout
        left = self._last_activity + timeout - self._loop.time()
        if self._waiting_for_client and left <= 0:
            log.info("SMTP %s idle for %.0f s, closing", self._ip, timeout)
            self._say_goodbye(r.IDLE_TIMEOUT)
            self._lost = True
            self._wake()
            return
        delay = left if self._waiting_for_client else timeout
        self._idle_timer = self._loop.call_later(max(delay, 0.05), self._check_idle)

    def _finish(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()
        self._server.session_finished(self)

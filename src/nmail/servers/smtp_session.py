"""One SMTP connection on the event loop: bytes from the socket into an
SmtpConnection, its events to the backend, replies back.

The decisions (MAIL, RCPT, the message, AUTH) are smtp_answers.Answers';
the backend answers from memory on the loop where it can (InlineChecks),
else in an executor (see smtp_calls).

Each connection has a task (`_run`) for the steps that wait: a backend call
in a thread, the store's commit at end of data, a TLS handshake. Commands
that need no waiting (EHLO, MAIL and RCPT answered from memory, NOOP, ...)
are answered straight from `data_received` while the task sleeps, so a
client sending one command at a time costs no task switch per command.

An asyncio.Protocol rather than streams: data arrives in large chunks and
is handed to the sans-IO connection as is, with no per-line awaits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from nmail.protocols.smtp import Event, SmtpConnection, SmtpOptions, StartTls
from nmail.protocols.smtp import replies as r
from nmail.protocols.smtp.data import BodySpill
from nmail.servers import tls_upgrade
from nmail.servers.smtp_answers import Answers
from nmail.servers.smtp_backend import InlineChecks, SmtpBackend

if TYPE_CHECKING:
    from nmail.servers.smtp import SmtpServer

log = logging.getLogger("nmail.smtp")

# Stop reading from a client that pipelines this much while we wait on the backend.
MAX_PENDING_INPUT = 1 << 20
# Seconds a client closed by a timeout has to read our last reply.
GOODBYE_GRACE = 10.0
# Commands answered in one go before the other connections get the loop again:
# a megabyte of pipelined NOOPs must not hold up every other session.
MAX_AT_ONCE = 64


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
    min_data_rate: float  # bytes/s: what a received byte adds to the idle deadline
    max_session_time: float
    handshake_timeout: float
    stopping: asyncio.Event  # set when the listener closes: login delays end at once
    spill: Callable[[], BodySpill] | None = None  # where large messages wait (data_spool)


class SmtpSession(asyncio.Protocol):
    """The asyncio side of one client connection."""

    def __init__(self, server: SmtpServer, setup: SessionSetup) -> None:
        self._server = server
        self._setup = setup
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._conn: SmtpConnection | None = None
        self._ip = ""
        self._answers: Answers
        self._waiter: asyncio.Future[None] | None = None
        # An event taken from the connection that the task must answer (it waits).
        self._handed_over: Event | None = None
        self._write_waiter: asyncio.Future[None] | None = None
        self._waiting_for_client = False
        self._reading_paused = False
        self._write_paused = False
        self._lost = False
        # Idleness counts from here: our last reply, moved on by what the bytes
        # received since pay for at min_data_rate (never by a byte alone).
        self._last_activity = self._loop.time()
        self._started = self._last_activity
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
        self._conn = SmtpConnection(
            self._setup.options,
            tls_active=self._setup.implicit_tls,
            plaintext_auth_allowed=self._setup.plaintext_auth_allowed(self._ip),
            spill=self._setup.spill,
        )
        self._answers = Answers(self._conn, self._setup, self._ip, lambda: self._lost)
        # Implicit TLS: the listener did the handshake before connection_made.
        self._answers.tls_description = tls_upgrade.describe(transport)
        self._idle_timer = self._loop.call_later(
            min(self._setup.idle_timeout, self._setup.max_session_time), self._check_idle
        )
        self.task = self._loop.create_task(self._run())
        self._server.session_started(self)

    def data_received(self, data: bytes) -> None:
        conn = self._conn
        assert conn is not None
        conn.receive_data(data)
        self._last_activity = min(
            self._loop.time(), self._last_activity + len(data) / self._setup.min_data_rate
        )
        waiter = self._waiter
        if waiter is not None and not waiter.done() and self._handed_over is None:
            self._answer_at_once(conn)
        else:
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
        answered = 0
        try:
            while not self._lost:
                event = self._handed_over
                if event is not None:
                    self._handed_over = None
                    await self._answer_later(event)
                    continue
                event = conn.next_event()
                if event is not None:
                    if not self._answer_now(event):
                        await self._answer_later(event)
                    answered += 1
                    if answered % MAX_AT_ONCE == 0:
                        self._flush()
                        if self._write_paused:
                            await self._drain()  # the client is not reading its replies
                        else:
                            await asyncio.sleep(0)  # let the other connections in
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

    def _answer_at_once(self, conn: SmtpConnection) -> None:
        """Called from data_received while the task waits for input: answer every
        command that needs no waiting; wake the task for the rest.

        Replies are sent here only when nothing was handed over: after
        STARTTLS, the task must stop reading before its 220 leaves.
        """
        more = False
        try:
            for _ in range(MAX_AT_ONCE):
                event = conn.next_event()
                if event is None:
                    break
                if not self._answer_now(event):
                    self._handed_over = event
                    break
                self._last_activity = self._loop.time()  # a whole command: progress
            else:
                more = True  # the task answers the rest, letting other connections in
            if self._handed_over is None:
                self._flush()
        except Exception:
            log.exception("SMTP session from %s failed", self._ip)
            self._say_goodbye(r.LOCAL_ERROR)
            self._lost = True
        if (
            more
            or self._handed_over is not None
            or conn.closed
            or self._lost
            or self._write_paused
            or self._server.closing
        ):
            self._wake()

    def _answer_now(self, event: Event) -> bool:
        """Answer `event` without waiting; False when the task must (`_answer_later`)."""
        return not isinstance(event, StartTls) and self._answers.now(event)

    async def _answer_later(self, event: Event) -> None:
        assert self._conn is not None
        if not isinstance(event, StartTls):
            await self._answers.later(event)
            return
        self._flush()
        if await self._start_tls():
            self._conn.tls_started()
        else:
            self._lost = True

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
        self._answers.tls_description = tls_upgrade.describe(new)
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
        now = self._loop.time()
        left = self._last_activity + timeout - now
        lifetime = self._started + self._setup.max_session_time - now
        if self._waiting_for_client and (left <= 0 or lifetime <= 0):
            if left <= 0:
                log.info("SMTP %s idle for %.0f s, closing", self._ip, timeout)
            else:
                log.info("SMTP %s: session time limit reached, closing", self._ip)
            self._say_goodbye(r.IDLE_TIMEOUT if left <= 0 else r.SESSION_TOO_LONG)
            self._lost = True
            self._abort_unless_read(self._transport)
            self._wake()
            return
        if self._write_paused and lifetime <= 0 and self._transport is not None:
            # A client that stopped reading our replies cannot be told: cut it off.
            log.info("SMTP %s: session time limit reached, not reading: aborted", self._ip)
            self._lost = True
            self._transport.abort()
            return
        delay = min(left, lifetime) if self._waiting_for_client else min(timeout, 1.0)
        self._idle_timer = self._loop.call_later(max(delay, 0.05), self._check_idle)

    def _abort_unless_read(self, transport: asyncio.Transport | None) -> None:
        """A closing transport waits until the client has read what we wrote: a
        client that reads nothing would keep it for ever. Give it GOODBYE_GRACE."""
        if transport is None:
            return
        if self._write_paused:
            transport.abort()
        else:
            self._loop.call_later(GOODBYE_GRACE, _abort_quietly, transport)

    def _finish(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()
        self._server.session_finished(self)
        # Release everything now rather than when the cyclic collector gets to
        # it (servers/heap.py makes that rare): a client that vanished mid-DATA
        # leaves its partial message in the connection's buffer.
        self._transport = None
        self._lost = True
        if self._conn is not None:
            self._conn.discard_input()
            self._answers.release()


def _abort_quietly(transport: asyncio.Transport) -> None:
    with contextlib.suppress(Exception):  # closed meanwhile: nothing to do
        transport.abort()

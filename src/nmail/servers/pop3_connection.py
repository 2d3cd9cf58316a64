"""One POP3 client connection: the socket, its Pop3Session, and the backend calls.

Commands are run straight from `data_received` as long as they need no
waiting, RETR of a small message included (the maildrop's one open, one
read, one close; mailstore/maildrop.py):
a client sending one command at a time gets its answer without a task
switch. A step that must wait (a login, UPDATE, the TLS handshake, a large
message under flow control, looking the account up again) runs as a task;
meanwhile input is only buffered, and the session resumes when the task ends.

Idleness counts from our last reply: every command received gets one, so
a client sending only NOOP (or STAT, LIST...) is not idle, while bytes that
end no command move the point only by what they pay for at MIN_INPUT_RATE.
The reply is the signal (pending output when the session needs more input)
rather than a count kept per command: no work is added to a command.

Once logged in, the commands that arrive are first checked against the
directory generation (Pop3Backend.known_generation, a memory read): when it
moved since the login, the account is looked up again (servers/pop3_account).
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, cast

from nmail.directory import Account
from nmail.mailstore.maildrop import PIECE
from nmail.protocols.pop3 import (
    Authenticate,
    Close,
    Event,
    Pop3Session,
    Retrieve,
    StartTls,
    Update,
)
from nmail.protocols.pop3.core import TRANSACTION
from nmail.servers import pop3_account, tls_upgrade
from nmail.servers.pop3_backend import Maildrop
from nmail.timers import Timer, Timers

if TYPE_CHECKING:
    from nmail.servers.pop3 import Pop3Server

log = logging.getLogger(__name__)

# Write out once this much output is waiting. Small: a client pipelining RETRs
# starts reading the first answers while the next are prepared; measured on
# two cores (bench/pop3.py), 16 KiB gave ~20% more messages/s than 256 KiB at
# the same CPU per message. A large message still goes out a PIECE at once.
FLUSH_AT = 16 * 1024
MAX_BUFFERED = 1024 * 1024  # unread client input before we stop reading the socket
# Bytes/s of client input that keep a session from going idle: idleness counts
# from the last whole command, moved on only by what the bytes since pay for
# at this rate, so a client trickling a byte now and then is not "active".
MIN_INPUT_RATE = 500


def _no_maildrop(uid: int, size: int) -> bytes | tuple[int, bytes] | None:
    raise RuntimeError("RETR before login")


class Pop3Connection(asyncio.Protocol):
    """asyncio protocol driving one Pop3Session."""

    def __init__(self, server: Pop3Server) -> None:
        self._server = server
        self._backend = server.backend
        self._settings = server.settings
        self._loop = asyncio.get_running_loop()
        # Idleness and the time limit are measured on these (the loop unless a test's).
        self._timers: Timers = server.timers or self._loop
        self.transport: asyncio.Transport | None = None
        self.session: Pop3Session | None = None
        self._maildrop: Maildrop | None = None
        self._read = _no_maildrop  # maildrop.read once logged in
        self._account: Account | None = None  # set at login
        self._generation = -1  # the directory generation the account was last checked at
        self._ip = ""
        self.busy: asyncio.Task[None] | None = None  # the step being awaited, if any
        self._closed = False  # connection_lost has run
        self._aborting = False
        self._released = False
        self._paused = False  # the client is not reading our output
        self._drained: asyncio.Future[None] | None = None
        self._reading_paused = False
        self._last_progress = self._started = self._timers.time()
        self._idle_timer: Timer | None = None

    # -- asyncio.Protocol ------------------------------------------------------------

    @property
    def client_ip(self) -> str:
        return self._ip

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its API.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self._ip = str(peer[0]) if peer else ""
        refusal = self._server.admit(self._ip)
        if refusal is not None:
            # Over a connection limit: one -ERR instead of the greeting, and close.
            self._closed = self._released = True
            self.transport.write(refusal)
            self.transport.close()
            return
        self._server.register(self)
        self._idle_timer = self._timers.call_later(
            min(self._settings.idle_timeout, self._settings.max_session_time), self._check_idle
        )
        if self._settings.implicit_tls:
            # pop3s: the listener did the handshake before calling us.
            self._open_session(tls_active=True, tls_available=False)
        else:
            available = self._server.tls_context() is not None
            self._open_session(tls_active=False, tls_available=available)
        self._pump()

    def data_received(self, data: bytes) -> None:
        self._last_progress = min(
            self._timers.time(), self._last_progress + len(data) / MIN_INPUT_RATE
        )
        session = self.session
        if session is None:
            return
        session.receive_data(data)
        if self.busy is None and not self._paused:
            self._pump()
        elif session.pending_input > MAX_BUFFERED and not self._reading_paused:
            assert self.transport is not None
            self.transport.pause_reading()  # a client flooding commands waits
            self._reading_paused = True

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        if self.busy is None:
            self._release()
        # Otherwise the step ends by itself (a transfer stops at once, a login or
        # an UPDATE runs to its end) and releases then: cancelling a login halfway
        # could leave a maildrop locked with nobody to unlock it.

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._last_progress = self._timers.time()  # the client is reading: not idle
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        if self.busy is None and not self._closed:
            self._pump()

    # -- driving the session ------------------------------------------------------------

    def _open_session(self, *, tls_active: bool, tls_available: bool) -> None:
        self.session = Pop3Session(
            tls_active=tls_active,
            tls_available=tls_available,
            plaintext_allowed=self._server.plaintext_allowed(self._ip),
            max_errors=self._settings.max_errors,
        )

    def _pump(self) -> None:
        """Run commands until the session needs more input, a step must be awaited,
        or the client stops reading."""
        session = self.session
        if session is None or self._closed or self._aborting:
            return
        if session.state is TRANSACTION and self._backend.known_generation() != self._generation:
            # The directory changed (any account): is this one still there?
            assert self._account is not None
            self._run(self._recheck(session, self._account))
            return
        try:
            while not self._paused:
                event = session.next_event()
                if event is None:
                    if session.pending_output:
                        # Commands answered inside the session (NOOP, STAT, LIST,
                        # UIDL, DELE, RSET, an error) were whole commands too: RFC
                        # 1939 section 3, any command resets the autologout timer.
                        # One attribute read a pump; the clock only when answered.
                        self._last_progress = self._timers.time()
                    if session.more_buffered:
                        # A slice of a long pipeline is done: the rest after other
                        # connections had their turn.
                        self._loop.call_soon(self._resume)
                    break
                self._last_progress = self._timers.time()  # a whole command
                if event.__class__ is Retrieve:
                    entry = event.entry
                    found = self._read(entry.uid, entry.size)
                    if found.__class__ is bytes:
                        session.message_whole(found)
                    elif found is None:
                        session.message_missing()
                    else:
                        self._run(self._retrieve_large(session, event, *found))
                        break
                    if session.pending_output >= FLUSH_AT:
                        self._flush()
                    if session.pending_input:
                        continue
                    # The usual RETR: answered, and nothing else was sent. The
                    # answer goes out first, then the next message is read.
                    self._flush()
                    if event.lines is None and not self._paused:
                        assert self._maildrop is not None
                        self._maildrop.read_after(event.number)
                    break
                if isinstance(event, Close):
                    self._flush()
                    assert self.transport is not None
                    self.transport.close()
                    return
                if isinstance(event, StartTls):
                    # The client's ClientHello must reach the TLS layer, not us:
                    # stop reading before "+OK Begin TLS negotiation" goes out.
                    assert self.transport is not None
                    self.transport.pause_reading()
                self._run(self._step(session, event))
                break
        except Exception:
            log.exception("POP3 session from %s failed", self._ip)
            self.abort()
            return
        self._flush()
        if self._reading_paused and session.pending_input < MAX_BUFFERED // 2:
            assert self.transport is not None
            self.transport.resume_reading()
            self._reading_paused = False

    def _resume(self) -> None:
        if self.busy is None and not self._paused and not self._closed:
            self._pump()

    def _flush(self) -> None:
        if self.session is not None and self.transport is not None:
            # One vectored write of the pieces: no copy of a 256 KiB join.
            pieces = self.session.output_pieces()
            if pieces and not self.transport.is_closing():
                self.transport.writelines(pieces)

    def _run(self, step: Coroutine[Any, Any, None]) -> None:
        self._flush()
        self.busy = self._loop.create_task(self._await(step))

    async def _await(self, step: Coroutine[Any, Any, None]) -> None:
        try:
            await step
        except Exception:
            log.exception("POP3 session from %s failed", self._ip)
            self.abort()
        finally:
            self.busy = None
            if self._closed:
                self._release()
        if self._server.stopping:
            # Shutting down: the step is done, the session ends here (no UPDATE
            # unless that was the step).
            self._flush()
            if self.transport is not None:
                self.transport.close()
            return
        self._pump()

    def _release(self) -> None:
        if self._released:
            return
        self._released = True
        if self._maildrop is not None:
            self._maildrop.release()
            self._maildrop = None
        self._server.unregister(self)

    # -- steps ------------------------------------------------------------------------

    async def _retrieve_large(
        self, session: Pop3Session, event: Retrieve, fd: int, piece: bytes
    ) -> None:
        """Stream a large file a PIECE at a time, waiting whenever the client falls behind."""
        try:
            session.message_begin()
            # Past "+OK" a failure can only be reported by closing (see _await).
            while piece and session.message_data(piece):
                if session.pending_output >= FLUSH_AT:
                    self._flush()
                    await self._drain()
                    if self._closed:
                        return  # the client left: no point reading the rest
                piece = b""  # hold one piece at a time, not two across the read
                piece = os.read(fd, PIECE)
        finally:
            os.close(fd)
        session.message_end()

    async def _drain(self) -> None:
        while self._paused and not self._closed:
            self._drained = self._loop.create_future()
            await self._drained

    async def _step(self, session: Pop3Session, event: Event) -> None:
        if isinstance(event, Authenticate):
            await self._login(session, event)
        elif isinstance(event, StartTls):
            context = self._server.tls_context()
            if context is not None and await self._start_tls(context):
                session.tls_started()
            else:
                self.abort()
        elif isinstance(event, Update):
            assert self._maildrop is not None and self._account is not None
            await pop3_account.update(
                self._backend, session, self._maildrop, self._account, event, self._ip
            )

    async def _recheck(self, session: Pop3Session, account: Account) -> None:
        self._generation = await pop3_account.recheck(self._backend, session, account, self._ip)

    async def _login(self, session: Pop3Session, event: Authenticate) -> None:
        logged_in = await pop3_account.log_in(self._server, session, event, self._ip)
        if logged_in is None:
            return
        if self._closed:
            logged_in.maildrop.release()  # the client left while we were looking
            return
        self._maildrop = maildrop = logged_in.maildrop
        self._read = maildrop.read
        self._account = logged_in.account
        self._generation = logged_in.generation
        log.info("POP3 login %s from %s (%s)", self._account.address, self._ip, event.mechanism)
        session.login_accepted(maildrop.entries)

    async def _start_tls(self, context: ssl.SSLContext) -> bool:
        """TLS handshake on this connection; False when it failed (then closed)."""
        assert self.transport is not None
        transport = await tls_upgrade.upgrade(
            self._loop, self.transport, self, context, self._settings.handshake_timeout,
            f"POP3 {self._ip}",
        )
        if transport is None:
            self.abort()
            return False
        self.transport = transport
        return True

    # -- idle timeout and closing ----------------------------------------------------------

    def _check_idle(self) -> None:
        now = self._timers.time()
        lifetime = self._started + self._settings.max_session_time - now
        if lifetime <= 0:
            log.info("POP3 connection from %s: session time limit reached, closed", self._ip)
            self._idle_timer = None
            self.abort()
            return
        silent = now - self._last_progress
        limit = self._settings.idle_timeout
        waiting_for_client = self.busy is None or self._paused
        if silent >= limit and waiting_for_client:
            log.info("POP3 connection from %s idle for %.0f s: closed", self._ip, silent)
            self._idle_timer = None
            self.abort()
            return
        self._idle_timer = self._timers.call_later(
            min(limit - silent if silent < limit else limit, lifetime), self._check_idle
        )

    def abort(self) -> None:
        """Close at once: no UPDATE, nothing is deleted."""
        self._aborting = True
        if self.transport is not None:
            self.transport.abort()

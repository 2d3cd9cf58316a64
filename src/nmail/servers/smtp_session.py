"""One SMTP connection on the event loop: bytes from the socket into an
SmtpConnection, its events to the backend, replies back.

The decisions (MAIL, RCPT, the message, AUTH) are smtp_answers.Answers';
the backend answers from memory on the loop where it can (InlineChecks),
else in an executor (see smtp_calls).

Commands that need no waiting (EHLO, MAIL and RCPT answered from memory,
NOOP, QUIT, ...) are answered straight from `data_received`, and so is the
end of data when the store can take the message from the loop: its
commit's callback sends the reply (smtp_answers). A connection gets a task
(smtp_session_task.py) only for the steps that do wait: a backend call in a thread,
STARTTLS, AUTH, a client not reading its replies, the server's stop, or
more than MAX_AT_ONCE commands at once; once made it serves the
connection to its end. The greeting leaves from connection_made and a
session that ends without a task is finished where it ends. So a message
from a plain client (EHLO, MAIL, RCPT, DATA, QUIT) costs no task at all:
its creation and its four steps (greeting, end of data, commit, QUIT) were
~60k instructions per connection (callgrind, bench/smtp_instructions.py).

An asyncio.Protocol rather than streams: data arrives in large chunks and
is handed to the sans-IO connection as is, with no per-line awaits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, cast

from nmail.protocols.smtp import Event, SmtpConnection
from nmail.protocols.smtp import replies as r
from nmail.servers import tls_upgrade
from nmail.servers.smtp_answers import Answers
from nmail.servers.smtp_session_task import MAX_AT_ONCE, SessionTask
from nmail.servers.smtp_setup import SessionSetup

if TYPE_CHECKING:
    from nmail.servers.smtp import SmtpServer

log = logging.getLogger("nmail.smtp")

# Stop reading from a client that pipelines this much while we wait on the backend.
MAX_PENDING_INPUT = 1 << 20
# Seconds a client closed by a timeout has to read our last reply.
GOODBYE_GRACE = 10.0


class SmtpSession(SessionTask):
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
        # It is a message the store could not take from the loop: stored (in a
        # thread) even if the client leaves meanwhile, as when a task waited.
        self._handed_late = False
        self._write_waiter: asyncio.Future[None] | None = None
        self._reading_paused = False
        self._write_paused = False
        self._lost = False
        self._finished = False
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
        self._answers = Answers(
            self._conn, self._setup, self._ip, lambda: self._lost, self._message_answered
        )
        # Implicit TLS: the listener did the handshake before connection_made.
        self._answers.tls_description = tls_upgrade.describe(transport)
        self._idle_timer = self._loop.call_later(
            min(self._setup.idle_timeout, self._setup.max_session_time), self._check_idle
        )
        self._flush()  # the greeting
        self._server.session_started(self)

    def data_received(self, data: bytes) -> None:
        conn = self._conn
        assert conn is not None
        conn.receive_data(data)
        self._last_activity = min(
            self._loop.time(), self._last_activity + len(data) / self._setup.min_data_rate
        )
        if not self._answers.deciding:  # else the bytes wait for the message's answer
            self._input_ready(conn)
        if (
            not self._idle()
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
        """The server is closing: say 421 now if idle, else once the transaction ends.

        Every session still open gets a task here, for the server to wait on
        (one whose client left waits in it for its message's commit)."""
        if self.task is None and not self._finished and self._conn is not None:
            self.task = self._loop.create_task(self._run())
        else:
            self._wake()

    def force_close(self) -> None:
        """The grace period is over: 421 whatever the session was doing."""
        self._say_goodbye(r.SERVICE_SHUTTING_DOWN)
        if self.task is not None:
            self.task.cancel()
        elif self._conn is not None:
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
                if self._answers.deciding:
                    break  # the message's commit answers it, and goes on from there
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
        elif self._reading_paused and self._idle() and self._transport is not None:
            # Paused while a message was stored: its answer is out, read again.
            self._transport.resume_reading()
            self._reading_paused = False

    def _input_ready(self, conn: SmtpConnection) -> None:
        """Input to answer: at once when nothing is under way (no task, or a task
        waiting for the client), else by the task."""
        waiter = self._waiter
        if self._handed_over is None and (
            self.task is None if waiter is None else not waiter.done()
        ):
            self._answer_at_once(conn)
        else:
            self._wake()

    def _message_answered(self, later: Event | None, failed: bool) -> None:
        """A message stored from the loop is answered (or must go to the task: `later`)."""
        conn = self._conn
        if self._finished or conn is None:
            return
        if failed:
            self._say_goodbye(r.LOCAL_ERROR)
            self._lost = True
        elif later is not None:
            self._handed_over = later
            self._handed_late = True
        elif not self._lost:
            self._last_activity = self._loop.time()  # our reply: idleness counts anew
            self._input_ready(conn)
            return
        self._wake()

    # -- plumbing --------------------------------------------------------------------

    def _wake(self) -> None:
        """Something for the task: wake it; without a task, start one, or finish
        the session when that is all there is left to do."""
        waiter = self._waiter
        if waiter is not None:
            if not waiter.done():
                waiter.set_result(None)
            return
        conn = self._conn
        if self.task is not None or self._finished or conn is None:
            return  # a running task looks again before it waits
        if self._answers.deciding and self._lost:
            return  # the message's answer finishes it
        if self._handed_over is None and not self._answers.deciding and (
            self._lost or conn.closed
        ):
            self._finish()  # its replies are sent (or nobody reads them)
            return
        self.task = self._loop.create_task(self._run())

    def _idle(self) -> bool:
        """Every command so far answered, nothing under way: the client's turn."""
        if self._answers.deciding or self._handed_over is not None:
            return False
        return self.task is None or self._waiter is not None

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
        idle = self._idle()
        if idle and (left <= 0 or lifetime <= 0):
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
        delay = min(left, lifetime) if idle else min(timeout, 1.0)
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
        if self._finished:
            return
        self._finished = True
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

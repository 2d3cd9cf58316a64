"""The task of an SmtpSession, for the steps that wait (smtp_session.py says when
there is one): a backend call in a thread, STARTTLS, a client not reading its
replies, the server's stop, the commands past MAX_AT_ONCE at once.

SessionTask is SmtpSession's base: it holds the task's loop and what it
awaits; the session's callbacks (smtp_session.py) fill in the state below,
answer what needs no waiting, and start or wake this task.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from nmail.protocols.smtp import Event, SmtpConnection, StartTls
from nmail.protocols.smtp import replies as r
from nmail.servers import tls_upgrade
from nmail.servers.smtp_answers import Answers
from nmail.servers.smtp_setup import SessionSetup

if TYPE_CHECKING:
    from nmail.servers.smtp import SmtpServer

log = logging.getLogger("nmail.smtp")

# Commands answered in one go before the other connections get the loop again:
# a megabyte of pipelined NOOPs must not hold up every other session.
MAX_AT_ONCE = 64


class SessionTask(asyncio.Protocol):
    """The waiting side of one SMTP connection (SmtpSession's base)."""

    # Set by SmtpSession.
    _server: SmtpServer
    _setup: SessionSetup
    _loop: asyncio.AbstractEventLoop
    _transport: asyncio.Transport | None
    _conn: SmtpConnection | None
    _answers: Answers
    _ip: str
    _lost: bool
    _handed_over: Event | None
    _handed_late: bool
    _waiter: asyncio.Future[None] | None
    _write_waiter: asyncio.Future[None] | None
    _write_paused: bool
    _reading_paused: bool
    _last_activity: float

    def _flush(self) -> None:
        raise NotImplementedError

    def _say_goodbye(self, final: r.Reply) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        raise NotImplementedError

    async def _run(self) -> None:
        conn = self._conn
        assert conn is not None
        answers = self._answers
        answered = 0
        try:
            while not self._lost or self._handed_late:
                event = self._handed_over
                if event is not None:
                    self._handed_over = None
                    self._handed_late = False
                    await self._answer_later(event)
                    continue
                # While a message is being stored, the connection awaits its answer.
                event = None if answers.deciding else conn.next_event()
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
            while answers.deciding:  # the client left: the commit still ends first
                await self._wait_for_client()
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("SMTP session from %s failed", self._ip)
            self._say_goodbye(r.LOCAL_ERROR)
        finally:
            self._finish()

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

    async def _wait_for_client(self) -> None:
        if self._reading_paused and self._transport is not None:
            self._transport.resume_reading()
            self._reading_paused = False
        self._waiter = self._loop.create_future()
        self._last_activity = self._loop.time()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def _drain(self) -> None:
        self._write_waiter = self._loop.create_future()
        try:
            await self._write_waiter
        finally:
            self._write_waiter = None

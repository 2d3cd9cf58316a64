"""The connection under the queue's SMTP client: bytes out, replies in, every wait bounded.

`SmtpLink` is an asyncio.Protocol that parses replies as they arrive
(protocols/smtp/client.py) and hands them out in order. It counts the
replies the server owes us: each write says how many commands it carries,
so pipelined commands (RFC 2920) can be written at once and their replies
read one by one. A reply that nobody asked for, bytes that are not a
reply, a timeout or a closed connection fail the link for good (the caller
hangs up): a client that guessed which reply answers which command could
report a refused message as delivered.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque

from nmail.protocols.smtp.client import ReplyError, ReplyReader, ServerReply
from nmail.timers import Timer, Timers


class LinkError(Exception):
    """The connection is unusable: closed, timed out, or the server broke the protocol."""


class SmtpLink(asyncio.Protocol):
    """One SMTP connection's bytes; the greeting is the first reply owed."""

    def __init__(self, timers: Timers | None = None) -> None:
        """timers: the clock of the reply deadlines (default: the event loop's)."""
        self._loop = asyncio.get_running_loop()
        self._timers: Timers = timers or self._loop
        self._reader = ReplyReader()
        self._replies: deque[ServerReply] = deque()
        self._owed = 1  # the greeting
        self._waiter: asyncio.Future[None] | None = None
        self._drained: asyncio.Future[None] | None = None
        self._paused = False
        self._error: LinkError | None = None
        self._timer: Timer | None = None
        self._deadline = 0.0
        self._within = 0.0
        self.transport: asyncio.Transport | None = None

    @property
    def usable(self) -> bool:
        """Connected, and nothing has gone wrong."""
        return self._error is None and self.transport is not None

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport

    def data_received(self, data: bytes) -> None:
        if self._error is not None:
            return
        try:
            replies = self._reader.feed(data)
        except ReplyError as exc:
            self.fail(LinkError(f"protocol error: {exc}"))
            return
        if not replies:
            return
        owed = self._owed
        self._owed = max(0, owed - len(replies))
        self._replies.extend(replies[:owed])
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if len(replies) > owed:
            # The replies we asked for still count; after them, hang up.
            self.fail(LinkError(f"unexpected reply from the server: {replies[owed]}"))

    def eof_received(self) -> bool | None:
        self.fail(LinkError("connection closed by the server"))
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f"connection lost: {exc}" if exc else "connection closed by the server"
        self.fail(LinkError(reason))

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._wake_writer()

    # -- what the client calls -------------------------------------------------------------

    def write(self, data: bytes, replies: int) -> None:
        """Send `data`, which asks for `replies` replies (0 for a message body)."""
        if self._error is not None:
            raise self._error
        assert self.transport is not None
        self._owed += replies
        self.transport.write(data)

    async def reply(self, within: float) -> ServerReply:
        """The next reply, in order; LinkError when there is none `within` seconds."""
        if self._replies:
            return self._replies.popleft()
        if self._error is not None:
            raise self._error
        waiter = self._waiter = self._loop.create_future()
        self._watch(within)
        try:
            await waiter
        finally:
            self._waiter = None
        if self._replies:
            return self._replies.popleft()
        raise self._error or LinkError("no reply")

    async def drain(self, within: float) -> None:
        """Wait until the transport takes more data (a big body on a slow line)."""
        if not self._paused:
            return
        if self._error is not None:
            raise self._error
        waiter = self._drained = self._loop.create_future()
        self._watch(within)
        try:
            await waiter
        finally:
            self._drained = None
        if self._error is not None:
            raise self._error

    async def start_tls(
        self, context: ssl.SSLContext, server_hostname: str, handshake_within: float
    ) -> None:
        """The TLS handshake after STARTTLS's 220; raises ssl/OS errors or LinkError."""
        if self._error is not None:
            raise self._error
        if self._reader.pending or self._replies or self._owed:
            # Bytes after the 220 were sent in the clear and would be read as if
            # they came over TLS (reply injection): refuse them.
            self.fail(LinkError("protocol error: data after the reply to STARTTLS"))
            raise LinkError("protocol error: data after the reply to STARTTLS")
        assert self.transport is not None
        transport = await self._loop.start_tls(
            self.transport, self, context,
            server_hostname=server_hostname, ssl_handshake_timeout=handshake_within,
        )
        if transport is None:
            raise LinkError("connection closed during the TLS handshake")
        self.transport = transport

    def fail(self, error: LinkError) -> None:
        """Mark the link broken (the first reason stays), wake whoever waits, hang up."""
        if self._error is None:
            self._error = error
        self._stop_timer()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self._wake_writer()
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        """Close after what was written has been sent."""
        if self._error is None:
            self._error = LinkError("connection closed")
        self._stop_timer()
        if self.transport is not None:
            self.transport.close()

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _watch(self, within: float) -> None:
        """Give the wait starting now `within` seconds.

        One timer per link, moved only when a deadline comes sooner than the
        one it is set for: a wait per reply then costs no timer of its own.
        """
        self._within = within
        self._deadline = deadline = self._timers.time() + within
        timer = self._timer
        if timer is None or timer.when() > deadline:
            if timer is not None:
                timer.cancel()
            self._timer = self._timers.call_at(deadline, self._check_deadline)

    def _check_deadline(self) -> None:
        self._timer = None
        if self._waiter is None and self._drained is None:
            return  # nobody is waiting; the next wait sets a new timer
        if self._timers.time() < self._deadline:
            self._timer = self._timers.call_at(self._deadline, self._check_deadline)
            return
        self.fail(LinkError(f"timed out after {self._within:g} s waiting for the server"))

    def _wake_writer(self) -> None:
        drained = self._drained
        if drained is not None and not drained.done():
            drained.set_result(None)

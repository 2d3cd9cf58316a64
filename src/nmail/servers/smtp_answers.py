"""The decisions of one SMTP session: its events to the backend, the answers back.

SmtpSession (smtp_session.py) moves the bytes and owns the connection's
task; `Answers` takes the events that need a decision (MAIL, RCPT, the
message, AUTH credentials) to the backend and gives the SmtpConnection its
answer. `now()` answers from memory, on the loop, when the backend can
(InlineChecks); `later()` is for the rest, awaited by the session's task:
a backend call in a worker thread.

The end of data is started by `now()` too when the backend can store the
message from the loop (InlineChecks.accept_now): the files are written,
the commit is under way, and `deciding` stays true until the store says
the message is durable. Then its callback, on the loop, answers (250, or
what the store said) and tells the session (`answered`), which goes on
with what the client sent meanwhile. No task waits for it: a task's
step and its futures cost ~60k instructions per connection (callgrind,
bench/smtp_instructions.py), as much as the rest of the reply path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from nmail.delivery.envelope import ClientInfo, Envelope
from nmail.directory.model import Resolution
from nmail.message_source import SpooledMessage
from nmail.policy.decision import Decision
from nmail.protocols.smtp import (
    AuthCredentials,
    Event,
    MailFrom,
    MessageData,
    ProtocolError,
    RcptTo,
    SmtpConnection,
)
from nmail.servers.delays import delay_until_stop
from nmail.servers.smtp_backend import InlineChecks, PendingDecision
from nmail.servers.smtp_calls import LOCAL_ERROR, answer_now, call_blocking

if TYPE_CHECKING:
    from nmail.servers.smtp_setup import SessionSetup

# What the session hears once a message's inline acceptance is over: the event
# when it must still go to later() (nothing was stored), and whether answering
# failed (a bug: the session says 451 and ends).
Answered = Callable[[Event | None, bool], None]

log = logging.getLogger("nmail.smtp")

T = TypeVar("T")
AUTH_UNAVAILABLE = Decision(454, "4.7.0", "Temporary authentication failure")


def _gone() -> bool:
    return True


def _not_told(later: Event | None, failed: bool) -> None:
    """The session is over: nobody to tell."""


class Answers:
    """Answers the events of one SmtpConnection from `setup`'s backend."""

    def __init__(
        self,
        conn: SmtpConnection,
        setup: SessionSetup,
        ip: str,
        lost: Callable[[], bool],
        answered: Answered = _not_told,
    ) -> None:
        self._conn = conn
        self._setup = setup
        self._ip = ip
        self._lost = lost  # the client is gone: an answer would go nowhere
        self._answered = answered  # an inline acceptance is over (see the module text)
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._resolutions: list[Resolution] = []
        self._client_info: ClientInfo | None = None
        self._auth_account_id: int | None = None
        self.tls_description: str | None = None  # set when TLS is up (Received header)
        # A message is being stored from now(): the connection awaits its answer.
        self.deciding = False
        self._registering = False
        # The message now() could not start inline: later() calls accept() at once.
        self._blocking: MessageData | None = None

    def release(self) -> None:
        """The session is over: drop what refers back to it (its `lost` and
        `answered` callables would keep it, and its buffers, alive in a
        reference cycle)."""
        self._lost = _gone
        self._answered = _not_told
        self._resolutions = []
        self._client_info = None

    def now(self, event: Event) -> bool:
        """Answer `event` without waiting; False when it must go to `later()`."""
        conn = self._conn
        if not event.needs_decision:
            if isinstance(event, ProtocolError):
                log.debug("SMTP %s: %s", self._ip, event.reply.encode().decode("utf-8", "replace"))
            return True
        inline = self._setup.inline
        if inline is None:
            return False
        if isinstance(event, MailFrom):
            decision = answer_now(
                self._ip, inline.check_sender_now, self._client(), event.address,
                event.params.size,
            )
            if decision is None:
                return False
            self._sender_decided(decision)
            return True
        if isinstance(event, RcptTo):
            if self._guessing():
                return False  # slowed down: later() waits before answering
            answer = answer_now(
                self._ip, inline.check_recipient_now, self._client(), conn.sender or "",
                event.address, conn.mail_params.size,
            )
            if answer is None:
                return False
            self._recipient_decided(event, answer)
            return True
        if isinstance(event, MessageData):
            return self._message_now(event, inline)
        return False

    async def later(self, event: Event) -> None:
        """Answer a decision `now()` could not give (an inline answer already failed)."""
        conn = self._conn
        backend = self._setup.backend
        if isinstance(event, MailFrom):
            self._sender_decided(await self._call(
                backend.check_sender, self._client(), event.address, event.params.size
            ))
        elif isinstance(event, RcptTo):
            if self._guessing():
                await self._slow_down()
            self._recipient_decided(event, await self._call(
                backend.check_recipient, self._client(), conn.sender or "", event.address,
                conn.mail_params.size,
            ))
        elif isinstance(event, MessageData):
            await self._message(event)
        elif isinstance(event, AuthCredentials):
            await self._authenticate(event)

    def _guessing(self) -> bool:
        """Past the soft limit of refused RCPTs: a client walking a list of names."""
        conn = self._conn
        return conn.rcpt_errors >= conn.options.rcpt_error_soft_limit

    async def _slow_down(self) -> None:
        """The delay before each RCPT reply of a guessing client (cut short at stop)."""
        setup = self._setup
        await delay_until_stop(setup.sleep, self._conn.options.rcpt_error_delay, setup.stopping)

    def _sender_decided(self, decision: Decision | None) -> None:
        if decision is None:
            self._conn.reject(LOCAL_ERROR)
            return
        if decision.accepted:
            self._resolutions = []
        self._conn.answer(decision)

    def _recipient_decided(
        self, event: RcptTo, answer: tuple[Decision, Resolution | None] | None
    ) -> None:
        conn = self._conn
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

    def _envelope(self, event: MessageData) -> Envelope:
        conn = self._conn
        params = conn.mail_params
        # One loop for both DSN columns rather than two generators into tuple().
        notify: list[str | None] = []
        orcpt: list[str | None] = []
        for _, rcpt in conn.recipients:
            notify.append(",".join(rcpt.notify) if rcpt.notify else None)
            orcpt.append(rcpt.orcpt)
        return Envelope(
            sender=conn.sender or "",
            recipients=tuple(self._resolutions),
            client=self._client(),
            smtputf8=params.smtputf8,
            dsn_envid=params.envid,
            dsn_ret=params.ret,
            dsn_notify=tuple(notify),
            dsn_orcpt=tuple(orcpt),
            dot_lines=event.dot_lines,
        )

    def _message_now(self, event: MessageData, inline: InlineChecks) -> bool:
        """Start storing the message from the loop; False: later() must (in a thread).

        True with `deciding` set: the answer comes from _stored's callback.
        """
        started = answer_now(self._ip, inline.accept_now, self._envelope(event), event.content)
        if started is None:
            self._blocking = event
            return False
        self.deciding = True
        self._registering = True
        try:
            # Called at once when already done (a refusal, a local writer's quick
            # commit): then _stored answers before this returns.
            started.stored.add_done_callback(lambda _: self._stored(started, event))
        finally:
            self._registering = False
        return self.deciding or self._blocking is not event

    def _stored(self, started: PendingDecision, event: MessageData) -> None:
        """The store's Future is done (on the loop's thread, or a writer thread's)."""
        if threading.get_ident() != self._thread:
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
                self._loop.call_soon_threadsafe(self._decided, started, event, True)
            return
        self._decided(started, event, not self._registering)

    def _decided(self, started: PendingDecision, event: MessageData, tell: bool) -> None:
        """Answer the stored message; `tell` the session (not while now() still runs)."""
        self.deciding = False
        later: Event | None = None
        try:
            decision = _decision(started, self._ip)
            if decision is None:  # nothing stored: accept() in a thread
                self._blocking = later = event
            else:
                self._message_done(event, decision)
        except Exception:
            if not tell:
                raise
            log.exception("SMTP session from %s failed", self._ip)
            self._answered(None, True)
            return
        if tell:
            self._answered(later, False)

    def _message_done(self, event: MessageData, decision: Decision | None) -> None:
        if isinstance(event.content, SpooledMessage):
            # The backend is done with it (every copy written). Cancelled
            # before this, the file goes with the backend thread's reference.
            event.content.close()
        self._resolutions = []
        if self._lost():
            return
        self._conn.answer(decision if decision is not None else LOCAL_ERROR)

    async def _message(self, event: MessageData) -> None:
        """The message in a worker thread: accept() (now() could not start it)."""
        self._blocking = None
        envelope = self._envelope(event)
        decision = await self._call(self._setup.backend.accept, envelope, event.content)
        self._message_done(event, decision)

    async def _authenticate(self, event: AuthCredentials) -> None:
        conn = self._conn
        if event.authzid and event.authzid != event.username:
            conn.auth_failed()  # no proxy authorization
            return
        outcome = await self._call(
            self._setup.backend.authenticate, event.username, event.password, self._ip
        )
        if outcome is None:
            conn.auth_failed(AUTH_UNAVAILABLE)
        elif outcome.ok:
            self._auth_account_id = outcome.account_id
            conn.auth_succeeded(outcome.account_address or event.username)
        else:
            if outcome.delay > 0:  # held back, but not past the server's stop
                await delay_until_stop(self._setup.sleep, outcome.delay, self._setup.stopping)
            if not self._lost():
                conn.auth_failed(outcome.reply)

    async def _call(self, fn: Callable[..., T], *args: object) -> T | None:
        return await call_blocking(self._loop, self._setup.executor, self._ip, fn, *args)

    def _client(self) -> ClientInfo:
        """Who the client is, for the backend; one object while nothing changes."""
        conn = self._conn
        helo, protocol, auth = conn.helo or "", conn.received_protocol, conn.authenticated_as
        known = self._client_info
        if (
            known is None
            or known.helo != helo
            or known.protocol != protocol
            or known.auth_user != auth
            or known.tls != self.tls_description
        ):
            known = self._client_info = ClientInfo(
                ip=self._ip, helo=helo, protocol=protocol, auth_user=auth,
                tls=self.tls_description,
                auth_account_id=self._auth_account_id if auth is not None else None,
            )
        return known


def _decision(started: PendingDecision, ip: str) -> Decision | None:
    """The outcome of accept_now once stored; None: nothing stored, call accept()."""
    try:
        return started.decision()
    except Exception:
        # Not None: the message may be stored, so no second try through accept().
        log.exception("SMTP accept from %s failed", ip)
        return LOCAL_ERROR

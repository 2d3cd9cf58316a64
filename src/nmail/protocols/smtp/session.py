"""The state of one SMTP session and the reply/event queues (base of SmtpConnection)."""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable

from nmail.policy.decision import Decision
from nmail.protocols.sasl import SaslExchange
from nmail.protocols.smtp import replies as r
from nmail.protocols.smtp import state as st
from nmail.protocols.smtp.data import BodySpill, DataReader
from nmail.protocols.smtp.events import (
    NO_MAIL_PARAMS,
    Event,
    MailParams,
    ProtocolError,
    RcptParams,
)
from nmail.protocols.smtp.options import SmtpOptions
from nmail.protocols.smtp.replies import Reply, reply, reply_from_decision
from nmail.protocols.smtp.state import SmtpState

_TRANSACTION = (st.MAIL, st.RCPT, st.DATA)


@functools.lru_cache(maxsize=64)
def _greeting(hostname: str, banner: str) -> bytes:
    """The 220 greeting's wire bytes, made once per listener rather than per connection."""
    return reply(220, None, f"{hostname} {banner}").encode()


class SmtpUsageError(RuntimeError):
    """The caller broke the protocol object's contract (a bug in the server)."""


class SmtpSession:
    """Session facts (HELO, TLS, AUTH), the open transaction, and what to send."""

    def __init__(
        self,
        options: SmtpOptions,
        *,
        tls_active: bool = False,
        plaintext_auth_allowed: bool = False,
        spill: Callable[[], BodySpill] | None = None,
    ) -> None:
        """`spill`: makes the place a large message waits in while it arrives
        (protocols.smtp.data); without it a message stays in memory."""
        self.options = options
        self._make_spill = spill
        self._state = st.CONNECTED
        self._buf = bytearray()
        self._out: list[bytes] = []
        self._events: deque[Event] = deque()
        self._awaiting: Event | None = None
        self._tls_active = tls_active
        self._plaintext_auth_allowed = plaintext_auth_allowed
        self._helo: str | None = None
        self._esmtp = False
        self._auth_identity: str | None = None
        self._bad_commands = 0
        self._rcpt_errors = 0  # refused RCPTs since the last delivered message
        self._discarding_line = False
        self._sasl: SaslExchange | None = None
        self._data: DataReader | None = None
        self._sender: str | None = None
        self._mail_params = NO_MAIL_PARAMS
        self._recipients: list[tuple[str, RcptParams]] = []
        self._rcpt_attempts = 0
        self._out.append(_greeting(options.hostname, options.banner))

    @property
    def state(self) -> SmtpState:
        return self._state

    @property
    def helo(self) -> str | None:
        return self._helo

    @property
    def esmtp(self) -> bool:
        return self._esmtp

    @property
    def tls_active(self) -> bool:
        return self._tls_active

    @property
    def authenticated_as(self) -> str | None:
        return self._auth_identity

    @property
    def sender(self) -> str | None:
        """MAIL FROM of the open transaction ("" = null sender), None outside one."""
        return self._sender

    @property
    def mail_params(self) -> MailParams:
        return self._mail_params

    @property
    def recipients(self) -> tuple[tuple[str, RcptParams], ...]:
        """The accepted recipients of the open transaction, in order."""
        return tuple(self._recipients)

    @property
    def closed(self) -> bool:
        return self._state is st.CLOSED

    @property
    def awaiting_decision(self) -> Event | None:
        return self._awaiting

    @property
    def busy(self) -> bool:
        """A transaction, SASL exchange or decision is in progress (not idle)."""
        return (
            self._state in _TRANSACTION
            or self._state is st.AUTH
            or self._awaiting is not None
        )

    @property
    def buffered(self) -> int:
        """Bytes received and not yet processed."""
        return len(self._buf)

    @property
    def bad_commands(self) -> int:
        return self._bad_commands

    @property
    def rcpt_errors(self) -> int:
        """RCPTs refused with 5xx since the last delivered message (address guessing)."""
        return self._rcpt_errors

    @property
    def auth_offered(self) -> bool:
        return self.options.auth_available and (self._tls_active or self._plaintext_auth_allowed)

    @property
    def starttls_offered(self) -> bool:
        return self.options.starttls_available and not self._tls_active

    @property
    def received_protocol(self) -> str:
        """The Received: 'with' value (RFC 3848): SMTP, ESMTP, ESMTPS, ESMTPA, ESMTPSA."""
        if not self._esmtp:
            return "SMTP"
        return (
            "ESMTP"
            + ("S" if self._tls_active else "")
            + ("A" if self._auth_identity is not None else "")
        )

    def data_to_send(self) -> bytes:
        """Replies queued since the last call."""
        if not self._out:
            return b""
        out = b"".join(self._out)
        self._out.clear()
        return out

    def terminate(self, final: Reply) -> None:
        """Send a last reply (421 shutting down, idle timeout) and close."""
        if self._state is st.CLOSED:
            return
        self._awaiting = None
        self._events.clear()
        self._buf.clear()
        self._send(final)
        self._state = st.CLOSED

    def _send(self, rep: Reply) -> None:
        wire = r.CONSTANT_WIRE.get(id(rep))
        self._out.append(wire if wire is not None else rep.encode())

    def _emit(self, event: Event) -> None:
        self._events.append(event)

    def _error(self, rep: Reply, *, counts: bool = True) -> None:
        """Send an error reply; too many of them end the session (421 4.7.0)."""
        self._send(rep)
        self._emit(ProtocolError(rep))
        if not counts:
            return
        self._bad_commands += 1
        if self._bad_commands >= self.options.max_bad_commands:
            self._send(r.TOO_MANY_ERRORS)
            self._emit(ProtocolError(r.TOO_MANY_ERRORS, closes=True))
            self._state = st.CLOSED
            self._buf.clear()

    def _reset_transaction(self) -> None:
        self._sender = None
        self._mail_params = NO_MAIL_PARAMS
        self._recipients = []
        self._rcpt_attempts = 0
        if self._data is not None:
            self._data.discard()
        self._data = None

    def _end_transaction(self) -> None:
        self._reset_transaction()
        self._state = st.READY

    def _end_sasl(self) -> None:
        self._sasl = None
        if self._state is st.AUTH:
            self._state = st.READY

    def _accept_reply(self, decision: Decision | None, default: Reply) -> Reply:
        if decision is None:
            return default
        if not decision.accepted:
            raise SmtpUsageError("accept_*() needs a 2xx decision; use reject()")
        return reply_from_decision(decision)

    def _answering(self, kind: type[Event]) -> Event:
        event = self._awaiting
        if event is None or not isinstance(event, kind):
            raise SmtpUsageError(f"no {kind.__name__} is waiting for a decision")
        self._awaiting = None
        return event

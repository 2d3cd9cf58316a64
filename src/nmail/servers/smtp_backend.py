"""What the SMTP server needs from the core: the contract `delivery.Intake` fulfils.

The methods are synchronous (they touch the database and the disk); the
server calls them in an executor, never on the event loop. A backend may
also offer InlineChecks: answers it can give on the loop without blocking,
tried first.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from nmail.delivery.envelope import ClientInfo, Envelope
from nmail.directory.model import Resolution
from nmail.message_source import MessageSource
from nmail.policy.decision import Decision


@dataclass(frozen=True, slots=True)
class AuthOutcome:
    """The answer to an SMTP AUTH attempt.

    ok: the password is right and the account may log in.
    account_address: the account's address (the identity used for MAIL FROM checks).
    account_id: the account's id, rechecked at each MAIL (delivery/envelope_checks.py).
    reply: the refusal to send when not ok (None: 535 5.7.8 credentials invalid;
           e.g. 454 4.7.0 for a temporary lockout).
    delay: seconds to wait before answering a failure (login throttling).
    """

    ok: bool
    account_address: str | None = None
    reply: Decision | None = None
    account_id: int | None = None  # which account (a re-created address is another)
    delay: float = 0.0


class SmtpBackend(Protocol):
    """Checks at MAIL and RCPT, acceptance at end of DATA, and AUTH."""

    def check_sender(self, client: ClientInfo, sender: str, size_hint: int | None) -> Decision:
        """MAIL FROM: ACCEPT, or the refusal ("" is the null sender)."""
        ...

    def check_recipient(
        self, client: ClientInfo, sender: str, address: str, size_hint: int | None
    ) -> tuple[Decision, Resolution | None]:
        """RCPT TO: the decision and, when accepted, what the address resolves to."""
        ...

    def accept(self, envelope: Envelope, content: MessageSource) -> Decision:
        """End of DATA: a 2xx only once the message is durable (fsync'd)."""
        ...

    def authenticate(self, username: str, password: str, client_ip: str) -> AuthOutcome:
        """Check SMTP AUTH credentials (throttled by the implementation)."""
        ...


@runtime_checkable
class InlineChecks(Protocol):
    """What a backend may also offer: answers started or computed on the event loop.

    Each returns None when the answer needs blocking work (a database round
    trip, a cache miss); the server then calls the SmtpBackend method in its
    executor. They must never block: memory, at most a local SQLite read,
    and for accept_now writing the message files (not flushing them).
    """

    def check_sender_now(
        self, client: ClientInfo, sender: str, size_hint: int | None
    ) -> Decision | None: ...

    def check_recipient_now(
        self, client: ClientInfo, sender: str, address: str, size_hint: int | None
    ) -> tuple[Decision, Resolution | None] | None: ...

    def accept_now(self, envelope: Envelope, content: MessageSource) -> PendingDecision | None:
        """Start accept() without blocking."""
        ...


class PendingDecision(Protocol):
    """An accept started by InlineChecks.accept_now."""

    @property
    def stored(self) -> Future[Any]:
        """Done (on some other thread) once decision() can answer."""
        ...

    def decision(self) -> Decision | None:
        """The answer; None means "call accept()" (nothing was stored)."""
        ...

"""What the SMTP server needs from the core: the contract `delivery.Intake` fulfils.

The methods are synchronous (they touch the database and the disk); the
server calls them in an executor, never on the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from nmail.delivery.envelope import ClientInfo, Envelope
from nmail.directory.model import Resolution
from nmail.policy.decision import Decision


@dataclass(frozen=True, slots=True)
class AuthOutcome:
    """The answer to an SMTP AUTH attempt.

    ok: the password is right and the account may log in.
    account_address: the account's address (the identity used for MAIL FROM checks).
    reply: the refusal to send when not ok (None: 535 5.7.8 credentials invalid;
           e.g. 454 4.7.0 for a temporary lockout).
    delay: seconds to wait before answering a failure (login throttling).
    """

    ok: bool
    account_address: str | None = None
    reply: Decision | None = None
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

    def accept(self, envelope: Envelope, content: bytes) -> Decision:
        """End of DATA: a 2xx only once the message is durable (fsync'd)."""
        ...

    def authenticate(self, username: str, password: str, client_ip: str) -> AuthOutcome:
        """Check SMTP AUTH credentials (throttled by the implementation)."""
        ...

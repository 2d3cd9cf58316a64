"""SMTP AUTH over the directory and the shared login throttle, and the
backend that joins it to the delivery intake.

The intake (`delivery.Intake`) answers MAIL, RCPT and end of DATA; the
password check and its throttling are the directory's. `IntakeBackend`
puts the two behind the one `SmtpBackend` contract the server calls.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from nmail.delivery.envelope import ClientInfo, Envelope
from nmail.directory.model import AuthResult, AuthStatus, Resolution
from nmail.directory.throttle import LoginThrottle
from nmail.policy.decision import Decision
from nmail.servers.smtp_backend import AuthOutcome, PendingDecision

log = logging.getLogger("nmail.smtp")

LOCKED_OUT = Decision(454, "4.7.0", "Too many failed logins, try again later")
LOGIN_DISABLED = Decision(535, "5.7.8", "Account disabled")


class PasswordDirectory(Protocol):
    def authenticate(self, address: str, password: str) -> AuthResult: ...


class MailIntake(Protocol):
    """The MAIL/RCPT/DATA half of SmtpBackend (what delivery.Intake offers)."""

    def check_sender(self, client: ClientInfo, sender: str, size_hint: int | None) -> Decision: ...

    def check_recipient(
        self, client: ClientInfo, sender: str, address: str, size_hint: int | None
    ) -> tuple[Decision, Resolution | None]: ...

    def accept(self, envelope: Envelope, content: bytes) -> Decision: ...


class SmtpAuthenticator:
    """Checks SMTP AUTH passwords; failures slow down the next try, then lock out."""

    def __init__(
        self, directory: PasswordDirectory, throttle: LoginThrottle, *, max_delay: float = 16.0
    ) -> None:
        self._directory = directory
        self._throttle = throttle
        self._max_delay = max_delay

    def authenticate(self, username: str, password: str, client_ip: str) -> AuthOutcome:
        """The outcome, with the delay the server holds a failure back."""
        verdict = self._throttle.check(client_ip, username)
        if verdict.locked:
            # Refused without testing the password: a locked-out guesser learns nothing.
            return AuthOutcome(False, reply=LOCKED_OUT)
        result = self._directory.authenticate(username, password)
        if result.status is AuthStatus.OK and result.account is not None:
            self._throttle.success(client_ip, username)
            return AuthOutcome(True, account_address=result.account.address)
        if result.status is AuthStatus.LOGIN_DISABLED:
            # Only said to someone who knew the password.
            return AuthOutcome(False, reply=LOGIN_DISABLED)
        self._throttle.failure(client_ip, username)
        log.info("SMTP AUTH failed for %r from %s", username[:100], client_ip)
        wait = min(self._throttle.check(client_ip, username).wait, self._max_delay)
        return AuthOutcome(False, delay=max(wait, verdict.wait))


class IntakeBackend:
    """An SmtpBackend: the intake for mail, the authenticator for AUTH."""

    def __init__(self, intake: MailIntake, authenticator: SmtpAuthenticator) -> None:
        self.intake = intake
        self.authenticator = authenticator
        # The intake's answers from memory, when it has them (delivery.Intake does).
        self._sender_now: Callable[..., Decision | None] | None = getattr(
            intake, "check_sender_now", None
        )
        self._recipient_now: Callable[..., tuple[Decision, Resolution | None] | None] | None = (
            getattr(intake, "check_recipient_now", None)
        )
        self._accept_now: Callable[..., PendingDecision | None] | None = getattr(
            intake, "accept_now", None
        )

    def check_sender(self, client: ClientInfo, sender: str, size_hint: int | None) -> Decision:
        return self.intake.check_sender(client, sender, size_hint)

    def check_sender_now(
        self, client: ClientInfo, sender: str, size_hint: int | None
    ) -> Decision | None:
        if self._sender_now is None:
            return None
        return self._sender_now(client, sender, size_hint)

    def check_recipient_now(
        self, client: ClientInfo, sender: str, address: str, size_hint: int | None
    ) -> tuple[Decision, Resolution | None] | None:
        if self._recipient_now is None:
            return None
        return self._recipient_now(client, sender, address, size_hint)

    def check_recipient(
        self, client: ClientInfo, sender: str, address: str, size_hint: int | None
    ) -> tuple[Decision, Resolution | None]:
        return self.intake.check_recipient(client, sender, address, size_hint)

    def accept(self, envelope: Envelope, content: bytes) -> Decision:
        return self.intake.accept(envelope, content)

    def accept_now(self, envelope: Envelope, content: bytes) -> PendingDecision | None:
        if self._accept_now is None:
            return None
        return self._accept_now(envelope, content)

    def authenticate(self, username: str, password: str, client_ip: str) -> AuthOutcome:
        return self.authenticator.authenticate(username, password, client_ip)

"""The backend that joins SMTP AUTH (the shared login service) to the delivery intake.

The intake (`delivery.Intake`) answers MAIL, RCPT and end of DATA; logins
are the login service's (`directory.login`: canonical name, throttle,
password), the same one POP3, IMAP and the webmail use. `IntakeBackend`
puts the two behind the one `SmtpBackend` contract the server calls and
turns a login result into SMTP replies.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from nmail.delivery.envelope import ClientInfo, Envelope
from nmail.directory.login import LoginService, LoginStatus
from nmail.directory.model import Resolution
from nmail.message_source import MessageSource
from nmail.policy.decision import Decision
from nmail.servers.smtp_answers import AUTH_UNAVAILABLE
from nmail.servers.smtp_backend import AuthOutcome, PendingDecision

log = logging.getLogger("nmail.smtp")

LOCKED_OUT = Decision(454, "4.7.0", "Too many failed logins, try again later")
LOGIN_DISABLED = Decision(535, "5.7.8", "Account disabled")
# Too many password checks at once in this process (directory/login_gate.py).
LOGIN_BUSY = Decision(454, "4.7.0", "Too many logins at once, try again in a moment")


class MailIntake(Protocol):
    """The MAIL/RCPT/DATA half of SmtpBackend (what delivery.Intake offers)."""

    def check_sender(self, client: ClientInfo, sender: str, size_hint: int | None) -> Decision: ...

    def check_recipient(
        self, client: ClientInfo, sender: str, address: str, size_hint: int | None
    ) -> tuple[Decision, Resolution | None]: ...

    def accept(self, envelope: Envelope, content: MessageSource) -> Decision: ...


def auth_outcome(login: LoginService, username: str, password: str, client_ip: str) -> AuthOutcome:
    """SMTP AUTH through the login service, as the SMTP server answers it."""
    result = login.login(username, password, client_ip)
    if result.ok and result.account is not None:
        return AuthOutcome(
            True, account_address=result.account.address, account_id=result.account.id
        )
    if result.status is LoginStatus.BAD_CREDENTIALS:
        log.info("SMTP AUTH failed for %r from %s", result.name[:100], client_ip)
        return AuthOutcome(False, delay=result.delay)
    refusal = {
        LoginStatus.LOCKED_OUT: LOCKED_OUT,
        LoginStatus.DISABLED: LOGIN_DISABLED,
        LoginStatus.BUSY: LOGIN_BUSY,
    }.get(result.status, AUTH_UNAVAILABLE)
    return AuthOutcome(False, reply=refusal)


class IntakeBackend:
    """An SmtpBackend: the intake for mail, the authenticator for AUTH."""

    def __init__(self, intake: MailIntake, login: LoginService) -> None:
        self.intake = intake
        self.login = login
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

    def accept(self, envelope: Envelope, content: MessageSource) -> Decision:
        return self.intake.accept(envelope, content)

    def accept_now(self, envelope: Envelope, content: MessageSource) -> PendingDecision | None:
        if self._accept_now is None:
            return None
        return self._accept_now(envelope, content)

    def authenticate(self, username: str, password: str, client_ip: str) -> AuthOutcome:
        return auth_outcome(self.login, username, password, client_ip)

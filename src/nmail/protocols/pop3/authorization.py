"""AUTHORIZATION-state commands: USER/PASS, AUTH PLAIN, STLS, and login results."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from nmail.protocols.pop3 import replies
from nmail.protocols.pop3.core import SessionCore, State, Wait
from nmail.protocols.pop3.events import Authenticate, Event, LoginFailure, MaildropEntry, StartTls
from nmail.protocols.pop3.maildrop import Maildrop
from nmail.protocols.sasl import (
    MECHANISMS,
    Challenge,
    Credentials,
    SaslExchange,
    SaslFailure,
    SaslStep,
)

PLAINTEXT_REFUSED = replies.err(
    "Plaintext authentication disallowed on non-secure connections", "AUTH"
)
_REFUSALS = {
    LoginFailure.BAD_CREDENTIALS: replies.err("Authentication failed", "AUTH"),
    LoginFailure.DISABLED: replies.err("Account disabled", "AUTH"),
    LoginFailure.IN_USE: replies.err("Mailbox is locked by another POP3 session", "IN-USE"),
    LoginFailure.LOCKED_OUT: replies.err(
        "Too many failed logins, try again later", "SYS/TEMP"
    ),
    LoginFailure.TEMPORARY: replies.err("Temporary server error, try again later", "SYS/TEMP"),
    LoginFailure.BUSY: replies.err("Too many logins at once, try again in a moment", "SYS/TEMP"),
}
_SASL_REFUSALS = {
    SaslFailure.CANCELLED: replies.err("Authentication cancelled"),
    SaslFailure.BAD_BASE64: replies.err("Invalid base64 data in AUTH response"),
    SaslFailure.NOT_UTF8: replies.err("AUTH response is not UTF-8"),
    SaslFailure.MALFORMED: replies.err("Malformed AUTH PLAIN response"),
    SaslFailure.EMPTY_USER_NAME: replies.err("Empty user name"),
}
_PROXY_REFUSED = replies.err("Authorization identity must be empty or the login", "AUTH")


class AuthorizationCommands(SessionCore):
    """Logging in (RFC 1939 USER/PASS, RFC 5034 AUTH PLAIN) and STLS (RFC 2595)."""

    def login_accepted(self, entries: Sequence[MaildropEntry]) -> None:
        """The credentials were good and the maildrop is locked: enter TRANSACTION."""
        self._expect(Wait.LOGIN)
        safe = [
            e if (u := replies.wire_uidl(e.uidl)) == e.uidl else replace(e, uidl=u)
            for e in entries
        ]
        self._maildrop = Maildrop(safe)
        self.state = State.TRANSACTION
        self._user = None
        self._send(replies.ok(
            f"Logged in, {self._maildrop.count} messages ({self._maildrop.size} octets)"
        ))

    def login_refused(self, failure: LoginFailure) -> None:
        """The login failed; stay in AUTHORIZATION."""
        self._expect(Wait.LOGIN)
        self._user = None
        self._error(_REFUSALS[failure])

    def tls_started(self) -> None:
        """The TLS handshake after STLS succeeded."""
        self._expect(Wait.TLS)
        self.tls_active = True

    def _plaintext_ok(self) -> bool:
        if self.tls_active or self.plaintext_allowed:
            return True
        self._error(PLAINTEXT_REFUSED)
        return False

    def _user_command(self, argument: str) -> None:
        if not self._plaintext_ok():
            return
        name = argument.strip()
        if not name or " " in name:
            self._error(replies.err("Syntax: USER name"))
            return
        self._user = name
        self._send(replies.ok("Send your password"))

    def _pass_command(self, argument: str) -> Event | None:
        if not self._plaintext_ok():
            return None
        if self._user is None:
            self._error(replies.err("Send USER first"))
            return None
        if not argument:
            self._user = None
            self._error(replies.err("Syntax: PASS password"))
            return None
        # RFC 1939 lets the password contain spaces: take the whole rest.
        self._waiting = Wait.LOGIN
        return Authenticate(self._user, argument, "USER")

    def _auth(self, argument: str) -> Event | None:
        parts = argument.split()
        if not parts:
            # Outlook and others send a bare AUTH to learn the mechanisms.
            offered = list(MECHANISMS) if self.tls_active or self.plaintext_allowed else []
            self._send(replies.multiline("Supported mechanisms follow", offered))
            return None
        if len(parts) > 2:
            self._error(replies.err("Syntax: AUTH mechanism [initial-response]"))
            return None
        if not parts[0].isascii() or parts[0].upper() not in MECHANISMS:  # "pla\u0131n"
            self._error(replies.err("Unsupported authentication mechanism"))
            return None
        if not self._plaintext_ok():
            return None
        self._user = None
        exchange = SaslExchange(parts[0])
        return self._sasl_step(exchange, exchange.start(parts[1] if len(parts) == 2 else None))

    def _sasl_response(self, line: bytes) -> Event | None:
        exchange, self._sasl = self._sasl, None
        assert exchange is not None
        return self._sasl_step(exchange, exchange.feed(line.decode("ascii", "replace")))

    def _sasl_step(self, exchange: SaslExchange, step: SaslStep) -> Event | None:
        if isinstance(step, Challenge):
            self._sasl = exchange
            self._send(f"+ {step.text}\r\n".encode("ascii"))
            return None
        if not isinstance(step, Credentials):
            self._error(_SASL_REFUSALS[step.reason])
            return None
        if step.acts_as_other:
            # Acting as another user (proxy authorization) is not offered.
            self._error(_PROXY_REFUSED)
            return None
        self._waiting = Wait.LOGIN
        return Authenticate(step.username, step.password, exchange.mechanism)

    def _stls(self, argument: str) -> Event | None:
        if not self._no_arguments("STLS", argument):
            return None
        if self.tls_active:
            self._error(replies.err("TLS is already active"))
            return None
        if not self.tls_available:
            self._error(replies.err("TLS is not available"))
            return None
        self._send(replies.ok("Begin TLS negotiation"))
        # RFC 2595 / CVE-2011-0411 class: whatever the client pipelined after
        # STLS was sent in plaintext and must not be executed after TLS.
        self._lines.discard()
        self._user = None
        self._waiting = Wait.TLS
        return StartTls()

"""AUTHORIZATION-state commands: USER/PASS, AUTH PLAIN, STLS, and login results."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from nmail.protocols.pop3 import replies
from nmail.protocols.pop3.core import SessionCore, State, Wait
from nmail.protocols.pop3.events import Authenticate, Event, LoginFailure, MaildropEntry, StartTls
from nmail.protocols.pop3.maildrop import Maildrop
from nmail.protocols.pop3.sasl import SaslError, decode_plain

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
}


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
            mechanisms = ["PLAIN"] if self.tls_active or self.plaintext_allowed else []
            self._send(replies.multiline("Supported mechanisms follow", mechanisms))
            return None
        if len(parts) > 2:
            self._error(replies.err("Syntax: AUTH mechanism [initial-response]"))
            return None
        if parts[0].upper() != "PLAIN":
            self._error(replies.err("Unsupported authentication mechanism"))
            return None
        if not self._plaintext_ok():
            return None
        self._user = None
        if len(parts) == 1:
            self._sasl = True
            self._send(b"+ \r\n")
            return None
        return self._plain(parts[1])

    def _sasl_response(self, line: bytes) -> Event | None:
        self._sasl = False
        response = line.decode("ascii", "replace").strip()
        if response == "*":
            self._error(replies.err("Authentication cancelled"))
            return None
        return self._plain(response)

    def _plain(self, response: str) -> Event | None:
        try:
            credentials = decode_plain(response)
        except SaslError as exc:
            text = str(exc)
            if text.startswith("[AUTH] "):
                self._error(replies.err(text.removeprefix("[AUTH] "), "AUTH"))
            else:
                self._error(replies.err(text))
            return None
        self._waiting = Wait.LOGIN
        return Authenticate(credentials.username, credentials.password, "PLAIN")

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

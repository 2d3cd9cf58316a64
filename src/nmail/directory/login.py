"""The one login service: SMTP AUTH, POP3, IMAP and the webmail all log in here.

A login name reaches us in many spellings of one account: `Bob@Example.com.`,
`"bob"@example.com`, `bob@example。com`, an IDN's Unicode form, a domain
alias, a bare `bob` that the POP3 default domain or the webmail's host name
completes. Each door once checked the name as typed and throttled on it, so
every spelling had its own ten tries. Here the name is made canonical once
(`Directory.login_name`: the real domain, the normalized local part), and
that one spelling is what the throttle counts, what the password is checked
against and what the caller logs.

The attempt is counted before the password is checked and refunded when it
was right (`LoginThrottle.attempt`), so parallel guesses cannot all be
tried. A failure carries `delay`: the caller holds the answer back that long
(asleep on its event loop, not in this thread), which is what slows a
guesser on one connection. Everything here blocks (SQL, Argon2): asyncio
callers run `login` in a thread.

The password check itself goes through the process's `PasswordGate`
(directory/login_gate.py): at most one Argon2 check per CPU at once (64 MiB
each), a few more waiting, the rest answered BUSY at once. The attempt is
counted before the gate (a locked-out attempt never takes a place) and
taken back when the gate answers busy (`LoginThrottle.untried`): an
unchecked attempt taught nothing, and counting it let a flood of other
people's guesses lock out a real user whose client kept retrying.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from nmail.directory.login_gate import PasswordGate
from nmail.directory.model import Account, AuthResult, AuthStatus
from nmail.directory.throttle import LoginThrottle

log = logging.getLogger("nmail.login")


class LoginStatus(Enum):
    OK = "ok"
    BAD_CREDENTIALS = "bad credentials"  # unknown user or wrong password: one answer
    DISABLED = "login disabled"  # said only to someone who gave the right password
    LOCKED_OUT = "locked out"  # too many failures: refused without checking the password
    TEMPORARY = "temporary failure"  # the directory could not be asked
    BUSY = "busy"  # too many password checks at once in this process: try again soon


@dataclass(frozen=True, slots=True)
class LoginResult:
    """The answer to a login.

    account: set only when OK.
    name: the canonical login name (what was counted and checked), for logs.
    delay: seconds to hold back the answer to a failure before sending it.
    """

    status: LoginStatus
    name: str
    account: Account | None = None
    delay: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status is LoginStatus.OK


class LoginDirectory(Protocol):
    """What the service needs of the Directory."""

    def login_name(self, name: str, domain_hint: str | None = None) -> str: ...

    def authenticate(self, address: str, password: str) -> AuthResult: ...


class LoginService:
    """Logins for every door: canonical name, throttle, password, hash upgrade."""

    def __init__(
        self,
        directory: LoginDirectory,
        throttle: LoginThrottle,
        *,
        max_delay: float = 16.0,
        gate: PasswordGate | None = None,
    ) -> None:
        """gate: the process's one PasswordGate (every LoginService of a process
        must share it); None: a gate of this service's own, sized to the CPUs."""
        self._directory = directory
        self._throttle = throttle
        self._gate = gate if gate is not None else PasswordGate()
        # A lockout that just began is answered after this, not slept through.
        self._max_delay = max_delay

    @property
    def throttle(self) -> LoginThrottle:
        return self._throttle

    def canonical_name(self, name: str, domain_hint: str | None = None) -> str:
        """The one spelling of the account `name` means (throttle key, log name)."""
        return self._directory.login_name(name, domain_hint)

    def login(
        self, name: str, password: str, client_ip: str, *, domain_hint: str | None = None
    ) -> LoginResult:
        """Check a login from `client_ip` (the client's real address); never raises
        for bad input. `domain_hint` completes a bare user id."""
        try:
            canonical = self._directory.login_name(name, domain_hint)
        except Exception:
            log.exception("login name %r could not be looked up", name[:100])
            return LoginResult(LoginStatus.TEMPORARY, name[:100])
        try:
            attempt = self._throttle.attempt(client_ip, canonical)
        except Exception:
            log.exception("login throttle could not be read")
            return LoginResult(LoginStatus.TEMPORARY, canonical)
        if attempt.locked:
            # Refused untested: a locked-out guesser learns nothing.
            return LoginResult(LoginStatus.LOCKED_OUT, canonical)
        if not self._gate.enter():
            # Not checked: the count is taken back (see the module text).
            try:
                self._throttle.untried(client_ip, canonical, attempt)
            except Exception:
                log.exception("login throttle could not take back a busy attempt")
            return LoginResult(LoginStatus.BUSY, canonical)
        try:
            result = self._directory.authenticate(canonical, password)
        except Exception:
            log.exception("login check for %r failed", canonical)
            return LoginResult(LoginStatus.TEMPORARY, canonical)
        finally:
            self._gate.leave()
        right_password = result.status is AuthStatus.LOGIN_DISABLED or (
            result.status is AuthStatus.OK and result.account is not None
        )
        if not right_password:
            return LoginResult(
                LoginStatus.BAD_CREDENTIALS, canonical, delay=min(attempt.wait, self._max_delay)
            )
        # The password was right: the attempt counted before the check is taken back.
        self._throttle.success(client_ip, canonical, attempt)
        if result.account is None:
            return LoginResult(LoginStatus.DISABLED, canonical)
        return LoginResult(LoginStatus.OK, result.account.address, result.account)

"""What the POP3 server needs from the core, and the real thing over the core.

`Pop3Backend` is the contract (log in, lock and list the INBOX, open a
message, UPDATE); `StoreBackend` implements it with the shared login
service (directory.login) and the MailStore, so a listener is wired with
one line.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from nmail.directory import Account
from nmail.directory.login import LoginService, LoginStatus
from nmail.mailstore.maildrop import LockedInbox, lock_inbox
from nmail.protocols.pop3 import LoginFailure, MaildropEntry

if TYPE_CHECKING:
    from nmail.mailstore.store import MailStore



@dataclass(frozen=True, slots=True)
class LoginOutcome:
    """The answer to a login: the account, or why not and how long to hold the -ERR."""

    account: Account | None
    failure: LoginFailure | None = None
    delay: float = 0.0


class Maildrop(Protocol):
    """An INBOX locked for one POP3 session."""

    entries: Sequence[MaildropEntry]

    def open_message(self, uid: int) -> int | None:
        """A file descriptor of the message file opened for reading (the caller
        closes it), or None when it is gone.

        Called in the event loop for every RETR: it must not wait on anything
        slower than opening a local file. A bare descriptor, not a file object:
        at thousands of RETRs a second the object costs more than the reads."""

    async def commit(self, deleted: Sequence[int], retrieved: Sequence[int]) -> bool:
        """UPDATE: remove `deleted`, mark `retrieved` as seen; False when removal failed."""

    def release(self) -> None:
        """Unlock; the session is over (with or without UPDATE)."""


class Pop3Backend(Protocol):
    async def authenticate(
        self, login: str, password: str, client_ip: str, domain_hint: str | None = None
    ) -> LoginOutcome:
        """Check a login (with throttling); never raises for bad credentials.
        `domain_hint` completes a bare user id (the POP3 default domain)."""

    async def open_maildrop(self, account: Account) -> Maildrop | None:
        """Lock and list the account's INBOX; None when another session holds it."""


class StoreMaildrop:
    """A Maildrop over a LockedInbox of the MailStore."""

    def __init__(self, inbox: LockedInbox) -> None:
        self._inbox = inbox
        self.entries: Sequence[MaildropEntry] = [
            MaildropEntry(r.uid, r.size, r.uidl) for r in inbox.refs
        ]
        # Called for every RETR: the inbox's own method, without a frame of ours.
        self.open_message: Callable[[int], int | None] = inbox.open_message

    async def commit(self, deleted: Sequence[int], retrieved: Sequence[int]) -> bool:
        return await asyncio.to_thread(self._inbox.finish, deleted, retrieved)

    def release(self) -> None:
        self._inbox.release()


_FAILURES = {
    LoginStatus.BAD_CREDENTIALS: LoginFailure.BAD_CREDENTIALS,
    LoginStatus.DISABLED: LoginFailure.DISABLED,
    LoginStatus.LOCKED_OUT: LoginFailure.LOCKED_OUT,
    LoginStatus.TEMPORARY: LoginFailure.TEMPORARY,
}


class StoreBackend:
    """Pop3Backend over the login service and the MailStore."""

    def __init__(self, login: LoginService, store: MailStore, mail_dir: Path) -> None:
        self._login = login
        self._store = store
        self._mail_dir = mail_dir

    async def authenticate(
        self, login: str, password: str, client_ip: str, domain_hint: str | None = None
    ) -> LoginOutcome:
        # In a thread: the password hash and the shared throttle's reads take time.
        result = await asyncio.to_thread(
            self._login.login, login, password, client_ip, domain_hint=domain_hint
        )
        if result.ok and result.account is not None:
            return LoginOutcome(result.account)
        return LoginOutcome(None, _FAILURES[result.status], result.delay)

    async def open_maildrop(self, account: Account) -> Maildrop | None:
        return await asyncio.to_thread(self._open_maildrop, account)

    def _open_maildrop(self, account: Account) -> Maildrop | None:
        inbox = lock_inbox(self._store, self._mail_dir, account)
        return None if inbox is None else StoreMaildrop(inbox)

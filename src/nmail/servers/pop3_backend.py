"""What the POP3 server needs from the core, and the real thing over the core.

`Pop3Backend` is the contract (log in, lock and list the INBOX, open a
message, UPDATE); `StoreBackend` implements it with the Directory, the
LoginThrottle and the MailStore, so a listener is wired with one line.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from nmail.directory import Account, AuthStatus, Directory, LoginThrottle
from nmail.mailstore.maildrop import LockedInbox, lock_inbox
from nmail.protocols.pop3 import LoginFailure, MaildropEntry

if TYPE_CHECKING:
    from nmail.mailstore.store import MailStore

log = logging.getLogger(__name__)


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
    async def authenticate(self, login: str, password: str, client_ip: str) -> LoginOutcome:
        """Check a login (with throttling); never raises for bad credentials."""

    async def open_maildrop(self, account: Account) -> Maildrop | None:
        """Lock and list the account's INBOX; None when another session holds it."""


class StoreMaildrop:
    """A Maildrop over a LockedInbox of the MailStore."""

    def __init__(self, inbox: LockedInbox) -> None:
        self._inbox = inbox
        self.entries: Sequence[MaildropEntry] = [
            MaildropEntry(r.uid, r.size, r.uidl) for r in inbox.refs
        ]

    def open_message(self, uid: int) -> int | None:
        return self._inbox.open_message(uid)

    async def commit(self, deleted: Sequence[int], retrieved: Sequence[int]) -> bool:
        return await asyncio.to_thread(self._inbox.finish, deleted, retrieved)

    def release(self) -> None:
        self._inbox.release()


class StoreBackend:
    """Pop3Backend over the Directory, the LoginThrottle and the MailStore."""

    def __init__(
        self,
        directory: Directory,
        throttle: LoginThrottle,
        store: MailStore,
        mail_dir: Path,
        *,
        max_delay: float = 16.0,
    ) -> None:
        self._directory = directory
        self._throttle = throttle
        self._store = store
        self._mail_dir = mail_dir
        self._max_delay = max_delay

    async def authenticate(self, login: str, password: str, client_ip: str) -> LoginOutcome:
        # In a thread: the password hash and the shared throttle's reads take time.
        return await asyncio.to_thread(self._authenticate, login, password, client_ip)

    def _authenticate(self, login: str, password: str, client_ip: str) -> LoginOutcome:
        verdict = self._throttle.check(client_ip, login)
        if verdict.locked:
            # Refused without checking the password: no guess is ever tested.
            return LoginOutcome(None, LoginFailure.LOCKED_OUT)
        try:
            result = self._directory.authenticate(login, password)
        except Exception:
            log.exception("POP3 login check failed")
            return LoginOutcome(None, LoginFailure.TEMPORARY)
        if result.status is AuthStatus.OK and result.account is not None:
            self._throttle.success(client_ip, login)
            return LoginOutcome(result.account)
        if result.status is AuthStatus.LOGIN_DISABLED:
            return LoginOutcome(None, LoginFailure.DISABLED)
        self._throttle.failure(client_ip, login)
        # Hold the -ERR back as long as the next attempt would have to wait
        # (capped: a lockout that just began is answered, not slept through).
        after = self._throttle.check(client_ip, login)
        delay = min(max(after.wait, verdict.wait), self._max_delay)
        return LoginOutcome(None, LoginFailure.BAD_CREDENTIALS, delay)

    async def open_maildrop(self, account: Account) -> Maildrop | None:
        return await asyncio.to_thread(self._open_maildrop, account)

    def _open_maildrop(self, account: Account) -> Maildrop | None:
        inbox = lock_inbox(self._store, self._mail_dir, account)
        return None if inbox is None else StoreMaildrop(inbox)

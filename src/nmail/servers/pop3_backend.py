"""What the POP3 server needs from the core, and the real thing over the core.

`Pop3Backend` is the contract (log in, lock and list the INBOX, open a
message, UPDATE, is the account still there); `StoreBackend` implements it
with the shared login service (directory.login), the directory cache and
the MailStore, so a listener is wired with one line.

A session asks at every command whether its account changed since the
login (issue 9 item 7: `user disable --login`, `user del`, or deleted and
created again). The answer comes from the directory cache's generation,
re-read at most every ACCOUNT_CHECK_INTERVAL (on SQLite a local read on the
event loop; on a server database in a thread), so a change is noticed at
the first command at most that long after it, and a command costs one clock
read and a comparison. Only a moved generation looks the account up again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from nmail.directory import Account
from nmail.directory.cache import DirectoryCache
from nmail.directory.login import LoginService, LoginStatus
from nmail.directory.model import Standing
from nmail.mailstore.maildrop import LockedInbox, lock_inbox
from nmail.protocols.pop3 import LoginFailure, MaildropEntry

if TYPE_CHECKING:
    from nmail.mailstore.store import MailStore

# How old the directory generation may be when a command is checked against it
# (seconds): the longest a session goes on after its account changed.
ACCOUNT_CHECK_INTERVAL = 0.1


@dataclass(frozen=True, slots=True)
class LoginOutcome:
    """The answer to a login: the account, or why not and how long to hold the -ERR."""

    account: Account | None
    failure: LoginFailure | None = None
    delay: float = 0.0


class Maildrop(Protocol):
    """An INBOX locked for one POP3 session."""

    entries: Sequence[MaildropEntry]

    def read(self, uid: int, size: int) -> bytes | tuple[int, bytes] | None:
        """The message file of `uid` (`size` octets as listed): its bytes when one
        read got it all; (descriptor, first piece) when more follows, for the
        caller to read on in pieces and close; None when it is gone.

        Called in the event loop for every RETR and TOP: it must not wait on
        anything slower than reading a local file."""

    def read_after(self, number: int) -> None:
        """RETR `number` was answered: read message number + 1 early if small,
        while the client reads the answer; read() gets it if its file is still
        there then (one faccessat: an expunge meanwhile is not missed)."""

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

    def known_generation(self) -> int | None:
        """The directory generation, at most ACCOUNT_CHECK_INTERVAL old; None when it
        is older and cannot be read without waiting (then ask `standing`).

        Called for every command of a logged-in session: it must not block."""

    async def standing(self, account: Account, *, exact: bool = False) -> tuple[int, Standing]:
        """The account as the directory has it now, with the generation of that answer.

        exact: read the generation now, however recent the last read (before UPDATE)."""


class StoreMaildrop:
    """A Maildrop over a LockedInbox of the MailStore."""

    def __init__(self, inbox: LockedInbox) -> None:
        self._inbox = inbox
        self.entries: Sequence[MaildropEntry] = [
            MaildropEntry(r.uid, r.size, r.uidl, r.dot_lines) for r in inbox.refs
        ]
        # Called for every RETR: the inbox's own methods, without a frame of ours.
        self.read: Callable[[int, int], bytes | tuple[int, bytes] | None] = inbox.read

    def read_after(self, number: int) -> None:
        if number < len(self.entries):
            entry = self.entries[number]
            self._inbox.read_ahead(entry.uid, entry.size)

    async def commit(self, deleted: Sequence[int], retrieved: Sequence[int]) -> bool:
        return await asyncio.to_thread(self._inbox.finish, deleted, retrieved)

    def release(self) -> None:
        self._inbox.release()


_FAILURES = {
    LoginStatus.BAD_CREDENTIALS: LoginFailure.BAD_CREDENTIALS,
    LoginStatus.DISABLED: LoginFailure.DISABLED,
    LoginStatus.LOCKED_OUT: LoginFailure.LOCKED_OUT,
    LoginStatus.TEMPORARY: LoginFailure.TEMPORARY,
    LoginStatus.BUSY: LoginFailure.BUSY,
}


class StoreBackend:
    """Pop3Backend over the login service and the MailStore."""

    def __init__(
        self,
        login: LoginService,
        store: MailStore,
        mail_dir: Path,
        lookups: DirectoryCache,
        *,
        check_interval: float = ACCOUNT_CHECK_INTERVAL,
    ) -> None:
        """lookups: the process's directory cache (the intake's: SMTP and POP3 share it)."""
        self._login = login
        self._store = store
        self._mail_dir = mail_dir
        self._lookups = lookups
        self._local = lookups.local
        self._interval = check_interval

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

    def known_generation(self) -> int | None:
        # Called for every command of a logged-in session: the quick answer first.
        generation = self._lookups.generation_within(self._interval)
        if generation is None and self._local:
            self._lookups.refresh()  # a local file read, at most once an interval
            generation = self._lookups.generation
        return generation

    async def standing(self, account: Account, *, exact: bool = False) -> tuple[int, Standing]:
        return await asyncio.to_thread(self._standing, account, exact)

    def _standing(self, account: Account, exact: bool) -> tuple[int, Standing]:
        lookups = self._lookups
        lookups.refresh(0.0 if exact else self._interval)
        # The generation before the lookup: a change landing during it is seen next time.
        generation = lookups.generation
        standing = lookups.standing(account.address, account.id)
        return generation if generation is not None else -1, standing

"""What the POP3 server needs from the core, and the real thing over the core.

`Pop3Backend` is the contract (log in, lock and list the INBOX, open a
message, UPDATE); `StoreBackend` implements it with the Directory, the
LoginThrottle and the MailStore, so a listener is wired with one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from nmail.directory import Account, AuthStatus, Directory, LoginThrottle
from nmail.mailstore.layout import maildir_path
from nmail.mailstore.names import parse_disk_name
from nmail.protocols.pop3 import LoginFailure, MaildropEntry

if TYPE_CHECKING:
    from nmail.mailstore.store import MailStore

log = logging.getLogger(__name__)

LOCK_FILE = "nmail-pop3.lock"


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


class MailboxLock:
    """An exclusive flock on `Maildir/nmail-pop3.lock`: one POP3 session per mailbox,
    across processes (several `nmail serve` on one host, or a CLI tool)."""

    def __init__(self, maildir: Path) -> None:
        self.path = maildir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock without waiting; False when someone else has it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


class InboxFiles:
    """Where each message file of an INBOX is, from one listing at login.

    The UIDL is the file name up to its first ',' (docs/ARCHITECTURE.md), so
    one scandir of new/ and cur/ maps every UIDL to its file; asking the index
    per RETR (`MailStore.message_path`) would cost a query each time, more than
    the whole rest of a RETR. Files are opened relative to the open new/ and
    cur/ directories: no walk of the full path per message.
    """

    def __init__(self, inbox: Path) -> None:
        self._dirs: list[int] = []
        self._files: dict[str, tuple[int, str]] = {}
        try:
            for sub in ("new", "cur"):
                try:
                    dir_fd = os.open(inbox / sub, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                except FileNotFoundError:
                    continue
                self._dirs.append(dir_fd)
                with os.scandir(dir_fd) as entries:
                    for entry in entries:
                        base = parse_disk_name(entry.name).base
                        self._files.setdefault(base, (dir_fd, entry.name))
        except BaseException:
            self.close()
            raise

    def open(self, uidl: str) -> int | None:
        """The file listed for `uidl`, opened; None when it was not there or is gone."""
        found = self._files.get(uidl)
        if found is None:
            return None
        try:
            return os.open(found[1], os.O_RDONLY | os.O_CLOEXEC, dir_fd=found[0])
        except FileNotFoundError:
            return None  # renamed by a flag change since login, or deleted

    def close(self) -> None:
        for dir_fd in self._dirs:
            os.close(dir_fd)
        self._dirs.clear()
        self._files.clear()


class StoreMaildrop:
    """A locked INBOX of the MailStore."""

    def __init__(
        self, store: MailStore, account: Account, lock: MailboxLock,
        entries: Sequence[MaildropEntry], files: InboxFiles,
    ) -> None:
        self._store = store
        self._account_id = account.id
        self._lock = lock
        self._files = files
        self.entries = entries
        self._uidls = {e.uid: e.uidl for e in entries}

    def open_message(self, uid: int) -> int | None:
        fd = self._files.open(self._uidls.get(uid, ""))
        if fd is not None:
            return fd
        # Moved since login (a flag change by the webmail): the index knows where.
        # A rename can race the lookup, so look again before calling it gone.
        for _ in range(3):
            found = self._store.message_path(self._account_id, "INBOX", uid)
            if found is None:
                return None  # expunged meanwhile (the webmail, another tool)
            try:
                return os.open(found, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
        return None

    async def commit(self, deleted: Sequence[int], retrieved: Sequence[int]) -> bool:
        return await asyncio.to_thread(self._commit, deleted, retrieved)

    def _commit(self, deleted: Sequence[int], retrieved: Sequence[int]) -> bool:
        if retrieved:
            try:
                self._store.set_flags(
                    self._account_id, "INBOX", retrieved, add=frozenset({"\\Seen"})
                )
            except Exception:
                # Only a flag: the session still ends well.
                log.exception("POP3 could not mark messages seen (account %d)",
                              self._account_id)
        if deleted:
            try:
                self._store.expunge(self._account_id, "INBOX", deleted)
            except Exception:
                log.exception("POP3 UPDATE failed for account %d", self._account_id)
                return False
        return True

    def release(self) -> None:
        self._files.close()
        self._lock.release()


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
        verdict = self._throttle.check(client_ip, login)
        if verdict.locked:
            # Refused without checking the password: no guess is ever tested.
            return LoginOutcome(None, LoginFailure.LOCKED_OUT)
        try:
            result = await asyncio.to_thread(self._directory.authenticate, login, password)
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
        self._store.ensure_account(account)
        lock = MailboxLock(maildir_path(self._mail_dir, account.domain, account.userid))
        if not lock.acquire():
            return None
        try:
            refs = self._store.refs(account.id, "INBOX")
        except BaseException:
            lock.release()
            raise
        entries = [MaildropEntry(r.uid, r.size, r.uidl) for r in refs]
        try:
            files = InboxFiles(lock.path.parent)
        except BaseException:
            lock.release()
            raise
        return StoreMaildrop(self._store, account, lock, entries, files)

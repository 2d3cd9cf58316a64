"""The one account service: the CLI now, the admin console and webmail settings next.

An account is two things, a directory row and a mailbox on disk, and every
door that creates or deletes one must do both in the same order with the
same clean-up; so it is done here once, and `cli/` no longer touches mail
files. Creation: the row, then the mailbox with its default folders; if the
mailbox cannot be made, the row goes again. Deletion: the row (so every
worker stops accepting mail for it at its next lookup), then the mailbox
is moved to the purge area (accounts.purge_area): a re-created account of
the same name starts empty.

Folder creation goes through `Mailboxes`, the seam where the mailbox
model's own API ("mailbox" engineer, api-mailbox.md) replaces today's
`MailStore.ensure_account` once it lands.

Everything here blocks (SQL, Argon2, renames): asyncio callers use a thread.
Refusals raise DirectoryError subclasses with one line fit for the user.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from nmail.accounts import purge_area
from nmail.directory import Account, Directory, DirectoryError
from nmail.directory.login import LoginService, LoginStatus

if TYPE_CHECKING:
    from nmail.mailstore.store import MailStore

log = logging.getLogger("nmail.accounts")


class CurrentPasswordRefused(DirectoryError):
    """change_password: the current password was wrong (or logins are locked out).

    `delay`: hold the answer back this long, as after a failed login."""

    def __init__(self, message: str, delay: float) -> None:
        super().__init__(message)
        self.delay = delay


class Mailboxes(Protocol):
    """What the account service needs of the mail store."""

    def create_mailbox(self, account: Account) -> None:
        """Create the account's mailbox and default folders (idempotent)."""


class StoreMailboxes:
    """Mailboxes over today's MailStore (ensure_account makes INBOX, Sent, Drafts, Trash, Spam)."""

    def __init__(self, store: MailStore) -> None:
        self._store = store

    def create_mailbox(self, account: Account) -> None:
        self._store.ensure_account(account)


@dataclass(frozen=True, slots=True)
class NewAccount:
    """A created account; `earlier_mail_moved_to`: files found at its mailbox's place
    (left by an account deleted before the purge area existed), moved aside."""

    account: Account
    earlier_mail_moved_to: Path | None = None


@dataclass(frozen=True, slots=True)
class DeletedAccount:
    """A deleted account and where its mail went (None: it had no mail directory)."""

    account: Account
    mail_moved_to: Path | None
    mail_removed: bool = False


class AccountService:
    """Create, delete and change accounts with their mailboxes."""

    def __init__(
        self,
        directory: Directory,
        mailboxes: Mailboxes | None,
        mail_dir: Path,
        *,
        login: LoginService | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`mailboxes` None: accounts without mailboxes (a directory-only tool)."""
        self._directory = directory
        self._mailboxes = mailboxes
        self._mail_dir = mail_dir
        self._login = login
        self._clock = clock

    def create(
        self,
        domain: str,
        name: str,
        userid: str,
        password: str,
        *,
        admin: bool = False,
        quota: int = 0,
        server_admin: bool = False,
    ) -> NewAccount:
        """Create userid@domain with its mailbox; nothing is left behind on failure."""
        account = self._directory.add_account(
            domain, name, userid, password, admin=admin, quota=quota, server_admin=server_admin
        )
        if self._mailboxes is None:
            return NewAccount(account)
        try:
            # A new account starts empty, whatever an earlier one left at its place.
            earlier = purge_area.move_aside(
                self._mail_dir, account.domain, account.userid, self._clock()
            )
            self._mailboxes.create_mailbox(account)
        except Exception as exc:
            # Undoing its own creation: `nmail init`'s first server administrator too.
            self._directory.delete_account(account.address, keep_server_admin=False)
            raise DirectoryError(
                f"could not create the mailbox of {account.address} ({exc}); account not added"
            ) from None
        if earlier is not None:
            log.warning("mail left at the place of new account %s moved to %s",
                        account.address, earlier)
        return NewAccount(account, earlier)

    def delete(self, address: str, *, purge_now: bool = False) -> DeletedAccount:
        """Delete the account; its mailbox goes to the purge area (or, `purge_now`, away)."""
        account = self._directory.delete_account(address)
        return self._put_away(account, purge_now)

    def delete_domain(
        self, domain: str, *, force: bool = False, purge_now: bool = False
    ) -> list[DeletedAccount]:
        """Stop hosting a domain; the mailboxes of its accounts go to the purge area."""
        deleted = [
            self._put_away(account, purge_now)
            for account in self._directory.delete_domain(domain, force=force)
        ]
        if deleted:
            domain_dir = self._mail_dir / deleted[0].account.domain
            with contextlib.suppress(OSError):
                domain_dir.rmdir()  # only when nothing else is left in it
        return deleted

    def _put_away(self, account: Account, purge_now: bool) -> DeletedAccount:
        moved = purge_area.move_aside(
            self._mail_dir, account.domain, account.userid, self._clock()
        )
        if moved is not None and purge_now:
            purge_area.remove(self._mail_dir, moved)
            return DeletedAccount(account, None, mail_removed=True)
        return DeletedAccount(account, moved)

    def set_password(self, address: str, password: str) -> Account:
        """Replace the password (an admin's change: the old one is not asked); the
        account's webmail sessions end with it."""
        return self._directory.set_password(address, password)

    def change_password(
        self, address: str, current: str, new: str, client_ip: str,
        keep_web_session: str | None = None,
    ) -> Account:
        """A user's own change: `current` is checked through the login service
        (throttled like any login): CurrentPasswordRefused when it is wrong,
        WeakPassword when `new` breaks the policy. The account's webmail sessions
        end but `keep_web_session` (the one it was changed from)."""
        if self._login is None:
            raise RuntimeError("change_password needs the login service")
        result = self._login.login(address, current, client_ip)
        if result.status is LoginStatus.LOCKED_OUT:
            raise CurrentPasswordRefused("too many failed attempts; try again later", 0.0)
        if result.account is None:
            raise CurrentPasswordRefused("the current password is not right", result.delay)
        return self._directory.set_password(result.account.address, new,
                                            keep_web_session=keep_web_session)

    def set_display_name(self, address: str, name: str) -> Account:
        """The name shown with the account's mail (From:); no control characters."""
        return self._directory.set_display_name(address, name)

    def set_quota(self, address: str, quota_bytes: int) -> Account:
        """The mailbox size limit in bytes; 0 is unlimited."""
        return self._directory.set_quota(address, quota_bytes)

    def set_enabled(
        self, address: str, *, receive: bool | None = None, login: bool | None = None
    ) -> Account:
        """Receiving and/or logins on or off (None leaves one as it is)."""
        return self._directory.set_enabled(address, receive=receive, login=login)

    def set_admin(self, address: str, admin: bool) -> Account:
        """Domain administrator or not."""
        return self._directory.set_admin(address, admin)

    def set_roles(self, address: str, *, admin: bool, server_admin: bool) -> Account:
        """Domain and server administrator flags; the last server administrator
        keeps the role (Conflict)."""
        return self._directory.set_roles(address, admin=admin, server_admin=server_admin)

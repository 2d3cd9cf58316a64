r"""An INBOX held for one mail client session (a POP3 maildrop), on a FolderView.

`lock_inbox` takes the mailbox's session lock, opens the INBOX's FolderView,
lists it as the index has it, and maps each message to its file from one
directory listing; `LockedInbox` then reads messages, applies the session's
end through the view (\Seen on what was retrieved, DELE = expunge, both
committed by the index writer like every change), and lets go. The UIDL is
the message's permanent name. The protocol side (servers/pop3_backend)
never touches a path.

Reading is here, once, for RETR and TOP alike (`LockedInbox.read`): one
open, one read of just over the size the index knows, one close; a file
that turns out longer comes back open, with its first piece, for the
caller to stream. `read_ahead` is the same read done early, kept for the
next `read` of that message if its file is still there then. A session
holds at most one piece (PIECE) of a message at a time.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from nmail.directory.model import Account
from nmail.mailstore.folder_view import FolderView
from nmail.mailstore.layout import maildir_path
from nmail.mailstore.model import MessageRef
from nmail.mailstore.names import parse_disk_name
from nmail.mailstore.uidset import UidSet

if TYPE_CHECKING:
    from nmail.mailstore.store import MailStore

log = logging.getLogger(__name__)

LOCK_FILE = "nmail-pop3.lock"
_READ_FLAGS = os.O_RDONLY | os.O_CLOEXEC
# The most of a message file read at once (and held by a session): a file
# this long or longer is streamed piece by piece by the caller of read().
PIECE = 256 * 1024
# The largest message read ahead (see LockedInbox.read_ahead).
READ_AHEAD_MAX = 64 * 1024


class MailboxLock:
    """An exclusive flock on `Maildir/nmail-pop3.lock`: one session per mailbox,
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

    def where(self, uidl: str) -> tuple[int, str] | None:
        """(directory descriptor, file name) listed for `uidl`; None when it was not there."""
        return self._files.get(uidl)

    def close(self) -> None:
        for dir_fd in self._dirs:
            os.close(dir_fd)
        self._dirs.clear()
        self._files.clear()


class LockedInbox:
    """An account's INBOX under its session lock, as listed when it was taken."""

    def __init__(
        self,
        view: FolderView,
        lock: MailboxLock,
        refs: Sequence[MessageRef],
        files: InboxFiles,
    ) -> None:
        self._view = view
        self._account_id = view.account_id
        self._lock = lock
        self._files = files
        self.refs = refs
        # Each UID's file, looked up once here: a RETR is then one dict lookup
        # and one openat(), not two lookups and a call of InboxFiles.
        self._where: dict[int, tuple[int, str]] = {}
        self._ahead: tuple[int, bytes] | None = None  # (uid, whole file) read early
        for ref in refs:
            found = files.where(ref.uidl)
            if found is not None:
                self._where[ref.uid] = found

    def has_file(self, uid: int) -> bool:
        """Whether message `uid`'s file is still under its listed name."""
        found = self._where.get(uid)
        return found is not None and os.access(found[1], os.F_OK, dir_fd=found[0])

    def read(self, uid: int, size: int) -> bytes | tuple[int, bytes] | None:
        """Message `uid` of `size` octets (the index's word): its bytes when one
        read got the whole file; (descriptor, first piece) when more follows
        (the caller reads on and closes it); None when it is gone or unreadable.

        The read asks for size + 1 octets, not PIECE: a 256 KiB buffer alone
        cost ~12 us a call, and a file grown since is still noticed (the read
        fills up). A short read of a regular file is its end (local disk or NFS).
        """
        ahead = self._ahead
        if ahead is not None:
            self._ahead = None
            # Read early, and the file still there (not expunged by the webmail
            # meanwhile; renamed by a flag change, it is simply read again).
            if ahead[0] == uid and self.has_file(uid):
                return ahead[1]
        found = self._where.get(uid)
        fd: int | None = None
        try:
            if found is not None:
                try:  # noqa: SIM105 (suppress() costs a context manager per RETR)
                    fd = os.open(found[1], _READ_FLAGS, dir_fd=found[0])
                except FileNotFoundError:
                    pass  # renamed by a flag change since login, or deleted
            if fd is None:
                # Moved since the listing (a flag change by the webmail): the index
                # knows where (None: expunged meanwhile by the webmail or a tool).
                fd = self._view.open_message(uid)
                if fd is None:
                    return None
            want = size + 1 if size < PIECE else PIECE
            data = os.read(fd, want)
        except OSError as exc:
            log.error("cannot read message uid %d of account %d: %s", uid, self._account_id, exc)
            if fd is not None:
                os.close(fd)
            return None
        if len(data) < want:
            os.close(fd)
            return data
        return fd, data

    def read_ahead(self, uid: int, size: int) -> None:
        """Read message `uid` now, for the read(uid) that is likely to come next.

        A client fetching one message at a time (poplib, most mail programs)
        then has the next one sent without an open and a read between its
        command and the answer: +3-7% messages/s with poplib, A/B on an idle
        2-core machine. Only messages under READ_AHEAD_MAX, only one at a time.
        """
        self._ahead = None
        if size >= READ_AHEAD_MAX:
            return
        found = self.read(uid, size)  # a failure is logged; the RETR tries again
        if type(found) is bytes:
            self._ahead = (uid, found)
        elif found is not None:
            os.close(found[0])  # longer than the index says: read() streams it

    def finish(self, deleted: Sequence[int], retrieved: Sequence[int]) -> bool:
        """Mark `retrieved` seen and expunge `deleted`; False if the deletion failed."""
        if retrieved:
            try:
                self._view.store_flags(UidSet.of(retrieved), "add", ("\\Seen",))
            except Exception:
                # Only a flag: the session still ends well.
                log.exception("could not mark messages seen (account %d)", self._account_id)
        if deleted:
            try:
                self._view.expunge(UidSet.of(deleted))
            except Exception:
                log.exception("deleting at session end failed for account %d", self._account_id)
                return False
        return True

    def release(self) -> None:
        self._ahead = None
        self._where.clear()  # the descriptors in it are closed now
        self._files.close()
        self._lock.release()


def lock_inbox(store: MailStore, mail_dir: Path, account: Account) -> LockedInbox | None:
    """Lock and list `account`'s INBOX; None when another session holds it."""
    store.ensure_account(account)
    lock = MailboxLock(maildir_path(mail_dir, account.domain, account.userid))
    if not lock.acquire():
        return None
    try:
        view = store.open_folder(account.id, "INBOX")
        refs = view.refs()
        files = InboxFiles(lock.path.parent)
    except BaseException:
        lock.release()
        raise
    return LockedInbox(view, lock, refs, files)

"""Values the mail store takes and hands out (re-exported by `mailstore.store`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from nmail.directory.model import Account
from nmail.message_source import MessageSource
from nmail.quick_init import quick_init

# Every account's folders, made with the mailbox; all but INBOX carry a role.
FOLDERS = ("INBOX", "Sent", "Drafts", "Trash", "Spam", "Archive")
DEFAULT_ROLES = {
    "Sent": "\\Sent",
    "Drafts": "\\Drafts",
    "Trash": "\\Trash",
    "Spam": "\\Junk",
    "Archive": "\\Archive",
}
ROLES = frozenset(DEFAULT_ROLES.values())

FlagMode = Literal["set", "add", "remove"]
SortKey = Literal["date", "arrival", "from", "subject", "size"]
SORT_KEYS: tuple[SortKey, ...] = ("date", "arrival", "from", "subject", "size")


class StoreError(Exception):
    """A message could not be stored, found or changed; nothing was changed."""


class StoreUnavailable(StoreError):
    """The index writer cannot be reached (temporary: try again); nothing was changed."""


class NoSuchFolder(StoreError):
    """The folder does not exist."""


class FolderExists(StoreError):
    """A folder of that name exists already."""


class BadFolderName(StoreError):
    """A folder name the store cannot use (the message says why)."""


class FolderNotEmpty(StoreError):
    """The folder holds messages or subfolders and deleting it was not forced."""


class FolderProtected(StoreError):
    """INBOX cannot be deleted or renamed away."""


class QuotaExceeded(StoreError):
    """The account's quota would be exceeded (the message names the limit)."""


class BadUidSet(StoreError):
    """A UID set or sequence range that is malformed, reversed or past the end."""


class BadFlag(StoreError):
    """A flag that is not an IMAP system flag or keyword."""


# Wire names of the errors an operation may end with (index_wire, both ways).
STORE_ERRORS: dict[str, type[StoreError]] = {
    cls.__name__: cls
    for cls in (StoreError, StoreUnavailable, NoSuchFolder, FolderExists, BadFolderName,
                FolderNotEmpty, FolderProtected, QuotaExceeded, BadUidSet, BadFlag)
}


@quick_init
@dataclass(frozen=True, slots=True)
class NewMessage:
    """One message to store into one account's folder."""

    account: Account
    folder: str  # "INBOX" ...
    prefix: bytes  # trace headers to prepend (CRLF-terminated lines), may be b""
    # Message bytes as received, CRLF line ends: a large one in its spool
    # file (nmail/message_source.py), copied from there, never read whole.
    content: MessageSource
    flags: frozenset[str] = frozenset()  # \Seen \Answered \Flagged \Deleted \Draft, keywords
    internal_date: int | None = None  # default: now
    # Whether a line of `content` starts with "." when the caller knows (SMTP's
    # DATA saw every line start); None: the store looks (indexrow.has_dot_line).
    dot_lines: bool | None = None


@quick_init
@dataclass(frozen=True, slots=True)
class StoredMessage:
    account_id: int
    folder_id: int
    uid: int
    size: int
    uidl: str
    file: str  # the message file's path; a str (the index writer makes many, few ask)

    @property
    def path(self) -> Path:
        """The message file (where it was delivered)."""
        return Path(self.file)


@dataclass(frozen=True, slots=True)
class MessageRef:
    """Cheap per-message facts for POP3 maildrops and IMAP."""

    uid: int
    size: int
    uidl: str
    flags: frozenset[str]
    # A line of the file starts with "." (POP3 stuffs it); True when not known.
    dot_lines: bool = True


@dataclass(frozen=True, slots=True)
class FolderInfo:
    """One folder's status, as the index keeps it (no row is counted to make it)."""

    id: int
    name: str  # API name, "/" between levels
    uidvalidity: int
    next_uid: int
    highest_modseq: int
    message_count: int
    total_size: int
    unseen_count: int = 0
    role: str | None = None  # \\Sent \\Drafts \\Trash \\Junk \\Archive
    subscribed: bool = True


@dataclass(frozen=True, slots=True)
class FlagChange:
    """What one flag call did."""

    highest_modseq: int  # the folder's after the call
    changed: tuple[tuple[int, int], ...]  # (uid, new modseq) of messages actually changed
    # UIDs not changed because their MODSEQ was above UNCHANGEDSINCE (RFC 7162 MODIFIED)
    modified: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class CopyResult:
    """COPYUID: the target's UIDVALIDITY and each source UID with its new UID."""

    uidvalidity: int
    pairs: tuple[tuple[int, int], ...]  # (source uid, target uid), ascending source uid


@dataclass(frozen=True, slots=True)
class AppendResult:
    """APPENDUID: where an appended message went."""

    folder_id: int
    uidvalidity: int
    uid: int
    size: int


@dataclass(frozen=True, slots=True)
class ChangeSet:
    """What changed in a folder after a MODSEQ (CONDSTORE/QRESYNC, webmail refresh)."""

    highest_modseq: int
    uid_next: int
    new: tuple[int, ...]  # UIDs that entered the folder after the MODSEQ, ascending
    changed: tuple[tuple[int, int, frozenset[str]], ...]  # (uid, modseq, flags) of older ones
    vanished: tuple[int, ...]  # UIDs expunged or moved away after the MODSEQ, ascending
    # False when tombstones after the MODSEQ were pruned (tombstone_days): `vanished`
    # may then miss UIDs; compare the UIDs you know with FolderView.uids().
    complete: bool = True


@dataclass(frozen=True, slots=True)
class MessageRow:
    """One line of a folder listing (webmail)."""

    uid: int
    modseq: int
    size: int
    flags: frozenset[str]
    internal_date: int
    date: int
    from_name: str
    from_addr: str
    to_addrs: str
    cc_addrs: str
    subject: str
    message_id: str
    in_reply_to: str
    thread_id: str
    has_attachments: bool
    preview: str


@dataclass(frozen=True, slots=True)
class SyncCounts:
    """What one reconciliation did to the index."""

    added: int = 0  # rows inserted for files that had none
    removed: int = 0  # rows dropped because their file is gone
    kept: int = 0  # rows whose file is still there (UID unchanged)
    renumbered: int = 0  # files that carried a UID and had to get another one
    flags: int = 0  # rows whose flags were taken from their file's name
    # conversations with no message left whose links were dropped (thread_sweep)
    forgotten: int = 0

    def __add__(self, other: SyncCounts) -> SyncCounts:
        return SyncCounts(
            self.added + other.added,
            self.removed + other.removed,
            self.kept + other.kept,
            self.renumbered + other.renumbered,
            self.flags + other.flags,
            self.forgotten + other.forgotten,
        )


@dataclass(frozen=True, slots=True)
class AccountSync:
    account_id: int
    address: str
    counts: SyncCounts
    folders_created: tuple[str, ...] = ()  # folder rows made for directories found on disk
    # folders a rename or delete killed before its COMMIT had moved: put back
    folders_restored: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SyncReport:
    """The result of `dbsync`: per account and in total."""

    accounts: tuple[AccountSync, ...] = ()
    total: SyncCounts = field(default_factory=SyncCounts)
    errors: tuple[str, ...] = ()  # "<address>: <why>" for accounts that were skipped


@dataclass(frozen=True, slots=True)
class RepairReport:
    """The result of start-up repair."""

    folders_checked: int = 0
    added: int = 0  # rows made for files that had none (crash between file and row)
    renumbered: int = 0
    tmp_removed: int = 0  # stale files left in tmp/ by a crash (older than 36 hours)
    errors: tuple[str, ...] = ()  # "<address>: <why>" for accounts that were skipped
    removed: int = 0  # rows dropped because their file is gone (a move cut short)
    skipped: bool = False  # not run: every writer had stopped cleanly (clean_stop)

    def said(self) -> str:
        """What `nmail serve` prints of it: "" when it found nothing missing."""
        if self.skipped:
            return ("skipped, every writer of the mail store stopped cleanly (files other "
                    "tools put in a Maildir meanwhile need `nmail dbsync`)")
        return str(self) if self.added else ""

"""Values the mail store takes and hands out (re-exported by `mailstore.store`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from nmail.directory.model import Account

FOLDERS = ("INBOX", "Sent", "Drafts", "Trash", "Spam")


class StoreError(Exception):
    """A message could not be stored, found or changed; nothing was changed."""


@dataclass(frozen=True, slots=True)
class NewMessage:
    """One message to store into one account's folder."""

    account: Account
    folder: str  # "INBOX" ...
    prefix: bytes  # trace headers to prepend (CRLF-terminated lines), may be b""
    content: bytes  # message bytes as received, CRLF line ends
    flags: frozenset[str] = frozenset()  # \Seen \Answered \Flagged \Deleted \Draft, keywords
    internal_date: int | None = None  # default: now


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


@dataclass(frozen=True, slots=True)
class FolderInfo:
    id: int
    name: str
    uidvalidity: int
    next_uid: int
    highest_modseq: int
    message_count: int
    total_size: int


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

    def __add__(self, other: SyncCounts) -> SyncCounts:
        return SyncCounts(
            self.added + other.added,
            self.removed + other.removed,
            self.kept + other.kept,
            self.renumbered + other.renumbered,
        )


@dataclass(frozen=True, slots=True)
class AccountSync:
    account_id: int
    address: str
    counts: SyncCounts
    folders_created: tuple[str, ...] = ()  # folder rows made for directories found on disk


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

"""The mail store's calls from before the mailbox model, each one line on the new one.

POP3's maildrop, the webmail's first screens and many tests name a folder
per call; these keep them working by opening a FolderView each time (two
small queries), so there is one model underneath and no second write path.
New code opens a view once (`MailStore.open_folder`) and keeps it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from nmail.mailstore import folder_reads
from nmail.mailstore.folder_view import FolderView
from nmail.mailstore.model import (
    BadUidSet,
    FolderInfo,
    MessageRef,
    MessageRow,
    StoreError,
)
from nmail.mailstore.preparing import normalized_flags
from nmail.mailstore.uidset import UidSet

R = TypeVar("R")


def guarded(what: str, fn: Callable[[], R]) -> R:
    """fn(), with disk and database failures as StoreError("could not <what>: ...")."""
    try:
        return fn()
    except StoreError:
        raise
    except (OSError, SQLAlchemyError) as exc:
        raise StoreError(f"could not {what}: {exc}") from exc


def _uid_set(uids: Iterable[int]) -> UidSet:
    try:
        return UidSet.of(int(uid) for uid in uids)
    except BadUidSet as exc:
        raise StoreError(str(exc)) from None


class FirstModelCalls:
    """Mixed into MailStore: the per-call folder-name API, on FolderViews."""

    _engine: Engine

    # MailStore's own (declared here for the type checker).
    def open_folder(self, account_id: int, name: str) -> FolderView:
        raise NotImplementedError("MailStore.open_folder")

    def list_folders(self, account_id: int) -> list[FolderInfo]:
        raise NotImplementedError("MailStore.list_folders")

    def usage(self, account_id: int) -> int:
        """Bytes stored for the account: the sum of its folders' sizes."""
        def read() -> int:
            with self._engine.connect() as conn:
                return folder_reads.usage(conn, account_id)
        return guarded("read the index", read)

    def folder(self, account_id: int, name: str) -> FolderInfo:
        return self.open_folder(account_id, name).info

    def folders(self, account_id: int) -> list[FolderInfo]:
        return self.list_folders(account_id)

    def refs(self, account_id: int, folder: str) -> list[MessageRef]:
        """UID, size, UIDL and flags of every message, ascending UID."""
        return guarded("read the index", lambda: self.open_folder(account_id, folder).refs())

    def list_messages(self, account_id: int, folder: str, *, limit: int = 50,
                      offset: int = 0) -> list[MessageRow]:
        """A page of the folder, newest first by Date (arrival time when it has none)."""
        return guarded("read the index", lambda: self.open_folder(account_id, folder).page(
            "date", descending=True, offset=offset, limit=limit))

    def message_path(self, account_id: int, folder: str, uid: int) -> Path | None:
        """The message's file, wherever flags moved it; None if there is none."""
        return guarded("find the message",
                        lambda: self.open_folder(account_id, folder).message_path(uid))

    def read_message(self, account_id: int, folder: str, uid: int) -> bytes | None:
        """The message's bytes as stored (trace headers included), None if gone."""
        return guarded("read the message", lambda: self.open_folder(account_id, folder).read(uid))

    def open_message(self, account_id: int, folder: str, uid: int) -> BinaryIO | None:
        """The message's file opened for reading (the caller closes it), None if gone:
        for a reader that takes a big message a piece at a time (the webmail's forward)."""
        fd = guarded("read the message",
                     lambda: self.open_folder(account_id, folder).open_message(uid))
        return None if fd is None else os.fdopen(fd, "rb")

    def expunge(self, account_id: int, folder: str, uids: Iterable[int]) -> int:
        """Delete messages (files and rows); returns how many were deleted."""
        wanted = _uid_set(uids)
        if not wanted:
            return 0
        return len(guarded("expunge",
                            lambda: self.open_folder(account_id, folder).expunge(wanted)))

    def set_flags(self, account_id: int, folder: str, uids: Iterable[int],
                  add: frozenset[str] = frozenset(),
                  remove: frozenset[str] = frozenset()) -> None:
        """Add and remove IMAP flags; files move to cur/ with the matching letters."""
        plus, minus = normalized_flags(add), normalized_flags(remove)
        wanted = _uid_set(uids)
        if not wanted or not (plus or minus):
            return

        def change() -> None:
            view = self.open_folder(account_id, folder)
            if plus:
                view.store_flags(wanted, "add", plus)
            if minus:
                view.store_flags(wanted, "remove", minus)

        guarded("change flags", change)


"""An account's folders: list, open, create, rename, delete, subscribe.

Reads go to the index directly; every change is a typed operation sent to
the index writer (operations.py), so it shares the one order of writes.
Names are checked here, before anything is sent, so a bad name costs no
round trip and changes nothing.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, bindparam, select

from nmail.db.tables import folders
from nmail.mailstore.folder_names import check_name
from nmail.mailstore.folder_view import FolderView, RunOperation
from nmail.mailstore.mailboxes import mailbox_by_id
from nmail.mailstore.model import ROLES, FolderInfo, NoSuchFolder, StoreError
from nmail.mailstore.op_folders import info_of
from nmail.mailstore.operations import CreateFolder, DeleteFolder, RenameFolder, Subscribe

# Every webmail page lists the folders: built once (anew it cost ~0.05 ms a call).
_OF_ACCOUNT = select(folders).where(folders.c.account_id == bindparam("account_id"))


class FolderCatalog:
    def __init__(self, engine: Engine, mail_dir: Path, run: RunOperation, *,
                 keep_tombstones: int) -> None:
        self._engine = engine
        self._mail_dir = mail_dir
        self._run = run
        self._keep_tombstones = keep_tombstones

    def maildir(self, account_id: int) -> str:
        with self._engine.connect() as conn:
            return str(mailbox_by_id(conn, account_id).maildir(self._mail_dir))

    def open(self, account_id: int, name: str) -> FolderView:
        """The folder `name` of the account, ids resolved once; NoSuchFolder if none."""
        name = check_name(name)
        with self._engine.connect() as conn:
            maildir = str(mailbox_by_id(conn, account_id).maildir(self._mail_dir))
            row = conn.execute(select(folders).where(
                folders.c.account_id == account_id, folders.c.name == name)).first()
        if row is None:
            raise NoSuchFolder(f"no folder {name!r}")
        return FolderView(self._engine, self._run, account_id, maildir, info_of(row),
                          keep_tombstones=self._keep_tombstones)

    def list(self, account_id: int) -> list[FolderInfo]:
        """Every folder with its counts (kept, never counted), INBOX first, then by name."""
        with self._engine.connect() as conn:
            rows = conn.execute(_OF_ACCOUNT, {"account_id": account_id}).all()
        infos = [info_of(r) for r in rows]
        return sorted(infos, key=lambda f: (f.name != "INBOX", f.name))

    def create(self, account_id: int, name: str, *, role: str | None = None) -> FolderInfo:
        """Create the folder (and missing parents); FolderExists if it is there."""
        name = check_name(name)
        if role is not None and role not in ROLES:
            raise StoreError(f"unknown special use {role!r} (one of {', '.join(sorted(ROLES))})")
        info: FolderInfo = self._run(CreateFolder(account_id, self.maildir(account_id), name,
                                                  role or ""))
        return info

    def rename(self, account_id: int, name: str, new_name: str) -> None:
        """Rename the folder; its subfolders follow."""
        self._run(RenameFolder(account_id, self.maildir(account_id), check_name(name),
                               check_name(new_name)))

    def delete(self, account_id: int, name: str, *, force: bool = False) -> None:
        """Delete the folder; one with messages or subfolders only when `force`."""
        self._run(DeleteFolder(account_id, self.maildir(account_id), check_name(name),
                               bool(force)))

    def subscribe(self, account_id: int, name: str, subscribed: bool = True) -> None:
        self._run(Subscribe(account_id, self.maildir(account_id), check_name(name),
                            bool(subscribed)))

"""Folder operations of the mailbox model: create, rename, delete, subscribe, roles."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from nmail.directory.model import Account
from nmail.mailstore.commit_hook import FolderChange
from nmail.mailstore.model import (
    BadFolderName,
    FolderExists,
    FolderNotEmpty,
    FolderProtected,
    NoSuchFolder,
    StoreError,
)
from nmail.mailstore.store import MailStore
from nmail.mailstore.uidset import UidSet
from test_mailstore_support import HOST, alice, folder_rows, mail_root, maildir, new

__all__ = ["alice", "mail_root"]  # fixtures


class Heard:
    def __init__(self) -> None:
        self.changes: list[FolderChange] = []

    def __call__(self, changes: Sequence[FolderChange]) -> None:
        self.changes.extend(changes)


@pytest.fixture
def heard() -> Heard:
    return Heard()


@pytest.fixture
def store(engine: Engine, mail_root: Path, heard: Heard) -> Iterator[MailStore]:
    s = MailStore(engine, mail_root, HOST, on_commit=heard)
    yield s
    s.close()


def _disk(root: Path, account: Account) -> list[str]:
    return sorted(e for e in os.listdir(maildir(root, account)) if e.startswith("."))


def _state(engine: Engine, root: Path, account: Account) -> tuple[Any, list[str]]:
    return folder_rows(engine, account), _disk(root, account)


def test_nested_korean_folders_are_created_with_parents_and_roles(
    store: MailStore, alice: Account, mail_root: Path, heard: Heard
) -> None:
    store.ensure_account(alice)
    info = store.create_folder(alice.id, "거래처/2026")
    assert info.name == "거래처/2026" and info.message_count == 0 and info.next_uid == 1
    names = [f.name for f in store.list_folders(alice.id)]
    assert names[0] == "INBOX" and {"거래처", "거래처/2026"} <= set(names)
    assert {".&rHC3mMyY-", ".&rHC3mMyY-.2026"} <= set(_disk(mail_root, alice))
    assert [(c.folder, c.kind) for c in heard.changes] == [
        ("거래처", "folder-create"), ("거래처/2026", "folder-create")]
    roles = {f.name: f.role for f in store.list_folders(alice.id)}
    assert roles["Sent"] == "\\Sent" and roles["Spam"] == "\\Junk"
    assert roles["Archive"] == "\\Archive" and roles["거래처/2026"] is None
    made = store.create_folder(alice.id, "Outbox", role="\\Drafts")
    assert made.role == "\\Drafts"
    store.store([new(alice, "거래처/2026")])
    assert store.folder(alice.id, "거래처/2026").message_count == 1


def test_rename_takes_subfolders_and_messages_along(
    store: MailStore, alice: Account, mail_root: Path, heard: Heard
) -> None:
    store.ensure_account(alice)
    store.create_folder(alice.id, "Projects/Alpha/Docs")
    store.store([new(alice, "Projects/Alpha/Docs", subject="spec")])
    before = store.folder(alice.id, "Projects/Alpha/Docs")
    heard.changes.clear()
    store.rename_folder(alice.id, "Projects", "Work/Old")
    names = {f.name for f in store.list_folders(alice.id)}
    assert {"Work", "Work/Old", "Work/Old/Alpha", "Work/Old/Alpha/Docs"} <= names
    assert not any(n.startswith("Projects") for n in names)
    moved = store.open_folder(alice.id, "Work/Old/Alpha/Docs")
    assert moved.info.uidvalidity == before.uidvalidity and moved.info.id == before.id
    data = moved.read(1)
    assert data is not None and b"Subject: spec" in data
    assert ".Work.Old.Alpha.Docs" in _disk(mail_root, alice)
    assert not any(e.startswith(".Projects") for e in _disk(mail_root, alice))
    assert {c.folder for c in heard.changes if c.kind == "folder-rename"} == {
        "Work/Old", "Work/Old/Alpha", "Work/Old/Alpha/Docs"}


def test_delete_needs_force_for_messages_or_subfolders(
    store: MailStore, alice: Account, mail_root: Path
) -> None:
    store.ensure_account(alice)
    store.create_folder(alice.id, "Old/Sub")
    store.create_folder(alice.id, "Empty")
    store.store([new(alice, "Old")])
    store.delete_folder(alice.id, "Empty")
    with pytest.raises(FolderNotEmpty, match="1 messages and 1 subfolders"):
        store.delete_folder(alice.id, "Old")
    assert {"Old", "Old/Sub"} <= {f.name for f in store.list_folders(alice.id)}
    store.delete_folder(alice.id, "Old", force=True)
    names = {f.name for f in store.list_folders(alice.id)}
    assert not names & {"Old", "Old/Sub", "Empty"}
    assert not [e for e in os.listdir(maildir(mail_root, alice))
                if e.startswith((".Old", ".Empty", "nmail-deleted"))]
    # Re-created, a folder gets a new UIDVALIDITY-safe start (no stale messages).
    again = store.create_folder(alice.id, "Old")
    assert again.message_count == 0


def test_subscriptions(store: MailStore, alice: Account, heard: Heard) -> None:
    store.ensure_account(alice)
    store.subscribe(alice.id, "Trash", False)
    assert not store.folder(alice.id, "Trash").subscribed
    store.subscribe(alice.id, "Trash")
    assert store.folder(alice.id, "Trash").subscribed
    assert [c.kind for c in heard.changes][-2:] == ["subscribe", "subscribe"]
    with pytest.raises(NoSuchFolder):
        store.subscribe(alice.id, "Nowhere")


def test_bad_folder_requests_change_nothing(
    store: MailStore, alice: Account, engine: Engine, mail_root: Path, heard: Heard
) -> None:
    store.ensure_account(alice)
    store.create_folder(alice.id, "A/B")
    store.create_folder(alice.id, "C")
    before = _state(engine, mail_root, alice)
    heard.changes.clear()
    attempts: list[tuple[type[StoreError], Any]] = [
        (NoSuchFolder, lambda: store.rename_folder(alice.id, "Nope", "X")),
        (NoSuchFolder, lambda: store.delete_folder(alice.id, "Nope")),
        (NoSuchFolder, lambda: store.open_folder(alice.id, "Nope")),
        (FolderExists, lambda: store.rename_folder(alice.id, "A", "C")),
        (FolderExists, lambda: store.create_folder(alice.id, "A/B")),
        (FolderExists, lambda: store.rename_folder(alice.id, "C", "inbox")),
        (FolderProtected, lambda: store.delete_folder(alice.id, "INBOX")),
        (FolderProtected, lambda: store.rename_folder(alice.id, "inbox", "Old")),
        (BadFolderName, lambda: store.rename_folder(alice.id, "A", "A/B/C")),
        (StoreError, lambda: store.create_folder(alice.id, "X", role="\\Bogus")),
    ]
    for bad in ("/A", "A/", ".", "..", "a/../b", "nul\0", "tab\there", "x" * 256,
                "/".join(["d"] * 40), "v1.0", "INBOX/x", ""):
        attempts.append((BadFolderName, lambda bad=bad: store.create_folder(alice.id, bad)))
        attempts.append((BadFolderName, lambda bad=bad: store.rename_folder(alice.id, "C", bad)))
    for error, attempt in attempts:
        with pytest.raises(error):
            attempt()
    assert _state(engine, mail_root, alice) == before
    assert heard.changes == []


def test_rename_that_would_make_a_name_too_long_changes_nothing(
    store: MailStore, alice: Account, engine: Engine, mail_root: Path
) -> None:
    store.ensure_account(alice)
    store.create_folder(alice.id, "a/" + "b" * 240)
    before = _state(engine, mail_root, alice)
    with pytest.raises(BadFolderName, match="too long"):
        store.rename_folder(alice.id, "a", "c" * 20)
    assert _state(engine, mail_root, alice) == before


def test_a_stale_view_cannot_touch_a_deleted_folder(store: MailStore, alice: Account) -> None:
    store.ensure_account(alice)
    store.create_folder(alice.id, "Gone")
    store.store([new(alice, "Gone")])
    view = store.open_folder(alice.id, "Gone")
    store.delete_folder(alice.id, "Gone", force=True)
    with pytest.raises(NoSuchFolder):
        view.store_flags(UidSet.of([1]), "add", ["\\Seen"])
    with pytest.raises(NoSuchFolder):
        view.refresh()


def test_repair_undoes_a_rename_or_delete_cut_short_before_its_commit(
    store: MailStore, alice: Account, mail_root: Path
) -> None:
    """The rows say the change did not commit: its directories go back (folder_undo;
    tests/test_mailbox_folder_crash.py kills a real process at each point)."""
    store.ensure_account(alice)
    store.create_folder(alice.id, "Before")
    store.create_folder(alice.id, "Doomed")
    store.store([new(alice, "Before", subject="kept"), new(alice, "Doomed", subject="safe")])
    before = store.folder(alice.id, "Before")
    box = maildir(mail_root, alice)
    # A crash after the directories were renamed / moved aside, before COMMIT.
    os.rename(box / ".Before", box / ".After")
    (box / "nmail-deleted-1-0").mkdir()
    os.rename(box / ".Doomed", box / "nmail-deleted-1-0" / ".Doomed")
    report = store.repair()
    assert (report.added, report.removed) == (0, 0)
    names = {f.name for f in store.list_folders(alice.id)}
    assert {"Before", "Doomed"} <= names and "After" not in names
    kept = store.open_folder(alice.id, "Before")
    assert kept.info.uidvalidity == before.uidvalidity
    assert [r.subject for r in kept.summaries(kept.uid_set("1:*"))] == ["kept"]
    doomed = store.open_folder(alice.id, "Doomed")
    assert [r.subject for r in doomed.summaries(doomed.uid_set("1:*"))] == ["safe"]
    assert not (box / "nmail-deleted-1-0").exists()


def test_repair_takes_a_directory_renamed_by_another_tool_as_it_is(
    store: MailStore, alice: Account, mail_root: Path
) -> None:
    """A directory renamed outside nmail with no nmail-uidvalidity of a missing row is
    indexed under its new name, and the row whose directory went is dropped."""
    store.ensure_account(alice)
    store.create_folder(alice.id, "Before")
    store.store([new(alice, "Before", subject="kept")])
    box = maildir(mail_root, alice)
    os.rename(box / ".Before", box / ".After")
    (box / ".After" / "nmail-uidvalidity").unlink()
    store.repair()
    names = {f.name for f in store.list_folders(alice.id)}
    assert "After" in names and "Before" not in names
    after = store.open_folder(alice.id, "After")
    assert [r.subject for r in after.summaries(after.uid_set("1:*"))] == ["kept"]

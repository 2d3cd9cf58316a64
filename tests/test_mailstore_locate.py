"""Finding a message's file: by the name the index knows, a directory scan only when moved."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import Engine

from nmail.directory.model import Account
from nmail.mailstore import messagefile
from nmail.mailstore.store import MailStore
from test_mailstore_support import alice, folder_dir, mail_root, new, store

__all__ = ["alice", "mail_root", "store"]  # fixtures


class ScanSpy:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.real = messagefile.scan_for

    def __call__(self, folder: Path, filename: str) -> Path | None:
        self.calls.append(filename)
        return self.real(folder, filename)


@pytest.fixture
def scans(monkeypatch: pytest.MonkeyPatch) -> ScanSpy:
    spy = ScanSpy()
    monkeypatch.setattr(messagefile, "scan_for", spy)
    return spy


def test_a_message_with_keywords_is_found_without_reading_the_directory(
    engine: Engine, store: MailStore, alice: Account, mail_root: Path, scans: ScanSpy
) -> None:
    store.ensure_account(alice)
    store.store([new(alice, subject=f"m{i}") for i in range(5)])
    view = store.open_folder(alice.id, "INBOX")
    view.store_flags(view.uid_set("2"), "add", ["$Forwarded", "\\Seen", "$Label1"])
    view.store_flags(view.uid_set("3"), "add", ["\\Flagged"])
    store.names_settled()
    for uid in (1, 2, 3):
        path = view.message_path(uid)
        assert path is not None and path.exists()
    assert view.message_path(2).name.endswith(":2,Sab")  # type: ignore[union-attr]
    assert scans.calls == []
    # Moved and re-lettered by another tool: still found, by reading the directory.
    cur = folder_dir(mail_root, alice, "INBOX") / "cur"
    old = view.message_path(2)
    assert old is not None
    os.rename(old, cur / (old.name.split(":")[0] + ":2,RSa"))
    found = view.message_path(2)
    assert found is not None and found.name.endswith(":2,RSa")
    assert len(scans.calls) == 1
    assert view.read(2) is not None and store.open_folder(alice.id, "INBOX").copy(
        view.uid_set("2"), "Archive").pairs == ((2, 1),)


def test_a_new_message_another_reader_moved_to_cur_is_found_without_a_scan(
    engine: Engine, store: MailStore, alice: Account, mail_root: Path, scans: ScanSpy
) -> None:
    """Dovecot, Courier or a client on the Maildir moves new/X to cur/X:2, on first look."""
    store.ensure_account(alice)
    store.store([new(alice, subject=f"m{i}") for i in range(3)])
    view = store.open_folder(alice.id, "INBOX")
    inbox = folder_dir(mail_root, alice, "INBOX")
    for uid in (1, 2):
        path = view.message_path(uid)
        assert path is not None and path.parent.name == "new"
        os.rename(path, inbox / "cur" / (path.name + ":2,"))
    assert view.read(1) is not None
    found = view.message_path(2)
    assert found is not None and found.parent.name == "cur" and found.name.endswith(":2,")
    assert scans.calls == []
    # A reader that also set \\Seen (name:2,S) is one it could not guess: the scan finds it.
    path = view.message_path(3)
    assert path is not None
    os.rename(path, inbox / "cur" / (path.name + ":2,S"))
    assert view.message_path(3) is not None and scans.calls == [path.name]

"""The maildrop's reads (mailstore/maildrop.py): whole, in pieces, read ahead, gone.

On a real MailStore and index on every database; the files are the store's
own, changed under the inbox the way the webmail or a crash would.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from nmail.directory import Account, Directory
from nmail.directory.passwords import fast_hashing
from nmail.mailstore.maildrop import PIECE, READ_AHEAD_MAX, LockedInbox, lock_inbox
from nmail.mailstore.store import MailStore, NewMessage

SMALL = b"Subject: small\r\n\r\n.a line with a dot\r\nlast\r\n"
OTHER = b"Subject: other\r\n\r\nbody\r\n"


class Box:
    def __init__(self, engine: Engine, tmp_path: Path) -> None:
        directory = Directory(engine, passwords=fast_hashing())
        directory.add_domain("example.com")
        self.account: Account = directory.add_account("example.com", "Bob", "bob", "Pw-12345678")
        self.mail_dir = tmp_path / "mail"
        self.store = MailStore(engine, self.mail_dir, "mail.example.com")
        self.store.ensure_account(self.account)

    def deliver(self, *contents: bytes) -> list[int]:
        stored = self.store.store([NewMessage(self.account, "INBOX", b"", c) for c in contents])
        return [m.uid for m in stored]

    def path(self, uid: int) -> Path:
        path = self.store.message_path(self.account.id, "INBOX", uid)
        assert path is not None
        return path

    def lock(self) -> LockedInbox:
        inbox = lock_inbox(self.store, self.mail_dir, self.account)
        assert inbox is not None
        return inbox


@pytest.fixture
def box(engine: Engine, tmp_path: Path) -> Iterator[Box]:
    box = Box(engine, tmp_path)
    yield box
    box.store.close()


def sizes(inbox: LockedInbox) -> dict[int, int]:
    return {ref.uid: ref.size for ref in inbox.refs}


def read_all(inbox: LockedInbox, uid: int, size: int) -> bytes | None:
    """read() and, when it hands back a descriptor, the rest in pieces (as the server does)."""
    found = inbox.read(uid, size)
    if found is None or type(found) is bytes:
        return found
    fd, piece = found
    pieces = [piece]
    try:
        while piece:
            assert len(piece) <= PIECE
            piece = os.read(fd, PIECE)
            pieces.append(piece)
    finally:
        os.close(fd)
    return b"".join(pieces)


def test_a_small_message_is_one_read(box: Box) -> None:
    (uid,) = box.deliver(SMALL)
    inbox = box.lock()
    try:
        assert inbox.read(uid, sizes(inbox)[uid]) == box.path(uid).read_bytes()
    finally:
        inbox.release()


def test_a_huge_message_comes_back_open_and_goes_in_pieces(box: Box) -> None:
    body = b"".join(b".line %07d with a leading dot\r\n" % n for n in range(3 * PIECE // 30))
    (uid,) = box.deliver(b"Subject: huge\r\n\r\n" + body)
    inbox = box.lock()
    try:
        size = sizes(inbox)[uid]
        assert size > 2 * PIECE
        found = inbox.read(uid, size)
        assert isinstance(found, tuple)
        os.close(found[0])
        assert len(found[1]) == PIECE  # the first piece, not the whole file
        assert read_all(inbox, uid, size) == box.path(uid).read_bytes()
    finally:
        inbox.release()


@pytest.mark.parametrize("change", [b"", b"grown since it was indexed\r\n"])
def test_a_file_of_another_size_than_listed_is_read_as_it_is(box: Box, change: bytes) -> None:
    (uid,) = box.deliver(SMALL)
    inbox = box.lock()
    try:
        path = box.path(uid)
        content = path.read_bytes()[:-5] if not change else path.read_bytes() + change
        path.write_bytes(content)
        assert read_all(inbox, uid, sizes(inbox)[uid]) == content
    finally:
        inbox.release()


def test_read_ahead_is_used_once_and_only_for_its_message(box: Box) -> None:
    first, second = box.deliver(SMALL, OTHER)
    inbox = box.lock()
    try:
        listed = sizes(inbox)
        inbox.read_ahead(second, listed[second])
        wanted = box.path(second).read_bytes()
        # Changed on disk after the early read (the store never does this): the
        # early copy is what is sent, which shows it was used.
        box.path(second).write_bytes(wanted.upper())
        assert inbox.read(second, listed[second]) == wanted
        assert inbox.read(second, listed[second]) == wanted.upper()  # used only once
        inbox.read_ahead(second, listed[second])
        assert inbox.read(first, listed[first]) == box.path(first).read_bytes()
        assert inbox.read(second, listed[second]) == wanted.upper()  # dropped by the other read
    finally:
        inbox.release()


def test_a_file_that_vanished_after_the_read_ahead_is_gone(box: Box) -> None:
    """Expunged (the webmail) or lost between the early read and the RETR: None,
    never the bytes read early."""
    first, second = box.deliver(SMALL, OTHER)
    inbox = box.lock()
    try:
        listed = sizes(inbox)
        inbox.read_ahead(first, listed[first])
        box.store.expunge(box.account.id, "INBOX", [first])
        assert inbox.read(first, listed[first]) is None
        inbox.read_ahead(second, listed[second])
        box.path(second).unlink()  # the file lost, the index row still there
        assert inbox.read(second, listed[second]) is None
    finally:
        inbox.release()


def test_read_ahead_skips_large_messages(box: Box) -> None:
    big = b"Subject: big\r\n\r\n" + b"x" * READ_AHEAD_MAX + b"\r\n"
    (uid,) = box.deliver(big)
    inbox = box.lock()
    try:
        size = sizes(inbox)[uid]
        inbox.read_ahead(uid, size)
        box.path(uid).write_bytes(SMALL)  # not read early: the file as it is now
        assert read_all(inbox, uid, size) == SMALL
    finally:
        inbox.release()


def test_an_unreadable_file_is_reported_gone(box: Box, caplog: pytest.LogCaptureFixture) -> None:
    (uid,) = box.deliver(SMALL)
    inbox = box.lock()
    try:
        path = box.path(uid)
        path.unlink()
        path.mkdir()  # opens, but read() fails with EISDIR
        assert inbox.read(uid, sizes(inbox)[uid]) is None
        assert "cannot read message" in caplog.text
        inbox.read_ahead(uid, sizes(inbox)[uid])  # quietly nothing
        path.rmdir()
    finally:
        inbox.release()

"""The account service: accounts with their mailboxes, the purge area, settings, bad input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from nmail.accounts import AccountService, CurrentPasswordRefused, StoreMailboxes
from nmail.accounts.purge_area import PURGE_DIR
from nmail.directory import (
    Account,
    Directory,
    DirectoryError,
    InvalidName,
    LoginThrottle,
    NotFound,
    WeakPassword,
)
from nmail.directory.login import LoginService
from nmail.directory.passwords import fast_hashing
from nmail.mailstore.store import MailStore, NewMessage
from support import FakeClock

PW = "Correct-horse-42"


@pytest.fixture
def parts(engine: Engine, tmp_path: Path) -> Iterator[tuple[AccountService, Directory, MailStore]]:
    directory = Directory(engine, passwords=fast_hashing())
    directory.add_domain("example.com")
    store = MailStore(engine, tmp_path / "mail", "mail.example.com")
    login = LoginService(directory, LoginThrottle(FakeClock(), max_failures=3))
    service = AccountService(
        directory, StoreMailboxes(store), tmp_path / "mail", login=login,
        clock=lambda: 1_790_000_000.0,
    )
    yield service, directory, store
    store.close()


def test_create_makes_the_mailbox_and_its_folders(
    parts: tuple[AccountService, Directory, MailStore], tmp_path: Path
) -> None:
    service, directory, _ = parts
    new = service.create("example.com", "Bob", "bob", PW, quota=1024)
    assert new.account.address == "bob@example.com" and new.earlier_mail_moved_to is None
    maildir = tmp_path / "mail" / "example.com" / "bob" / "Maildir"
    for folder in ("", ".Sent", ".Drafts", ".Trash", ".Spam"):
        assert (maildir / folder / "new").is_dir()
    assert directory.get_account("bob@example.com") == new.account


def test_a_mailbox_that_cannot_be_made_leaves_no_account(
    parts: tuple[AccountService, Directory, MailStore], tmp_path: Path
) -> None:
    service, directory, _ = parts
    (tmp_path / "mail" / "example.com").mkdir(parents=True)
    (tmp_path / "mail" / "example.com" / "bob").write_text("a file where the mailbox goes")
    (tmp_path / "mail" / PURGE_DIR).write_text("and no purge area either")
    with pytest.raises(DirectoryError, match="account not added"):
        service.create("example.com", "Bob", "bob", PW)
    assert directory.get_account("bob@example.com") is None


def test_delete_moves_the_mailbox_aside_and_a_new_owner_starts_empty(
    parts: tuple[AccountService, Directory, MailStore], tmp_path: Path
) -> None:
    service, _, store = parts
    old = service.create("example.com", "Bob", "bob", PW).account
    store.store([NewMessage(old, "INBOX", b"", b"Subject: private\r\n\r\nx\r\n")])
    deleted = service.delete("BOB@Example.com")
    assert deleted.account == old and not deleted.mail_removed
    assert deleted.mail_moved_to == (
        tmp_path / "mail" / PURGE_DIR / "20260921T141320Z-bob@example.com"
    )
    assert len(list((deleted.mail_moved_to / "Maildir" / "new").iterdir())) == 1
    new = service.create("example.com", "Bob Two", "bob", PW).account
    assert store.usage(new.id) == 0
    # Deleted twice in one second: the second goes beside the first.
    again = service.delete("bob@example.com")
    assert again.mail_moved_to is not None and again.mail_moved_to.name.endswith(".1")


def test_delete_with_purge_now_removes_the_files(
    parts: tuple[AccountService, Directory, MailStore], tmp_path: Path
) -> None:
    service, _, _ = parts
    service.create("example.com", "Bob", "bob", PW)
    deleted = service.delete("bob@example.com", purge_now=True)
    assert deleted.mail_removed and deleted.mail_moved_to is None
    assert not (tmp_path / "mail" / "example.com" / "bob").exists()
    assert list((tmp_path / "mail" / PURGE_DIR).iterdir()) == []


def test_mail_left_by_an_older_delete_is_moved_aside_at_create(
    parts: tuple[AccountService, Directory, MailStore], tmp_path: Path
) -> None:
    service, _, store = parts
    left = tmp_path / "mail" / "example.com" / "bob" / "Maildir" / "new"
    left.mkdir(parents=True)
    (left / "1.M1P1Q1.old,S=20").write_bytes(b"Subject: old\r\n\r\nold\r\n")
    new = service.create("example.com", "Bob", "bob", PW)
    assert new.earlier_mail_moved_to is not None
    assert (new.earlier_mail_moved_to / "Maildir" / "new" / "1.M1P1Q1.old,S=20").exists()
    assert store.usage(new.account.id) == 0


def test_delete_domain_moves_every_mailbox(
    parts: tuple[AccountService, Directory, MailStore], tmp_path: Path
) -> None:
    service, directory, _ = parts
    service.create("example.com", "Ann", "ann", PW)
    service.create("example.com", "Bob", "bob", PW)
    with pytest.raises(DirectoryError, match="--force"):
        service.delete_domain("example.com")
    deleted = service.delete_domain("example.com", force=True)
    assert sorted(d.account.userid for d in deleted) == ["ann", "bob"]
    assert all(d.mail_moved_to is not None and d.mail_moved_to.is_dir() for d in deleted)
    assert not (tmp_path / "mail" / "example.com").exists()
    assert directory.get_domain("example.com") is None


def test_settings(parts: tuple[AccountService, Directory, MailStore]) -> None:
    service, directory, _ = parts
    service.create("example.com", "Bob", "bob", PW)
    assert service.set_display_name("bob@example.com", "  홍길동 ").display_name == "홍길동"
    assert service.set_quota("bob@example.com", 5000).quota_bytes == 5000
    changed = service.set_enabled("bob@example.com", login=False)
    assert not changed.login_enabled and changed.receive_enabled
    assert service.set_admin("bob@example.com", True).is_admin
    service.set_password("bob@example.com", "Another-pass-7")
    # Logins are off now: the new password is right, and that is all it is told.
    assert directory.authenticate("bob@example.com", "Another-pass-7").status.value == (
        "login disabled"
    )


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda s: s.set_display_name("bob@example.com", "evil\x1b[2J"), InvalidName),
        (lambda s: s.set_display_name("bob@example.com", "x" * 201), InvalidName),
        (lambda s: s.set_quota("bob@example.com", -1), InvalidName),
        (lambda s: s.set_password("bob@example.com", "short"), WeakPassword),
        (lambda s: s.set_display_name("ghost@example.com", "Ghost"), NotFound),
        (lambda s: s.delete("ghost@example.com"), NotFound),
        (lambda s: s.delete("not an address"), InvalidName),
        (lambda s: s.create("example.com", "B", "../bob", PW), InvalidName),
        (lambda s: s.create("example.com", "B", "bob", PW), DirectoryError),  # exists
        (lambda s: s.create("nowhere.example", "B", "carol", PW), NotFound),
    ],
)
def test_bad_input_changes_nothing(
    parts: tuple[AccountService, Directory, MailStore],
    change: object,
    error: type[Exception],
) -> None:
    service, directory, _ = parts
    before: Account = service.create("example.com", "Bob", "bob", PW).account
    with pytest.raises(error):
        change(service)  # type: ignore[operator]
    assert directory.get_account("bob@example.com") == before
    assert directory.authenticate("bob@example.com", PW).ok


def test_a_user_changes_their_own_password(
    parts: tuple[AccountService, Directory, MailStore],
) -> None:
    service, directory, _ = parts
    service.create("example.com", "Bob", "bob", PW)
    with pytest.raises(CurrentPasswordRefused) as wrong:
        service.change_password("bob@example.com", "not-it", "New-password-1", "192.0.2.1")
    assert wrong.value.delay == 1.0
    with pytest.raises(WeakPassword):
        service.change_password("bob@example.com", PW, "bob", "192.0.2.1")
    service.change_password("bob@example.com", PW, "New-password-1", "192.0.2.1")
    assert directory.authenticate("bob@example.com", "New-password-1").ok
    # Guessing the current password meets the login throttle (3 tries here).
    for _ in range(3):
        with pytest.raises(CurrentPasswordRefused):
            service.change_password("bob@example.com", "guess", "Whatever-12", "192.0.2.9")
    with pytest.raises(CurrentPasswordRefused, match="try again later"):
        service.change_password("bob@example.com", "New-password-1", "Other-pass-3", "192.0.2.9")

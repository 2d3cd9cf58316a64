"""`nmail user ...` (the seed's mbr_add.php and more) through main(), on every database."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from cli_admin_support import Cli, make_cli
from nmail.directory import AuthStatus, Directory

PW = "secret-pass1"


@pytest.fixture
def cli(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Cli:
    c = make_cli(tmp_path, db_url, capsys, monkeypatch)
    c.ok("domain", "add", "example.com")
    return c


def login(cli: Cli, address: str, password: str) -> AuthStatus:
    engine = cli.engine()
    try:
        return Directory(engine).authenticate(address, password).status
    finally:
        engine.dispose()


def test_add_like_mbr_add(cli: Cli) -> None:
    out = cli.ok("user", "add", "example.com", "홍길동", "Hong", PW)
    assert out.strip() == "added hong@example.com"
    listing = cli.ok("user", "list")
    assert "hong@example.com" in listing and "홍길동" in listing
    assert "domain admin" not in listing
    assert login(cli, "hong@example.com", PW) is AuthStatus.OK


@pytest.mark.parametrize("word", ["ADMIN", "admin", "Admin"])
def test_fifth_argument_admin_makes_a_domain_administrator(cli: Cli, word: str) -> None:
    out = cli.ok("user", "add", "example.com", "Boss", "boss", PW, word)
    assert "domain administrator" in out
    assert "domain admin" in cli.ok("user", "list", "example.com")


def test_fifth_argument_other_than_admin_is_an_error(cli: Cli) -> None:
    before = cli.snapshot()
    assert "must be ADMIN" in cli.refused("user", "add", "example.com", "B", "b", PW, "yes")
    assert cli.snapshot() == before


def test_add_creates_the_mailbox(cli: Cli) -> None:
    pytest.importorskip("nmail.mailstore.store")
    cli.ok("user", "add", "example.com", "Bob", "bob", PW)
    assert (cli.data_dir / "mail" / "example.com" / "bob" / "Maildir" / "new").is_dir()


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (("missing.com", "Bob", "bob", PW), "no such domain"),
        (("bad..domain", "Bob", "bob", PW), "empty label"),
        (("example.com", "Bob", "bob", ""), "empty"),
        (("example.com", "Bob", "bob", "short"), "shorter than 8"),
        (("example.com", "Bob", "bob", "aaaaaaaaaa"), "single character"),
        (("example.com", "Bob", "bobbybob", "BobbyBob"), "same as the user id"),
        (("example.com", "Bob", "bob smith", PW), "user id"),
        (("example.com", "Bob", "bob-", PW), "user id"),
        (("example.com", "Bob", "bo/b", PW), "user id"),
    ],
)
def test_bad_add_changes_nothing(cli: Cli, args: tuple[str, ...], why: str) -> None:
    before = cli.snapshot()
    assert why in cli.refused("user", "add", *args)
    assert cli.snapshot() == before
    assert not (cli.data_dir / "mail" / "example.com" / "bob").exists()


def test_duplicate_user(cli: Cli) -> None:
    cli.ok("user", "add", "example.com", "Bob", "bob", PW)
    before = cli.snapshot()
    assert "already exists" in cli.refused("user", "add", "example.com", "Bob2", "BOB", PW)
    assert cli.snapshot() == before


def test_password_from_stdin(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("from-stdin-pw\n"))
    cli.ok("user", "add", "example.com", "Bob", "bob", "-")
    assert login(cli, "bob@example.com", "from-stdin-pw") is AuthStatus.OK
    monkeypatch.setattr("sys.stdin", io.StringIO("another-one-9\n"))
    cli.ok("user", "passwd", "bob@example.com", "-")
    assert login(cli, "bob@example.com", "another-one-9") is AuthStatus.OK


def test_password_starting_with_a_dash_after_double_dash(cli: Cli) -> None:
    cli.ok("user", "add", "--", "example.com", "Bob", "bob", "-dash-first-1")
    assert login(cli, "bob@example.com", "-dash-first-1") is AuthStatus.OK


def test_list_by_domain(cli: Cli) -> None:
    cli.ok("domain", "add", "other.org")
    assert "(no accounts)" in cli.ok("user", "list")
    cli.ok("user", "add", "example.com", "Bob", "bob", PW)
    cli.ok("user", "add", "other.org", "Carol", "carol", PW)
    assert "carol@other.org" in cli.ok("user", "list")
    only = cli.ok("user", "list", "example.com")
    assert "bob@example.com" in only and "carol@other.org" not in only
    assert "no such domain" in cli.refused("user", "list", "missing.com")


def test_passwd(cli: Cli) -> None:
    cli.ok("user", "add", "example.com", "Bob", "bob", PW)
    assert "password of bob@example.com changed" in cli.ok(
        "user", "passwd", "Bob@Example.com", "new-secret-2"
    )
    assert login(cli, "bob@example.com", "new-secret-2") is AuthStatus.OK
    assert login(cli, "bob@example.com", PW) is AuthStatus.BAD_CREDENTIALS
    assert "shorter than 8" in cli.refused("user", "passwd", "bob@example.com", "x")
    assert "empty" in cli.refused("user", "passwd", "bob@example.com", "")
    assert "no such account" in cli.refused("user", "passwd", "ghost@example.com", PW)
    assert login(cli, "bob@example.com", "new-secret-2") is AuthStatus.OK


@pytest.mark.parametrize(
    ("size", "shown"), [("100M", "100M"), ("2G", "2G"), ("0", "unlimited"), ("1048576", "1M")]
)
def test_quota(cli: Cli, size: str, shown: str) -> None:
    cli.ok("user", "add", "example.com", "Bob", "bob", PW)
    assert f"quota of bob@example.com: {shown}" in cli.ok("user", "quota", "bob@example.com", size)
    assert shown in cli.ok("user", "list")


def test_bad_quota(cli: Cli) -> None:
    cli.ok("user", "add", "example.com", "Bob", "bob", PW)
    before = cli.snapshot()
    assert "size" in cli.refused("user", "quota", "bob@example.com", "lots")
    assert "size" in cli.refused("user", "quota", "bob@example.com", "-5")
    assert "no such account" in cli.refused("user", "quota", "ghost@example.com", "1G")
    assert cli.snapshot() == before


def test_disable_and_enable(cli: Cli) -> None:
    cli.ok("user", "add", "example.com", "Bob", "bob", PW)
    assert "receiving off, logins off" in cli.ok("user", "disable", "bob@example.com")
    assert login(cli, "bob@example.com", PW) is AuthStatus.LOGIN_DISABLED
    assert "receiving on, logins off" in cli.ok("user", "enable", "bob@example.com", "--receive")
    assert "receiving on, logins on" in cli.ok("user", "enable", "bob@example.com", "--login")
    assert "receiving off, logins on" in cli.ok("user", "disable", "bob@example.com", "--receive")
    assert "receiving off, logins off" in cli.ok(
        "user", "disable", "bob@example.com", "--receive", "--login"
    )
    assert "no such account" in cli.refused("user", "enable", "ghost@example.com")
    assert "not an address" in cli.refused("user", "enable", "bob")


def test_del_moves_files_to_the_purge_area_unless_purged(cli: Cli) -> None:
    cli.ok("user", "add", "example.com", "Bob", "bob", PW)
    cli.ok("user", "add", "example.com", "Ann", "ann", PW)
    bob_dir = cli.data_dir / "mail" / "example.com" / "bob"
    ann_dir = cli.data_dir / "mail" / "example.com" / "ann"
    bob_dir.mkdir(parents=True, exist_ok=True)
    ann_dir.mkdir(parents=True, exist_ok=True)
    (bob_dir / "keep.txt").write_text("mail")
    out = cli.ok("user", "del", "bob@example.com")
    assert "deleted bob@example.com" in out
    assert not bob_dir.exists()
    [moved] = (cli.data_dir / "mail" / ".purge").iterdir()
    assert moved.name.endswith("-bob@example.com")
    assert f"moved to {moved}" in out
    assert (moved / "keep.txt").read_text() == "mail"
    out = cli.ok("user", "del", "ann@example.com", "--purge")
    assert "deleted its mail files" in out
    assert not ann_dir.exists()
    assert [p.name for p in (cli.data_dir / "mail" / ".purge").iterdir()] == [moved.name]
    assert "(no accounts)" in cli.ok("user", "list")
    assert "no such account" in cli.refused("user", "del", "bob@example.com")


def test_a_recreated_account_does_not_inherit_the_old_mail(cli: Cli) -> None:
    """Issue 9 item 8: the next owner of bob@ must not read the last one's mail."""
    from nmail.mailstore.store import MailStore, NewMessage

    cli.ok("user", "add", "example.com", "Bob", "bob", PW)
    engine = cli.engine()
    try:
        directory = Directory(engine)
        old = directory.get_account("bob@example.com")
        assert old is not None
        store = MailStore(engine, cli.data_dir / "mail", "mail.example.com")
        try:
            store.store([NewMessage(old, "INBOX", b"", b"Subject: secret\r\n\r\nold\r\n")])
        finally:
            store.close()
        cli.ok("user", "del", "bob@example.com")
        cli.ok("user", "add", "example.com", "New Bob", "bob", PW)
        new = directory.get_account("bob@example.com")
        assert new is not None
        store = MailStore(engine, cli.data_dir / "mail", "mail.example.com")
        try:
            assert store.usage(new.id) == 0
        finally:
            store.close()
        maildir = cli.data_dir / "mail" / "example.com" / "bob" / "Maildir"
        assert list((maildir / "new").iterdir()) == [] and list((maildir / "cur").iterdir()) == []
    finally:
        engine.dispose()


def test_purge_never_follows_a_link_out_of_the_mail_directory(
    cli: Cli, tmp_path: Path
) -> None:
    pytest.importorskip("nmail.mailstore.store")
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "file").write_text("do not delete")
    cli.ok("user", "add", "example.com", "Bob", "bob", PW)
    bob_dir = cli.data_dir / "mail" / "example.com" / "bob"
    for child in sorted(bob_dir.rglob("*"), reverse=True):
        child.rmdir() if child.is_dir() else child.unlink()
    bob_dir.rmdir()
    bob_dir.symlink_to(outside)
    assert "deleted its mail files" in cli.ok("user", "del", "bob@example.com", "--purge")
    assert not bob_dir.is_symlink()  # the link went, what it pointed to stays
    assert (outside / "file").read_text() == "do not delete"


def test_purged_lists_and_deletes_the_mail_of_deleted_accounts(cli: Cli) -> None:
    import os
    import time

    assert "(nothing in" in cli.ok("user", "purged")
    for userid in ("old", "new"):
        cli.ok("user", "add", "example.com", userid.title(), userid, PW)
        cli.ok("user", "del", f"{userid}@example.com")
    area = cli.data_dir / "mail" / ".purge"
    [old] = [p for p in area.iterdir() if "-old@" in p.name]
    ten_days_ago = time.time() - 10 * 86400
    os.utime(old, (ten_days_ago, ten_days_ago))
    listing = cli.ok("user", "purged")
    assert "old@example.com" in listing and "new@example.com" in listing
    out = cli.ok("user", "purged", "--delete-older-than", "7")
    assert f"deleted {old}" in out and "deleted 1, kept 1" in out
    assert [p.name for p in area.iterdir()] == [
        p.name for p in area.iterdir() if "-new@" in p.name
    ]
    assert "deleted 1, kept 0" in cli.ok("user", "purged", "--delete-older-than", "0")
    assert list(area.iterdir()) == []
    for bad in ("-1", "soon", "1e9"):
        assert cli("user", "purged", "--delete-older-than", bad).code == 2

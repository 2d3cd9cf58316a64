"""The server keeps a server administrator (directory/server_admins.py), on every
database: `nmail user del`, `nmail domain del --force`, `nmail user disable
[--login]` and `nmail user admin --none|--domain` of the last one are refused
with one line naming the way out, exit 1, nothing changed; each is allowed once
another account is a server administrator."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import update

from cli_admin_support import Cli, make_cli
from nmail.accounts import AccountService
from nmail.db.tables import accounts
from nmail.directory import Account, Directory, DirectoryError

PW = "secret-pass1"
WAY_OUT = "make another account a server administrator first: nmail user admin ADDRESS --server"
LAST = f"nmail: error: bob@example.com is the last server administrator; {WAY_OUT}"
LAST_LOGIN = (
    f"nmail: error: bob@example.com is the last server administrator who can log in; {WAY_OUT}")


@pytest.fixture
def cli(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Cli:
    c = make_cli(tmp_path, db_url, capsys, monkeypatch)
    c.ok("domain", "add", "example.com")
    c.ok("domain", "add", "shop.net")
    c.ok("user", "add", "example.com", "Bob", "bob", PW)
    c.ok("user", "add", "example.com", "Dave", "dave", PW)
    c.ok("user", "add", "shop.net", "Carol", "carol", PW)
    c.ok("user", "admin", "bob@example.com", "--server")
    return c


def refused_changing_nothing(cli: Cli, *args: str) -> str:
    """The command's one stderr line; exit 1 like every refusal, nothing changed."""
    before = cli.snapshot()
    mail = sorted(p.relative_to(cli.data_dir) for p in (cli.data_dir / "mail").rglob("*"))
    result = cli(*args)
    assert result.code == 1 and result.out == "", result
    assert cli.snapshot() == before
    assert sorted(p.relative_to(cli.data_dir) for p in (cli.data_dir / "mail").rglob("*")) == mail
    return result.error_line


def test_deleting_the_last_server_administrator_is_refused(cli: Cli) -> None:
    assert (cli.data_dir / "mail" / "example.com" / "bob").is_dir()
    for spelling in ("bob@example.com", "BOB@Example.COM."):
        assert refused_changing_nothing(cli, "user", "del", spelling) == LAST
    assert refused_changing_nothing(cli, "user", "del", "bob@example.com", "--purge") == LAST
    cli.ok("user", "admin", "carol@shop.net", "--server")
    assert "deleted bob@example.com" in cli.ok("user", "del", "bob@example.com")
    assert "last server administrator" in refused_changing_nothing(
        cli, "user", "del", "carol@shop.net")


def test_deleting_the_domain_of_the_last_server_administrator_is_refused(cli: Cli) -> None:
    line = refused_changing_nothing(cli, "domain", "del", "example.com", "--force")
    assert line == ("nmail: error: domain example.com holds bob@example.com,"
                    f" the last server administrator; {WAY_OUT}")
    assert refused_changing_nothing(cli, "domain", "del", "EXAMPLE.com.", "--force") == line
    # Without --force the existing refusal comes first, unchanged.
    assert "still has 2 account(s)" in refused_changing_nothing(
        cli, "domain", "del", "example.com")
    # Another domain goes as before; and this one once someone else is an administrator.
    assert "deleted 1 account(s)" in cli.ok("domain", "del", "shop.net", "--force")
    cli.ok("user", "admin", "dave@example.com", "--server")
    line = refused_changing_nothing(cli, "domain", "del", "example.com", "--force")
    assert line == ("nmail: error: domain example.com holds bob@example.com, dave@example.com,"
                    f" the last server administrators; {WAY_OUT}")
    cli.ok("domain", "add", "shop.net")
    cli.ok("user", "add", "shop.net", "Carol", "carol", PW)
    cli.ok("user", "admin", "carol@shop.net", "--server")
    assert "deleted 2 account(s)" in cli.ok("domain", "del", "example.com", "--force")


def test_locking_the_last_server_administrator_out_is_refused(cli: Cli) -> None:
    """Logins off (both, or --login) is refused; receiving off is not (the admin can
    still log in and turn it on again)."""
    assert refused_changing_nothing(cli, "user", "disable", "bob@example.com") == LAST_LOGIN
    assert refused_changing_nothing(
        cli, "user", "disable", "bob@example.com", "--login") == LAST_LOGIN
    assert refused_changing_nothing(
        cli, "user", "disable", "bob@example.com", "--login", "--receive") == LAST_LOGIN
    assert "receiving off, logins on" in cli.ok(
        "user", "disable", "bob@example.com", "--receive")
    cli.ok("user", "enable", "bob@example.com")
    cli.ok("user", "admin", "carol@shop.net", "--server")
    assert "logins off" in cli.ok("user", "disable", "bob@example.com", "--login")
    # Bob is still a server administrator, but carol is the last who can log in.
    carol = LAST_LOGIN.replace("bob@example.com", "carol@shop.net")
    assert refused_changing_nothing(cli, "user", "disable", "carol@shop.net") == carol
    assert refused_changing_nothing(cli, "user", "del", "carol@shop.net") == carol
    assert refused_changing_nothing(cli, "user", "admin", "carol@shop.net", "--none") == carol
    assert refused_changing_nothing(cli, "domain", "del", "shop.net", "--force") == (
        "nmail: error: domain shop.net holds carol@shop.net, the last server administrator"
        f" who can log in; {WAY_OUT}")
    # Bob's logins back on: either may go now.
    cli.ok("user", "enable", "bob@example.com", "--login")
    assert "logins off" in cli.ok("user", "disable", "carol@shop.net", "--login")


def test_demoting_the_last_server_administrator_names_the_way_out(cli: Cli) -> None:
    for role in ("--none", "--domain"):
        assert refused_changing_nothing(cli, "user", "admin", "bob@example.com", role) == LAST


def test_an_administrator_locked_out_by_hand_is_still_kept(cli: Cli) -> None:
    """A database where the only server administrator cannot log in (changed by
    hand): deleting or demoting it is still refused; turning logins on is not."""
    engine = cli.engine()
    try:
        with engine.begin() as conn:
            conn.execute(update(accounts).where(accounts.c.userid == "bob")
                         .values(login_enabled=False))
    finally:
        engine.dispose()
    assert refused_changing_nothing(cli, "user", "del", "bob@example.com") == LAST
    assert refused_changing_nothing(cli, "user", "admin", "bob@example.com", "--none") == LAST
    assert "logins off" in cli.ok("user", "disable", "bob@example.com", "--login")
    assert "logins on" in cli.ok("user", "enable", "bob@example.com", "--login")


def test_without_any_server_administrator_nothing_is_refused(cli: Cli) -> None:
    """Nothing to keep (a database before `nmail init`): the commands work as before."""
    cli.ok("user", "admin", "carol@shop.net", "--server")
    cli.ok("user", "del", "bob@example.com")
    engine = cli.engine()
    try:
        with engine.begin() as conn:
            conn.execute(update(accounts).values(is_server_admin=False))
    finally:
        engine.dispose()
    cli.ok("user", "disable", "carol@shop.net")
    cli.ok("user", "del", "carol@shop.net")
    cli.ok("domain", "del", "example.com", "--force")


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (("user", "del", "ghost@example.com"), "no such account: ghost@example.com"),
        (("user", "del", "bob@missing.org"), "no such domain: missing.org"),
        (("user", "del", "bob"), "not an address"),
        (("user", "disable", "bob@@example.com"), "@"),
        (("user", "disable", "ghost@example.com", "--login"), "no such account"),
        (("domain", "del", "missing.org", "--force"), "no such domain: missing.org"),
        (("domain", "del", "bad..name", "--force"), "domain"),
    ],
)
def test_bad_inputs_change_nothing(cli: Cli, args: tuple[str, ...], why: str) -> None:
    line = refused_changing_nothing(cli, *args)
    assert why in line, line
    assert "server administrator" not in line


@pytest.mark.parametrize(
    "args",
    [("user", "del"), ("user", "del", "bob@example.com", "--force"),
     ("domain", "del", "example.com", "--purge"), ("user", "disable", "--login")],
)
def test_the_command_arguments_are_unchanged(cli: Cli, args: tuple[str, ...]) -> None:
    before = cli.snapshot()
    result = cli(*args)
    assert result.code == 2 and result.out == ""
    assert cli.snapshot() == before


def test_two_deletions_at_once_leave_one_server_administrator(cli: Cli) -> None:
    """Checked in the change's transaction after the directory's write lock: of the
    last two administrators deleted at the same time, one stays."""
    cli.ok("user", "admin", "carol@shop.net", "--server")
    engine = cli.engine()
    directory = Directory(engine)
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def delete(change: str) -> None:
        start.wait(timeout=30)
        try:
            if change == "account":
                directory.delete_account("bob@example.com")
            else:
                directory.delete_domain("shop.net", force=True)
            outcomes.append("deleted")
        except DirectoryError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=delete, args=(c,)) for c in ("account", "domain")]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(o.split()[-1] for o in outcomes) == ["--server", "deleted"], outcomes
        assert len(directory.server_admins()) == 1
    finally:
        engine.dispose()


class BrokenMailboxes:
    def create_mailbox(self, account: Account) -> None:
        raise OSError("disk full")


def test_a_failed_first_administrator_is_still_undone(cli: Cli, tmp_path: Path) -> None:
    """AccountService.create removes the row when the mailbox fails, even when
    it is the first server administrator (`nmail init` on a full disk)."""
    engine = cli.engine()
    try:
        directory = Directory(engine)
        with engine.begin() as conn:
            conn.execute(update(accounts).values(is_server_admin=False))
        service = AccountService(directory, BrokenMailboxes(), tmp_path / "mail")
        with pytest.raises(DirectoryError, match="disk full"):
            service.create("shop.net", "Postmaster", "postmaster", PW, admin=True,
                           server_admin=True)
        assert directory.get_account("postmaster@shop.net") is None
        assert directory.server_admins() == ()
    finally:
        engine.dispose()

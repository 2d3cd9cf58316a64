"""`nmail user admin ADDRESS --server|--domain|--none` through main(), on every database:
granting and revoking administration, the last server administrator kept, and
postmaster mail following the roles at once (policy/postmaster.py)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from cli_admin_support import Cli, make_cli
from nmail.config import SmtpSettings
from nmail.delivery.envelope import ClientInfo
from nmail.delivery.envelope_checks import EnvelopeChecks
from nmail.directory import Directory, DirectoryError
from nmail.directory.cache import DirectoryCache

PW = "secret-pass1"


@pytest.fixture
def cli(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Cli:
    c = make_cli(tmp_path, db_url, capsys, monkeypatch)
    c.ok("domain", "add", "example.com")
    c.ok("domain", "add", "shop.net")
    c.ok("user", "add", "example.com", "Bob", "bob", PW)
    c.ok("user", "add", "shop.net", "Carol", "carol", PW)
    return c


def role_in_list(cli: Cli, address: str) -> str:
    """The Role cell of `address` in `nmail user list` ("" for none)."""
    for line in cli.ok("user", "list").splitlines():
        if line.strip().startswith(address + " "):
            return "server admin" if "server admin" in line else (
                "domain admin" if "domain admin" in line else "")
    raise AssertionError(f"{address} not listed")


def test_grant_and_revoke_each_role(cli: Cli) -> None:
    assert cli.ok("user", "admin", "bob@example.com", "--server").strip() == (
        "role of bob@example.com: server admin")
    assert role_in_list(cli, "bob@example.com") == "server admin"
    # Any spelling of the account (case, final dot, a domain alias) is the account.
    cli.ok("domain", "alias", "add", "shop-alias.net", "shop.net")
    assert cli.ok("user", "admin", "CAROL@Shop-Alias.NET.", "--domain").strip() == (
        "role of carol@shop.net: domain admin")
    assert role_in_list(cli, "carol@shop.net") == "domain admin"
    assert cli.ok("user", "admin", "carol@shop.net", "--server").strip() == (
        "role of carol@shop.net: server admin")
    assert cli.ok("user", "admin", "carol@shop.net", "--server").strip() == (
        "role of carol@shop.net: server admin")  # granting twice is no error
    assert cli.ok("user", "admin", "bob@example.com", "--domain").strip() == (
        "role of bob@example.com: domain admin")
    assert cli.ok("user", "admin", "bob@example.com", "--none").strip() == (
        "role of bob@example.com: none")
    assert role_in_list(cli, "bob@example.com") == ""
    assert role_in_list(cli, "carol@shop.net") == "server admin"


def test_the_last_server_administrator_keeps_the_role(cli: Cli) -> None:
    cli.ok("user", "admin", "bob@example.com", "--server")
    before = cli.snapshot()
    for role in ("--none", "--domain"):
        assert cli.refused("user", "admin", "bob@example.com", role) == (
            "nmail: error: bob@example.com is the last server administrator;"
            " make another account a server administrator first:"
            " nmail user admin ADDRESS --server")
    assert cli.snapshot() == before
    cli.ok("user", "admin", "carol@shop.net", "--server")
    cli.ok("user", "admin", "bob@example.com", "--none")
    assert "last server administrator" in cli.refused(
        "user", "admin", "carol@shop.net", "--none")
    # Someone without the role can always lose what they have.
    cli.ok("user", "admin", "bob@example.com", "--domain")
    cli.ok("user", "admin", "bob@example.com", "--none")


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (("ghost@example.com", "--server"), "no such account: ghost@example.com"),
        (("bob@missing.org", "--domain"), "no such domain: missing.org"),
        (("bob", "--server"), "not an address"),
        (("bob@@example.com", "--none"), "@"),
    ],
)
def test_an_unknown_or_bad_account_changes_nothing(
    cli: Cli, args: tuple[str, ...], why: str
) -> None:
    before = cli.snapshot()
    line = cli.refused("user", "admin", *args)
    assert why in line, line
    assert cli.snapshot() == before


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (("bob@example.com",), "one of the arguments --server --domain --none is required"),
        (("bob@example.com", "--server", "--none"), "not allowed with argument"),
        (("bob@example.com", "--root"), "one of the arguments"),
        (("bob@example.com", "--server", "--root"), "unrecognized arguments: --root"),
        (("--server",), "the following arguments are required: ADDRESS"),
        (("bob@example.com", "--domain", "ADMIN"), "unrecognized arguments: ADMIN"),
    ],
)
def test_bad_flags_are_a_usage_error_that_changes_nothing(
    cli: Cli, args: tuple[str, ...], why: str
) -> None:
    before = cli.snapshot()
    result = cli("user", "admin", *args)
    assert result.code == 2 and result.out == ""
    assert why in result.error_line and "--help`)" in result.error_line
    assert cli.snapshot() == before


def test_the_existing_commands_are_unchanged(cli: Cli) -> None:
    """`user add ... ADMIN` still makes a domain administrator, and list its role."""
    assert "domain administrator" in cli.ok("user", "add", "shop.net", "Dave", "dave", PW,
                                            "ADMIN")
    assert role_in_list(cli, "dave@shop.net") == "domain admin"
    assert role_in_list(cli, "carol@shop.net") == ""


def test_postmaster_mail_follows_the_roles_at_once(cli: Cli) -> None:
    """A running server's cache (one per worker) sees a role change at its next RCPT:
    the change bumps the directory generation."""
    engine = cli.engine()
    lookups = DirectoryCache(Directory(engine))
    checks = EnvelopeChecks(lookups=lookups, settings=SmtpSettings(), usage=lambda _: 0,
                            outbound=True, srs=None, clock=time.time,
                            host_name="mail.example.com")
    stranger = ClientInfo(ip="192.0.2.7", helo="evil.test")

    def rcpt(address: str) -> tuple[int, list[str]]:
        decision, resolution = checks.check_recipient(stranger, "a@remote.test", address, None)
        return decision.code, [] if resolution is None else [
            a.address for a in resolution.accounts]

    try:
        assert rcpt("postmaster@shop.net")[0] == 550  # no administrator at all
        assert rcpt("postmaster@mail.example.com")[0] == 550
        cli.ok("user", "admin", "bob@example.com", "--server")
        assert rcpt("postmaster@shop.net") == (250, ["bob@example.com"])
        assert rcpt("postmaster@mail.example.com") == (250, ["bob@example.com"])
        cli.ok("user", "admin", "carol@shop.net", "--domain")
        assert rcpt("postmaster@shop.net") == (250, ["carol@shop.net"])
        assert rcpt("postmaster@mail.example.com") == (250, ["bob@example.com"])
        assert rcpt("postmaster@example.com") == (250, ["bob@example.com"])  # his domain too
        cli.ok("user", "admin", "carol@shop.net", "--none")
        assert rcpt("postmaster@shop.net") == (250, ["bob@example.com"])
    finally:
        lookups.close()
        engine.dispose()


def test_two_revocations_at_once_leave_one_server_administrator(cli: Cli) -> None:
    """The count is read in the change's transaction, after the directory's write
    lock: of two admins revoking each other at the same time, one stays."""
    cli.ok("user", "admin", "bob@example.com", "--server")
    cli.ok("user", "admin", "carol@shop.net", "--server")
    engine = cli.engine()
    directory = Directory(engine)
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def revoke(address: str) -> None:
        start.wait(timeout=30)
        try:
            directory.set_roles(address, admin=False, server_admin=False)
            outcomes.append("revoked")
        except DirectoryError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=revoke, args=(a,))
               for a in ("bob@example.com", "carol@shop.net")]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(o.split()[-1] for o in outcomes) == ["--server", "revoked"], outcomes
        assert len(directory.server_admins()) == 1
    finally:
        engine.dispose()

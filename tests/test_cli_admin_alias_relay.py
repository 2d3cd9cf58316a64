"""`nmail alias ...` and `nmail relay ...` through main(), on every database."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cli_admin_support import Cli, make_cli
from nmail.directory import Directory

PW = "secret-pass1"


@pytest.fixture
def cli(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Cli:
    c = make_cli(tmp_path, db_url, capsys, monkeypatch)
    c.ok("domain", "add", "example.com")
    c.ok("user", "add", "example.com", "Bob", "bob", PW)
    return c


def resolve(cli: Cli, address: str) -> tuple[list[str], tuple[str, ...]]:
    engine = cli.engine()
    try:
        r = Directory(engine).resolve(address)
        return [a.address for a in r.accounts], r.remote
    finally:
        engine.dispose()


def test_alias_add_list_del(cli: Cli) -> None:
    assert "(no aliases)" in cli.ok("alias", "list")
    out = cli.ok("alias", "add", "Sales@Example.com", "bob", "Partner@Outside.org")
    assert "sales@example.com -> bob@example.com, partner@outside.org" in out
    assert resolve(cli, "sales@example.com") == (["bob@example.com"], ("partner@outside.org",))
    listing = cli.ok("alias", "list", "example.com")
    assert "sales@example.com" in listing and "partner@outside.org" in listing
    out = cli.ok("alias", "del", "sales@example.com", "partner@outside.org")
    assert "sales@example.com -> bob@example.com" in out
    assert "deleted alias sales@example.com" in cli.ok("alias", "del", "sales@example.com")
    assert "(no aliases)" in cli.ok("alias", "list")


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (("bob@example.com", "x@outside.org"), "is an account"),
        (("info@example.com", "ghost"), "no such account or alias"),
        (("info@example.com", "not an address@"), "not an address"),
        (("info@missing.com", "bob@example.com"), "no such domain"),
        (("info@example.com", "info"), "itself"),
        (("info@bad..com", "bob@example.com"), "empty label"),
        (("info@example.com", "bob", "x@localhost"), "at least one dot"),
    ],
)
def test_bad_alias_changes_nothing(cli: Cli, args: tuple[str, ...], why: str) -> None:
    before = cli.snapshot()
    assert why in cli.refused("alias", "add", *args)
    assert cli.snapshot() == before


def test_alias_del_errors(cli: Cli) -> None:
    cli.ok("alias", "add", "info@example.com", "bob")
    assert "no such alias" in cli.refused("alias", "del", "ghost@example.com")
    assert "does not deliver to" in cli.refused("alias", "del", "info@example.com", "x@y.org")
    assert "already delivers" in cli.refused("alias", "add", "info@example.com", "bob")
    assert "no such domain" in cli.refused("alias", "list", "missing.com")


def test_user_cannot_shadow_an_alias(cli: Cli) -> None:
    cli.ok("alias", "add", "info@example.com", "bob")
    assert "is an alias" in cli.refused("user", "add", "example.com", "Info", "info", PW)


def test_relay_networks(cli: Cli) -> None:
    assert "(none: loopback only)" in cli.ok("relay", "list")
    assert "added relay network 192.168.0.0/16" in cli.ok("relay", "add", "192.168.0.0/16")
    cli.ok("relay", "add", "10.0.0.0/255.0.0.0")
    cli.ok("relay", "add", "2001:db8::/32")
    listing = cli.ok("relay", "list")
    for network in ("10.0.0.0/8", "192.168.0.0/16", "2001:db8::/32"):
        assert network in listing
    assert "deleted relay network 10.0.0.0/8" in cli.ok("relay", "del", "10.0.0.0/8")
    assert "10.0.0.0/8" not in cli.ok("relay", "list")


@pytest.mark.parametrize(
    ("cidr", "why"),
    [
        ("10.0.0.1/8", "host bits set; did you mean 10.0.0.0/8"),
        ("10.0.0.0/33", "not a network"),
        ("999.1.1.1", "not a network"),
        ("example.com", "not a network"),
        ("", "empty network"),
    ],
)
def test_bad_cidr_changes_nothing(cli: Cli, cidr: str, why: str) -> None:
    cli.ok("relay", "add", "192.168.0.0/16")
    before = cli.snapshot()
    assert why in cli.refused("relay", "add", cidr)
    assert cli.snapshot() == before


def test_relay_duplicates_and_unknown(cli: Cli) -> None:
    cli.ok("relay", "add", "192.168.0.0/16")
    assert "already listed" in cli.refused("relay", "add", "192.168.0.0/16")
    assert "no such relay network" in cli.refused("relay", "del", "172.16.0.0/12")
    assert "not a network" in cli.refused("relay", "del", "bogus")


def test_lockout_list_and_clear(cli: Cli) -> None:
    from nmail.directory.throttle import LoginThrottle
    from nmail.directory.throttle_store import SqlRecords

    assert "(no failed logins on record)" in cli.ok("lockout", "list")
    engine = cli.engine()
    try:
        throttle = LoginThrottle(time.time, records=SqlRecords(engine), max_failures=2)
        for _ in range(2):
            throttle.failure("2001:db8:5:6::1", "Bob@Example.com")
        throttle.failure("192.0.2.9", "carol@example.com")
        listing = cli.ok("lockout", "list")
        assert "bob@example.com (account)" in listing and "2001:db8:5:6::/64 (ip)" in listing
        assert "min more" in listing  # bob and the /64 are locked out
        assert "cleared the failed logins of BOB@example.com" in cli.ok(
            "lockout", "clear", "BOB@example.com"
        )
        assert "cleared" in cli.ok("lockout", "clear", "2001:db8:5:6::99")  # same /64
        assert not throttle.check("2001:db8:5:6::1", "bob@example.com").locked
        assert "no failed logins on record for 198.51.100.1" in cli.refused(
            "lockout", "clear", "198.51.100.1"
        )
        assert "expected an address" in cli.refused("lockout", "clear", "nonsense")
        assert "--all" in cli.refused("lockout", "clear")
        assert "--all" in cli.refused("lockout", "clear", "x@example.com", "--all")
        assert "cleared 2 record(s)" in cli.ok("lockout", "clear", "--all")
        assert "(no failed logins on record)" in cli.ok("lockout", "list")
    finally:
        engine.dispose()

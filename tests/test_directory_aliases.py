"""The Directory on every database: aliases, relay networks, reject lists, sender addresses."""

from __future__ import annotations

import ipaddress

import pytest
from sqlalchemy import Engine, Table, func, select

from nmail.db.tables import aliases, relay_networks
from nmail.directory import Conflict, Directory, InvalidName, NotFound
from nmail.directory.passwords import fast_hashing

PW = "correct-horse"


@pytest.fixture
def directory(engine: Engine) -> Directory:
    return Directory(engine, passwords=fast_hashing())


def count(engine: Engine, table: Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


# -- aliases -----------------------------------------------------------------


def test_alias_add_list_delete(directory: Directory, engine: Engine) -> None:
    directory.add_domain("example.com")
    directory.add_account("example.com", "Bob", "bob", PW)
    directory.add_account("example.com", "Ann", "ann", PW)
    alias = directory.add_alias("Sales@Example.com", ["bob", "ANN@example.com", "x@Outside.org"])
    assert alias.address == "sales@example.com"
    assert alias.targets == ("bob@example.com", "ann@example.com", "x@outside.org")
    more = directory.add_alias("sales@example.com", ["y@outside.org"])
    assert more.targets[-1] == "y@outside.org"
    assert directory.get_alias("SALES@example.com") == more
    assert [a.address for a in directory.list_aliases("example.com")] == ["sales@example.com"]
    directory.delete_alias("sales@example.com", "x@outside.org")
    assert "x@outside.org" not in directory.get_alias("sales@example.com").targets  # type: ignore[union-attr]
    with pytest.raises(NotFound, match="does not deliver to"):
        directory.delete_alias("sales@example.com", "x@outside.org")
    directory.delete_alias("sales@example.com")
    assert directory.get_alias("sales@example.com") is None
    with pytest.raises(NotFound, match="no such alias"):
        directory.delete_alias("sales@example.com")
    assert count(engine, aliases) == 0


def test_alias_refusals_change_nothing(directory: Directory, engine: Engine) -> None:
    directory.add_domain("example.com")
    directory.add_account("example.com", "Bob", "bob", PW)
    directory.add_alias("team@example.com", ["bob"])
    cases: list[tuple[str, list[str], type[Exception], str]] = [
        ("bob@example.com", ["x@outside.org"], Conflict, "is an account"),
        ("team@example.com", ["bob"], Conflict, "already delivers"),
        ("team@example.com", ["x@outside.org", "ghost"], NotFound, "no such account or alias"),
        ("loop@example.com", ["loop"], Conflict, "itself"),
        ("new@example.com", [], InvalidName, "at least one target"),
        ("new@example.com", ["not an address"], InvalidName, "white space"),
        ("new@example.com", ["x@localhost"], InvalidName, "at least one dot"),
        ("new@missing.com", ["bob@example.com"], NotFound, "no such domain"),
        ('"new one"@example.com', ["bob@example.com"], InvalidName, "alias name"),
    ]
    for address, targets, error, why in cases:
        with pytest.raises(error, match=why):
            directory.add_alias(address, targets)
    assert count(engine, aliases) == 1


def test_alias_to_alias_and_list_all(directory: Directory) -> None:
    directory.add_domain("a.com")
    directory.add_domain("b.com")
    directory.add_account("a.com", "Bob", "bob", PW)
    directory.add_alias("team@a.com", ["bob"])
    directory.add_alias("all@b.com", ["team@a.com", "ext@c.org"])
    listed = directory.list_aliases()
    assert [(a.address, a.targets) for a in listed] == [
        ("team@a.com", ("bob@a.com",)),
        ("all@b.com", ("team@a.com", "ext@c.org")),
    ]


# -- relay networks ------------------------------------------------------------


def test_relay_networks(directory: Directory, engine: Engine) -> None:
    assert directory.relay_networks() == ()
    assert str(directory.add_relay_network("192.168.0.0/16")) == "192.168.0.0/16"
    directory.add_relay_network("10.0.0.0/255.0.0.0")
    directory.add_relay_network("2001:DB8::/32")
    directory.add_relay_network("203.0.113.5")
    assert directory.relay_networks() == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.168.0.0/16"),
        ipaddress.ip_network("203.0.113.5/32"),
        ipaddress.ip_network("2001:db8::/32"),
    )
    with pytest.raises(Conflict, match="already listed"):
        directory.add_relay_network("10.0.0.0/8")
    with pytest.raises(InvalidName, match="host bits"):
        directory.add_relay_network("192.168.1.5/24")
    for bad in ["", "10.0.0.0/33", "300.1.1.1", "example.com", "10.0.0.0/8/8"]:
        with pytest.raises(InvalidName):
            directory.add_relay_network(bad)
    assert count(engine, relay_networks) == 4
    directory.delete_relay_network("10.0.0.0/255.0.0.0")
    with pytest.raises(NotFound):
        directory.delete_relay_network("10.0.0.0/8")
    assert len(directory.relay_networks()) == 3


# -- reject lists --------------------------------------------------------------


def test_reject_list(directory: Directory) -> None:
    directory.add_domain("example.com")
    bob = directory.add_account("example.com", "Bob", "bob", PW)
    ann = directory.add_account("example.com", "Ann", "ann", PW)
    assert directory.add_reject("bob@example.com", "Spammer@Bad.example") == "spammer@bad.example"
    directory.add_reject("bob@example.com", "@junk.example")
    assert directory.list_rejects("bob@example.com") == ["@junk.example", "spammer@bad.example"]
    assert directory.is_rejected(bob, "SPAMMER@bad.example")
    assert directory.is_rejected(bob, "anyone@JUNK.example")
    assert not directory.is_rejected(bob, "friend@bad.example")
    assert not directory.is_rejected(bob, "x@sub.junk.example")
    assert not directory.is_rejected(bob, "")  # bounces always come through
    assert not directory.is_rejected(bob, "garbage")
    assert not directory.is_rejected(ann, "spammer@bad.example")
    with pytest.raises(Conflict):
        directory.add_reject("bob@example.com", "@junk.example")
    with pytest.raises(InvalidName):
        directory.add_reject("bob@example.com", "@")
    with pytest.raises(NotFound):
        directory.add_reject("ghost@example.com", "@junk.example")
    directory.delete_reject("bob@example.com", "@JUNK.example")
    assert not directory.is_rejected(bob, "anyone@junk.example")
    with pytest.raises(NotFound):
        directory.delete_reject("bob@example.com", "@junk.example")


# -- sender addresses ----------------------------------------------------------


def test_sender_addresses(directory: Directory) -> None:
    directory.add_domain("example.com")
    directory.add_domain("other.org")
    directory.add_domain_alias("example.net", "example.com")
    directory.add_account("example.com", "Bob", "bob", PW)
    directory.add_account("example.com", "Ann", "ann", PW)
    directory.add_alias("sales@example.com", ["bob"])
    directory.add_alias("all@other.org", ["sales@example.com", "ann@example.com"])
    owned = directory.sender_addresses("Bob@Example.com")
    assert owned == {
        "bob@example.com", "bob@example.net", "sales@example.com", "sales@example.net",
        "all@other.org",
    }
    assert directory.sender_addresses("ann@example.com") == {
        "ann@example.com", "ann@example.net", "all@other.org",
    }
    assert directory.sender_addresses("ghost@example.com") == frozenset()
    assert directory.sender_addresses("garbage") == frozenset()

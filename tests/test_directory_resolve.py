"""resolve(address) on every database: every way an address can resolve."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, event, insert, select

from nmail.db.tables import aliases, domains
from nmail.directory import Account, Directory, InvalidName
from nmail.directory.passwords import fast_hashing
from nmail.directory.resolver import MAX_DEPTH

PW = "correct-horse"


@pytest.fixture
def directory(engine: Engine) -> Directory:
    d = Directory(engine, passwords=fast_hashing())
    d.add_domain("example.com")
    d.add_domain("other.org")
    d.add_account("example.com", "Bob", "bob", PW)
    d.add_account("example.com", "Ann", "ann", PW)
    d.add_account("other.org", "Carol", "carol", PW)
    return d


def addresses(found: tuple[Account, ...]) -> list[str]:
    return [a.address for a in found]


def test_account(directory: Directory) -> None:
    r = directory.resolve("bob@example.com")
    assert r.hosted and not r.unknown
    assert addresses(r.accounts) == ["bob@example.com"]
    assert r.remote == ()
    assert r.address == "bob@example.com"


def test_case_insensitive(directory: Directory) -> None:
    r = directory.resolve("BoB@EXAMPLE.Com")
    assert r.address == "bob@example.com"
    assert addresses(r.accounts) == ["bob@example.com"]


def test_quoted_dot_atom_is_the_same_mailbox(directory: Directory) -> None:
    assert addresses(directory.resolve('"bob"@example.com').accounts) == ["bob@example.com"]


def test_unknown_user(directory: Directory) -> None:
    r = directory.resolve("ghost@example.com")
    assert r.hosted and r.unknown and r.accounts == () and r.remote == ()


@pytest.mark.parametrize("local", ['"ghost user"', "홍길동", "a+b", "x/y"])
def test_unusual_local_parts_are_unknown_not_errors(directory: Directory, local: str) -> None:
    assert directory.resolve(f"{local}@example.com").unknown


def test_not_hosted(directory: Directory) -> None:
    r = directory.resolve("Someone@Elsewhere.NET")
    assert not r.hosted and not r.unknown
    assert r.accounts == ()
    assert r.remote == ("someone@elsewhere.net",)


def test_single_label_domain_is_not_hosted(directory: Directory) -> None:
    r = directory.resolve("root@localhost")
    assert not r.hosted and r.remote == ("root@localhost",)


@pytest.mark.parametrize("bad", ["", "bob", "bob@", "@example.com", "a b@example.com",
                                 "bob@exa_mple.com", "bob@[127.0.0.1]"])
def test_bad_syntax_raises(directory: Directory, bad: str) -> None:
    with pytest.raises(InvalidName):
        directory.resolve(bad)


def test_alias_to_local(directory: Directory) -> None:
    directory.add_alias("info@example.com", ["bob"])
    r = directory.resolve("Info@example.com")
    assert addresses(r.accounts) == ["bob@example.com"] and r.remote == ()


def test_alias_to_external(directory: Directory) -> None:
    directory.add_alias("fwd@example.com", ["Someone@Gmail.com"])
    r = directory.resolve("fwd@example.com")
    assert r.hosted and not r.unknown
    assert r.accounts == () and r.remote == ("someone@gmail.com",)


def test_alias_to_several_local_and_external(directory: Directory) -> None:
    directory.add_alias("team@example.com", ["bob", "ann", "carol@other.org", "x@out.net"])
    r = directory.resolve("team@example.com")
    assert addresses(r.accounts) == ["bob@example.com", "ann@example.com", "carol@other.org"]
    assert r.remote == ("x@out.net",)


def test_alias_chain_and_deduplication(directory: Directory) -> None:
    directory.add_alias("a@example.com", ["bob"])
    directory.add_alias("b@example.com", ["a", "bob", "x@out.net"])
    directory.add_alias("c@other.org", ["b@example.com", "a@example.com", "x@out.net"])
    r = directory.resolve("c@other.org")
    assert addresses(r.accounts) == ["bob@example.com"]
    assert r.remote == ("x@out.net",)


def test_alias_loop_terminates(directory: Directory) -> None:
    directory.add_alias("ping@example.com", ["bob"])
    directory.add_alias("pong@example.com", ["ping", "ann"])
    directory.add_alias("ping@example.com", ["pong"])  # closes the loop ping <-> pong
    r = directory.resolve("ping@example.com")
    assert sorted(addresses(r.accounts)) == ["ann@example.com", "bob@example.com"]
    directory.delete_alias("ping@example.com", "bob")
    directory.delete_alias("pong@example.com", "ann")
    pure_loop = directory.resolve("ping@example.com")
    assert pure_loop.unknown


def test_alias_depth_is_limited(directory: Directory, engine: Engine) -> None:
    with engine.begin() as conn:
        domain_id = conn.execute(
            select(domains.c.id).where(domains.c.name == "example.com")
        ).scalar_one()
        # hop0 -> hop1 -> ... -> hopN -> bob, N beyond the limit.
        for i in range(MAX_DEPTH + 2):
            conn.execute(insert(aliases).values(
                domain_id=domain_id, local_part=f"hop{i}", target=f"hop{i + 1}@example.com"
            ))
        conn.execute(insert(aliases).values(
            domain_id=domain_id, local_part=f"hop{MAX_DEPTH + 2}", target="bob@example.com"
        ))
    assert directory.resolve("hop0@example.com").unknown
    reachable = directory.resolve(f"hop{MAX_DEPTH - 1}@example.com")  # well within the limit
    assert addresses(reachable.accounts) == ["bob@example.com"]


def test_dangling_alias_target_contributes_nothing(directory: Directory) -> None:
    directory.add_alias("old@example.com", ["ann", "bob"])
    directory.delete_account("ann@example.com")
    assert addresses(directory.resolve("old@example.com").accounts) == ["bob@example.com"]


def test_catchall_local(directory: Directory) -> None:
    directory.set_catchall("example.com", "bob")
    r = directory.resolve("anything@example.com")
    assert addresses(r.accounts) == ["bob@example.com"]
    assert addresses(directory.resolve("ann@example.com").accounts) == ["ann@example.com"]
    assert directory.resolve("anything@other.org").unknown


def test_catchall_external_and_to_alias(directory: Directory) -> None:
    directory.add_alias("all@example.com", ["ann", "x@out.net"])
    directory.set_catchall("example.com", "all")
    r = directory.resolve('"odd name"@example.com')
    assert addresses(r.accounts) == ["ann@example.com"] and r.remote == ("x@out.net",)
    directory.set_catchall("example.com", "sink@out.net")
    assert directory.resolve("nobody@example.com").remote == ("sink@out.net",)


def test_catchall_to_a_deleted_account_does_not_loop(directory: Directory) -> None:
    directory.add_account("example.com", "Temp", "temp", PW)
    directory.set_catchall("example.com", "temp")
    directory.delete_account("temp@example.com")
    assert directory.resolve("temp@example.com").unknown
    assert directory.resolve("x@example.com").unknown


def test_domain_alias(directory: Directory) -> None:
    directory.add_domain_alias("example.net", "example.com")
    directory.add_alias("info@example.com", ["ann"])
    assert addresses(directory.resolve("BOB@example.net").accounts) == ["bob@example.com"]
    assert addresses(directory.resolve("info@example.net").accounts) == ["ann@example.com"]
    assert directory.resolve("ghost@example.net").unknown
    directory.set_catchall("example.com", "bob")
    assert addresses(directory.resolve("ghost@example.net").accounts) == ["bob@example.com"]


def test_alias_target_through_domain_alias(directory: Directory) -> None:
    directory.add_domain_alias("example.net", "example.com")
    directory.add_alias("x@other.org", ["bob@example.net"])
    assert addresses(directory.resolve("x@other.org").accounts) == ["bob@example.com"]


def test_idna_domains(directory: Directory) -> None:
    directory.add_domain("한국.kr")
    directory.add_account("한국.kr", "홍길동", "hong", PW)
    for spelled in ("hong@한국.kr", "HONG@xn--3e0b707e.KR", "hong@한국.KR"):
        r = directory.resolve(spelled)
        assert addresses(r.accounts) == ["hong@xn--3e0b707e.kr"], spelled
    assert directory.is_hosted("한국.kr")


def test_disabled_receiving_still_resolves(directory: Directory) -> None:
    directory.set_receive_enabled("bob@example.com", False)
    r = directory.resolve("bob@example.com")
    assert [a.receive_enabled for a in r.accounts] == [False]


def test_resolve_uses_few_queries(directory: Directory, engine: Engine) -> None:
    statements: list[str] = []

    def record(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", record)
    try:
        directory.resolve("bob@example.com")
        account_queries = len(statements)
        statements.clear()
        directory.resolve("x@elsewhere.net")
        remote_queries = len(statements)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert account_queries <= 3
    assert remote_queries <= 2

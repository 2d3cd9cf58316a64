"""The Directory on every database: domains, domain aliases, catch-all, accounts, logins."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine, Table, func, select

from nmail.db.tables import accounts, aliases, domain_aliases, domains
from nmail.directory import (
    AuthStatus,
    Conflict,
    Directory,
    InvalidName,
    NotFound,
    WeakPassword,
)
from nmail.directory.passwords import PasswordHashing, fast_hashing

NOW = 1_700_000_000.0
PW = "correct-horse"


@pytest.fixture
def directory(engine: Engine) -> Directory:
    return Directory(engine, clock=lambda: NOW, passwords=fast_hashing())


def count(engine: Engine, table: Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


# -- domains -----------------------------------------------------------------


def test_add_list_get_delete_domain(directory: Directory, engine: Engine) -> None:
    added = directory.add_domain("Example.COM")
    assert added.name == "example.com" and added.catchall is None
    directory.add_domain("한국.kr")
    assert [d.name for d in directory.list_domains()] == ["example.com", "xn--3e0b707e.kr"]
    assert directory.get_domain("EXAMPLE.com") == added
    assert directory.get_domain("한국.KR") is not None
    assert directory.get_domain("other.com") is None
    assert directory.get_domain("not a domain") is None
    with engine.connect() as conn:
        created = conn.execute(select(domains.c.created_at)).scalars().all()
    assert created == [int(NOW), int(NOW)]
    assert directory.delete_domain("example.com") == []
    assert [d.name for d in directory.list_domains()] == ["xn--3e0b707e.kr"]


def test_duplicate_domain_refused_case_insensitively(directory: Directory, engine: Engine) -> None:
    directory.add_domain("example.com")
    with pytest.raises(Conflict, match="already exists"):
        directory.add_domain("EXAMPLE.COM.")
    assert count(engine, domains) == 1


@pytest.mark.parametrize("bad", ["", "localhost", "bad..name", "-x.com", "a_b.com", "1.2.3.4"])
def test_bad_domain_refused_and_nothing_changes(
    directory: Directory, engine: Engine, bad: str
) -> None:
    with pytest.raises(InvalidName):
        directory.add_domain(bad)
    assert count(engine, domains) == 0


def test_delete_domain_with_accounts_needs_force(directory: Directory, engine: Engine) -> None:
    directory.add_domain("example.com")
    directory.add_account("example.com", "Bob", "bob", PW)
    directory.add_alias("sales@example.com", ["bob"])
    directory.add_domain_alias("example.net", "example.com")
    with pytest.raises(Conflict, match="still has 1 account"):
        directory.delete_domain("example.com")
    assert count(engine, accounts) == 1
    deleted = directory.delete_domain("example.com", force=True)
    assert [a.address for a in deleted] == ["bob@example.com"]
    for table in (domains, accounts, aliases, domain_aliases):
        assert count(engine, table) == 0
    with pytest.raises(NotFound, match="no such domain"):
        directory.delete_domain("example.com")


def test_is_hosted_follows_domain_aliases(directory: Directory) -> None:
    directory.add_domain("example.com")
    directory.add_domain_alias("example.net", "example.com")
    assert directory.is_hosted("EXAMPLE.com")
    assert directory.is_hosted("example.net")
    assert not directory.is_hosted("example.org")
    assert not directory.is_hosted("not a domain")


def test_domain_alias_rules(directory: Directory, engine: Engine) -> None:
    directory.add_domain("real.com")
    directory.add_domain("other.com")
    alias = directory.add_domain_alias("Alias.COM", "real.com")
    assert (alias.name, alias.domain) == ("alias.com", "real.com")
    with pytest.raises(Conflict, match="already an alias"):
        directory.add_domain_alias("alias.com", "other.com")
    with pytest.raises(Conflict, match="hosted domain"):
        directory.add_domain_alias("other.com", "real.com")
    with pytest.raises(Conflict, match="itself"):
        directory.add_domain_alias("real.com", "real.com")
    with pytest.raises(NotFound, match="no such domain"):
        directory.add_domain_alias("x.com", "missing.com")
    with pytest.raises(NotFound, match=r"is an alias of real\.com"):
        directory.add_domain_alias("y.com", "alias.com")
    with pytest.raises(Conflict, match=r"already an alias of real\.com"):
        directory.add_domain("alias.com")
    assert [(a.name, a.domain) for a in directory.list_domain_aliases()] == [
        ("alias.com", "real.com")
    ]
    directory.delete_domain_alias("ALIAS.com")
    assert directory.list_domain_aliases() == []
    with pytest.raises(NotFound):
        directory.delete_domain_alias("alias.com")
    assert count(engine, domains) == 2


def test_catchall_set_and_clear(directory: Directory) -> None:
    directory.add_domain("example.com")
    directory.add_account("example.com", "Bob", "bob", PW)
    assert directory.set_catchall("example.com", "bob").catchall == "bob@example.com"
    assert directory.get_domain("example.com").catchall == "bob@example.com"  # type: ignore[union-attr]
    assert directory.set_catchall("example.com", "Ext@Elsewhere.org").catchall == (
        "ext@elsewhere.org"
    )
    with pytest.raises(NotFound, match="no such account or alias"):
        directory.set_catchall("example.com", "ghost@example.com")
    with pytest.raises(InvalidName):
        directory.set_catchall("example.com", "not an address@@")
    with pytest.raises(NotFound, match="no such domain"):
        directory.set_catchall("missing.com", "bob@example.com")
    assert directory.get_domain("example.com").catchall == "ext@elsewhere.org"  # type: ignore[union-attr]
    assert directory.clear_catchall("example.com").catchall is None
    assert directory.get_domain("example.com").catchall is None  # type: ignore[union-attr]


# -- accounts ----------------------------------------------------------------


def test_add_and_get_account(directory: Directory, engine: Engine) -> None:
    directory.add_domain("example.com")
    account = directory.add_account(
        "EXAMPLE.com", "  홍길동  ", "Hong", PW, admin=True, quota=100 << 20
    )
    assert account.address == "hong@example.com"
    assert account.display_name == "홍길동"
    assert account.is_admin and not account.is_server_admin
    assert account.quota_bytes == 100 << 20
    assert account.receive_enabled and account.login_enabled
    assert directory.get_account("HONG@example.COM") == account
    assert directory.get_account_by_id(account.id) == account
    assert directory.get_account("nobody@example.com") is None
    assert directory.get_account("garbage") is None
    with engine.connect() as conn:
        stored = conn.execute(select(accounts.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and PW not in stored


def test_server_admin_flag(directory: Directory) -> None:
    directory.add_domain("example.com")
    account = directory.add_account("example.com", "Postmaster", "postmaster", PW,
                                    admin=True, server_admin=True)
    assert account.is_server_admin
    assert directory.get_account("postmaster@example.com").is_server_admin  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("domain", "userid", "password", "error", "why"),
    [
        ("missing.com", "bob", PW, NotFound, "no such domain"),
        ("example.com", "bob smith", PW, InvalidName, "user id"),
        ("example.com", "", PW, InvalidName, "empty user id"),
        ("example.com", "bob", "", WeakPassword, "empty"),
        ("example.com", "bob", "short", WeakPassword, "shorter"),
        ("example.com", "bob", "zzzzzzzzzz", WeakPassword, "single character"),
        ("example.com", "bobbybobby", "BobbyBobby", WeakPassword, "user id"),
        ("bad..domain", "bob", PW, InvalidName, "empty label"),
    ],
)
def test_bad_account_refused_and_nothing_changes(
    directory: Directory, engine: Engine, domain: str, userid: str, password: str,
    error: type[Exception], why: str,
) -> None:
    directory.add_domain("example.com")
    with pytest.raises(error, match=why):
        directory.add_account(domain, "Name", userid, password)
    assert count(engine, accounts) == 0


def test_duplicate_account_and_shadowing(directory: Directory, engine: Engine) -> None:
    directory.add_domain("example.com")
    directory.add_account("example.com", "Bob", "bob", PW)
    with pytest.raises(Conflict, match="already exists"):
        directory.add_account("example.com", "Bob 2", "BOB", PW)
    directory.add_alias("sales@example.com", ["bob"])
    with pytest.raises(Conflict, match="is an alias"):
        directory.add_account("example.com", "Sales", "sales", PW)
    directory.add_domain_alias("example.net", "example.com")
    with pytest.raises(NotFound, match=r"alias of example\.com"):
        directory.add_account("example.net", "Bob", "bob2", PW)
    assert count(engine, accounts) == 1


def test_list_accounts(directory: Directory) -> None:
    directory.add_domain("b.com")
    directory.add_domain("a.com")
    directory.add_account("b.com", "Zed", "zed", PW)
    directory.add_account("a.com", "Yan", "yan", PW)
    directory.add_account("a.com", "Ann", "ann", PW)
    assert [a.address for a in directory.list_accounts()] == ["ann@a.com", "yan@a.com", "zed@b.com"]
    assert [a.address for a in directory.list_accounts("B.COM")] == ["zed@b.com"]
    with pytest.raises(NotFound):
        directory.list_accounts("c.com")


def test_account_settings(directory: Directory) -> None:
    directory.add_domain("example.com")
    directory.add_account("example.com", "Bob", "bob", PW)
    assert directory.set_quota("bob@example.com", 2 << 30).quota_bytes == 2 << 30
    assert not directory.set_receive_enabled("Bob@Example.com", False).receive_enabled
    assert not directory.set_login_enabled("bob@example.com", False).login_enabled
    both = directory.set_enabled("bob@example.com", receive=True, login=True)
    assert both.receive_enabled and both.login_enabled
    assert directory.set_admin("bob@example.com", True).is_admin
    with pytest.raises(InvalidName, match="negative"):
        directory.set_quota("bob@example.com", -1)
    with pytest.raises(NotFound, match="no such account"):
        directory.set_quota("ghost@example.com", 0)
    with pytest.raises(NotFound, match="no such domain"):
        directory.set_login_enabled("bob@missing.com", True)
    with pytest.raises(InvalidName):
        directory.set_receive_enabled("bob", True)
    assert directory.get_account("bob@example.com").quota_bytes == 2 << 30  # type: ignore[union-attr]


def test_delete_account(directory: Directory, engine: Engine) -> None:
    directory.add_domain("example.com")
    bob = directory.add_account("example.com", "Bob", "bob", PW)
    directory.add_reject("bob@example.com", "@spam.example")
    assert directory.delete_account("BOB@example.com") == bob
    assert directory.get_account("bob@example.com") is None
    assert count(engine, accounts) == 0
    with pytest.raises(NotFound):
        directory.delete_account("bob@example.com")


def test_set_password_and_authenticate(directory: Directory) -> None:
    directory.add_domain("example.com")
    directory.add_domain_alias("example.net", "example.com")
    directory.add_account("example.com", "Bob", "bob", PW)
    ok = directory.authenticate("Bob@Example.com", PW)
    assert ok.ok and ok.status is AuthStatus.OK and ok.account is not None
    assert ok.account.address == "bob@example.com"
    assert directory.authenticate("bob@example.net", PW).ok  # through the domain alias
    assert directory.authenticate("bob@example.com", "wrong-password").status is (
        AuthStatus.BAD_CREDENTIALS
    )
    with pytest.raises(WeakPassword, match="user id"):
        directory.set_password("bob@example.com", "Bob@Example.com")
    directory.set_password("bob@example.com", "new-password-1")
    assert not directory.authenticate("bob@example.com", PW).ok
    assert directory.authenticate("bob@example.com", "new-password-1").ok
    with pytest.raises(NotFound):
        directory.set_password("ghost@example.com", "new-password-1")


@pytest.mark.parametrize(
    "login", ["ghost@example.com", "bob@missing.com", "bob", "", '"a b"@x.com']
)
def test_unknown_logins_are_bad_credentials(directory: Directory, login: str) -> None:
    directory.add_domain("example.com")
    directory.add_account("example.com", "Bob", "bob", PW)
    result = directory.authenticate(login, PW)
    assert result.status is AuthStatus.BAD_CREDENTIALS and result.account is None


def test_disabled_login_is_told_only_with_the_right_password(directory: Directory) -> None:
    directory.add_domain("example.com")
    directory.add_account("example.com", "Bob", "bob", PW)
    directory.set_login_enabled("bob@example.com", False)
    assert directory.authenticate("bob@example.com", PW).status is AuthStatus.LOGIN_DISABLED
    assert directory.authenticate("bob@example.com", PW).account is None
    assert directory.authenticate("bob@example.com", "nope-nope").status is (
        AuthStatus.BAD_CREDENTIALS
    )


def test_login_rehashes_old_parameters(engine: Engine) -> None:
    old = Directory(engine, passwords=fast_hashing())
    old.add_domain("example.com")
    old.add_account("example.com", "Bob", "bob", PW)
    stronger = Directory(engine, passwords=PasswordHashing())
    assert stronger.authenticate("bob@example.com", PW).ok
    with engine.connect() as conn:
        stored = conn.execute(select(accounts.c.password_hash)).scalar_one()
    assert "m=65536" in stored
    assert stronger.authenticate("bob@example.com", PW).ok


# -- concurrency -----------------------------------------------------------------


def test_concurrent_adds_of_one_account_make_one(directory: Directory, engine: Engine) -> None:
    directory.add_domain("example.com")
    results: list[str] = []
    barrier = threading.Barrier(4)

    def add() -> None:
        barrier.wait()
        try:
            directory.add_account("example.com", "Bob", "bob", PW)
            results.append("ok")
        except Conflict:
            results.append("conflict")

    threads = [threading.Thread(target=add) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(results) == ["conflict", "conflict", "conflict", "ok"]
    assert count(engine, accounts) == 1

"""The RCPT-time directory cache on every database: answers from memory, and
every directory change, by any Directory or process, seen at the next lookup."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, select

from nmail.config import SmtpSettings
from nmail.db.tables import directory_generation
from nmail.delivery.envelope import ClientInfo
from nmail.delivery.intake import Intake
from nmail.delivery.log import DeliveryLog
from nmail.directory import Directory, InvalidName
from nmail.directory.cache import DirectoryCache, NotCached
from nmail.directory.generation import GenerationReader
from nmail.directory.model import Standing
from nmail.directory.passwords import fast_hashing
from nmail.mailstore.store import MailStore

PW = "correct-horse"
CLIENT = ClientInfo(ip="192.0.2.7", helo="client.example")


@pytest.fixture
def directory(engine: Engine) -> Directory:
    d = Directory(engine, passwords=fast_hashing())
    d.add_domain("example.com")
    d.add_account("example.com", "Bob", "bob", PW)
    return d


@pytest.fixture
def other(engine: Engine) -> Directory:
    """A second Directory on the same database: another process, as far as caches know."""
    return Directory(engine, passwords=fast_hashing())


@pytest.fixture
def cache(directory: Directory) -> Iterator[DirectoryCache]:
    c = DirectoryCache(directory)
    yield c
    c.close()


def cached(cache: DirectoryCache, address: str) -> list[str]:
    """The accounts `address` resolves to, from memory only."""
    cache.refresh()
    return [a.address for a in cache.resolve(address, cached_only=True).accounts]


def test_answers_come_from_memory_once_looked_up(cache: DirectoryCache) -> None:
    cache.refresh()
    with pytest.raises(NotCached):
        cache.resolve("bob@example.com", cached_only=True)
    assert [a.address for a in cache.resolve("bob@example.com").accounts] == ["bob@example.com"]
    assert cached(cache, "bob@example.com") == ["bob@example.com"]
    # Unknown users are remembered too (the generation says when that changes).
    assert cache.resolve("nobody@example.com").unknown
    cache.refresh()
    assert cache.resolve("nobody@example.com", cached_only=True).unknown


def test_every_kind_of_change_by_another_directory_is_seen_at_once(
    cache: DirectoryCache, other: Directory
) -> None:
    cache.refresh()
    cache.resolve("bob@example.com")
    cache.resolve("team@example.com")
    assert cached(cache, "bob@example.com") == ["bob@example.com"]

    other.set_receive_enabled("bob@example.com", False)
    cache.refresh()
    with pytest.raises(NotCached):  # forgotten: the next lookup reads the database
        cache.resolve("bob@example.com", cached_only=True)
    assert not cache.resolve("bob@example.com").accounts[0].receive_enabled

    other.add_account("example.com", "Ann", "ann", PW)
    other.add_alias("team@example.com", ["ann@example.com"])
    cache.refresh()
    assert [a.address for a in cache.resolve("team@example.com").accounts] == ["ann@example.com"]

    other.delete_account("ann@example.com")
    cache.refresh()
    assert cache.resolve("team@example.com").accounts == ()


def test_reject_list_and_relay_networks_follow_changes(
    cache: DirectoryCache, directory: Directory, other: Directory
) -> None:
    bob = directory.resolve("bob@example.com").accounts[0]
    cache.refresh()
    assert not cache.is_rejected(bob, "spam@bad.example")
    assert not cache.is_rejected(bob, "spam@bad.example", cached_only=True)
    assert cache.relay_networks() == ()
    other.add_reject("bob@example.com", "@bad.example")
    other.add_relay_network("10.1.0.0/16")
    cache.refresh()
    with pytest.raises(NotCached):
        cache.is_rejected(bob, "spam@bad.example", cached_only=True)
    assert cache.is_rejected(bob, "Spam@BAD.example")
    assert [str(n) for n in cache.relay_networks()] == ["10.1.0.0/16"]
    assert not cache.is_rejected(bob, "")  # the null sender is never refused
    assert not cache.is_rejected(bob, "not an address")


def test_a_failed_change_leaves_the_cache_valid(
    cache: DirectoryCache, other: Directory, engine: Engine
) -> None:
    cache.refresh()
    cache.resolve("bob@example.com")
    before = GenerationReader(engine)
    try:
        generation = before.read()
        with pytest.raises(Exception):  # noqa: B017 - any refusal; it must change nothing
            other.add_domain("example.com")
        assert before.read() == generation
    finally:
        before.close()
    assert cached(cache, "bob@example.com") == ["bob@example.com"]


def test_bad_addresses_are_refused_and_never_cached(cache: DirectoryCache) -> None:
    cache.refresh()
    for bad in ("no-at-sign", "a@", "@b.example", "x" * 300 + "@example.com"):
        with pytest.raises(InvalidName):
            cache.resolve(bad)
        with pytest.raises(NotCached):
            cache.resolve(bad, cached_only=True)


def test_the_cache_is_bounded(directory: Directory) -> None:
    small = DirectoryCache(directory, max_entries=3)
    try:
        small.refresh()
        for n in range(5):
            small.resolve(f"user{n}@example.com")
        with pytest.raises(NotCached):
            small.resolve("user0@example.com", cached_only=True)
        assert small.resolve("user4@example.com", cached_only=True).unknown
    finally:
        small.close()


def test_a_lost_generation_row_still_invalidates(
    cache: DirectoryCache, other: Directory, engine: Engine
) -> None:
    cache.refresh()
    cache.resolve("bob@example.com")
    with engine.begin() as conn:  # e.g. a table emptied by hand
        conn.execute(delete(directory_generation))
    cache.refresh()  # 0 now: a change, so everything is read again
    with pytest.raises(NotCached):
        cache.resolve("bob@example.com", cached_only=True)
    cache.resolve("bob@example.com")
    other.set_receive_enabled("bob@example.com", False)  # re-creates the row
    with engine.connect() as conn:
        assert conn.execute(select(directory_generation.c.generation)).scalar()
    cache.refresh()
    assert not cache.resolve("bob@example.com").accounts[0].receive_enabled


def test_intake_answers_rcpt_from_memory_and_sees_changes(
    engine: Engine, directory: Directory, other: Directory, tmp_path: Path
) -> None:
    store = MailStore(engine, tmp_path / "mail", "mx.example.com")
    log = DeliveryLog(tmp_path / "logs")
    intake = Intake(directory, store, None, SmtpSettings(), "mx.example.com", log)
    try:
        if intake.lookups.local:
            # First time: not in memory, so the event loop must hand it to a thread.
            assert (
                intake.check_recipient_now(CLIENT, "a@x.example", "bob@example.com", None) is None
            )
        decision, _ = intake.check_recipient(CLIENT, "a@x.example", "bob@example.com", None)
        assert decision.code == 250
        if intake.lookups.local:
            answer = intake.check_recipient_now(CLIENT, "a@x.example", "bob@example.com", None)
            assert answer is not None and answer[0].code == 250
        other.set_receive_enabled("bob@example.com", False)
        decision, _ = intake.check_recipient(CLIENT, "a@x.example", "bob@example.com", None)
        assert (decision.code, decision.enhanced) == (550, "5.2.1")
        other.set_receive_enabled("bob@example.com", True)
        other.add_reject("bob@example.com", "a@x.example")
        decision, _ = intake.check_recipient(CLIENT, "a@x.example", "bob@example.com", None)
        assert (decision.code, decision.enhanced) == (550, "5.7.1")
        decision, _ = intake.check_recipient(CLIENT, "a@x.example", "bad address", None)
        assert decision.code == 501
        # Relaying is decided from the cached relay networks, also after a change.
        decision, _ = intake.check_recipient(CLIENT, "a@x.example", "r@remote.example", None)
        assert decision.code == 554
    finally:
        intake.close()
        store.close()
        log.close()


def test_sender_addresses_follow_changes(
    cache: DirectoryCache, directory: Directory, other: Directory, tmp_path: Path
) -> None:
    store = MailStore(directory.engine, tmp_path / "mail", "mx.example.com")
    log = DeliveryLog(tmp_path / "logs")
    intake = Intake(directory, store, None, SmtpSettings(), "mx.example.com", log)
    authed = ClientInfo(ip="192.0.2.7", helo="c", protocol="ESMTPA", auth_user="bob@example.com")
    try:
        assert intake.check_sender(authed, "team@example.com", None).code == 553
        if intake.lookups.local:
            refused = intake.check_sender_now(authed, "team@example.com", None)
            assert refused is not None and refused.code == 553
        other.add_alias("team@example.com", ["bob@example.com"])
        if intake.lookups.local:
            # The change is seen: not answered from memory any more, then allowed.
            assert intake.check_sender_now(authed, "team@example.com", None) is None
        assert intake.check_sender(authed, "team@example.com", None).code == 250
        # Unauthenticated senders need no lookup at all, on any database.
        anonymous = intake.check_sender_now(CLIENT, "anyone@anywhere.example", None)
        assert anonymous is not None and anonymous.code == 250
        too_big = intake.check_sender_now(CLIENT, "a@b.example", 10**12)
        assert too_big is not None and (too_big.code, too_big.enhanced) == (552, "5.3.4")
    finally:
        intake.close()
        store.close()
        log.close()


def test_refresh_with_a_max_age_reads_at_most_that_often(
    directory: Directory, other: Directory
) -> None:
    now = [100.0]
    c = DirectoryCache(directory, clock=lambda: now[0])
    try:
        assert c.generation_within(0.5) is None
        c.refresh(0.5)
        first = c.generation
        assert first is not None and c.generation_within(0.5) is not None
        other.set_login_enabled("bob@example.com", False)
        now[0] += 0.25
        c.refresh(0.5)  # read 0.25 s ago: not read again
        assert c.generation == first
        now[0] += 0.25
        c.refresh(0.5)
        assert c.generation != first
        changed = c.generation
        other.set_login_enabled("bob@example.com", True)
        c.refresh()  # no max age: always read
        assert c.generation != changed
    finally:
        c.close()


def test_standing_of_a_logged_in_account(cache: DirectoryCache, other: Directory) -> None:
    bob = other.get_account("bob@example.com")
    assert bob is not None
    cache.refresh()
    assert cache.standing("bob@example.com", bob.id) is Standing.ACTIVE
    other.set_login_enabled("bob@example.com", False)
    cache.refresh()
    assert cache.standing("bob@example.com", bob.id) is Standing.LOGIN_DISABLED
    other.delete_account("bob@example.com")
    cache.refresh()
    assert cache.standing("bob@example.com", bob.id) is Standing.DELETED
    other.add_account("example.com", "New Bob", "bob", PW)
    cache.refresh()
    assert cache.standing("bob@example.com", bob.id) is Standing.REPLACED
    assert cache.standing("bob@example.com") is Standing.ACTIVE  # no id: any account of it
    assert cache.standing("not an address") is Standing.DELETED

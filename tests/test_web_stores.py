"""Issue 11: the webmail's own tables on every database: sessions, preferences,
delivery rules and the address book."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select

from nmail.db.web_tables import web_sessions
from nmail.directory import Directory
from nmail.directory.mail_rules import MailRulesStore, RuleAccounts, Vacation
from nmail.directory.passwords import fast_hashing
from nmail.web.contacts_store import Contact, ContactError, ContactsStore
from nmail.web.prefs import PrefsStore
from nmail.web.sessions import SessionStore


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def make_account(engine: Engine, clock: Clock, userid: str = "bob") -> int:
    directory = Directory(engine, clock, fast_hashing())
    if directory.get_domain("example.com") is None:
        directory.add_domain("example.com")
    return directory.add_account("example.com", userid.title(), userid, "Correct-horse-9").id


def test_sessions_expire_and_revoke(engine: Engine) -> None:
    clock = Clock()
    bob = make_account(engine, clock)
    sessions = SessionStore(engine, clock, idle=3600, longest=86400)
    token, session = sessions.create(bob, "192.0.2.1")
    assert sessions.load(token) is not None
    assert sessions.load("x" * 200) is None and sessions.load("") is None
    clock.now += 3000
    assert sessions.load(token) is not None  # used: idle time starts again
    clock.now += 3000
    assert sessions.load(token) is not None
    clock.now += 3601
    assert sessions.load(token) is None  # idle too long
    token, session = sessions.create(bob, "192.0.2.1")
    other, _ = sessions.create(bob, "192.0.2.2")
    assert sessions.delete_account_sessions(bob, keep=session.id) == 1
    assert sessions.load(token) is not None and sessions.load(other) is None
    for _ in range(30):  # never older than session_max, however busy
        clock.now += 3000
        sessions.load(token)
    assert sessions.load(token) is None
    anonymous, _ = sessions.create(None, "192.0.2.3")
    clock.now += 3601
    assert sessions.sweep() >= 1
    assert sessions.load(anonymous) is None



def test_one_account_keeps_a_bounded_number_of_sessions(engine: Engine) -> None:
    # Found open (red team): every good login added a row (the throttle counts only
    # failures), so one script with one password grew the table until idle expiry.
    from nmail.web.sessions import MAX_PER_ACCOUNT

    clock = Clock()
    bob, eve = make_account(engine, clock), make_account(engine, clock, "eve")
    sessions = SessionStore(engine, clock, idle=3600, longest=86400)
    eves, _ = sessions.create(eve, "192.0.2.9")
    tokens = []
    for _ in range(MAX_PER_ACCOUNT + 5):
        clock.now += 1
        tokens.append(sessions.create(bob, "192.0.2.1")[0])
    with engine.connect() as conn:
        kept = conn.execute(select(func.count()).select_from(web_sessions)
                            .where(web_sessions.c.account_id == bob)).scalar_one()
    assert kept == MAX_PER_ACCOUNT
    assert all(sessions.load(t) is None for t in tokens[:5])  # the least recently used
    assert all(sessions.load(t) is not None for t in tokens[5:])
    assert sessions.load(eves) is not None  # another account's are not touched

def test_prefs_and_language_read_with_the_session(engine: Engine) -> None:
    clock = Clock()
    bob = make_account(engine, clock)
    prefs = PrefsStore(engine)
    assert prefs.get(bob).language == ""
    prefs.update(bob, language="ko", page_size=100, threads=True, signature="-- 밥")
    token, _ = SessionStore(engine, clock, 3600, 86400).create(bob, "")
    loaded = SessionStore(engine, clock, 3600, 86400).load(token)
    assert loaded is not None and (loaded.language, loaded.page_size, loaded.threads) == (
        "ko", 100, True)
    for bad in ({"language": "xx"}, {"page_size": 7}, {"signature": "x" * 5000}):
        with pytest.raises(ValueError):
            prefs.update(bob, **bad)


def test_rules_and_vacation_log(engine: Engine) -> None:
    clock = Clock()
    bob = make_account(engine, clock)
    rules = MailRulesStore(engine, clock)
    accounts = RuleAccounts(rules, engine)
    assert accounts.ids() == frozenset()
    rules.set_forwarding(bob, ("a@remote.example",), keep_copy=False)
    assert accounts.ids() == {bob}  # the generation moved: the set is read again
    assert rules.get(bob).forward_to == ("a@remote.example",)
    rules.set_vacation(bob, True, Vacation("away", "back soon", 2, 0))
    assert rules.claim_vacation_reply(bob, "X@Remote.example", 2)
    assert not rules.claim_vacation_reply(bob, "x@remote.example", 2)
    clock.now += 2 * 86400 + 1
    assert rules.claim_vacation_reply(bob, "x@remote.example", 2)
    rules.set_forwarding(bob, (), True)
    rules.set_vacation(bob, False, Vacation("away", "", 2, 0))
    assert accounts.ids() == frozenset()
    accounts.close()


def test_contacts_store(engine: Engine) -> None:
    clock = Clock()
    bob = make_account(engine, clock)
    carol = make_account(engine, clock, "carol")
    store = ContactsStore(engine, clock)
    first = store.save(bob, Contact(0, "홍길동", "hong@example.org", groups=("친구",)))
    store.save(bob, Contact(0, "Kim", "kim@example.org"))
    assert [c.name for c in store.entries(bob)] == ["Kim", "홍길동"]
    assert store.matching(bob, "hong", 5) == [("홍길동", "hong@example.org")]
    assert store.entries(bob, group="친구")[0].id == first
    assert store.get(carol, first) is None
    with pytest.raises(ContactError):
        store.save(carol, Contact(first, "x", "x@example.org"))  # not carol's
    with pytest.raises(ContactError):
        store.save(bob, Contact(0, "x", "not-an-address"))
    assert store.delete(carol, [first]) == 0
    added, skipped = store.import_file(bob, store.export_vcard(bob).encode())
    assert (added, skipped) == (0, 2)  # all duplicates
    assert store.delete(bob, [first]) == 1

"""Lock order between writers of one server database (docs/ARCHITECTURE.md,
"Lock order"): each test pauses one writer's transaction at its dangerous
point (a seam), starts another beside it, lets the first go on once the
second is seen waiting for a row lock, and checks both finish.

PostgreSQL and MariaDB only: SQLite lets one writer in at a time (BEGIN
IMMEDIATE, mailstore/write_lock.py), so two transactions never hold locks
the other wants.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, insert, select
from sqlalchemy.exc import OperationalError

from lock_waits import wait_for_lock_waiters
from nmail.db.tables import (
    accounts,
    folders,
    login_failures,
    messages,
    thread_links,
    vacation_replies,
)
from nmail.db.web_tables import web_sessions
from nmail.directory import Account, Directory
from nmail.directory.mail_rules import MailRulesStore
from nmail.directory.passwords import fast_hashing
from nmail.directory.queries import lock_mail_folders
from nmail.directory.throttle import Record
from nmail.directory.throttle_store import SWEEP_EVERY, SqlRecords, _ms
from nmail.mailstore import delivery_batch, folder_sync
from nmail.mailstore.folder_sync import FolderTarget
from nmail.mailstore.model import StoreError
from nmail.mailstore.store import MailStore, NewMessage
from nmail.mailstore.thread_index import ThreadIndex
from nmail.web.prefs import PrefsStore
from nmail.web.sessions import MAX_PER_ACCOUNT, SessionStore
from test_mailstore_support import make_account, message, trace

PW = "Correct-horse-42"


@pytest.fixture
def server_engine(engine: Engine) -> Engine:
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite has one writer at a time: no lock order to keep")
    return engine


@pytest.fixture
def store(server_engine: Engine, tmp_path: Path) -> Iterator[MailStore]:
    s = MailStore(server_engine, tmp_path / "mail", "mx.example.test")
    yield s
    s.close()


@pytest.fixture
def directory(server_engine: Engine) -> Directory:
    d = Directory(server_engine, passwords=fast_hashing())
    d.add_domain("example.test")
    return d


def _account(directory: Directory, store: MailStore, userid: str) -> Account:
    account = directory.add_account("example.test", userid.title(), userid, PW)
    store.ensure_account(account)
    return account


class Pause:
    """A seam: the wrapped function stops before it runs until `go`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> None:
        self.reached = threading.Event()
        self.go = threading.Event()
        real = getattr(owner, name)

        def held(*args: Any, **kwargs: Any) -> Any:
            if not self.go.is_set():
                self.reached.set()
                if not self.go.wait(60):
                    raise AssertionError("the test never let the paused writer go on")
            return real(*args, **kwargs)

        monkeypatch.setattr(owner, name, held)


class Background:
    """A call in a thread; its result or its exception."""

    def __init__(self, call: Callable[[], Any], name: str | None = None) -> None:
        self.outcome: Any = None
        self._thread = threading.Thread(target=self._run, args=(call,), daemon=True,
                                        name=name)
        self._thread.start()

    def _run(self, call: Callable[[], Any]) -> None:
        try:
            self.outcome = call()
        except BaseException as exc:  # the test reports it
            self.outcome = exc

    def done(self) -> bool:
        return not self._thread.is_alive()

    def result(self) -> Any:
        self._thread.join(60)
        assert not self._thread.is_alive(), "still running after 60 s"
        if isinstance(self.outcome, BaseException):
            raise AssertionError(f"failed: {self.outcome!r}") from self.outcome
        return self.outcome


def _delivery(account: Account, subject: str) -> NewMessage:
    # A Message-ID: the delivery links its thread key (thread_links, a child of accounts).
    return NewMessage(account, "INBOX", trace(), message(subject))


def _count(engine: Engine, table: Any, *where: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where))
                   .scalar_one())


def test_account_delete_beside_a_delivery_holding_its_folder(
    server_engine: Engine, store: MailStore, directory: Directory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The index writer holds the INBOX row (FOR UPDATE) and then links the
    message's thread (thread_links: KEY SHARE / an S lock on the account row).
    An account delete that locked the account row first and reached the folder
    through ON DELETE CASCADE deadlocked with it (PostgreSQL 40P01, MariaDB
    1213): it now takes the account's folder rows first, as every writer does."""
    alice = _account(directory, store, "alice")
    bob = _account(directory, store, "bob")
    pause = Pause(monkeypatch, delivery_batch, "_resolve_threads")  # folders locked
    delivering = Background(lambda: store.store([_delivery(alice, "to alice"),
                                                 _delivery(bob, "to bob")]))
    assert pause.reached.wait(30)
    deleting = Background(lambda: directory.delete_account("alice@example.test"))
    wait_for_lock_waiters(server_engine, what="the delete waits for the delivery's folder")
    pause.go.set()
    assert len(delivering.result()) == 2
    assert deleting.result().id == alice.id
    assert directory.get_account("alice@example.test") is None
    assert _count(server_engine, folders, folders.c.account_id == alice.id) == 0
    assert _count(server_engine, thread_links, thread_links.c.account_id == alice.id) == 0
    bob_inbox = select(folders.c.id).where(folders.c.account_id == bob.id,
                                           folders.c.name == "INBOX").scalar_subquery()
    assert _count(server_engine, messages, messages.c.folder_id == bob_inbox) == 1


def test_domain_delete_beside_a_delivery_holding_a_folder_of_it(
    server_engine: Engine, store: MailStore, directory: Directory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same with a domain's delete (domains -> accounts -> folders by cascade)."""
    alice = _account(directory, store, "alice")
    _account(directory, store, "bob")
    pause = Pause(monkeypatch, delivery_batch, "_resolve_threads")
    delivering = Background(lambda: store.store([_delivery(alice, "to alice")]))
    assert pause.reached.wait(30)
    deleting = Background(lambda: directory.delete_domain("example.test", force=True))
    wait_for_lock_waiters(server_engine, what="the delete waits for the delivery's folder")
    pause.go.set()
    assert len(delivering.result()) == 1
    assert sorted(a.userid for a in deleting.result()) == ["alice", "bob"]
    assert _count(server_engine, accounts) == 0
    assert _count(server_engine, folders) == 0


def test_folder_lock_of_a_delete_names_an_account_or_a_domain(engine: Engine) -> None:
    with engine.begin() as conn:
        with pytest.raises(ValueError, match="an account or a domain"):
            lock_mail_folders(conn)
        with pytest.raises(ValueError, match="an account or a domain"):
            lock_mail_folders(conn, account_id=1, domain_id=1)
        lock_mail_folders(conn, account_id=12345)  # no such account: nothing to lock


class PauseBeforeCommit:
    """A seam: the first COMMIT on the engine from the thread named `thread` waits
    until `go` (its transaction holds its locks meanwhile)."""

    def __init__(self, engine: Engine, thread: str) -> None:
        self.reached = threading.Event()
        self.go = threading.Event()
        self._engine = engine
        self._thread = thread
        event.listen(engine, "commit", self._hold)

    def _hold(self, _conn: Any) -> None:
        if threading.current_thread().name == self._thread and not self.go.is_set():
            self.reached.set()
            if not self.go.wait(60):
                raise AssertionError("the test never let the paused transaction go on")

    def remove(self) -> None:
        event.remove(self._engine, "commit", self._hold)


@pytest.mark.parametrize("earlier", [None, 8 * 86400], ids=["first", "expired"])
def test_two_deliveries_claim_one_vacation_reply_at_once(
    server_engine: Engine, directory: Directory, earlier: int | None
) -> None:
    """Two workers deliver a message of one sender to a user on vacation at once.
    The second claim used to read no row, insert, wait for the first's uncommitted
    row and fail with a duplicate key (the delivery got a 4xx); now exactly one
    of them claims the reply and the other says no."""
    alice = directory.add_account("example.test", "Alice", "alice", PW)
    now = 1_790_000_000.0
    rules = MailRulesStore(server_engine, lambda: now)
    if earlier is not None:  # a reply sent 8 days ago: due again after 7
        with server_engine.begin() as conn:
            conn.execute(insert(vacation_replies).values(
                account_id=alice.id, sender="bob@sender.test", sent_at=int(now) - earlier))
    pause = PauseBeforeCommit(server_engine, "first-claim")
    try:
        first = Background(lambda: rules.claim_vacation_reply(alice.id, "Bob@Sender.test", 7),
                           name="first-claim")
        assert pause.reached.wait(30)
        second = Background(lambda: rules.claim_vacation_reply(alice.id, "bob@sender.test", 7))
        wait_for_lock_waiters(server_engine, what="the second claim waits for the first")
        pause.go.set()
        assert (first.result(), second.result()) == (True, False)
    finally:
        pause.go.set()
        pause.remove()
    with server_engine.connect() as conn:
        assert conn.execute(select(vacation_replies.c.sent_at)).scalars().all() == [int(now)]
    assert not rules.claim_vacation_reply(alice.id, "bob@sender.test", 7)  # within 7 days
    assert rules.claim_vacation_reply(alice.id, "carol@sender.test", 7)


def test_two_login_counts_sweeping_stale_rows_at_once(server_engine: Engine) -> None:
    """Two processes count a failed login each (their own rows) and both are due
    to sweep stale rows, each row stale in the other's snapshot. The sweep ran
    in the count's transaction, holding its row while locking the stale ones:
    the two deadlocked and a login failed. Now it runs after the count's COMMIT."""
    now = 1_790_000_000.0
    stale = {"failures": str(_ms(now - 7200)), "last_failure": _ms(now - 7200),
             "locked_until": 0}
    with server_engine.begin() as conn:
        conn.execute(insert(login_failures), [{"key": k, **stale} for k in ("k1", "k2", "k3")])
    first, second = SqlRecords(server_engine), SqlRecords(server_engine)
    for records in (first, second):
        records._writes = SWEEP_EVERY - 1  # the next count sweeps

    def failed_once(_old: Record | None) -> Record:
        return Record(deque([now]), now, 0.0)

    reached, go = threading.Event(), threading.Event()

    def hold_the_sweep(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if (threading.current_thread().name == "second-count" and not go.is_set()
                and statement.startswith("DELETE FROM login_failures WHERE")
                and "locked_until" in statement):
            reached.set()
            if not go.wait(60):
                raise AssertionError("the test never let the second sweep go on")

    event.listen(server_engine, "before_cursor_execute", hold_the_sweep)
    try:
        second_count = Background(lambda: second.update("k2", failed_once, now),
                                  name="second-count")
        assert reached.wait(30)
        first_count = Background(lambda: first.update("k1", failed_once, now))
        # Before: the first's sweep waits for k2, which the second holds.
        wait_for_lock_waiters(server_engine, unless=first_count.done,
                              what="the first count finished or waits for a lock")
        go.set()
        assert first_count.result() is not None and second_count.result() is not None
    finally:
        go.set()
        event.remove(server_engine, "before_cursor_execute", hold_the_sweep)
    assert sorted(key for key, *_ in first.entries()) == ["k1", "k2"]  # k3 swept


def test_a_failed_sweep_leaves_the_count_and_waits_for_the_next(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    records = SqlRecords(engine)
    records._writes = SWEEP_EVERY - 1

    def refused(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("DELETE FROM login_failures WHERE"):
            raise OperationalError(statement, {}, Exception("deadlock detected"))

    event.listen(engine, "before_cursor_execute", refused)
    try:
        assert records.update("k1", lambda _: Record(deque([5.0]), 5.0, 0.0), 10.0)
    finally:
        event.remove(engine, "before_cursor_execute", refused)
    assert [key for key, *_ in records.entries()] == ["k1"]
    assert "stale rows not removed this time" in caplog.text


def test_two_first_saves_of_webmail_prefs_at_once(
    server_engine: Engine, directory: Directory
) -> None:
    """The view toggle and the settings form saved at once, before the account
    had a prefs row: the second inserted too, waited for the first's row and
    failed on the duplicate key (an error page); now it updates that row, and
    each keeps its own field."""
    alice = directory.add_account("example.test", "Alice", "alice", PW)
    prefs = PrefsStore(server_engine)
    pause = PauseBeforeCommit(server_engine, "view-toggle")
    try:
        toggle = Background(lambda: prefs.update(alice.id, threads=True), name="view-toggle")
        assert pause.reached.wait(30)
        form = Background(lambda: prefs.update(alice.id, page_size=100))
        wait_for_lock_waiters(server_engine, what="the form's save waits for the toggle's row")
        pause.go.set()
        toggle.result()
        form.result()
    finally:
        pause.go.set()
        pause.remove()
    saved = prefs.get(alice.id)
    assert (saved.threads, saved.page_size) == (True, 100)
    with pytest.raises(ValueError, match="page_size"):
        prefs.update(alice.id, page_size=7)
    assert prefs.get(alice.id) == saved


def _mail(subject: str, message_id: str, references: str = "") -> bytes:
    head = ["From: Bob <bob@sender.test>", "To: alice@example.test", f"Subject: {subject}",
            f"Message-ID: <{message_id}>", "Date: Tue, 01 Jul 2025 10:00:00 +0000"]
    if references:
        head.append(f"References: {references}")
    return ("\r\n".join(head) + "\r\n\r\nHi.\r\n").encode()


def test_dbsync_of_a_folder_beside_a_delivery_merging_its_conversation(
    server_engine: Engine, store: MailStore, directory: Directory, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A reply naming two conversations merges them: the index writer, holding the
    INBOX row, renamed the loser's messages in Sent and then wrote Sent's
    conversation row (a foreign key: KEY SHARE / S on the Sent folder row) without
    holding Sent. `nmail dbsync` of Sent beside it (Sent locked, then the row of
    a file gone) waited for the renamed row while the writer waited for Sent:
    a deadlock. Now the merge locks the folders it changes first."""
    alice = _account(directory, store, "alice")
    store.store([NewMessage(alice, "INBOX", trace(), _mail("older", "b@sender.test"))])
    sent = store.store([NewMessage(alice, "Sent", trace(), _mail("newer", "a@sender.test"))])
    sent[0].path.unlink()  # dbsync will drop its row (the loser's message)
    pause = Pause(monkeypatch, ThreadIndex, "refresh")  # inside the merge, after its renames
    reply = _mail("re", "c@sender.test", "<b@sender.test> <a@sender.test>")
    delivering = Background(lambda: store.store([NewMessage(alice, "INBOX", trace(), reply)]))
    assert pause.reached.wait(30)
    target = FolderTarget(alice.id, "Sent", tmp_path / "mail" / "example.test" / "alice"
                          / "Maildir" / ".Sent")
    assert target.path.is_dir()

    def dbsync_sent() -> Any:
        with server_engine.connect() as conn:
            return folder_sync.apply(conn, target, {}, full=True, now=1_790_000_000.0)

    syncing = Background(dbsync_sent)
    wait_for_lock_waiters(server_engine, what="dbsync waits for the merge")
    pause.go.set()
    assert len(delivering.result()) == 1
    assert syncing.result().removed == 1
    with server_engine.connect() as conn:
        threads = conn.execute(
            select(folders.c.name, messages.c.thread_id)
            .select_from(messages.join(folders, messages.c.folder_id == folders.c.id))
            .where(folders.c.account_id == alice.id)).all()
    assert sorted(name for name, _ in threads) == ["INBOX", "INBOX"]
    assert len({tid for _, tid in threads}) == 1  # one conversation


class _DriverError(Exception):
    """A driver's error carrying PostgreSQL's SQLSTATE (a deadlock's is 40P01)."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


@pytest.mark.parametrize("sqlstate,runs", [("40P01", 2), ("57014", 1)],
                         ids=["deadlock", "other-error"])
def test_dbsync_runs_a_deadlock_victims_step_again(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture, sqlstate: str, runs: int,
) -> None:
    """A locked step of dbsync that the database rolled back to break a deadlock
    runs again (it reads what it changes again under its locks); any other
    database error still ends dbsync with its message."""
    store = MailStore(engine, tmp_path / "mail", "mx.example.test")
    try:
        alice = make_account(engine)
        store.ensure_account(alice)
        stored = store.store([NewMessage(alice, "INBOX", trace(), message("kept"))])
        stored[0].path.unlink()  # a row for dbsync to drop
        real, calls = folder_sync.apply, []

        def victim_once(conn: Any, target: FolderTarget, *args: Any, **kwargs: Any) -> Any:
            calls.append(target.name)
            if target.name == "INBOX" and calls.count("INBOX") == 1:
                raise OperationalError("DELETE FROM messages", {}, _DriverError(sqlstate))
            return real(conn, target, *args, **kwargs)

        monkeypatch.setattr(folder_sync, "apply", victim_once)
        if runs == 2:
            report = store.dbsync([alice])
            assert report.total.removed == 1 and not report.errors
            assert "deadlock's victim (attempt 1)" in caplog.text
        else:
            with pytest.raises(StoreError, match="sqlstate 57014"):
                store.dbsync([alice])
        assert calls.count("INBOX") == runs
    finally:
        store.close()


def test_a_login_beside_the_sweep_of_expired_webmail_sessions(
    server_engine: Engine, directory: Directory
) -> None:
    """A login of an account with a full list of sessions drops its oldest (here
    expired) while another login sweeps every expired session."""
    alice = directory.add_account("example.test", "Alice", "alice", PW)
    then, idle = 1_790_000_000, 3600
    old = SessionStore(server_engine, lambda: then, idle=idle, longest=30 * 86400)
    old._swept_at = then
    for _ in range(MAX_PER_ACCOUNT):
        old.create(alice.id, "192.0.2.1")
    now = then + idle + 60  # every one of them expired
    logging_in = SessionStore(server_engine, lambda: now, idle=idle, longest=30 * 86400)
    logging_in._swept_at = now  # its login does not sweep itself
    sweeping = SessionStore(server_engine, lambda: now, idle=idle, longest=30 * 86400)
    reached, go = threading.Event(), threading.Event()

    def hold_surplus(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if (threading.current_thread().name == "login" and not go.is_set()
                and statement.startswith("DELETE FROM web_sessions WHERE web_sessions.id IN")):
            reached.set()
            if not go.wait(60):
                raise AssertionError("the test never let the login go on")

    event.listen(server_engine, "before_cursor_execute", hold_surplus)
    try:
        login = Background(lambda: logging_in.create(alice.id, "192.0.2.2"), name="login")
        assert reached.wait(30)
        sweep = Background(sweeping.sweep)
        wait_for_lock_waiters(server_engine, unless=sweep.done,
                              what="the sweep finished or waits for a lock")
        go.set()
        token, session = login.result()
        sweep.result()
    finally:
        go.set()
        event.remove(server_engine, "before_cursor_execute", hold_surplus)
    assert logging_in.load(token) == session
    with server_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(web_sessions)).scalar_one() == 1


def _merge_into_sent(server_engine: Engine, store: MailStore, directory: Directory
                     ) -> tuple[Account, int, int]:
    """Alice's older conversation in Sent, a newer one in INBOX (the lower id): a
    message naming both merges them, and the loser's rows are in INBOX."""
    alice = _account(directory, store, "alice")
    store.store([NewMessage(alice, "Sent", trace(), _mail("older", "a@sender.test"))])
    store.store([NewMessage(alice, "INBOX", trace(), _mail("newer", "b@sender.test"))])
    with server_engine.connect() as conn:
        ids = dict(conn.execute(select(folders.c.name, folders.c.id)
                                .where(folders.c.account_id == alice.id)).all())
    assert ids["INBOX"] < ids["Sent"]
    return alice, ids["INBOX"], ids["Sent"]


def _threads(engine: Engine, account: Account) -> dict[str, str]:
    """Subject -> thread id of each of the account's messages."""
    with engine.connect() as conn:
        return dict(conn.execute(
            select(messages.c.subject, messages.c.thread_id)
            .select_from(messages.join(folders, messages.c.folder_id == folders.c.id))
            .where(folders.c.account_id == account.id)).all())


def test_a_merge_needing_a_lower_folder_beside_a_writer_of_both(
    server_engine: Engine, store: MailStore, directory: Directory, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    """A reply delivered to Sent merges its conversation with one in INBOX, whose
    row has the lower id. The delivery held Sent and then locked INBOX for the
    merge, while another process delivering to INBOX and Sent (id order) held
    INBOX and waited for Sent: a deadlock, which only its victim's retry hid.
    Now the delivery finds it needs INBOX, rolls back and runs again with
    INBOX locked first: the other goes first, no deadlock."""
    alice, _, _ = _merge_into_sent(server_engine, store, directory)
    caplog.set_level(logging.WARNING)
    other = MailStore(server_engine, tmp_path / "mail", "mx.example.test")
    try:
        pause = Pause(monkeypatch, delivery_batch, "_resolve_threads")  # Sent locked
        reply = _mail("reply", "c@sender.test", "<b@sender.test> <a@sender.test>")
        merging = Background(lambda: store.store([NewMessage(alice, "Sent", trace(), reply)]))
        assert pause.reached.wait(30)
        beside = Background(lambda: other.store([
            NewMessage(alice, "INBOX", trace(), _mail("d", "d@sender.test")),
            NewMessage(alice, "Sent", trace(), _mail("e", "e@sender.test"))]))
        wait_for_lock_waiters(server_engine, what="the other delivery waits for Sent")
        pause.go.set()
        assert len(merging.result()) == 1
        assert len(beside.result()) == 2
    finally:
        other.close()
    assert "deadlock" not in caplog.text
    threads = _threads(server_engine, alice)
    assert threads["older"] == threads["newer"] == threads["reply"]
    assert len({threads["older"], threads["d"], threads["e"]}) == 3


def test_a_dbsync_merge_needing_a_lower_folder_beside_a_writer_of_both(
    server_engine: Engine, store: MailStore, directory: Directory, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    """The same merge made by dbsync of Sent (a file there without a row names
    both conversations): it holds Sent, then needs INBOX."""
    alice, _, _ = _merge_into_sent(server_engine, store, directory)
    sent_dir = tmp_path / "mail" / "example.test" / "alice" / "Maildir" / ".Sent"
    reply = _mail("reply", "c@sender.test", "<b@sender.test> <a@sender.test>")
    (sent_dir / "cur" / "1790000000.M1P1.elsewhere:2,S").write_bytes(reply)
    caplog.set_level(logging.WARNING)
    pause = Pause(monkeypatch, ThreadIndex, "resolve")  # Sent locked, the file's row made
    target = FolderTarget(alice.id, "Sent", sent_dir)

    def dbsync_sent() -> Any:
        with server_engine.connect() as conn:
            return folder_sync.apply(conn, target, {}, full=True, now=1_790_000_000.0)

    syncing = Background(dbsync_sent)
    assert pause.reached.wait(30)
    beside = Background(lambda: store.store([
        NewMessage(alice, "INBOX", trace(), _mail("d", "d@sender.test")),
        NewMessage(alice, "Sent", trace(), _mail("e", "e@sender.test"))]))
    wait_for_lock_waiters(server_engine, what="the delivery waits for Sent")
    pause.go.set()
    assert syncing.result().added == 1
    assert len(beside.result()) == 2
    assert "deadlock" not in caplog.text
    threads = _threads(server_engine, alice)
    assert threads["older"] == threads["newer"] == threads["reply"]

"""Storing messages: bytes on disk, rows, UIDs, counters, concurrency, failures."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from nmail.db.tables import folders, messages
from nmail.directory.model import Account
from nmail.mailstore.layout import read_uid_state
from nmail.mailstore.store import FOLDERS, MailStore, NewMessage, StoreError
from test_mailstore_support import (
    HOST,
    alice,
    entries,
    folder_dir,
    folder_rows,
    mail_root,
    make_account,
    message,
    message_rows,
    new,
    store,
    trace,
)

__all__ = ["alice", "mail_root", "store"]  # fixtures


def test_store_writes_prefix_and_content_exactly(
    store: MailStore, alice: Account, mail_root: Path
) -> None:
    content = message("first", body="line one\r\n..dot stays\r\n")
    [stored] = store.store([NewMessage(alice, "INBOX", trace(1), content)])
    assert stored.uid == 1
    assert stored.size == len(trace(1)) + len(content)
    assert stored.path.parent == folder_dir(mail_root, alice, "INBOX") / "new"
    assert stored.path.read_bytes() == trace(1) + content
    assert stored.path.name == f"{stored.uidl},U=1,S={stored.size}"
    assert stored.uidl.endswith("." + HOST) and "," not in stored.uidl
    assert store.read_message(alice.id, "INBOX", 1) == trace(1) + content
    assert entries(folder_dir(mail_root, alice, "INBOX") / "tmp") == []


def test_uids_ascend_per_folder_and_counters_are_exact(
    store: MailStore, alice: Account, engine: Engine
) -> None:
    first = store.store([new(alice, subject="a"), new(alice, subject="b")])
    sent = store.store([new(alice, "Sent", subject="c")])
    more = store.store([new(alice, subject="d")])
    assert [s.uid for s in first + more] == [1, 2, 3]
    assert [s.uid for s in sent] == [1]
    inbox = store.folder(alice.id, "INBOX")
    assert inbox.message_count == 3
    assert inbox.total_size == sum(s.size for s in first + more)
    assert inbox.next_uid == 4
    assert inbox.highest_modseq > 1
    assert store.usage(alice.id) == inbox.total_size + sent[0].size
    rows = message_rows(engine, alice)
    assert [(r["name"], r["uid"]) for r in rows] == [
        ("INBOX", 1), ("INBOX", 2), ("INBOX", 3), ("Sent", 1)]
    assert rows[0]["subject"] == "a" and rows[0]["from_addr"] == "bob@sender.test"


def test_flags_at_delivery_put_the_file_in_cur(
    store: MailStore, alice: Account, mail_root: Path
) -> None:
    [stored] = store.store([new(alice, "Sent", flags=frozenset({"\\seen", "$Label1"}))])
    assert stored.path.parent.name == "cur"
    assert stored.path.name.endswith(":2,Sa")  # $Label1: keyword letter a (dovecot-keywords)
    [ref] = store.refs(alice.id, "Sent")
    assert ref.flags == frozenset({"\\Seen", "$Label1"})


def test_internal_date_is_kept_and_date_falls_back_to_it(
    store: MailStore, alice: Account
) -> None:
    [stored] = store.store([new(alice, date=None, internal_date=1_600_000_000)])
    assert int(stored.path.stat().st_mtime) == 1_600_000_000
    [row] = store.list_messages(alice.id, "INBOX")
    assert row.internal_date == 1_600_000_000
    assert row.date == 1_600_000_000


def test_ensure_account_is_idempotent_and_safe_concurrently(
    engine: Engine, mail_root: Path
) -> None:
    account = make_account(engine, "carol")
    stores = [MailStore(engine, mail_root, HOST) for _ in range(3)]
    errors: list[BaseException] = []

    def run(s: MailStore) -> None:
        try:
            for _ in range(3):
                s.ensure_account(account)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in stores for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    assert errors == []
    rows = folder_rows(engine, account)
    assert sorted(rows) == sorted(FOLDERS)
    for name, row in rows.items():
        path = folder_dir(mail_root, account, name)
        assert {"tmp", "new", "cur"} <= set(entries(path))
        state = read_uid_state(path)
        assert state is not None and state.uidvalidity == row["uidvalidity"]
    assert (folder_dir(mail_root, account, "Trash") / "maildirfolder").exists()


def test_many_threads_store_at_once_without_uid_collisions(
    store: MailStore, alice: Account, engine: Engine, mail_root: Path
) -> None:
    threads_n, per_thread = 12, 15
    results: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(n: int) -> None:
        try:
            for i in range(per_thread):
                got = store.store([new(alice, subject=f"t{n}-{i}", prefix=trace(n))])
                with lock:
                    results.extend(s.uid for s in got)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = threads_n * per_thread
    assert errors == []
    assert sorted(results) == list(range(1, total + 1))
    info = store.folder(alice.id, "INBOX")
    assert info.message_count == total and info.next_uid == total + 1
    assert len(entries(folder_dir(mail_root, alice, "INBOX") / "new")) == total
    with engine.connect() as conn:
        size = conn.execute(select(func.sum(messages.c.size))).scalar_one()
    assert info.total_size == size


def test_failure_in_one_folder_stores_nothing(
    store: MailStore, alice: Account, engine: Engine, mail_root: Path
) -> None:
    store.ensure_account(alice)
    sent_new = folder_dir(mail_root, alice, "Sent") / "new"
    sent_new.rmdir()
    sent_new.write_text("not a directory")  # the rename into Sent/new/ will fail
    with pytest.raises(StoreError):
        store.store([new(alice, "INBOX", subject="ok"), new(alice, "Sent", subject="bad")])
    assert message_rows(engine, alice) == []
    for name in ("INBOX", "Sent"):
        assert entries(folder_dir(mail_root, alice, name) / "tmp") == []
    assert entries(folder_dir(mail_root, alice, "INBOX") / "new") == []
    assert store.folder(alice.id, "INBOX").next_uid == 1
    # The store still works for folders that are fine.
    assert [s.uid for s in store.store([new(alice)])] == [1]


def test_unwritable_tmp_is_a_store_error(
    store: MailStore, alice: Account, engine: Engine, mail_root: Path
) -> None:
    store.ensure_account(alice)
    tmp = folder_dir(mail_root, alice, "INBOX") / "tmp"
    tmp.rmdir()
    tmp.write_text("not a directory")
    with pytest.raises(StoreError):
        store.store([new(alice)])
    assert message_rows(engine, alice) == []
    assert entries(folder_dir(mail_root, alice, "INBOX") / "new") == []


def test_concurrent_failures_do_not_fail_other_deliveries(
    store: MailStore, alice: Account, engine: Engine, mail_root: Path
) -> None:
    store.ensure_account(alice)
    spam_new = folder_dir(mail_root, alice, "Spam") / "new"
    spam_new.rmdir()
    spam_new.write_text("broken")
    outcomes: list[tuple[str, bool]] = []
    lock = threading.Lock()

    def run(folder: str) -> None:
        for _ in range(10):
            try:
                store.store([new(alice, folder)])
                ok = True
            except StoreError:
                ok = False
            with lock:
                outcomes.append((folder, ok))

    threads = [threading.Thread(target=run, args=(f,)) for f in ["INBOX"] * 6 + ["Spam"] * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(ok for folder, ok in outcomes if folder == "INBOX")
    assert not any(ok for folder, ok in outcomes if folder == "Spam")
    assert store.folder(alice.id, "INBOX").message_count == 60
    assert store.folder(alice.id, "Spam").message_count == 0
    assert entries(folder_dir(mail_root, alice, "Spam") / "tmp") == []


def test_bad_inputs_are_refused_and_change_nothing(
    store: MailStore, alice: Account, engine: Engine, mail_root: Path
) -> None:
    assert store.store([]) == []
    with pytest.raises(StoreError):
        store.store([new(alice, "Projects")])  # no such folder
    with pytest.raises(StoreError):
        store.store([new(alice, "../../escape")])
    with pytest.raises(StoreError):
        store.store([new(alice, flags=frozenset({"\\Bogus"}))])
    with pytest.raises(StoreError):
        store.store([new(alice, flags=frozenset({"bad flag"}))])
    with pytest.raises(StoreError):
        store.store([new(alice, internal_date=-5)])
    with pytest.raises(StoreError):
        store.folder(alice.id, "Nope")
    with pytest.raises(StoreError):
        store.refs(alice.id, "../INBOX")
    assert message_rows(engine, alice) == []
    for userid, domain in (("../evil", "example.test"), ("eve", "../.."), ("a\0b", "x.test"),
                           ("..", "example.test"), ("bob", "evil/x")):
        bad = Account(id=alice.id, domain=domain, userid=userid, display_name="", quota_bytes=0,
                      is_admin=False, is_server_admin=False, receive_enabled=True,
                      login_enabled=True)
        with pytest.raises(StoreError):
            store.store([new(bad)])
        with pytest.raises(StoreError):
            store.ensure_account(bad)
    outside = {p.name for p in mail_root.parent.iterdir()}
    assert outside <= {"mail", "index.sqlite3", "index.sqlite3-wal", "index.sqlite3-shm"}


def test_closed_store_refuses_work(engine: Engine, mail_root: Path, alice: Account) -> None:
    s = MailStore(engine, mail_root, HOST)
    s.store([new(alice)])
    s.close()
    s.close()
    with pytest.raises(StoreError):
        s.store([new(alice)])
    assert entries(folder_dir(mail_root, alice, "INBOX") / "tmp") == []


def test_deleted_and_recreated_account_gets_fresh_folders(
    store: MailStore, engine: Engine, mail_root: Path
) -> None:
    bob = make_account(engine, "bob")
    store.store([new(bob)])
    with engine.begin() as conn:
        conn.execute(folders.delete().where(folders.c.account_id == bob.id))
    # The cached folder ids are stale now; the store must notice and recreate them.
    [stored] = store.store([new(bob)])
    assert stored.uid == 2  # files on disk kept their UID; the new one goes above
    assert store.folder(bob.id, "INBOX").message_count == 2
    assert os.path.exists(stored.path)


def test_a_removed_maildir_is_made_again(
    store: MailStore, alice: Account, mail_root: Path
) -> None:
    import shutil

    store.store([new(alice)])
    shutil.rmtree(mail_root / alice.domain / alice.userid)
    [stored] = store.store([new(alice)])
    assert stored.path.exists() and stored.uid == 2
    with pytest.raises(StoreError):
        store.folder(alice.id, "Nope")


def test_two_stores_like_two_nodes_share_a_folder(
    engine: Engine, mail_root: Path, alice: Account
) -> None:
    # Two writer threads on one database: the folder row lock (BEGIN IMMEDIATE on
    # SQLite) keeps their UID allocations apart.
    stores = [MailStore(engine, mail_root, f"node{i}.example.test") for i in range(2)]
    uids: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(s: MailStore) -> None:
        try:
            for _ in range(10):
                got = s.store([new(alice), new(alice, "Sent")])
                with lock:
                    uids.extend(m.uid for m in got if m.path.parent.parent.name == "Maildir")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in stores for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    assert errors == []
    assert sorted(uids) == list(range(1, 81))
    check = MailStore(engine, mail_root, HOST)
    try:
        assert check.folder(alice.id, "Sent").message_count == 80
        assert [r.uid for r in check.refs(alice.id, "INBOX")] == list(range(1, 81))
        assert {r.uidl.rsplit(".", 3)[-3] for r in check.refs(alice.id, "INBOX")} == {
            "node0", "node1"}
    finally:
        check.close()


def test_an_unusable_database_is_a_store_error(tmp_path: Path) -> None:
    from nmail.db.engine import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'missing-dir' / 'index.sqlite3'}")
    s = MailStore(engine, tmp_path / "mail", HOST)
    account = Account(id=1, domain="example.test", userid="zed", display_name="", quota_bytes=0,
                      is_admin=False, is_server_admin=False, receive_enabled=True,
                      login_enabled=True)
    try:
        with pytest.raises(StoreError, match="could not"):
            s.store([new(account)])
        with pytest.raises(StoreError, match="could not"):
            s.refs(1, "INBOX")
        with pytest.raises(StoreError, match="could not"):
            s.repair()
    finally:
        s.close()
        engine.dispose()
    assert entries(tmp_path / "mail" / "example.test" / "zed" / "Maildir" / "tmp") == []

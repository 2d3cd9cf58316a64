"""dbsync: the index rebuilt from the files, keeping UIDs and UIDVALIDITY."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete

from nmail.db.tables import folders
from nmail.directory.model import Account
from nmail.mailstore.layout import UIDVALIDITY_FILE, read_uid_state
from nmail.mailstore.names import parse_disk_name
from nmail.mailstore.store import MailStore
from test_mailstore_support import (
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
)

__all__ = ["alice", "mail_root", "store"]  # fixtures


def _without_modseq(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "modseq"} for r in rows]


def _lose_index(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(delete(folders))  # messages go with them (ON DELETE CASCADE)


def _fill(store: MailStore, account: Account) -> None:
    store.store([new(account, subject=f"in {i}", date=f"0{i + 1} Jul 2025 10:00:00 +0000")
                 for i in range(5)])
    store.store([new(account, "Sent", subject="sent", flags=frozenset({"\\Seen"}))])
    store.set_flags(account.id, "INBOX", [2], add=frozenset({"\\Answered", "\\Seen"}))
    store.expunge(account.id, "INBOX", [5])


def test_lost_index_comes_back_with_the_same_uids(
    store: MailStore, alice: Account, engine: Engine
) -> None:
    _fill(store, alice)
    rows_before = message_rows(engine, alice)
    folders_before = folder_rows(engine, alice)
    _lose_index(engine)
    assert message_rows(engine, alice) == []
    calls: list[tuple[int, int]] = []
    report = store.dbsync([alice], progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 1)]
    assert report.total.added == 5 and report.total.removed == 0
    assert report.total.renumbered == 0 and report.total.kept == 0
    [acct] = report.accounts
    assert acct.address == "alice@example.test" and acct.counts == report.total
    assert _without_modseq(message_rows(engine, alice)) == _without_modseq(rows_before)
    after = folder_rows(engine, alice)
    for name, before in folders_before.items():
        for key in ("uidvalidity", "message_count", "total_size", "next_uid", "account_id"):
            assert after[name][key] == before[key], (name, key)
    # INBOX had UID 5 expunged: it is not handed out again.
    assert store.store([new(alice)])[0].uid == 6
    # A second run finds everything in place.
    again = store.dbsync([alice])
    assert again.total.added == 0 and again.total.kept == 6 and again.total.removed == 0


def test_removed_file_removes_its_row(
    store: MailStore, alice: Account, engine: Engine
) -> None:
    stored = store.store([new(alice, subject=s) for s in "abc"])
    stored[1].path.unlink()
    report = store.dbsync([alice])
    assert report.total.removed == 1 and report.total.kept == 2
    assert [r.uid for r in store.refs(alice.id, "INBOX")] == [1, 3]
    info = store.folder(alice.id, "INBOX")
    assert info.message_count == 2 and info.total_size == stored[0].size + stored[2].size


def test_foreign_files_get_uids_names_and_crlf(
    store: MailStore, alice: Account, engine: Engine, mail_root: Path
) -> None:
    store.store([new(alice, subject="ours")])
    inbox = folder_dir(mail_root, alice, "INBOX")
    lf = message("from dovecot").replace(b"\r\n", b"\n")
    (inbox / "cur" / "1500000000.M1P2.oldhost,S=123,W=130:2,RS").write_bytes(lf)
    (inbox / "new" / "xmail-0001").write_bytes(message("from xmail"))
    odd = "메일 001\udcff"  # non-ASCII, a space, and a byte that is not UTF-8
    (inbox / "new" / odd).write_bytes(message("odd name"))
    os.utime(inbox / "new" / "xmail-0001", (1_400_000_000, 1_400_000_000))
    report = store.dbsync([alice])
    assert report.total.added == 3 and report.total.kept == 1 and report.total.renumbered == 0
    refs = store.refs(alice.id, "INBOX")
    assert [r.uid for r in refs] == [1, 2, 3, 4]
    by_subject = {r["subject"]: r for r in message_rows(engine, alice)}
    dove = by_subject["from dovecot"]
    assert dove["flags"] == "\\Answered \\Seen" and not dove["in_new"]
    crlf = message("from dovecot")
    assert dove["size"] == len(crlf)
    assert store.read_message(alice.id, "INBOX", dove["uid"]) == crlf
    assert by_subject["from xmail"]["internal_date"] == 1_400_000_000
    uidls = {r.uid: r.uidl for r in refs}
    assert uidls[dove["uid"]] == "1500000000.M1P2.oldhost"
    assert uidls[by_subject["from xmail"]["uid"]] == "xmail-0001"
    odd_uidl = uidls[by_subject["odd name"]["uid"]]
    assert odd_uidl.isascii() and odd_uidl.isalnum() and len(odd_uidl) <= 70
    for name in entries(inbox / "new") + entries(inbox / "cur"):
        parsed = parse_disk_name(name)
        assert parsed.uid is not None and parsed.size is not None, name
    # Names are stable: the next run keeps everything, UIDLs included.
    again = store.dbsync([alice])
    assert again.total.kept == 4 and again.total.added == 0
    assert store.refs(alice.id, "INBOX") == refs


def test_two_files_claiming_one_uid(
    store: MailStore, alice: Account, engine: Engine, mail_root: Path
) -> None:
    store.ensure_account(alice)
    inbox = folder_dir(mail_root, alice, "INBOX")
    (inbox / "new" / "1000.M1P1.a,U=7,S=1").write_bytes(message("early"))
    (inbox / "new" / "2000.M1P1.b,U=7,S=1").write_bytes(message("late"))
    report = store.dbsync([alice])
    assert report.total.added == 2 and report.total.renumbered == 1
    uids = {r["subject"]: r["uid"] for r in message_rows(engine, alice)}
    assert uids == {"early": 7, "late": 8}
    names = entries(inbox / "new")
    assert names == sorted([f"1000.M1P1.a,U=7,S={len(message('early'))}",
                            f"2000.M1P1.b,U=8,S={len(message('late'))}"])


def test_missing_uidvalidity_file_and_index_renumber_everything(
    store: MailStore, alice: Account, engine: Engine, mail_root: Path
) -> None:
    store.store([new(alice, subject=s) for s in "abcd"])
    store.expunge(alice.id, "INBOX", [1, 3])
    old = store.folder(alice.id, "INBOX").uidvalidity
    inbox = folder_dir(mail_root, alice, "INBOX")
    (inbox / UIDVALIDITY_FILE).unlink()
    _lose_index(engine)
    # UIDVALIDITY is time based: the rebuild happens later than the folder's creation.
    later = MailStore(engine, mail_root, "mx.example.test", clock=lambda: time.time() + 3600)
    try:
        report = later.dbsync([alice])
    finally:
        later.close()
    assert report.total.added == 2 and report.total.renumbered == 2
    info = store.folder(alice.id, "INBOX")
    assert info.uidvalidity != old and info.next_uid == 3
    assert [(r["uid"], r["subject"]) for r in message_rows(engine, alice)] == [
        (1, "b"), (2, "d")]
    state = read_uid_state(inbox)
    assert state is not None and state.uidvalidity == info.uidvalidity
    assert sorted(parse_disk_name(n).uid for n in entries(inbox / "new")) == [1, 2]


def test_missing_uidvalidity_file_with_intact_index_keeps_uids(
    store: MailStore, alice: Account, mail_root: Path
) -> None:
    store.store([new(alice, subject=s) for s in "ab"])
    before = store.folder(alice.id, "INBOX")
    inbox = folder_dir(mail_root, alice, "INBOX")
    (inbox / UIDVALIDITY_FILE).write_text("12345 1\n")  # stale/foreign: the index wins
    report = store.dbsync([alice])
    assert report.total.kept == 2 and report.total.renumbered == 0
    assert store.folder(alice.id, "INBOX").uidvalidity == before.uidvalidity
    state = read_uid_state(inbox)
    assert state is not None and state.uidvalidity == before.uidvalidity


def test_folders_found_on_disk_get_rows_and_vanished_ones_go(
    store: MailStore, alice: Account, engine: Engine, mail_root: Path
) -> None:
    store.ensure_account(alice)
    archive = folder_dir(mail_root, alice, "Archive/2020")
    assert archive.name == ".Archive.2020"  # Maildir++: one directory per folder
    for sub in ("tmp", "new", "cur"):
        (archive / sub).mkdir(parents=True)
    (archive / "cur" / "old-1:2,S").write_bytes(message("archived"))
    (folder_dir(mail_root, alice, "INBOX") / ".not..usable").mkdir()  # ignored
    report = store.dbsync([alice])
    assert report.accounts[0].folders_created == ("Archive/2020",)
    assert report.total.added == 1
    assert store.folder(alice.id, "Archive/2020").message_count == 1
    assert [r.subject for r in store.list_messages(alice.id, "Archive/2020")] == ["archived"]
    # The store can deliver into a folder dbsync found.
    assert store.store([new(alice, "Archive/2020")])[0].uid == 2
    shutil.rmtree(archive)
    report = store.dbsync([alice])
    assert report.total.removed == 2
    assert "Archive/2020" not in folder_rows(engine, alice)


def test_flags_changed_by_another_tool_are_read_back(
    store: MailStore, alice: Account, mail_root: Path
) -> None:
    [stored] = store.store([new(alice)])
    before = store.folder(alice.id, "INBOX").highest_modseq
    cur = folder_dir(mail_root, alice, "INBOX") / "cur"
    stored.path.rename(cur / f"{stored.path.name}:2,DS")
    report = store.dbsync([alice])
    assert report.total.kept == 1 and report.total.added == 0
    [ref] = store.refs(alice.id, "INBOX")
    assert ref.flags == frozenset({"\\Seen", "\\Draft"})
    assert store.folder(alice.id, "INBOX").highest_modseq == before + 1


def test_all_accounts_and_their_counts(
    store: MailStore, engine: Engine, mail_root: Path
) -> None:
    a, b = make_account(engine, "ann"), make_account(engine, "ben", "other.test")
    store.store([new(a), new(b), new(b)])
    _lose_index(engine)
    report = store.dbsync(None)
    assert [x.address for x in report.accounts] == ["ann@example.test", "ben@other.test"]
    assert [x.counts.added for x in report.accounts] == [1, 2]
    assert report.total.added == 3
    assert store.folder(b.id, "INBOX").message_count == 2


def test_a_dot_inbox_directory_is_not_a_second_inbox(
    store: MailStore, alice: Account, mail_root: Path
) -> None:
    store.store([new(alice)])
    fake = folder_dir(mail_root, alice, "INBOX") / ".INBOX"
    for sub in ("tmp", "new", "cur"):
        (fake / sub).mkdir(parents=True)
    (fake / "new" / "stray").write_bytes(message("stray"))
    report = store.dbsync([alice])
    assert report.total.kept == 1 and report.total.added == 0
    assert report.accounts[0].folders_created == ()


def test_dbsync_while_mail_arrives_loses_and_duplicates_nothing(
    store: MailStore, alice: Account, engine: Engine
) -> None:
    import threading

    store.ensure_account(alice)
    stop = threading.Event()
    delivered: list[int] = []
    errors: list[BaseException] = []

    def deliver() -> None:
        try:
            for i in range(40):
                delivered.extend(s.uid for s in store.store([new(alice, subject=f"m{i}")]))
        except BaseException as exc:
            errors.append(exc)

    def sync() -> None:
        try:
            while not stop.is_set():
                report = store.dbsync([alice])
                assert report.total.removed == 0 and report.total.renumbered == 0
        except BaseException as exc:
            errors.append(exc)

    senders = [threading.Thread(target=deliver) for _ in range(3)]
    syncer = threading.Thread(target=sync)
    syncer.start()
    for t in senders:
        t.start()
    for t in senders:
        t.join()
    stop.set()
    syncer.join()
    assert errors == []
    assert sorted(delivered) == list(range(1, 121))
    rows = message_rows(engine, alice)
    assert [r["uid"] for r in rows] == list(range(1, 121))
    info = store.folder(alice.id, "INBOX")
    assert info.message_count == 120 and info.total_size == sum(r["size"] for r in rows)

"""Start-up repair: files that reached new/ or cur/ without their row get indexed."""

from __future__ import annotations

import os
import time
from pathlib import Path

from sqlalchemy import Engine, delete

from nmail.db.tables import folders, messages
from nmail.directory.model import Account
from nmail.mailstore.layout import read_uid_state
from nmail.mailstore.store import MailStore
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


def _crash_leftover(inbox: Path, uid: int, data: bytes, *, sub: str = "new",
                    info: str = "") -> Path:
    """A file as a crash between rename and COMMIT leaves it: named, no row."""
    base = f"{int(time.time())}.M1P{os.getpid()}Q9{uid}.{HOST}"
    path = inbox / sub / f"{base},U={uid},S={len(data)}{info}"
    path.write_bytes(data)
    return path


def test_repair_indexes_a_file_whose_commit_never_happened(
    store: MailStore, alice: Account, engine: Engine, mail_root: Path
) -> None:
    store.store([new(alice, subject="a"), new(alice, subject="b")])
    inbox = folder_dir(mail_root, alice, "INBOX")
    data = trace() + message("lost row")
    leftover = _crash_leftover(inbox, 3, data)
    report = store.repair()
    assert report.added == 1 and report.renumbered == 0
    assert report.folders_checked == 6
    rows = message_rows(engine, alice)
    assert [(r["uid"], r["subject"]) for r in rows] == [(1, "a"), (2, "b"), (3, "lost row")]
    info = store.folder(alice.id, "INBOX")
    assert info.next_uid == 4 and info.message_count == 3
    assert info.total_size == sum(r["size"] for r in rows)
    assert store.read_message(alice.id, "INBOX", 3) == data
    assert leftover.exists()  # it already carried the right name
    assert store.repair().added == 0
    # The next delivery goes above it.
    assert store.store([new(alice)])[0].uid == 4


def test_repair_gives_a_fresh_uid_below_the_folder_next_uid(
    store: MailStore, alice: Account, engine: Engine, mail_root: Path
) -> None:
    stored = store.store([new(alice, subject=s) for s in "abc"])
    with engine.begin() as conn:  # the row of UID 2 is lost, its file is not
        conn.execute(delete(messages).where(messages.c.uid == 2))
    report = store.repair()
    assert report.added == 1 and report.renumbered == 1
    refs = store.refs(alice.id, "INBOX")
    assert [r.uid for r in refs] == [1, 3, 4]
    # Clients only look above the UIDs they know: the file came back as UID 4.
    assert refs[2].uidl == stored[1].uidl
    inbox = folder_dir(mail_root, alice, "INBOX")
    assert f"{stored[1].uidl},U=4,S={stored[1].size}" in entries(inbox / "new")
    assert not stored[1].path.exists()


def test_repair_keeps_flags_of_files_in_cur(
    store: MailStore, alice: Account, mail_root: Path
) -> None:
    store.ensure_account(alice)
    inbox = folder_dir(mail_root, alice, "INBOX")
    _crash_leftover(inbox, 1, message("seen"), sub="cur", info=":2,FS")
    store.repair()
    [ref] = store.refs(alice.id, "INBOX")
    assert ref.flags == frozenset({"\\Seen", "\\Flagged"})


def test_repair_removes_only_stale_tmp_files(
    store: MailStore, alice: Account, mail_root: Path
) -> None:
    store.ensure_account(alice)
    tmp = folder_dir(mail_root, alice, "INBOX") / "tmp"
    old, fresh = tmp / "old-leftover", tmp / "in-progress"
    old.write_bytes(b"x")
    fresh.write_bytes(b"y")
    two_days_ago = time.time() - 2 * 86400
    os.utime(old, (two_days_ago, two_days_ago))
    report = store.repair()
    assert report.tmp_removed == 1
    assert entries(tmp) == ["in-progress"]


def test_repair_removes_state_files_a_kill_left_half_made(
    store: MailStore, alice: Account, mail_root: Path
) -> None:
    # nmail-uidvalidity and dovecot-keywords are replaced through a .tmp beside
    # them; a kill -9 between writing and renaming left it there for good.
    store.ensure_account(alice)
    inbox = folder_dir(mail_root, alice, "INBOX")
    old = [inbox / "nmail-uidvalidity.4242.140000.tmp", inbox / "dovecot-keywords.4242.tmp"]
    fresh = inbox / "nmail-uidvalidity.4343.140000.tmp"  # another process's, being written
    for path in (*old, fresh):
        path.write_bytes(b"1 ")
    two_hours_ago = time.time() - 7200
    for path in old:
        os.utime(path, (two_hours_ago, two_hours_ago))
    before = read_uid_state(inbox)
    assert store.repair().tmp_removed == 2
    assert [p.exists() for p in (*old, fresh)] == [False, False, True]
    assert read_uid_state(inbox) == before


def test_repair_rebuilds_folders_whose_rows_are_lost(
    store: MailStore, alice: Account, engine: Engine, mail_root: Path
) -> None:
    store.store([new(alice, subject="a"), new(alice, subject="b"), new(alice, "Sent")])
    before_rows = message_rows(engine, alice)
    before_folders = folder_rows(engine, alice)
    with engine.begin() as conn:
        conn.execute(delete(folders))
    report = store.repair()
    assert report.added == 3 and report.renumbered == 0
    assert message_rows(engine, alice) == before_rows
    after = folder_rows(engine, alice)
    for name in ("INBOX", "Sent"):
        assert after[name]["uidvalidity"] == before_folders[name]["uidvalidity"]
        assert after[name]["next_uid"] == before_folders[name]["next_uid"]


def test_repair_with_nothing_to_do_and_no_mailboxes(
    engine: Engine, mail_root: Path, alice: Account
) -> None:
    s = MailStore(engine, mail_root, HOST)
    try:
        report = s.repair()  # alice has no Maildir yet
        assert report.folders_checked == 0 and report.added == 0
        s.ensure_account(alice)
        assert s.repair().added == 0
        state = read_uid_state(folder_dir(mail_root, alice, "INBOX"))
        assert state is not None
    finally:
        s.close()


def test_repair_skips_a_mailbox_it_cannot_use_and_goes_on(
    store: MailStore, alice: Account, engine: Engine, mail_root: Path
) -> None:
    make_account(engine, "..")  # a name no Maildir may have (the directory refuses it too)
    store.ensure_account(alice)
    leftover = _crash_leftover(folder_dir(mail_root, alice, "INBOX"), 1, message("late"))
    report = store.repair()
    assert report.added == 1
    assert [e.split(":")[0] for e in report.errors] == ["..@example.test"]
    assert leftover.exists()
    assert not (mail_root / "example.test" / ".." / "Maildir").exists()

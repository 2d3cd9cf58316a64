"""Mailbox operations that wait together are committed together by the index writer.

Flag changes and subscriptions that queue up behind other work share one
transaction, a savepoint each: every caller is answered after that COMMIT,
a refused operation rolls back alone, two of one folder never share one,
and a group whose transaction fails runs each operation again on its own.
On each database (savepoints differ).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, update

from nmail.db.tables import folders
from nmail.mailstore.commit_hook import FolderChange
from nmail.mailstore.model import NoSuchFolder
from nmail.mailstore.op_run import group_key, run_operation
from nmail.mailstore.operations import Operation, StoreFlags, Subscribe
from nmail.mailstore.store import MailStore
from nmail.mailstore.write_lock import write_transaction
from nmail.mailstore.writer import IndexWriter
from test_mailstore_support import HOST, entries, folder_dir, make_account, new


class Writer:
    """An IndexWriter for operations, held busy on demand, recording its commits."""

    def __init__(self, engine: Engine) -> None:
        self.commits: list[list[FolderChange]] = []
        self.writer = IndexWriter(engine, _no_deliveries, on_commit=self._heard)

    def _heard(self, changes: Sequence[FolderChange]) -> None:
        self.commits.append(list(changes))

    def hold(self) -> tuple[threading.Event, threading.Thread]:
        started, release = threading.Event(), threading.Event()

        def block(_conn: Connection) -> None:
            started.set()
            assert release.wait(30)

        holder = threading.Thread(target=self.writer.call, args=(block,))
        holder.start()
        assert started.wait(30)
        return release, holder

    def submit(self, op: Operation) -> Future[Any]:
        return self.writer.submit_operation(
            lambda conn, after: run_operation(conn, op, after=after), key=group_key(op))


def _no_deliveries(_conn: Connection, _items: list[Any]) -> list[Any]:
    raise AssertionError("no deliveries here")


@pytest.fixture
def writer(engine: Engine) -> Iterator[Writer]:
    w = Writer(engine)
    yield w
    w.writer.close()


def test_waiting_flag_changes_share_a_commit_and_a_refused_one_rolls_back_alone(
    engine: Engine, tmp_path: Path, writer: Writer
) -> None:
    alice, bob = make_account(engine), make_account(engine, userid="bob")
    store = MailStore(engine, tmp_path / "mail", HOST)
    try:
        store.ensure_account(alice)
        store.store([new(alice, subject=f"m{i}") for i in range(3)])
        store.store([new(alice, "Archive", subject="a")])
        inbox = store.open_folder(alice.id, "INBOX")
        archive = store.open_folder(alice.id, "Archive")
        drafts = store.open_folder(alice.id, "Drafts")
        maildir = inbox.maildir
        release, holder = writer.hold()
        futures = [
            writer.submit(StoreFlags(alice.id, maildir, inbox.folder_id, ((1, 1),), "add",
                                     ("\\Seen",), 0)),
            # Bob's id with Alice's Drafts: refused under the lock (NoSuchFolder).
            writer.submit(StoreFlags(bob.id, maildir, drafts.folder_id, ((1, 1),), "add",
                                     ("\\Seen",), 0)),
            writer.submit(StoreFlags(alice.id, maildir, archive.folder_id, ((1, 1),), "add",
                                     ("\\Flagged",), 0)),
            writer.submit(Subscribe(alice.id, maildir, "Archive", False)),
            # INBOX again: after the renames of the first, in a commit of its own.
            writer.submit(StoreFlags(alice.id, maildir, inbox.folder_id, ((2, 3),), "add",
                                     ("\\Answered",), 0)),
        ]
        release.set()
        holder.join(30)
        first = futures[0].result(30)
        with pytest.raises(NoSuchFolder):
            futures[1].result(30)
        third = futures[2].result(30)
        assert futures[3].result(30) is None
        fifth = futures[4].result(30)
        base = inbox.info.highest_modseq
        assert first.changed == ((1, base + 1),)
        assert third.changed == ((1, archive.info.highest_modseq + 1),)
        assert [uid for uid, _ in fifth.changed] == [2, 3]
        assert {m for _, m in fifth.changed} == {base + 2}  # one MODSEQ per commit, in order
        # Two commits: the first three that passed together, then INBOX's second.
        assert [[(c.folder, c.kind) for c in commit] for commit in writer.commits] == [
            [("INBOX", "flags"), ("Archive", "flags"), ("Archive", "subscribe")],
            [("INBOX", "flags")],
        ]
        writer.writer.call(lambda _conn: None)  # the renames after the answers are made
        flags = {r.uid: r.flags for r in inbox.summaries(inbox.uid_set("1:*"))}
        assert flags == {1: frozenset({"\\Seen"}), 2: frozenset({"\\Answered"}),
                         3: frozenset({"\\Answered"})}
        assert archive.summaries(archive.uid_set("1"))[0].flags == frozenset({"\\Flagged"})
        names = entries(folder_dir(tmp_path / "mail", alice, "INBOX") / "cur")
        assert sorted(n.rsplit(":2,", 1)[1] for n in names) == ["R", "R", "S"]
        assert {f.name: f.subscribed for f in store.list_folders(alice.id)}["Archive"] is False
        assert store.open_folder(alice.id, "INBOX").info.highest_modseq == base + 2
    finally:
        store.close()


def test_a_group_whose_transaction_fails_runs_each_operation_alone(
    engine: Engine, tmp_path: Path, writer: Writer
) -> None:
    alice = make_account(engine)
    store = MailStore(engine, tmp_path / "mail", HOST)
    try:
        store.ensure_account(alice)
        store.store([new(alice, subject="m")])
        inbox = store.open_folder(alice.id, "INBOX")

        def breaks(conn: Connection, _after: list[Any]) -> tuple[None, list[FolderChange]]:
            # Not a refusal (a StoreError) but a failure: the whole group goes back.
            with write_transaction(conn):
                conn.execute(update(folders).where(folders.c.id == inbox.folder_id)
                             .values(message_count=999))
                raise RuntimeError("the connection broke")

        release, holder = writer.hold()
        good = writer.submit(StoreFlags(alice.id, inbox.maildir, inbox.folder_id, ((1, 1),),
                                        "add", ("\\Seen",), 0))
        bad = writer.writer.submit_operation(breaks, key="other")
        sub = writer.submit(Subscribe(alice.id, inbox.maildir, "Trash", False))
        release.set()
        holder.join(30)
        assert good.result(30).changed == ((1, inbox.info.highest_modseq + 1),)
        with pytest.raises(RuntimeError, match="broke"):
            bad.result(30)
        assert sub.result(30) is None
        # Each committed alone: two commits heard, nothing of the broken one kept.
        assert [[c.kind for c in commit] for commit in writer.commits] == [
            ["flags"], ["subscribe"]]
        info = store.open_folder(alice.id, "INBOX").info
        assert info.message_count == 1 and info.unseen_count == 0
    finally:
        store.close()

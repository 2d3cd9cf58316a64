"""Reading the index and the files: listings, POP3/IMAP references, paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from nmail.directory.model import Account
from nmail.mailstore.folder_reads import page_query
from nmail.mailstore.store import MailStore, StoreError
from test_mailstore_support import HOST, alice, mail_root, make_account, message, new, store

__all__ = ["alice", "mail_root", "store"]  # fixtures


def _dated(day: int) -> str:
    return f"{day:02d} Jul 2025 10:00:00 +0000"


def test_list_messages_newest_first_with_limit_and_offset(
    store: MailStore, alice: Account
) -> None:
    # Delivered out of date order: the listing follows Date:, not arrival.
    for day in (3, 1, 5, 2, 4):
        store.store([new(alice, subject=f"day {day}", date=_dated(day))])
    rows = store.list_messages(alice.id, "INBOX")
    assert [r.subject for r in rows] == ["day 5", "day 4", "day 3", "day 2", "day 1"]
    page = store.list_messages(alice.id, "INBOX", limit=2, offset=1)
    assert [r.subject for r in page] == ["day 4", "day 3"]
    assert store.list_messages(alice.id, "INBOX", offset=10) == []
    first = rows[0]
    assert first.uid == 3 and first.from_name == "Bob" and first.from_addr == "bob@sender.test"
    assert first.message_id == "day.5@sender.test"
    assert first.flags == frozenset() and not first.has_attachments
    assert "Hi there." in first.preview
    assert store.list_messages(alice.id, "Trash") == []


def test_listing_bad_inputs(store: MailStore, alice: Account) -> None:
    store.ensure_account(alice)
    with pytest.raises(StoreError):
        store.list_messages(alice.id, "Nope")
    with pytest.raises(StoreError):
        store.list_messages(alice.id, "INBOX", limit=-1)
    with pytest.raises(StoreError):
        store.refs(alice.id + 1000, "INBOX")
    with pytest.raises(StoreError):
        store.message_path(alice.id, "Nope", 1)


def test_listing_walks_the_date_index_on_sqlite(
    sqlite_engine: Engine, mail_root: Path
) -> None:
    account = make_account(sqlite_engine)
    s = MailStore(sqlite_engine, mail_root, HOST)
    try:
        s.store([new(account)])
    finally:
        s.close()
    query = page_query(1, "date", True, 0, 50)
    sql = str(query.compile(sqlite_engine, compile_kwargs={"literal_binds": True}))
    with sqlite_engine.connect() as conn:
        plan = conn.execute(text("EXPLAIN QUERY PLAN " + sql)).all()
    details = " ".join(str(row[-1]) for row in plan)
    assert "ix_messages_folder_date" in details
    assert "TEMP B-TREE" not in details


def test_refs_ascending_with_uidl_size_and_flags(store: MailStore, alice: Account) -> None:
    stored = store.store([new(alice, subject=str(i)) for i in range(4)])
    store.set_flags(alice.id, "INBOX", [2], add=frozenset({"\\Seen"}))
    refs = store.refs(alice.id, "INBOX")
    assert [r.uid for r in refs] == [1, 2, 3, 4]
    assert [r.uidl for r in refs] == [s.uidl for s in stored]
    assert [r.size for r in refs] == [s.size for s in stored]
    assert refs[1].flags == frozenset({"\\Seen"}) and refs[0].flags == frozenset()
    assert len({r.uidl for r in refs}) == 4


def test_message_path_follows_renames_by_other_tools(store: MailStore, alice: Account) -> None:
    [stored] = store.store([new(alice)])
    # A Maildir client moved it to cur/ and marked it seen and replied.
    moved = stored.path.parent.parent / "cur" / f"{stored.path.name}:2,RS"
    os.rename(stored.path, moved)
    assert store.message_path(alice.id, "INBOX", 1) == moved
    assert store.read_message(alice.id, "INBOX", 1) == moved.read_bytes()
    moved.unlink()
    assert store.message_path(alice.id, "INBOX", 1) is None
    assert store.read_message(alice.id, "INBOX", 1) is None
    assert store.message_path(alice.id, "INBOX", 99) is None


def test_folders_lists_every_folder(store: MailStore, alice: Account, mail_root: Path) -> None:
    store.store([new(alice, "Drafts", content=message("draft"))])
    infos = {f.name: f for f in store.folders(alice.id)}
    assert set(infos) == {"INBOX", "Sent", "Drafts", "Trash", "Spam", "Archive"}
    assert infos["Spam"].role == "\\Junk" and infos["INBOX"].role is None
    assert infos["Drafts"].message_count == 1 and infos["INBOX"].message_count == 0
    assert all(f.uidvalidity > 0 for f in infos.values())
    assert store.folders(alice.id + 1000) == []
    assert store.usage(alice.id + 1000) == 0

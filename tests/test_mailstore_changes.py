"""Changing stored messages: flags (renames in cur/) and expunge."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from nmail.directory.model import Account
from nmail.mailstore.layout import read_uid_state
from nmail.mailstore.store import MailStore, StoreError
from test_mailstore_support import (
    alice,
    entries,
    folder_dir,
    mail_root,
    message_rows,
    new,
    store,
)

__all__ = ["alice", "mail_root", "store"]  # fixtures


def test_set_flags_moves_to_cur_with_sorted_letters(
    store: MailStore, alice: Account, engine: Engine, mail_root: Path
) -> None:
    stored = store.store([new(alice, subject=str(i)) for i in range(3)])
    before = store.folder(alice.id, "INBOX").highest_modseq
    store.set_flags(alice.id, "INBOX", [1, 3],
                    add=frozenset({"\\Seen", "\\Flagged", "\\Answered", "$Important"}))
    store.names_settled()  # the renames follow the answer
    cur = folder_dir(mail_root, alice, "INBOX") / "cur"
    names = entries(cur)
    # $Important is keyword letter a (Dovecot's dovecot-keywords file names it).
    assert names == sorted(f"{s.path.name}:2,FRSa" for s in (stored[0], stored[2]))
    keywords = folder_dir(mail_root, alice, "INBOX") / "dovecot-keywords"
    assert keywords.read_text() == "0 $Important\n"
    assert entries(folder_dir(mail_root, alice, "INBOX") / "new") == [stored[1].path.name]
    after = store.folder(alice.id, "INBOX").highest_modseq
    assert after == before + 1
    rows = {r["uid"]: r for r in message_rows(engine, alice)}
    assert rows[1]["flags"] == "$Important \\Answered \\Flagged \\Seen"
    assert rows[1]["modseq"] == after and not rows[1]["in_new"]
    assert rows[2]["modseq"] < after and rows[2]["in_new"]

    store.set_flags(alice.id, "INBOX", [1], remove=frozenset({"\\flagged", "\\Seen"}))
    store.names_settled()
    assert store.message_path(alice.id, "INBOX", 1) == cur / f"{stored[0].path.name}:2,Ra"
    store.set_flags(alice.id, "INBOX", [3], remove=frozenset({"\\Seen", "\\Answered",
                                                             "\\Flagged", "$Important"}))
    store.names_settled()
    assert store.message_path(alice.id, "INBOX", 3) == cur / f"{stored[2].path.name}:2,"
    assert store.read_message(alice.id, "INBOX", 3) == stored[2].path.parent.parent.joinpath(
        "cur", f"{stored[2].path.name}:2,").read_bytes()


def test_set_flags_without_change_keeps_modseq(store: MailStore, alice: Account) -> None:
    store.store([new(alice, flags=frozenset({"\\Seen"}))])
    before = store.folder(alice.id, "INBOX").highest_modseq
    store.set_flags(alice.id, "INBOX", [1], add=frozenset({"\\Seen"}))
    store.set_flags(alice.id, "INBOX", [42], add=frozenset({"\\Deleted"}))  # no such UID
    store.set_flags(alice.id, "INBOX", [])
    assert store.folder(alice.id, "INBOX").highest_modseq == before


def test_set_flags_after_another_tool_renamed_the_file(
    store: MailStore, alice: Account, mail_root: Path
) -> None:
    [stored] = store.store([new(alice)])
    cur = folder_dir(mail_root, alice, "INBOX") / "cur"
    stored.path.rename(cur / f"{stored.path.name}:2,S")
    store.set_flags(alice.id, "INBOX", [1], add=frozenset({"\\Deleted"}))
    store.names_settled()
    assert entries(cur) == [f"{stored.path.name}:2,T"]


def test_set_flags_bad_inputs(store: MailStore, alice: Account, mail_root: Path) -> None:
    [stored] = store.store([new(alice)])
    with pytest.raises(StoreError):
        store.set_flags(alice.id, "INBOX", [1], add=frozenset({"\\Recent"}))
    with pytest.raises(StoreError):
        store.set_flags(alice.id, "INBOX", [1], add=frozenset({"a(b"}))
    with pytest.raises(StoreError):
        store.set_flags(alice.id, "INBOX", [0], add=frozenset({"\\Seen"}))
    with pytest.raises(StoreError):
        store.set_flags(alice.id, "Nope", [1], add=frozenset({"\\Seen"}))
    with pytest.raises(StoreError):  # more keywords than the flags column holds
        store.set_flags(alice.id, "INBOX", [1],
                        add=frozenset(f"$keyword{i:03d}" for i in range(40)))
    assert stored.path.exists()
    assert store.refs(alice.id, "INBOX")[0].flags == frozenset()


def test_expunge_deletes_files_rows_and_counts(
    store: MailStore, alice: Account, engine: Engine, mail_root: Path
) -> None:
    stored = store.store([new(alice, subject=str(i)) for i in range(4)])
    store.set_flags(alice.id, "INBOX", [2], add=frozenset({"\\Deleted"}))
    before = store.folder(alice.id, "INBOX")
    assert store.expunge(alice.id, "INBOX", [2, 4, 99]) == 2
    after = store.folder(alice.id, "INBOX")
    assert after.message_count == 2
    assert after.total_size == stored[0].size + stored[2].size
    assert after.highest_modseq == before.highest_modseq + 1
    assert [r.uid for r in store.refs(alice.id, "INBOX")] == [1, 3]
    inbox = folder_dir(mail_root, alice, "INBOX")
    assert sorted(entries(inbox / "new") + entries(inbox / "cur")) == sorted(
        [stored[0].path.name, stored[2].path.name])
    assert store.usage(alice.id) == after.total_size
    # The UID of an expunged message is never handed out again, even from the files.
    state = read_uid_state(inbox)
    assert state is not None and state.next_uid == 5
    [again] = store.store([new(alice)])
    assert again.uid == 5
    assert store.expunge(alice.id, "INBOX", []) == 0
    assert store.expunge(alice.id, "INBOX", [2]) == 0
    assert len(message_rows(engine, alice)) == 3


def test_expunge_bad_inputs(store: MailStore, alice: Account) -> None:
    store.store([new(alice)])
    with pytest.raises(StoreError):
        store.expunge(alice.id, "Nope", [1])
    with pytest.raises(StoreError):
        store.expunge(alice.id, "INBOX", [-1])
    with pytest.raises(StoreError):
        store.expunge(alice.id, "../INBOX", [1])
    assert store.folder(alice.id, "INBOX").message_count == 1


def test_expunge_of_a_file_already_gone_drops_the_row(
    store: MailStore, alice: Account
) -> None:
    [stored] = store.store([new(alice)])
    stored.path.unlink()
    assert store.expunge(alice.id, "INBOX", [1]) == 1
    assert store.folder(alice.id, "INBOX").message_count == 0

"""Messages in the mailbox model: flags, copy, move, expunge, append, pages, changes since."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text, update

from nmail.db.tables import accounts
from nmail.directory.model import Account
from nmail.mailstore.folder_reads import page_query
from nmail.mailstore.model import SORT_KEYS, BadFlag, BadUidSet, NoSuchFolder, QuotaExceeded
from nmail.mailstore.store import MailStore
from nmail.mailstore.uidset import UidSet
from test_mailstore_support import alice, folder_dir, mail_root, message, new, store

__all__ = ["alice", "mail_root", "store"]  # fixtures


def _fill(store: MailStore, account: Account, count: int, folder: str = "INBOX") -> None:
    store.store([
        new(account, folder, content=message(f"Re: subject {(i * 7) % count:03d}",
                                             date=f"{1 + i % 28:02d} Jul 2025 10:00:00 +0000",
                                             sender=f"Sender {(i * 3) % count:03d} <s{i}@x.test>",
                                             body="x" * (i * 13 % 50) + "\r\n"))
        for i in range(count)
    ])


@pytest.fixture
def filled(store: MailStore, alice: Account) -> Iterator[MailStore]:
    store.ensure_account(alice)
    _fill(store, alice, 10)
    yield store


def test_flags_set_add_remove_with_one_modseq_per_changed_message(
    filled: MailStore, alice: Account
) -> None:
    view = filled.open_folder(alice.id, "INBOX")
    assert view.info.unseen_count == 10
    start = view.info.highest_modseq
    result = view.store_flags(view.uid_set("1:4"), "add", ["\\Seen", "$Label"])
    assert [uid for uid, _ in result.changed] == [1, 2, 3, 4]
    assert {m for _, m in result.changed} == {start + 1} == {result.highest_modseq}
    assert view.refresh().unseen_count == 6
    again = view.store_flags(view.uid_set("1:6"), "add", ["\\Seen"])
    assert [uid for uid, _ in again.changed] == [5, 6]  # 1-4 had it: untouched
    rows = {r.uid: r for r in view.summaries(view.uid_set("1:*"))}
    assert rows[1].modseq == start + 1 and rows[5].modseq == start + 2
    assert rows[1].flags == frozenset({"\\Seen", "$Label"})
    view.store_flags(view.uid_set("1"), "set", ["\\Flagged"])
    view.store_flags(view.uid_set("2"), "remove", ["\\seen"])
    rows = {r.uid: r for r in view.summaries(view.uid_set("1:2"))}
    assert rows[1].flags == frozenset({"\\Flagged"}) and rows[2].flags == frozenset({"$Label"})
    assert view.refresh().unseen_count == 6


def test_unchanged_since_leaves_newer_messages_and_reports_them(
    filled: MailStore, alice: Account
) -> None:
    view = filled.open_folder(alice.id, "INBOX")
    base = view.info.highest_modseq
    view.store_flags(view.uid_set("2"), "add", ["\\Flagged"])
    result = view.store_flags(view.uid_set("1:3"), "add", ["\\Seen"], unchanged_since=base)
    assert result.modified == (2,)
    assert [uid for uid, _ in result.changed] == [1, 3]


def test_flag_files_carry_the_letters_and_changes_since_sees_them(
    filled: MailStore, alice: Account, mail_root: Path
) -> None:
    view = filled.open_folder(alice.id, "INBOX")
    mark = view.info.highest_modseq
    view.store_flags(UidSet.of([3]), "add", ["\\Seen", "\\Answered", "$Forwarded"])
    filled.names_settled()  # the renames follow the answer
    path = view.message_path(3)
    assert path is not None and path.parent.name == "cur" and path.name.endswith(":2,RSa")
    changes = view.changes_since(mark)
    assert changes.new == () and changes.vanished == ()
    assert changes.changed == ((3, mark + 1, frozenset({"\\Seen", "\\Answered",
                                                        "$Forwarded"})),)


def test_copy_and_move_map_uids_and_keep_counts(
    filled: MailStore, alice: Account, mail_root: Path
) -> None:
    inbox = filled.open_folder(alice.id, "INBOX")
    inbox.store_flags(inbox.uid_set("1"), "add", ["\\Seen"])
    archive = filled.open_folder(alice.id, "Archive")
    mark = archive.info.highest_modseq
    copied = inbox.copy(inbox.uid_set("1:3"), "Archive")
    assert copied.uidvalidity == archive.info.uidvalidity
    assert copied.pairs == ((1, 1), (2, 2), (3, 3))
    moved = inbox.move(inbox.uid_set("4,6"), "Archive")
    assert moved.pairs == ((4, 4), (6, 5))
    inbox_info, archive_info = inbox.refresh(), archive.refresh()
    assert (inbox_info.message_count, archive_info.message_count) == (8, 5)
    assert (inbox_info.unseen_count, archive_info.unseen_count) == (7, 4)
    assert inbox_info.total_size + archive_info.total_size == filled.usage(alice.id)
    assert archive.read(1) == inbox.read(1)
    uidls = {r.uidl for r in archive.refs()}
    inbox_uidls = {r.uidl for r in inbox.refs()}
    assert len(uidls) == 5 and not uidls & inbox_uidls - set()  # copies get their own name
    # A moved message is in exactly one directory, carrying its new UID.
    files = [n for sub in ("new", "cur") for d in (folder_dir(mail_root, alice, "INBOX"),
                                                   folder_dir(mail_root, alice, "Archive"))
             for n in os.listdir(d / sub)]
    assert len(files) == 13
    changes = archive.changes_since(mark)
    assert changes.new == (1, 2, 3, 4, 5) and changes.changed == ()
    assert inbox.changes_since(mark).vanished == (4, 6)
    with pytest.raises(NoSuchFolder):
        inbox.move(inbox.uid_set("1"), "Nowhere")


def test_expunge_leaves_tombstones(filled: MailStore, alice: Account) -> None:
    view = filled.open_folder(alice.id, "INBOX")
    mark = view.info.highest_modseq
    assert view.expunge(view.uid_set("2:3,9")) == (2, 3, 9)
    assert view.expunge(UidSet.of([2])) == ()
    info = view.refresh()
    assert info.message_count == 7 and info.unseen_count == 7
    changes = view.changes_since(mark)
    assert changes.vanished == (2, 3, 9) and changes.highest_modseq == mark + 1
    assert [r.uid for r in view.refs()] == [1, 4, 5, 6, 7, 8, 10]
    assert view.sequence_range(2, 3) == UidSet.of([4, 5])
    filled.store([new(alice)])
    assert view.refresh().next_uid == 12


def test_pages_in_every_sort_and_direction_follow_the_index(
    filled: MailStore, alice: Account, engine: Engine
) -> None:
    view = filled.open_folder(alice.id, "INBOX")
    every = view.summaries(view.uid_set("1:*"))
    keys = {
        "date": lambda r: r.date, "arrival": lambda r: r.internal_date,
        "from": lambda r: r.from_name.casefold(), "size": lambda r: r.size,
        "subject": lambda r: r.subject.casefold().removeprefix("re: "),
    }
    for sort in SORT_KEYS:
        for descending in (False, True):
            got = view.page(sort, descending=descending, limit=4, offset=1)
            ordered = sorted(every, key=lambda r, k=keys[sort]: (k(r), r.uid),
                             reverse=descending)
            assert [r.uid for r in got] == [r.uid for r in ordered[1:5]], (sort, descending)
            if engine.dialect.name == "sqlite":
                sql = str(page_query(1, sort, descending, 0, 50).compile(
                    engine, compile_kwargs={"literal_binds": True}))
                with engine.connect() as conn:
                    plan = " ".join(str(r[-1]) for r in conn.execute(
                        text("EXPLAIN QUERY PLAN " + sql)))
                assert "TEMP B-TREE" not in plan, (sort, plan)


def test_reading_header_and_parts(store: MailStore, alice: Account) -> None:
    store.ensure_account(alice)
    mixed = (b"From: a@x.test\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
             b'Content-Type: multipart/mixed; boundary="BB"\r\n\r\npreamble\r\n'
             b"--BB\r\nContent-Type: text/plain\r\n\r\nfirst part\r\n"
             b"--BB\r\nContent-Type: message/rfc822\r\n\r\n"
             b"Subject: inner\r\n\r\ninner body\r\n"
             b"--BB--\r\n")
    result = store.append(alice, "Drafts", mixed, flags=["\\Draft", "\\Seen"],
                          internal_date=1_700_000_000)
    view = store.open_folder(alice.id, "Drafts")
    assert result.uid == 1 and result.uidvalidity == view.info.uidvalidity
    [row] = view.summaries(UidSet.of([1]))
    assert row.internal_date == 1_700_000_000 and row.flags == {"\\Draft", "\\Seen"}
    assert view.info.unseen_count == 0
    assert view.read(1) == mixed
    assert view.read_header(1) == mixed[:mixed.index(b"\r\n\r\n") + 4]
    assert view.read_part(1, "1") == b"first part"
    assert view.read_part(1, "2.1") == b"inner body"  # the CRLF before --BB is the boundary's
    assert view.read_part(1, "3") is None
    assert view.read(99) is None


def test_quota_refuses_append_and_copy_with_the_limit(
    filled: MailStore, alice: Account, engine: Engine
) -> None:
    used = filled.usage(alice.id)
    with engine.begin() as conn:
        conn.execute(update(accounts).where(accounts.c.id == alice.id)
                     .values(quota_bytes=used + 100))
    view = filled.open_folder(alice.id, "INBOX")
    with pytest.raises(QuotaExceeded, match="limit"):
        view.copy(view.uid_set("1:*"), "Archive")
    with pytest.raises(QuotaExceeded, match="limit"):
        filled.append(alice, "Sent", b"Subject: big\r\n\r\n" + b"x" * 500)
    assert filled.usage(alice.id) == used
    assert view.move(view.uid_set("1:*"), "Archive").pairs  # a move adds nothing


def test_bad_message_requests_change_nothing(filled: MailStore, alice: Account) -> None:
    view = filled.open_folder(alice.id, "INBOX")
    before = (view.info, view.summaries(view.uid_set("1:*")))
    for spelled in ("5:1", "1:11", "0", "x", "1,,2", "*:0"):
        with pytest.raises(BadUidSet):
            view.uid_set(spelled)
    with pytest.raises(BadUidSet):
        view.sequence_range(3, 11)
    with pytest.raises(BadFlag):
        view.store_flags(UidSet.of([1]), "add", ["\\Bogus"])
    with pytest.raises(BadFlag):
        view.store_flags(UidSet.of([1]), "add", ["bad flag"])
    with pytest.raises(BadUidSet):
        view.expunge([1, 2])  # type: ignore[arg-type]
    with pytest.raises(Exception, match="unknown sort"):
        view.page("colour")  # type: ignore[arg-type]
    with pytest.raises(Exception, match="moved into itself"):
        view.move(UidSet.of([1]), "INBOX")
    assert (view.refresh(), view.summaries(view.uid_set("1:*"))) == before


def test_tombstones_are_pruned_after_their_time(
    engine: Engine, mail_root: Path, alice: Account
) -> None:
    from test_mailstore_support import HOST

    short = MailStore(engine, mail_root, HOST, tombstone_days=0)
    try:
        short.ensure_account(alice)
        _fill(short, alice, 4)
        view = short.open_folder(alice.id, "INBOX")
        mark = view.info.highest_modseq
        view.expunge(UidSet.of([1]))
        assert view.changes_since(mark).vanished == (1,)
        # Kept 0 days: the next expunge prunes the older tombstones of the folder
        # (those of the same second stay: expunged_at is whole seconds).
        with engine.begin() as conn:
            conn.execute(text("UPDATE message_tombstones SET expunged_at = expunged_at - 10"))
        assert view.changes_since(mark).complete
        view.expunge(UidSet.of([2]))
        changes = view.changes_since(mark)
        assert changes.vanished == (2,) and not changes.complete
        assert view.changes_since(changes.highest_modseq - 1).complete
        view.expunge(UidSet.of([3]))  # the mark moves up, never down
        assert not view.changes_since(mark).complete
    finally:
        short.close()

"""Conversation links go with a conversation's last message (mailstore/thread_sweep.py).

Every database: expunge, folder delete, dbsync of gone files and of what older
versions left, account and domain deletion; a reply to a deleted message joins
while its conversation lives and starts a new one after; moves keep links.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, func, insert, select

from nmail.db.tables import (
    folder_threads,
    folders,
    message_tombstones,
    messages,
    thread_links,
)
from nmail.directory import Directory
from nmail.directory.model import Account
from nmail.mailstore.store import MailStore
from nmail.mailstore.thread_sweep import CHUNK, forget_gone, sweep_account
from nmail.mailstore.uidset import UidSet
from nmail.mime.threads import message_key
from test_mailstore_support import alice, folder_dir, mail_root, make_account, store
from test_threads import deliver, mail, threads_of

__all__ = ["alice", "mail_root", "store"]  # fixtures


def links(engine: Engine, account: Account) -> dict[str, str]:
    """link key -> thread id of the account."""
    t = thread_links.c
    with engine.connect() as conn:
        return {str(k): str(v) for k, v in conn.execute(
            select(t.link_key, t.thread_id).where(t.account_id == account.id))}


def count(engine: Engine, table: object, *where: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)  # type: ignore[arg-type]
                                .where(*where)).scalar_one())


def agenda(store: MailStore, account: Account) -> None:
    """안건 (a), its reply b, b's reply c (naming a and b), and a stranger z."""
    deliver(store, account, mail("a@x", "안건", day=1),
            mail("b@x", "Re: 안건", day=2, references="a@x"),
            mail("c@x", "Re: Re: 안건", day=3, in_reply_to="b@x", references="a@x b@x"),
            mail("z@x", "other", day=4))


def test_links_live_while_a_message_does_and_go_with_the_last(
    store: MailStore, alice: Account, engine: Engine
) -> None:
    store.ensure_account(alice)
    agenda(store, alice)
    found = threads_of(engine)
    agenda_id, other_id = found["안건"], found["other"]
    before = links(engine, alice)
    assert set(before.values()) == {agenda_id, other_id}
    view = store.open_folder(alice.id, "INBOX")
    view.expunge(UidSet.of([1, 2]))  # a and b go, c stays: every link stays
    assert links(engine, alice) == before
    view.expunge(UidSet.of([3]))  # the conversation's last message
    assert links(engine, alice) == {message_key("z@x"): other_id}
    inbox = store.folder(alice.id, "INBOX").id
    with engine.connect() as conn:
        rows = conn.execute(select(folder_threads.c.folder_id, folder_threads.c.thread_id)).all()
    assert [tuple(r) for r in rows] == [(inbox, other_id)]


def test_a_reply_to_a_deleted_message(
    store: MailStore, alice: Account, engine: Engine
) -> None:
    store.ensure_account(alice)
    agenda(store, alice)
    agenda_id = threads_of(engine)["안건"]
    view = store.open_folder(alice.id, "INBOX")
    view.expunge(UidSet.of([2]))  # b
    # d answers the deleted b and names nothing else: it joins a and c.
    deliver(store, alice, mail("d@x", "Re: b", day=5, in_reply_to="b@x"))
    assert threads_of(engine)["Re: b"] == agenda_id
    # In Trash the conversation still has messages: its links stay.
    view.move(UidSet.of([1, 3, 5]), "Trash")
    assert agenda_id in links(engine, alice).values()
    store.open_folder(alice.id, "Trash").expunge(UidSet.of([1, 2, 3]))
    assert agenda_id not in links(engine, alice).values()
    # Deleted forever: a reply to it starts a new conversation, as at Gmail.
    deliver(store, alice, mail("e@x", "Re: b again", day=6, in_reply_to="b@x"))
    fresh = threads_of(engine)["Re: b again"]
    assert fresh != agenda_id
    assert {k for k, v in links(engine, alice).items() if v == fresh} == {
        message_key("b@x"), message_key("e@x")}


def test_moves_and_copies_keep_every_link(
    store: MailStore, alice: Account, engine: Engine
) -> None:
    store.ensure_account(alice)
    agenda(store, alice)
    before = links(engine, alice)
    view = store.open_folder(alice.id, "INBOX")
    view.copy(UidSet.of([1]), "Archive")
    view.move(UidSet.of([1, 2, 3, 4]), "Archive")
    assert links(engine, alice) == before
    # The copy's original moved too: expunging one copy of a keeps the other.
    archive = store.open_folder(alice.id, "Archive")
    archive.expunge(UidSet.of([1]))
    assert links(engine, alice) == before


def test_a_folder_delete_takes_the_conversations_it_alone_held(
    store: MailStore, alice: Account, engine: Engine
) -> None:
    store.ensure_account(alice)
    store.create_folder(alice.id, "Projects")
    deliver(store, alice, mail("p@x", "plan", day=1), mail("a@x", "안건", day=2),
            folder="Projects")
    deliver(store, alice, mail("b@x", "Re: 안건", day=3, in_reply_to="a@x"))
    found = threads_of(engine)
    store.delete_folder(alice.id, "Projects", force=True)
    assert set(links(engine, alice).values()) == {found["안건"]}
    assert found["plan"] not in links(engine, alice).values()


def test_dbsync_drops_links_of_gone_files_and_what_older_versions_left(
    store: MailStore, alice: Account, engine: Engine, mail_root: Path
) -> None:
    store.ensure_account(alice)
    agenda(store, alice)
    found = threads_of(engine)
    kept = {k: v for k, v in links(engine, alice).items() if v == found["안건"]}
    # Left by versions that kept links forever: conversations with no message,
    # more than one sweep step (2,000) and one check (500) of them.
    stale = 2 * 1000 + CHUNK + 7
    with engine.begin() as conn:
        conn.execute(insert(thread_links), [
            {"account_id": alice.id, "link_key": f"{i:016x}", "thread_id": f"{i:024x}"}
            for i in range(stale)])
    # And z's file is deleted behind the index's back.
    (z_file,) = [p for p in (folder_dir(mail_root, alice, "INBOX") / "new").iterdir()
                 if b"z@x" in p.read_bytes()]
    z_file.unlink()
    report = store.dbsync([alice])
    assert report.total.removed == 1 and report.total.forgotten == stale + 1
    assert links(engine, alice) == kept
    assert store.dbsync([alice]).total.forgotten == 0


def test_sweep_steps_and_forget_gone_inputs(
    store: MailStore, alice: Account, engine: Engine
) -> None:
    store.ensure_account(alice)
    bob = make_account(engine, "bob")
    store.ensure_account(bob)
    agenda(store, alice)
    deliver(store, bob, mail("a@x", "안건", day=1))
    alive = threads_of(engine)["안건"]  # bob's, delivered last
    with engine.begin() as conn:
        conn.execute(insert(thread_links), [
            {"account_id": alice.id, "link_key": f"{i:016x}", "thread_id": f"{i:024x}"}
            for i in range(7)])
    before = links(engine, alice)
    with engine.begin() as conn:
        # Nothing, empty ids, unknown ids, another account's live thread: nothing goes.
        assert forget_gone(conn, alice.id, []) == 0
        assert forget_gone(conn, alice.id, ["", ""]) == 0
        assert forget_gone(conn, bob.id, ["x" * 64, "'; DROP TABLE thread_links; --"]) == 2
        assert forget_gone(conn, bob.id, [alive]) == 0
        assert forget_gone(conn, 999_999, [alive]) == 1  # no such account: no messages
    assert links(engine, alice) == before
    with engine.begin() as conn:
        steps = []
        after: str | None = ""
        while after is not None:
            after, dropped = sweep_account(conn, alice.id, after, limit=3)
            steps.append(dropped)
    # 9 conversations (7 stale, agenda, other) by id: 3, 3, 3, then an empty step.
    assert sum(steps) == 7 and len(steps) == 4
    assert set(links(engine, alice).values()) == set(threads_of(
        engine, store.folder(alice.id, "INBOX").id).values())


def test_an_expunge_of_many_conversations_at_once(
    store: MailStore, alice: Account, engine: Engine
) -> None:
    store.ensure_account(alice)
    n = CHUNK * 2 + 3
    deliver(store, alice, *[mail(f"m{i}@x", f"topic {i}", day=1 + i % 28) for i in range(n)])
    assert len(links(engine, alice)) == n
    store.open_folder(alice.id, "INBOX").expunge(UidSet.of(range(1, n + 1)))
    assert links(engine, alice) == {}
    assert count(engine, folder_threads) == 0


def test_deleting_an_account_or_a_domain_leaves_no_index_row(
    store: MailStore, alice: Account, engine: Engine
) -> None:
    bob = make_account(engine, "bob")
    carol = make_account(engine, "carol", domain="other.test")
    for account in (alice, bob, carol):
        store.ensure_account(account)
        agenda(store, account)
        store.open_folder(account.id, "INBOX").expunge(UidSet.of([4]))  # a tombstone
    directory = Directory(engine)
    directory.delete_account(alice.address)
    assert count(engine, thread_links, thread_links.c.account_id == alice.id) == 0
    assert count(engine, folders, folders.c.account_id == alice.id) == 0
    directory.delete_domain("example.test", force=True)
    assert count(engine, thread_links, thread_links.c.account_id != carol.id) == 0
    carols = select(folders.c.id).where(folders.c.account_id == carol.id)
    for table, column in ((folder_threads, folder_threads.c.folder_id),
                          (messages, messages.c.folder_id),
                          (message_tombstones, message_tombstones.c.folder_id)):
        assert count(engine, table, column.not_in(carols)) == 0
    assert len(links(engine, carol)) == 3  # carol's are untouched (a, b, c; z expunged)

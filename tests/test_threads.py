"""Conversations: thread keys from headers, linking in the index, the folder list."""

from __future__ import annotations

import time
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, insert, select

from nmail.db.engine import make_engine
from nmail.db.migrate import downgrade, upgrade
from nmail.db.tables import accounts, domains, folder_threads, folders, messages, thread_links
from nmail.directory.model import Account
from nmail.mailstore.store import MailStore, NewMessage
from nmail.mailstore.thread_index import ThreadIndex, new_thread_prefix, plan, split_keys
from nmail.mailstore.thread_reads import (
    account_thread_messages,
    conversation_count,
    conversation_page,
    merged_thread_id,
    thread_messages,
)
from nmail.mailstore.uidset import UidSet
from nmail.mime.summary import summarize
from nmail.mime.threads import MAX_REFERENCES, message_key, thread_keys
from test_mailstore_support import alice, mail_root, store, trace

__all__ = ["alice", "mail_root", "store"]  # fixtures


def mail(msg_id: str | None, subject: str = "예산 회의", *, day: int = 1,
         in_reply_to: str = "", references: str = "", sender: str = "Bob <bob@x.test>",
         ) -> bytes:
    lines = [f"From: {sender}", "To: alice@example.test", f"Subject: {subject}",
             f"Date: {day:02d} Jul 2025 10:00:00 +0000"]
    if msg_id is not None:
        lines.append(f"Message-ID: <{msg_id}>")
    if in_reply_to:
        lines.append(f"In-Reply-To: <{in_reply_to}>")
    if references:
        lines.append("References: " + " ".join(f"<{r}>" for r in references.split()))
    return ("\r\n".join(lines) + "\r\n\r\nbody\r\n").encode()


def deliver(store: MailStore, account: Account, *contents: bytes,
            folder: str = "INBOX") -> None:
    store.store([NewMessage(account, folder, trace(), c) for c in contents])


def threads_of(engine: Engine, folder_id: int | None = None) -> dict[str, str]:
    """subject -> thread id of every message (of one folder)."""
    query = select(messages.c.subject, messages.c.thread_id)
    if folder_id is not None:
        query = query.where(messages.c.folder_id == folder_id)
    with engine.connect() as conn:
        return {str(r[0]): str(r[1]) for r in conn.execute(query)}


def listed(engine: Engine, folder_id: int) -> list[tuple[str, int, int]]:
    """The conversation page: (newest subject, count, unseen) per row."""
    with engine.connect() as conn:
        return [(c.latest.subject, c.count, c.unseen)
                for c in conversation_page(conn, folder_id, 0, 50)]


# -- keys from headers (pure) ---------------------------------------------------------


def test_keys_root_first_then_ancestors_then_own_and_self_reference_once() -> None:
    keys = thread_keys(["root@x", "mid@x", "me@x"], "mid@x", "me@x", "s", b"")
    assert keys.split() == [message_key("root@x"), message_key("mid@x"), message_key("me@x")]


def test_long_references_keep_the_root_and_the_nearest() -> None:
    refs = [f"r{i}@x" for i in range(500)]
    keys = thread_keys(refs, "r499@x", "me@x", "", b"").split()
    assert len(keys) == 1 + MAX_REFERENCES + 1
    assert keys[0] == message_key("r0@x") and message_key("r499@x") in keys
    assert message_key("r250@x") not in keys
    raw = mail("me@x", references=" ".join(refs))
    assert len(raw) > 4096  # past the header cut: the start and the end are kept
    summary = summarize(raw).thread_keys.split()
    assert summary[0] == message_key("r0@x") and message_key("r499@x") in summary


def test_no_ids_fall_back_to_subject_then_to_the_header() -> None:
    assert thread_keys([], "", "", "Re: 안건", b"a") == thread_keys([], "", "", "안건", b"b")
    assert thread_keys([], "", "", "", b"a") != thread_keys([], "", "", "", b"b")


def test_malformed_ids_and_junk_keys() -> None:
    summary = summarize(b"Message-ID: <>\r\nIn-Reply-To: junk words\r\n"
                        b"References: <a@x> <<b@x>> <  c @x >\r\n\r\n")
    keys = summary.thread_keys.split()
    assert keys[0] == message_key("a@x") and message_key("c@x") in keys
    assert split_keys("zz " + keys[0] + " " + keys[0] + " 12") == [keys[0]]


def test_plan_reply_before_parent_merge_and_keyless() -> None:
    a, b, c, d = "a" * 16, "b" * 16, "c" * 16, "d" * 16
    known: dict[str, str] = {}
    first = plan(known, [[a, b]])  # b replies to a, a not seen yet
    assert first.thread_ids == [a] and first.new_links == {a: a, b: a}
    second = plan(known, [[a], [c], [d]])  # a itself, then two strangers
    assert second.thread_ids == [a, c, d]
    third = plan(known, [[c, d, "e" * 16]])  # names c's and d's threads: one thread
    assert third.thread_ids == [c] and third.merged == {d: c}
    assert known[d] == c
    lone = plan(known, [[], []]).thread_ids
    assert lone[0] != lone[1] and len(lone[0]) == 16


def test_plan_names_new_threads_after_the_prefix() -> None:
    a, b = "a" * 16, "b" * 16
    made = plan({"b" * 16: "old"}, [[a], [b], []], prefix="6954a1c0b333")
    assert made.thread_ids[0] == "6954a1c0b333" + a and made.thread_ids[1] == "old"
    assert made.thread_ids[2].startswith("6954a1c0b333") and len(made.thread_ids[2]) == 28
    # The second, then 1/65,536ths of it: the first 8 digits are the second's.
    assert new_thread_prefix(0) == "0" * 12
    assert new_thread_prefix(1765069200.7) == "6934d190" + "b333"
    assert new_thread_prefix(1765069200) == "6934d190" + "0000"
    assert new_thread_prefix(-5) == "0" * 12 and new_thread_prefix(2.0**60) == "f" * 12


def test_new_threads_begun_in_one_second_grow_with_time() -> None:
    """Conversations begun within one second are named in the order they began
    (not by their keys: their entries land at the end of each index keyed by
    thread id, together, instead of at random places in that second's range)."""
    base = 1765069200.0
    names = [plan({}, [[f"{15 - n:x}" * 16]], new_thread_prefix(base + n / 100)).thread_ids[0]
             for n in range(16)]
    assert names == sorted(names) and len(set(names)) == 16
    assert all(name[:8] == "6934d190" for name in names)


# -- the index (every database) -------------------------------------------------------


def test_reply_before_parent_and_in_reply_to_chains_join(
    store: MailStore, alice: Account, engine: Engine
) -> None:
    store.ensure_account(alice)
    deliver(store, alice, mail("c@x", "Re: Re: 안건", day=3, in_reply_to="b@x"))
    deliver(store, alice, mail("b@x", "Re: 안건", day=2, references="a@x"))
    deliver(store, alice, mail("a@x", "안건", day=1))
    deliver(store, alice, mail("z@x", "other", day=4))
    found = threads_of(engine)
    assert found["안건"] == found["Re: 안건"] == found["Re: Re: 안건"] != found["other"]
    inbox = store.folder(alice.id, "INBOX").id
    assert listed(engine, inbox) == [("other", 1, 1), ("Re: Re: 안건", 3, 3)]


def test_a_message_naming_two_threads_merges_them(
    store: MailStore, alice: Account, engine: Engine
) -> None:
    store.ensure_account(alice)
    deliver(store, alice, mail("a@x", "first", day=1), mail("a2@x", "Re: first", day=2,
                                                            references="a@x"))
    deliver(store, alice, mail("b@x", "second", day=3))
    inbox = store.folder(alice.id, "INBOX").id
    assert len(listed(engine, inbox)) == 2
    deliver(store, alice, mail("m@x", "both", day=5, references="a2@x b@x"))
    assert len(set(threads_of(engine, inbox).values())) == 1
    assert listed(engine, inbox) == [("both", 4, 4)]
    # a later reply to either side finds the merged thread
    deliver(store, alice, mail("n@x", "Re: second", day=6, in_reply_to="b@x"))
    assert listed(engine, inbox) == [("Re: second", 5, 5)]


def test_new_threads_are_named_by_time_and_the_older_wins_a_merge(
    store: MailStore, alice: Account, engine: Engine
) -> None:
    store.ensure_account(alice)
    before = int(time.time())
    deliver(store, alice, mail("a@x", "first", day=1))
    after = int(time.time())
    tid = threads_of(engine)["first"]
    assert len(tid) == 28 and before <= int(tid[:8], 16) <= after
    assert tid[12:] == message_key("a@x")
    # Two threads begun at different times, then a message naming both: the
    # older thread's id stays, whatever the keys' own order.
    late, early = "0" * 16, "f" * 16
    with engine.begin() as conn:
        older = ThreadIndex.on(conn, clock=lambda: 1000).resolve(alice.id, [early])[0]
        newer = ThreadIndex.on(conn, clock=lambda: 2000).resolve(alice.id, [late])[0]
        joined = ThreadIndex.on(conn, clock=lambda: 3000).resolve(alice.id, [f"{late} {early}"])
        links = dict(conn.execute(select(thread_links.c.link_key, thread_links.c.thread_id)
                                  .where(thread_links.c.account_id == alice.id)).all())
    assert older == "000003e80000" + early and newer == "000007d00000" + late
    assert joined == [older] and links[late] == links[early] == older


def test_an_old_id_of_each_form_finds_the_conversation_it_went_into(
    store: MailStore, alice: Account, engine: Engine
) -> None:
    """A merged conversation's old id leads to the one it joined whichever form it
    has: the key alone (16 digits), the second and the key (8 + 16) or the time
    to 1/65,536 s and the key (12 + 16); anything else finds nothing."""
    store.ensure_account(alice)
    key, winner = "a" * 16, "6934d190b333" + "b" * 16
    with engine.begin() as conn:
        conn.execute(insert(thread_links).values(account_id=alice.id, link_key=key,
                                                 thread_id=winner))
    with engine.connect() as conn:
        for old in (key, "6934d190" + key, "6934d190b333" + key):
            assert merged_thread_id(conn, alice.id, old) == winner, old
        for other in (winner, "6934d190b3" + key, "06934d190b333" + key, key.upper(),
                      "6934d190B333" + key, key[:-1], key + " "):
            assert merged_thread_id(conn, alice.id, other) is None, other
        assert merged_thread_id(conn, alice.id + 1, key) is None


def test_missing_and_duplicate_message_ids(
    store: MailStore, alice: Account, engine: Engine
) -> None:
    store.ensure_account(alice)
    deliver(store, alice, mail(None, "no id one", day=1), mail(None, "no id two", day=2),
            mail("dup@x", "dup one", day=3), mail("dup@x", "dup two", day=4))
    found = threads_of(engine)
    assert found["no id one"] != found["no id two"]
    assert found["dup one"] == found["dup two"]
    inbox = store.folder(alice.id, "INBOX").id
    assert conversation_count_of(engine, inbox) == 3


def conversation_count_of(engine: Engine, folder_id: int) -> int:
    with engine.connect() as conn:
        return conversation_count(conn, folder_id)


def test_move_keeps_the_thread_and_each_folder_lists_its_part(
    store: MailStore, alice: Account, engine: Engine
) -> None:
    store.ensure_account(alice)
    deliver(store, alice, mail("a@x", "안건", day=1), mail("b@x", "Re: 안건", day=2,
                                                          references="a@x"))
    deliver(store, alice, mail("c@x", "Re: Re: 안건", day=3, references="a@x b@x"))
    view = store.open_folder(alice.id, "INBOX")
    view.store_flags(UidSet.of([1]), "add", ["\\Seen"])
    view.move(UidSet.of([3]), "Archive")
    inbox = store.folder(alice.id, "INBOX").id
    archive = store.folder(alice.id, "Archive").id
    assert listed(engine, inbox) == [("Re: 안건", 2, 1)]
    assert listed(engine, archive) == [("Re: Re: 안건", 1, 1)]
    assert len(set(threads_of(engine).values())) == 1
    view.copy(UidSet.of([1]), "Archive")
    assert listed(engine, archive) == [("Re: Re: 안건", 2, 1)]
    # a reply to the moved message delivered to INBOX joins the same thread
    deliver(store, alice, mail("d@x", "Re: 3", day=4, in_reply_to="c@x"))
    assert listed(engine, inbox) == [("Re: 3", 3, 2)]
    with engine.connect() as conn:
        uids = [r.uid for r in thread_messages(conn, inbox, threads_of(engine)["안건"])]
    assert uids == [1, 2, 4]
    view.move(UidSet.of([2]), "Trash")  # Trash is not gathered into a conversation
    with engine.connect() as conn:
        gathered = [(f, r.subject) for f, r in account_thread_messages(
            conn, alice.id, threads_of(engine)["안건"])]
    assert gathered == [(inbox, "안건"), (archive, "안건"), (archive, "Re: Re: 안건"),
                        (inbox, "Re: 3")]


def test_expunge_updates_or_drops_the_conversation(
    store: MailStore, alice: Account, engine: Engine
) -> None:
    store.ensure_account(alice)
    deliver(store, alice, mail("a@x", "안건", day=1), mail("b@x", "Re: 안건", day=5,
                                                          references="a@x"),
            mail("z@x", "other", day=3))
    inbox = store.folder(alice.id, "INBOX").id
    assert [s for s, _, _ in listed(engine, inbox)] == ["Re: 안건", "other"]
    view = store.open_folder(alice.id, "INBOX")
    view.expunge(UidSet.of([2]))
    assert [s for s, _, _ in listed(engine, inbox)] == ["other", "안건"]
    view.expunge(UidSet.of([1, 3]))
    assert listed(engine, inbox) == []
    assert conversation_count_of(engine, inbox) == 0


def test_pages_are_ordered_by_newest_message(
    store: MailStore, alice: Account, engine: Engine
) -> None:
    store.ensure_account(alice)
    deliver(store, alice, *[mail(f"t{i}@x", f"topic {i}", day=1 + i) for i in range(6)])
    deliver(store, alice, mail("r@x", "Re: topic 0", day=20, in_reply_to="t0@x"))
    inbox = store.folder(alice.id, "INBOX").id
    with engine.connect() as conn:
        first = conversation_page(conn, inbox, 0, 4)
        second = conversation_page(conn, inbox, 4, 4)
    assert [c.latest.subject for c in first] == ["Re: topic 0", "topic 5", "topic 4",
                                                 "topic 3"]
    assert [c.latest.subject for c in second] == ["topic 2", "topic 1"]
    assert first[0].count == 2 and first[0].uids == (1, 7)


def test_dbsync_rebuilds_threads_from_the_files(
    store: MailStore, alice: Account, engine: Engine, mail_root: Path
) -> None:
    store.ensure_account(alice)
    deliver(store, alice, mail("b@x", "Re: 안건", day=2, in_reply_to="a@x"),
            mail("a@x", "안건", day=1), mail("z@x", "other", day=3))
    inbox = store.folder(alice.id, "INBOX").id
    before = listed(engine, inbox)
    with engine.begin() as conn:
        conn.execute(delete(messages))
        conn.execute(delete(folder_threads))
    store.dbsync([alice])
    assert listed(engine, inbox) == before
    found = threads_of(engine)
    assert found["안건"] == found["Re: 안건"] != found["other"]


def test_migration_joins_existing_rows_by_their_ids(db_url: str) -> None:
    """0013 links what the index already has: old thread id, In-Reply-To, Message-ID."""
    engine = make_engine(db_url)
    try:
        downgrade(engine, "0012")
        with engine.begin() as conn:
            dom = conn.execute(insert(domains).values(name="m.test", created_at=0)
                               ).inserted_primary_key[0]
            acc = conn.execute(insert(accounts).values(
                domain_id=dom, userid="u", password_hash="x", created_at=0)
            ).inserted_primary_key[0]
            fid = conn.execute(insert(folders).values(account_id=acc, name="INBOX",
                                                      uidvalidity=1)).inserted_primary_key[0]
            # Before: c answered b by In-Reply-To only, so it had b's key, not a's.
            for uid, (mid, irt, old, date) in enumerate([
                ("a@x", "", message_key("a@x"), 10), ("b@x", "a@x", message_key("a@x"), 20),
                ("c@x", "b@x", message_key("b@x"), 30), ("z@x", "", message_key("z@x"), 40),
            ], start=1):
                conn.execute(insert(messages).values(
                    folder_id=fid, uid=uid, modseq=1, filename=f"m{uid}", size=1,
                    internal_date=date, date=date, message_id=mid, in_reply_to=irt,
                    thread_id=old, subject=mid))
        upgrade(engine)
        found = threads_of(engine)
        assert found["a@x"] == found["b@x"] == found["c@x"] != found["z@x"]
        with engine.connect() as conn:
            assert [(c.latest.subject, c.count) for c in conversation_page(conn, fid, 0, 9)
                    ] == [("z@x", 1), ("c@x", 3)]
            linked = dict(conn.execute(select(thread_links.c.link_key, thread_links.c.thread_id)
                                       ).all())
        assert linked[message_key("c@x")] == found["a@x"]
    finally:
        engine.dispose()


_KEYS = [f"{i:016x}" for i in range(12)]


def _partition(ids: list[str]) -> set[frozenset[int]]:
    groups: dict[str, set[int]] = {}
    for i, tid in enumerate(ids):
        groups.setdefault(tid, set()).add(i)
    return {frozenset(g) for g in groups.values()}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.sampled_from(_KEYS), min_size=1, max_size=4), max_size=25),
       st.integers(min_value=1, max_value=25))
def test_plan_joins_exactly_what_shares_keys_in_any_batching(
    lists: list[list[str]], batch: int
) -> None:
    """Messages sharing a key, directly or through others, are one thread; others
    are not; and delivering them in batches (links carried over) groups the same."""
    keys = [list(dict.fromkeys(k)) for k in lists]
    whole = plan({}, keys).thread_ids
    parent = list(range(len(keys)))

    def find(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i in range(len(keys)):
        for j in range(i):
            if set(keys[i]) & set(keys[j]):
                parent[find(i)] = find(j)
    expected = _partition([str(find(i)) for i in range(len(keys))])
    assert _partition(whole) == expected
    known: dict[str, str] = {}
    batched: list[str] = []
    for start in range(0, len(keys), batch):
        made = plan(known, keys[start:start + batch])
        batched = [made.merged.get(t, t) for t in batched] + made.thread_ids
    assert _partition(batched) == expected


@given(st.binary(max_size=600), st.text(max_size=200))
def test_any_header_gives_well_formed_keys(raw: bytes, subject: str) -> None:
    summary = summarize(b"References: " + raw + b"\r\nIn-Reply-To: " + raw[:80] +
                        b"\r\nSubject: " + subject.encode("utf-8", "replace") + b"\r\n\r\n")
    keys = summary.thread_keys.split()
    assert 1 <= len(keys) <= 13 and split_keys(summary.thread_keys) == keys

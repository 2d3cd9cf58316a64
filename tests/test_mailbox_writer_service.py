"""Every mailbox change through the index writer service, as `nmail serve`'s workers send them."""

from __future__ import annotations

import secrets
import socket
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Engine

from nmail.mailstore import index_wire
from nmail.mailstore.commit_hook import FolderChange
from nmail.mailstore.index_client import RemoteIndex
from nmail.mailstore.index_service import listen_socket, serve_index_writer
from nmail.mailstore.model import FolderExists, NoSuchFolder, StoreUnavailable
from nmail.mailstore.operations import (
    ExpungeMessages,
    StoreFlags,
    decode_operation,
    encode_operation,
)
from nmail.mailstore.store import MailStore
from nmail.mailstore.uidset import UidSet
from test_mailstore_support import HOST, make_account, new


class Service:
    """serve_index_writer on a thread with a commit hook that records what it hears."""

    def __init__(self, engine: Engine) -> None:
        self.address = f"\0nmail-test-{secrets.token_hex(8)}"
        self.listener = listen_socket(self.address)
        self.stop = threading.Event()
        self.heard: list[FolderChange] = []
        self.commits: list[list[FolderChange]] = []
        self.hook_thread: set[str] = set()
        self.thread = threading.Thread(
            target=serve_index_writer, args=(engine, self.listener),
            kwargs={"stop": self.stop, "poll": 0.05, "on_commit": self._hook}, daemon=True)
        self.thread.start()

    def _hook(self, changes: Sequence[FolderChange]) -> None:
        self.hook_thread.add(threading.current_thread().name)
        self.heard.extend(changes)
        self.commits.append(list(changes))
        if any(c.folder == "Explode" for c in changes):
            raise RuntimeError("a hook that fails must not undo the commit")

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)
        self.listener.close()


@pytest.fixture
def service(engine: Engine) -> Iterator[Service]:
    svc = Service(engine)
    yield svc
    svc.close()


def test_operations_are_committed_by_the_writer_and_reported(
    engine: Engine, tmp_path: Path, service: Service
) -> None:
    alice = make_account(engine)
    store = MailStore(engine, tmp_path / "mail", HOST, index_client=RemoteIndex(service.address))
    try:
        store.ensure_account(alice)
        store.store([new(alice, subject=f"m{i}") for i in range(6)])
        store.create_folder(alice.id, "Work/Korea")
        view = store.open_folder(alice.id, "INBOX")
        flagged = view.store_flags(view.uid_set("1:3"), "add", ["\\Seen"])
        moved = view.move(view.uid_set("2:4"), "Work/Korea")
        assert moved.pairs == ((2, 1), (3, 2), (4, 3))
        assert view.expunge(view.uid_set("5")) == (5,)
        with pytest.raises(FolderExists):
            store.create_folder(alice.id, "Work")
        with pytest.raises(NoSuchFolder):
            store.rename_folder(alice.id, "Nope", "Other")
        store.create_folder(alice.id, "Explode")  # its hook fails; the folder stays
        assert "Explode" in {f.name for f in store.list_folders(alice.id)}
        kinds = [(c.folder, c.kind) for c in service.heard]
        assert ("INBOX", "deliver") in kinds and ("INBOX", "flags") in kinds
        assert ("INBOX", "move") in kinds and ("Work/Korea", "move") in kinds
        assert kinds[-2:] == [("INBOX", "expunge"), ("Explode", "folder-create")]
        inbox = [c for c in service.heard if c.folder == "INBOX"]
        assert [c.highest_modseq for c in inbox] == sorted(c.highest_modseq for c in inbox)
        assert flagged.highest_modseq in {c.highest_modseq for c in inbox}
        assert service.hook_thread == {service.thread.name}
        info = view.refresh()
        assert (info.message_count, info.unseen_count) == (2, 1)
    finally:
        store.close()


def test_many_sessions_share_one_order(engine: Engine, tmp_path: Path, service: Service) -> None:
    alice = make_account(engine)
    stores = [MailStore(engine, tmp_path / "mail", HOST,
                        index_client=RemoteIndex(service.address)) for _ in range(2)]
    try:
        stores[0].ensure_account(alice)
        stores[0].store([new(alice, subject=f"m{i}") for i in range(40)])

        def work(n: int) -> None:
            s = stores[n % 2]
            view = s.open_folder(alice.id, "INBOX")
            view.store_flags(UidSet.of([n + 1]), "add", ["\\Flagged"])
            s.store([new(alice, subject=f"late {n}")])

        with ThreadPoolExecutor(6) as pool:
            list(pool.map(work, range(40)))
        view = stores[1].open_folder(alice.id, "INBOX")
        rows = view.summaries(view.uid_set("1:*"))
        assert len(rows) == 80 and len({r.modseq for r in rows[:40]}) == 40
        assert all("\\Flagged" in r.flags for r in rows[:40])
        assert view.info.highest_modseq == max(r.modseq for r in rows)
    finally:
        for s in stores:
            s.close()


def test_a_lost_writer_is_a_temporary_error(engine: Engine, tmp_path: Path) -> None:
    alice = make_account(engine)
    address = f"\0nmail-test-{secrets.token_hex(8)}"
    local = MailStore(engine, tmp_path / "mail", HOST)
    local.ensure_account(alice)
    local.store([new(alice)])
    local.close()
    store = MailStore(engine, tmp_path / "mail", HOST, index_client=RemoteIndex(address))
    try:
        view = store.open_folder(alice.id, "INBOX")
        with pytest.raises(StoreUnavailable, match="index writer unavailable"):
            view.store_flags(UidSet.of([1]), "add", ["\\Seen"])
        assert view.refresh().unseen_count == 1
    finally:
        store.close()


def test_operations_on_the_wire_are_checked() -> None:
    op = StoreFlags(1, "/m", 2, ((1, 5),), "add", ("\\Seen",), 0)
    assert decode_operation(encode_operation(op)) == op
    wire = index_wire.loads(index_wire.frame(encode_operation(op))[4:])
    assert index_wire.decode_request(wire) == op
    for bad in (
        ("StoreFlags", 1, "/m", 2, ((5, 1),), "add", ("\\Seen",), 0),
        ("StoreFlags", 1, "/m", 2, ((1, 5),), "add", ("\\Seen",)),
        ("StoreFlags", True, "/m", 2, ((1, 5),), "add", ("\\Seen",), 0),
        ("StoreFlags", 1, "/m", 2, [(1, 5)], "add", ("\\Seen",), 0),
        ("ExpungeMessages", 1, "/m", 2, ((1, 5),), -1),
        ("Nuke", 1),
        (),
        "StoreFlags",
    ):
        with pytest.raises(ValueError):
            index_wire.decode_request(bad)
    assert decode_operation(encode_operation(ExpungeMessages(1, "/m", 2, ((1, 1),), 60)))


def test_a_garbled_operation_drops_only_that_connection(
    engine: Engine, tmp_path: Path, service: Service
) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(service.address)
        sock.sendall(index_wire.frame(("StoreFlags", "garbage")))
        assert sock.recv(10) == b""  # closed by the writer
    alice = make_account(engine)
    store = MailStore(engine, tmp_path / "mail", HOST, index_client=RemoteIndex(service.address))
    try:
        store.ensure_account(alice)
        assert store.create_folder(alice.id, "Still/Works").name == "Still/Works"
    finally:
        store.close()


def test_flag_changes_read_together_share_a_commit_and_a_refused_one_rolls_back_alone(
    engine: Engine, tmp_path: Path, service: Service
) -> None:
    alice, bob = make_account(engine), make_account(engine, userid="bob")
    store = MailStore(engine, tmp_path / "mail", HOST, index_client=RemoteIndex(service.address))
    try:
        store.ensure_account(alice)
        store.store([new(alice, subject=f"m{i}") for i in range(2)])
        store.store([new(alice, "Archive", subject="a")])
        inbox, archive = (store.open_folder(alice.id, name) for name in ("INBOX", "Archive"))
        drafts = store.open_folder(alice.id, "Drafts")
        m = inbox.maildir
        ops = [
            StoreFlags(alice.id, m, inbox.folder_id, ((1, 1),), "add", ("\\Seen",), 0),
            StoreFlags(bob.id, m, drafts.folder_id, ((1, 1),), "add", ("\\Seen",), 0),
            StoreFlags(alice.id, m, archive.folder_id, ((1, 1),), "add", ("\\Flagged",), 0),
            StoreFlags(alice.id, m, inbox.folder_id, ((2, 2),), "add", ("\\Seen",), 0),
        ]
        service.commits.clear()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(service.address)
            # One write: the writer reads the four requests together.
            sock.sendall(b"".join(index_wire.frame(encode_operation(op)) for op in ops))
            buffer, replies = bytearray(), []
            while len(replies) < 4:
                chunk = sock.recv(65536)
                assert chunk
                buffer += chunk
                replies.extend(index_wire.read_frames(buffer, lambda value: value))
        assert [r[0] for r in replies] == ["ok", "refused", "ok", "ok"]
        assert replies[1][1] == "NoSuchFolder"
        # The first, second and third in one commit (the refused one without a
        # trace), INBOX's second change in a commit of its own after it.
        assert [[(c.folder, c.kind) for c in commit] for commit in service.commits] == [
            [("INBOX", "flags"), ("Archive", "flags")], [("INBOX", "flags")]]
        assert inbox.refresh().unseen_count == 0
        assert inbox.info.highest_modseq == service.commits[1][0].highest_modseq
        assert archive.summaries(archive.uid_set("1"))[0].flags == frozenset({"\\Flagged"})
    finally:
        store.close()

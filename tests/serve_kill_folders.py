"""Folder changes and copies on a running `nmail serve`, for the crash test.

Beside serve_kill_load's mixed load, two more users, each a real client of
its own door, and each the only one changing their mailbox (so what the
index lists is what the client may act on):

- a webmail user who creates folders (Korean names, nested), moves mail
  into them, renames folders (with their subfolders) and deletes them with
  their mail, over the web app's folder pages;
- a user whose messages are copied (IMAP COPY's operation) from INBOX into
  two copy folders through the mailbox API, committed by the server's own
  index writer over its socket.

An SMTP sender keeps mail arriving for both. What each change was told is
kept in the shared `Ledger` (moves, deletes as expunges) and here (the
folder change or copies in flight), so the test can tell after the kill
what must have happened whole or not at all.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import Engine, select

from nmail.db.tables import messages
from nmail.mailstore.index_client import RemoteIndex
from nmail.mailstore.store import MailStore
from nmail.mailstore.uidset import UidSet
from serve_kill_load import Key, Ledger, _act, _folder_ids, _login, send_mail
from serve_kill_rig import ClientThreads

COPY_FOLDERS = ("Copies", "복사본/받은편지")
SPECIAL = frozenset({"INBOX", "Sent", "Drafts", "Trash", "Spam", "Archive", *COPY_FOLDERS})
LEAVES = ("거래처", "프로젝트", "견적", "회의록", "Clients")


@dataclass
class FolderChange:
    """A folder change sent and not (yet) answered: after the kill it must have
    happened whole or not at all."""

    kind: str  # "rename" | "delete"
    names: dict[str, str]  # old name -> new name (delete: -> "")
    keys: dict[Key, str]  # messages in the subtree -> their folder then


@dataclass
class Changes:
    """What the folder and copy clients were told, beyond the Ledger."""

    pending: FolderChange | None = None
    copied: Counter[Key] = field(default_factory=Counter)  # answered copies
    copying: Counter[Key] = field(default_factory=Counter)  # sent, not answered
    lock: threading.Lock = field(default_factory=threading.Lock)


def index_address(supervisor: int) -> str:
    """The abstract socket the index writer of `nmail serve` (pid) listens on."""
    prefix = f"@nmail-index-{supervisor}-"
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        path = line.split()[-1]
        if path.startswith(prefix):
            return "\0" + path[1:]
    raise AssertionError("the index writer's socket is not listening")


class FolderLoad:
    """The folder and copy clients of one round, with a sender for their mail."""

    def __init__(self, *, smtp: int, http: int, password: str, engine: Engine,
                 mail_dir: Path, host: str, supervisor: int, folder_user: str,
                 copy_user: tuple[str, int], ledger: Ledger, changes: Changes,
                 seed: int) -> None:
        self._clients = ClientThreads(ledger.fail, "a folder load thread")
        self._stopping = self._clients.stopping
        self._engine = engine
        self._ledger = ledger
        self._changes = changes
        self._seed = seed
        self._http = http
        self._password = password
        self._store = MailStore(engine, mail_dir, host,
                                index_client=RemoteIndex(index_address(supervisor)))
        jobs: list[Callable[[], None]] = [
            lambda: send_mail(smtp, ledger, self._stopping, random.Random(seed * 7 + 1),
                              f"{seed}.f", lambda _: [folder_user, copy_user[0]]),
            lambda: self._folders(random.Random(seed * 7 + 2), folder_user),
            lambda: self._copies(random.Random(seed * 7 + 3), *copy_user),
        ]
        self._clients.start(jobs)

    def stop(self) -> None:
        self._clients.stop()
        with self._ledger.cond:
            self._ledger.cond.notify_all()  # the copier may be waiting for mail

    def join(self) -> None:
        self._clients.join()
        self._store.close()

    # -- folders over the webmail ----------------------------------------------

    def _folders(self, rng: random.Random, address: str) -> None:
        web = httpx.Client(base_url=f"http://127.0.0.1:{self._http}",
                           headers={"Host": "mail.example.com", "Accept": "text/html"},
                           timeout=30)
        with web:
            csrf = _login(web, address, self._password)
            n = 0
            while not self._stopping.is_set():
                n += 1
                self._folder_step(rng, web, csrf, address, f"{self._seed}-{n}")

    def _folder_step(self, rng: random.Random, web: httpx.Client, csrf: str, address: str,
                     tag: str) -> None:
        ids = _folder_ids(self._engine, address)
        own = sorted(name for name in ids if name not in SPECIAL)
        held = _messages_by_folder(self._engine, address, ids)
        choice = rng.random()
        if choice < 0.3 or not own:
            parent = rng.choice([None, *own]) if len(own) < 10 else rng.choice(own)
            data = {"name": f"{rng.choice(LEAVES)} {tag}", "csrf_token": csrf}
            if parent is not None:
                data["parent"] = str(ids[parent])
            self._ledger.note("folder-ask", set())
            answer = web.post("/folders/create", data=data)
            assert answer.status_code == 303, ("create", answer.status_code, answer.text[:300])
            self._ledger.note("folder", set())
        elif choice < 0.65:
            picked = rng.sample(held["INBOX"], min(len(held["INBOX"]), rng.randint(1, 6)))
            if not picked:
                return
            target = rng.choice(own)
            keys = {(address, mid) for _, mid in picked}
            self._ledger.ask(keys, moving=True)
            _act(web, csrf, ids["INBOX"], "move", [uid for uid, _ in picked],
                 target=str(ids[target]))
            self._ledger.note("move", keys, folder=target)
        else:
            # A folder with children when there is one: the subtree moves or goes too.
            parents = [n for n in own if any(o.startswith(n + "/") for o in own)]
            name = rng.choice(parents if parents and rng.random() < 0.7 else own)
            subtree = [n for n in own if n == name or n.startswith(name + "/")]
            inside = {(address, mid): folder for folder in subtree for _, mid in held[folder]}
            if choice < 0.85:
                self._rename(web, csrf, address, ids[name], name, subtree, inside,
                             f"{rng.choice(LEAVES)} {tag}")
            else:
                self._delete(web, csrf, ids[name], name, subtree, inside)

    def _rename(self, web: httpx.Client, csrf: str, address: str, folder_id: int,
                name: str, subtree: list[str], keys: dict[Key, str], leaf: str) -> None:
        parent, _, _ = name.rpartition("/")
        new_name = f"{parent}/{leaf}" if parent else leaf
        names = {n: new_name + n[len(name):] for n in subtree}
        with self._changes.lock:
            self._changes.pending = FolderChange("rename", names, dict(keys))
        self._ledger.ask(set(keys), moving=True)
        self._ledger.note("folder-ask", set())
        answer = web.post(f"/folders/{folder_id}/rename",
                          data={"name": leaf, "csrf_token": csrf})
        assert answer.status_code == 303, ("rename", answer.status_code, answer.text[:300])
        for folder in subtree:
            self._ledger.note("move", {k for k, f in keys.items() if f == folder},
                              folder=names[folder])
        with self._changes.lock:
            self._changes.pending = None
        self._ledger.note("folder", set())

    def _delete(self, web: httpx.Client, csrf: str, folder_id: int, name: str,
                subtree: list[str], keys: dict[Key, str]) -> None:
        with self._changes.lock:
            self._changes.pending = FolderChange("delete", dict.fromkeys(subtree, ""),
                                                 dict(keys))
        self._ledger.ask(set(keys), moving=True, expunging=True)
        self._ledger.note("folder-ask", set())
        answer = web.post(f"/folders/{folder_id}/delete", data={"csrf_token": csrf})
        assert answer.status_code == 303, ("delete", answer.status_code, answer.text[:300])
        self._ledger.note("expunge", set(keys), gone=True)
        with self._changes.lock:
            self._changes.pending = None
        self._ledger.note("folder", set())

    # -- copies through the mailbox API ----------------------------------------

    def _copies(self, rng: random.Random, address: str, account_id: int) -> None:
        while not self._stopping.is_set():
            view = self._store.open_folder(account_id, "INBOX")
            uids = view.uids()
            if not uids:
                self._wait_for_mail()
                continue
            rows = view.summaries(UidSet.of(rng.sample(uids, min(len(uids),
                                                                   rng.randint(1, 6)))))
            keys = Counter((address, "<" + r.message_id.strip("<>") + ">") for r in rows)
            with self._changes.lock:
                self._changes.copying.update(keys)
            self._ledger.note("copy-ask", set())
            view.copy(UidSet.of([r.uid for r in rows]), rng.choice(COPY_FOLDERS))
            with self._changes.lock:
                self._changes.copying.subtract(keys)
                self._changes.copied.update(keys)
            self._ledger.note("copy", set())


    def _wait_for_mail(self) -> None:
        seen = self._ledger.counts["deliver"]
        self._ledger.wait_for(lambda c: self._stopping.is_set() or c["deliver"] > seen, 60,
                              "mail to copy")


def _messages_by_folder(engine: Engine, address: str,
                        ids: dict[str, int]) -> dict[str, list[tuple[int, str]]]:
    """(UID, Message-ID) of every folder of the account, as the index has them now."""
    by_id = {fid: name for name, fid in ids.items()}
    held: dict[str, list[tuple[int, str]]] = {name: [] for name in ids}
    with engine.connect() as conn:
        for fid, uid, mid in conn.execute(
                select(messages.c.folder_id, messages.c.uid, messages.c.message_id)
                .where(messages.c.folder_id.in_(list(by_id)))):
            if int(fid) in by_id:
                held[by_id[int(fid)]].append((int(uid), "<" + str(mid).strip("<>") + ">"))
    return held

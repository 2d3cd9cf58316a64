"""kill -9 of every process of `nmail serve` under folder changes and copies.

tests/test_serve_kill.py's crash, with two more clients beside its mixed load
(tests/serve_kill_folders.py): a webmail user creating, renaming (with
subfolders, Korean names) and deleting folders (with their mail) and moving
mail into them, and copies from INBOX into two copy folders through the
mailbox API on the server's own index writer. The kill lands right after a
folder change or copy was answered, or a moment after one was sent. After
each restart, besides test_serve_kill's checks (every 250'd message in one
folder once outside the copy folders, no orphan directory or row, counts,
UIDNEXT, HIGHESTMODSEQ, dbsync finds nothing):

- the folder change in flight happened whole or not at all: every folder
  of the subtree under its old name with its messages, or every one under
  its new name (a delete: gone with its messages);
- each message's copies number its answered copies, plus at most one for
  each copy in flight: a copy is committed once or not at all, and the
  original is still there beside it.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

import test_serve_kill as base
from mail_truth import Truth, disk_messages, folder_marks
from nmail.db.tables import folders
from nmail.directory import Directory
from nmail.directory.passwords import fast_hashing
from nmail.mailstore.mailboxes import Mailbox, all_mailboxes
from nmail.mailstore.store import MailStore
from serve_kill_folders import COPY_FOLDERS, Changes, FolderLoad
from serve_kill_load import Doors, Ledger, Load
from serve_kill_rig import KilledServe
from serve_setup import PASSWORD, listen_specs

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ROUNDS = int(os.environ.get("NMAIL_TEST_KILL_ROUNDS", "2"))  # more for a soak
FOLDER_USER = "dan@test.local"
COPY_USER = "eve@test.local"
MOMENTS = ("folder", "folder-ask", "copy", "copy-ask")


def add_users(data: Path, engine: Engine) -> int:
    """dan and eve (with eve's copy folders); eve's account id."""
    directory = Directory(engine, passwords=fast_hashing())
    store = MailStore(engine, data / "mail", base.HOST)
    try:
        for address in (FOLDER_USER, COPY_USER):
            userid = address.split("@")[0]
            account = directory.add_account("test.local", userid.title(), userid, PASSWORD)
            store.ensure_account(account)
        for name in COPY_FOLDERS:
            store.create_folder(account.id, name)
    finally:
        store.close()
    return account.id


def until_kill(ledger: Ledger, moment: str, rng: random.Random) -> None:
    """Wait for some of everything, then for `moment`: a folder change or copy
    answered, or sent (and then a few milliseconds more, so that the kill lands
    inside its work now and then: where the kill lands, not a wait)."""
    base_counts = Counter(ledger.counts)
    least = {"deliver": rng.randint(10, 30), "folder": 3, "copy": 2, "move": 2}
    ledger.wait_for(lambda c: all(c[k] - base_counts[k] >= n for k, n in least.items()),
                    180, f"a mixed load ({least})")
    seen = ledger.counts[moment]
    ledger.wait_for(lambda c: c[moment] > seen, 60, f"one more {moment}")
    if moment.endswith("-ask"):
        time.sleep(rng.uniform(0, 0.05))


def folder_problems(engine: Engine, truth: Truth, changes: Changes) -> list[str]:
    """The folder change in flight at the kill happened whole or not at all."""
    change = changes.pending
    changes.pending = None
    if change is None:
        return []
    box = _box(engine, FOLDER_USER)
    disk = disk_messages(box.maildir(truth.mail_dir))
    where = {(FOLDER_USER, m.message_id): m.folder for m in disk}
    names = _folder_names(engine, box.account_id)
    olds = {n for n in change.names if n in names}
    news = {n for n in change.names.values() if n and n in names}
    if olds == set(change.names) and not news:
        wanted = change.keys  # it did not happen
    elif not olds and news == {n for n in change.names.values() if n}:
        wanted = {k: change.names[f] for k, f in change.keys.items()}  # it did
    else:
        return [f"{change.kind} of {sorted(change.names)} half done: old names left "
                f"{sorted(olds)}, new names {sorted(news)}"]
    out = []
    for key, folder in wanted.items():
        if folder and where.get(key) != folder:
            out.append(f"{change.kind} {'done' if news or not olds else 'not done'}: "
                       f"{key[1]} is in {where.get(key)}, not {folder}")
    return out


def copy_problems(engine: Engine, truth: Truth, changes: Changes) -> list[str]:
    """Each message's copies: its answered ones plus at most those in flight."""
    box = _box(engine, COPY_USER)
    disk = disk_messages(box.maildir(truth.mail_dir))
    found = Counter((COPY_USER, m.message_id) for m in disk if m.folder in COPY_FOLDERS)
    out = []
    for key in sorted(set(found) | set(changes.copied) | set(+changes.copying)):
        least, most = changes.copied[key], changes.copied[key] + changes.copying[key]
        if not least <= found[key] <= most:
            out.append(f"{key[1]}: {found[key]} copies, {least} answered and "
                       f"{most - least} in flight")
    # What the copies in flight came to is known now: the next round counts on.
    changes.copied = Counter(found)
    changes.copying = Counter()
    return out


def _box(engine: Engine, address: str) -> Mailbox:
    with engine.connect() as conn:
        return next(b for b in all_mailboxes(conn) if b.address == address)


def _folder_names(engine: Engine, account_id: int) -> set[str]:
    with engine.connect() as conn:
        return {str(n) for n in conn.execute(
            select(folders.c.name).where(folders.c.account_id == account_id)).scalars()}


def test_kill_9_under_folder_changes_and_copies(
    tmp_path: Path, db_url: str, engine: Engine
) -> None:
    data = base.make_data(tmp_path, db_url, engine)
    copy_account = add_users(data, engine)
    ports = listen_specs("smtp", "pop3", "http")
    doors = Doors(ports["smtp"], ports["pop3"], ports["http"], base.WEB_USERS, base.POP3_USER,
                  PASSWORD)
    log = tmp_path / "serve.log"
    ledger = Ledger()
    changes = Changes()
    truth = Truth(data / "mail", copy_folders=frozenset(COPY_FOLDERS))
    rng = random.Random(20261207)
    with KilledServe(data, ports, log, engine) as server:
        for round_number in range(ROUNDS):
            load = Load(doors, engine, ledger, seed=round_number, senders=1)
            folders = FolderLoad(
                smtp=ports["smtp"], http=ports["http"], password=PASSWORD, engine=engine,
                mail_dir=data / "mail", host=base.HOST, supervisor=server.pid,
                folder_user=FOLDER_USER, copy_user=(COPY_USER, copy_account), ledger=ledger,
                changes=changes, seed=round_number)
            try:
                until_kill(ledger, MOMENTS[round_number % len(MOMENTS)], rng)
            finally:
                load.stop()
                folders.stop()
                server.kill()
                load.join()
                folders.join()
            assert not ledger.errors, ledger.errors[:5]
            marks = folder_marks(engine)
            server.restart()
            problems = truth.problems(engine, ledger.promises(), marks)
            problems += folder_problems(engine, truth, changes)
            problems += copy_problems(engine, truth, changes)
            assert not problems, f"round {round_number}: " + "\n".join(problems[:20])
            base.dbsync_finds_nothing(data, engine)
    print("answered:", dict(ledger.counts))

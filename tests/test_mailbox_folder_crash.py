"""A folder rename or delete killed before its COMMIT did not happen; after it, it did.

op_folders renames a subtree's directories (or moves them aside into
`nmail-deleted-*`) before the COMMIT and removes the moved-aside tree after
it. A child process dies (os._exit, as kill -9 would leave it) after the
first directory rename, after the last one (at the flush before the rows
change) or after the COMMIT; start-up repair then puts an uncommitted
change's directories back under their rows' names (mailstore/folder_undo.py)
and finishes a committed one. Repair used to take the disk as it found it:
a delete that was never answered lost the folder's messages.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, select

from cli_admin_support import write_config
from nmail.db.tables import folders
from nmail.directory.model import Account
from nmail.mailstore.layout import disk_folder_names
from nmail.mailstore.store import MailStore
from nmail.mailstore.uidset import UidSet
from nmail.mailstore.write_lock import write_transaction
from test_mailstore_support import (
    HOST,
    alice,
    folder_dir,
    mail_root,
    maildir,
    new,
    store,
)

__all__ = ["alice", "mail_root", "store"]  # fixtures

TREE = ("거래처", "거래처/2026", "거래처/2026/견적")

# Runs one folder change in a child that dies at the point argv[6] names:
# "first" = after the first directory rename, "flush" = after every rename
# (the Maildir flush before the rows change), "commit" = after the COMMIT
# (when the moved-aside tree would be removed).
CHILD = r"""
import os, shutil, sys
from nmail.db.engine import make_engine
from nmail.mailstore import op_folders
from nmail.mailstore.store import MailStore

def die(*args, **kwargs):
    sys.stdout.write("died\n")
    sys.stdout.flush()
    os._exit(9)

real_rename = os.rename
def rename_once(src, dst):
    real_rename(src, dst)
    if os.path.isdir(dst):  # a folder's directory, not nmail-uidvalidity's .tmp
        die()

engine = make_engine(sys.argv[1])
store = MailStore(engine, sys.argv[2], sys.argv[3])
account, action, point = int(sys.argv[4]), sys.argv[5], sys.argv[6]
if point == "first":
    os.rename = rename_once
elif point == "flush":
    op_folders.fsync_dir = die
else:
    shutil.rmtree = die
if action == "delete":
    store.delete_folder(account, "거래처", force=True)
else:
    store.rename_folder(account, "거래처", "고객/거래처")
sys.stdout.write("answered\n")
"""


def _run_child(engine: Engine, root: Path, account: Account, action: str, point: str) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    url = engine.url.render_as_string(hide_password=False)
    child = subprocess.run(
        [sys.executable, "-c", CHILD, url, str(root), HOST, str(account.id), action, point],
        env=env, capture_output=True, text=True, timeout=120)
    assert child.returncode == 9, child.stderr
    assert child.stdout.splitlines() == ["died"]


def _state(store: MailStore, engine: Engine, account: Account) -> dict[str, object]:
    """Each folder's UIDVALIDITY, role and (UID, subject) of its messages."""
    with engine.connect() as conn:
        roles = dict(conn.execute(select(folders.c.name, folders.c.role)
                                  .where(folders.c.account_id == account.id)).all())
    out: dict[str, object] = {}
    for info in store.list_folders(account.id):
        view = store.open_folder(account.id, info.name)
        rows = view.summaries(UidSet.of(view.uids())) if view.uids() else []
        out[info.name] = (info.uidvalidity, roles[info.name],
                          sorted((r.uid, r.subject) for r in rows))
    return out


def _populated(store: MailStore, account: Account) -> None:
    store.ensure_account(account)
    store.create_folder(account.id, "거래처", role="\\Archive")
    for name in TREE[1:]:
        store.create_folder(account.id, name)
    for n, name in enumerate(TREE):
        store.store([new(account, name, subject=f"{name} {i}") for i in range(2 + n)])


def _leftovers(root: Path, account: Account) -> list[str]:
    return [e for e in os.listdir(maildir(root, account)) if e.startswith("nmail-deleted-")]


@pytest.mark.parametrize("action", ["delete", "rename"])
@pytest.mark.parametrize("point", ["first", "flush"])
def test_a_change_killed_before_its_commit_is_undone_by_repair(
    store: MailStore, alice: Account, engine: Engine, mail_root: Path, action: str,
    point: str,
) -> None:
    _populated(store, alice)
    before = _state(store, engine, alice)
    _run_child(engine, mail_root, alice, action, point)

    report = store.repair()
    assert (report.added, report.removed, report.renumbered) == (0, 0, 0)
    after = _state(store, engine, alice)
    # A rename may leave the parent it was making ("고객"), empty, as a folder.
    assert {k: v for k, v in after.items() if k != "고객"} == before
    made = after.get("고객")
    assert made is None or made[1:] == (None, [])  # type: ignore[index]
    assert _leftovers(mail_root, alice) == []
    synced = store.dbsync([alice])
    assert (synced.total.added, synced.total.removed, synced.total.renumbered) == (0, 0, 0)


def test_a_delete_killed_after_its_commit_stays_done(
    store: MailStore, alice: Account, engine: Engine, mail_root: Path
) -> None:
    _populated(store, alice)
    before = _state(store, engine, alice)
    _run_child(engine, mail_root, alice, "delete", "commit")
    assert _leftovers(mail_root, alice)

    report = store.repair()
    assert (report.added, report.removed) == (0, 0)
    assert _state(store, engine, alice) == {k: v for k, v in before.items()
                                            if k not in TREE}
    assert _leftovers(mail_root, alice) == []


def test_a_stray_directory_with_another_folders_uidvalidity_is_left_alone(
    store: MailStore, alice: Account, engine: Engine, mail_root: Path
) -> None:
    """Only a row without its directory takes a directory back: a folder made by
    another tool (here a copy of one, same nmail-uidvalidity) is indexed, not moved."""
    _populated(store, alice)
    box = maildir(mail_root, alice)
    os.mkdir(box / ".Copied")
    for sub in ("cur", "new", "tmp"):
        os.mkdir(box / ".Copied" / sub)
    (box / ".Copied" / "nmail-uidvalidity").write_bytes(
        (box / ".&rHC3mMyY-" / "nmail-uidvalidity").read_bytes())
    before = _state(store, engine, alice)
    store.repair()
    after = _state(store, engine, alice)
    assert {k: v for k, v in after.items() if k != "Copied"} == before
    assert "Copied" in after


# -- `nmail dbsync` run offline right after the crash (no `nmail serve` start between)


def _nmail_dbsync(
    engine: Engine, mail_root: Path, *target: str
) -> subprocess.CompletedProcess[str]:
    """The real command, as an admin runs it: its data directory is mail_root's parent
    (the config's mail directory is `<data>/mail`)."""
    data = mail_root.parent
    write_config(data, engine.url.render_as_string(hide_password=False))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "200",
           "PYTHONIOENCODING": "utf-8"}
    return subprocess.run(
        [sys.executable, "-m", "nmail", "--data", str(data), "dbsync", *target],
        env=env, capture_output=True, text=True, timeout=120, check=False)


def _rows_without_directory(mail_root: Path, account: Account) -> set[str]:
    return set(TREE) - set(disk_folder_names(maildir(mail_root, account)))


def _disk(mail_root: Path) -> list[tuple[str, ...]]:
    """Every path under the mail root (to prove a refused command touched nothing)."""
    return sorted((str(p.relative_to(mail_root)),) for p in mail_root.rglob("*"))


@pytest.mark.parametrize("action", ["delete", "rename"])
@pytest.mark.parametrize("point", ["first", "flush"])
def test_dbsync_right_after_the_crash_undoes_a_change_that_did_not_commit(
    store: MailStore, alice: Account, engine: Engine, mail_root: Path, action: str,
    point: str,
) -> None:
    _populated(store, alice)
    before = _state(store, engine, alice)
    _run_child(engine, mail_root, alice, action, point)
    moved = _rows_without_directory(mail_root, alice)
    assert moved  # the crash left rows whose directories were moved

    ran = _nmail_dbsync(engine, mail_root, "ALL")
    assert (ran.returncode, ran.stderr) == (0, ""), ran.stderr
    assert "alice@example.test: put back folder(s) a crash left renamed or deleted" in ran.stdout
    assert all(name in ran.stdout for name in moved), ran.stdout
    assert "0 added, 0 removed, 9 kept, 0 renumbered" in ran.stdout
    after = _state(store, engine, alice)
    assert {k: v for k, v in after.items() if k != "고객"} == before
    made = after.get("고객")
    assert made is None or made[1:] == (None, [])  # type: ignore[index]
    assert _leftovers(mail_root, alice) == []

    again = _nmail_dbsync(engine, mail_root, "alice@example.test")
    assert again.returncode == 0 and "put back" not in again.stdout
    assert "0 added, 0 removed, 9 kept, 0 renumbered" in again.stdout
    assert store.repair().removed == 0 and _state(store, engine, alice) == after


def test_dbsync_right_after_a_committed_delete_does_not_bring_it_back(
    store: MailStore, alice: Account, engine: Engine, mail_root: Path
) -> None:
    _populated(store, alice)
    before = _state(store, engine, alice)
    _run_child(engine, mail_root, alice, "delete", "commit")
    assert _leftovers(mail_root, alice)

    ran = _nmail_dbsync(engine, mail_root, "ALL")
    assert (ran.returncode, ran.stderr) == (0, ""), ran.stderr
    assert "put back" not in ran.stdout
    assert "0 added, 0 removed, 0 kept, 0 renumbered" in ran.stdout  # INBOX was empty
    assert _state(store, engine, alice) == {k: v for k, v in before.items() if k not in TREE}
    assert _leftovers(mail_root, alice) == []


def test_dbsync_of_an_unknown_address_after_a_crash_changes_nothing(
    store: MailStore, alice: Account, engine: Engine, mail_root: Path
) -> None:
    _populated(store, alice)
    before = _state(store, engine, alice)
    _run_child(engine, mail_root, alice, "delete", "flush")
    disk = _disk(mail_root)
    with engine.connect() as conn:
        rows = sorted(conn.execute(select(folders.c.name, folders.c.uidvalidity)).all())

    for target in ("nobody@example.test", "not an address"):
        ran = _nmail_dbsync(engine, mail_root, target)
        assert ran.returncode == 1
        assert ran.stderr.strip().splitlines() == [f"nmail: error: no such account: {target}"]
        assert ran.stdout == ""
    assert _disk(mail_root) == disk
    with engine.connect() as conn:
        assert sorted(conn.execute(select(folders.c.name, folders.c.uidvalidity)).all()) == rows

    # The account's own address then puts the folder back.
    ran = _nmail_dbsync(engine, mail_root, "Alice@Example.TEST")
    assert ran.returncode == 0 and "put back" in ran.stdout
    assert _state(store, engine, alice) == before


def _waits_for_a_lock(engine: Engine, child: subprocess.Popen[str]) -> bool:
    """Whether `child` (or on a server, some session of this test's database) is
    waiting for a lock now."""
    dialect = engine.dialect.name
    if dialect == "sqlite":  # the writers' flock on <database>.writer-lock
        waiting = Path("/proc/locks").read_text(encoding="ascii").splitlines()
        return any("->" in line and line.split("->", 1)[1].split()[3] == str(child.pid)
                   for line in waiting)
    if dialect == "postgresql":
        query = ("SELECT count(*) FROM pg_stat_activity"
                 " WHERE datname = current_database() AND wait_event_type = 'Lock'")
    else:  # an InnoDB lock wait of a session on this test's database
        query = ("SELECT count(*) FROM information_schema.innodb_trx t"
                 " JOIN information_schema.processlist p ON p.id = t.trx_mysql_thread_id"
                 " WHERE t.trx_state = 'LOCK WAIT' AND p.db = DATABASE()")
    with engine.connect() as conn:
        return bool(conn.exec_driver_sql(query).scalar())


# InnoDB refills its information_schema.innodb_trx cache only when nobody read it
# for 100 ms (CACHE_MIN_IDLE_TIME in trx0i_s.cc): looks 50 ms apart saw the same
# stale table until the deadline, and the test waited its whole 30 s on MariaDB.
LOOK_PAUSE = {"mariadb": 0.15, "mysql": 0.15}


def test_dbsync_beside_a_folder_change_in_flight_waits_for_its_commit(
    store: MailStore, alice: Account, engine: Engine, mail_root: Path
) -> None:
    """A running server's delete between its directory moves and its COMMIT holds
    the account's folder lock: dbsync waits for it instead of putting it back."""
    _populated(store, alice)
    before = _state(store, engine, alice)
    box = maildir(mail_root, alice)
    trash = box / "nmail-deleted-999999-0"
    child: subprocess.Popen[str] | None = None
    try:
        with engine.connect() as conn, write_transaction(conn):
            rows = dict(conn.execute(
                select(folders.c.name, folders.c.id).where(folders.c.account_id == alice.id)
                .order_by(folders.c.id).with_for_update()).all())
            trash.mkdir()
            for name in sorted(TREE, reverse=True):  # as op_folders.delete_folder does
                src = folder_dir(mail_root, alice, name)
                os.rename(src, trash / src.name)
            data = mail_root.parent
            write_config(data, engine.url.render_as_string(hide_password=False))
            child = subprocess.Popen(
                [sys.executable, "-m", "nmail", "--data", str(data), "dbsync", "ALL"],
                env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path),
                     "COLUMNS": "200", "PYTHONIOENCODING": "utf-8"},
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            # Until it waits, or (not seen waiting) well before MariaDB's 50 s lock
            # wait timeout: the outcome below is checked either way.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not _waits_for_a_lock(engine, child):
                assert child.poll() is None, child.communicate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    # The pause between looks; exits are caught above.
                    child.wait(timeout=LOOK_PAUSE.get(engine.dialect.name, 0.05))
            conn.execute(delete(folders).where(folders.c.id.in_([rows[n] for n in TREE])))
        shutil.rmtree(trash, ignore_errors=True)  # what the delete does after its COMMIT
        out, err = child.communicate(timeout=120)
    finally:
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()
    assert (child.returncode, err) == (0, ""), err
    assert "put back" not in out
    assert _state(store, engine, alice) == {k: v for k, v in before.items() if k not in TREE}
    assert _rows_without_directory(mail_root, alice) == set(TREE)  # no directory came back
    assert _leftovers(mail_root, alice) == []

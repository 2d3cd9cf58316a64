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

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from nmail.db.tables import folders
from nmail.directory.model import Account
from nmail.mailstore.store import MailStore
from nmail.mailstore.uidset import UidSet
from test_mailstore_support import HOST, alice, mail_root, maildir, new, store

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

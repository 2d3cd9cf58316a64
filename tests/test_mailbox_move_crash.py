"""A move killed between its renames and its COMMIT keeps every message's keywords.

The move renames each file into the target, named with the letters the
target's `dovecot-keywords` gives its keywords (op_transfer). A keyword new
to the target gets its letter there, and the file recording it must be
durable before any file carries that letter: killed after a rename and
before the COMMIT, the moved file has no row, and repair reads its flags
back from its letters alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import Engine

from nmail.directory.model import Account
from nmail.mailstore.store import MailStore
from nmail.mailstore.uidset import UidSet
from test_mailstore_support import HOST, alice, folder_dir, mail_root, new, store

__all__ = ["alice", "mail_root", "store"]  # fixtures

# Moves INBOX 1:3 to Archive in a child that dies (os._exit, as kill -9 would
# leave it) right after the first file's rename, before the move's COMMIT.
CHILD = r"""
import os, sys
from nmail.db.engine import make_engine
from nmail.mailstore import op_transfer
from nmail.mailstore.store import MailStore
from nmail.mailstore.uidset import UidSet

def place_and_die(src, dst, move):
    os.rename(src, dst)
    sys.stdout.write("renamed\n")
    sys.stdout.flush()
    os._exit(9)

op_transfer._place = place_and_die
engine = make_engine(sys.argv[1])
store = MailStore(engine, sys.argv[2], sys.argv[3])
store.open_folder(int(sys.argv[4]), "INBOX").move(UidSet.of([1, 2, 3]), "Archive")
"""


def test_a_move_killed_before_its_commit_keeps_the_keywords(
    store: MailStore, alice: Account, engine: Engine, mail_root: Path
) -> None:
    store.ensure_account(alice)
    store.store([new(alice, subject=f"m{i}") for i in range(3)])
    labelled = frozenset({"\\Seen", "$Label"})
    store.open_folder(alice.id, "INBOX").store_flags(UidSet.of([1, 2, 3]), "add",
                                                     sorted(labelled))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    url = engine.url.render_as_string(hide_password=False)
    child = subprocess.run(
        [sys.executable, "-c", CHILD, url, str(mail_root), HOST, str(alice.id)],
        env=env, capture_output=True, text=True, timeout=120)
    assert child.returncode == 9, child.stderr
    assert child.stdout.splitlines() == ["renamed"]
    archive = folder_dir(mail_root, alice, "Archive")
    assert (archive / "dovecot-keywords").read_text() == "0 $Label\n"

    report = store.repair()
    assert (report.added, report.removed) == (1, 1)  # the moved one: in Archive alone
    flags = []
    for name in ("INBOX", "Archive"):
        view = store.open_folder(alice.id, name)
        flags += [r.flags for r in view.summaries(UidSet.of(view.uids()))] if view.uids() else []
    assert flags == [labelled] * 3
    synced = store.dbsync([alice])
    assert (synced.total.added, synced.total.removed, synced.total.renumbered) == (0, 0, 0)

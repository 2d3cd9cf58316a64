"""File names follow a flag change after its COMMIT (flag_names.py): the caller
is answered first, the `:2,` renames come after, and `folders.names_modseq`
marks up to where names follow the index. A process killed between the
COMMIT and the renames loses no flag change: repair brings the names up to
the index, and dbsync then finds nothing to fix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import Engine, select

from nmail.db.tables import folders
from nmail.directory.model import Account
from nmail.mailstore.names import parse_disk_name
from nmail.mailstore.store import MailStore
from nmail.mailstore.uidset import UidSet
from test_mailstore_support import HOST, alice, folder_dir, mail_root, new, store

__all__ = ["alice", "mail_root", "store"]  # fixtures

# Changes flags in a child process that dies (os._exit, as kill -9 would leave
# it) right after the COMMIT and the answer, before the first rename.
CHILD = r"""
import os, sys, threading
from nmail.db.engine import make_engine
from nmail.mailstore import op_flags
from nmail.mailstore.store import MailStore
from nmail.mailstore.uidset import UidSet

def die(*args, **kwargs):
    sys.stdout.write("committed\n")
    sys.stdout.flush()
    os._exit(9)

op_flags.rename_all = die  # what the writer calls after answering
engine = make_engine(sys.argv[1])
store = MailStore(engine, sys.argv[2], sys.argv[3])
view = store.open_folder(int(sys.argv[4]), "INBOX")
view.store_flags(UidSet.of([1, 2, 3]), "add", ["\\Seen", "$Label"])
threading.Event().wait(30)  # the writer thread ends the process
"""


def _letters(directory: Path) -> dict[int, str]:
    out: dict[int, str] = {}
    for sub in ("new", "cur"):
        for name in os.listdir(directory / sub):
            parsed = parse_disk_name(name)
            assert parsed.uid is not None
            out[parsed.uid] = (sub, parsed.letters)  # type: ignore[assignment]
    return out


def _marks(engine: Engine, folder_id: int) -> tuple[int, int]:
    with engine.connect() as conn:
        row = conn.execute(select(folders.c.highest_modseq, folders.c.names_modseq)
                           .where(folders.c.id == folder_id)).one()
    return int(row.highest_modseq), int(row.names_modseq)


def test_a_crash_after_the_commit_and_before_the_renames_loses_no_flag_change(
    store: MailStore, alice: Account, engine: Engine, db_url: str, mail_root: Path
) -> None:
    store.ensure_account(alice)
    store.store([new(alice, subject=f"m{i}") for i in range(4)])
    inbox = folder_dir(mail_root, alice, "INBOX")
    before = _letters(inbox)
    assert before == {uid: ("new", "") for uid in (1, 2, 3, 4)}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    url = engine.url.render_as_string(hide_password=False)
    child = subprocess.run(
        [sys.executable, "-c", CHILD, url, str(mail_root), HOST, str(alice.id)],
        env=env, capture_output=True, text=True, timeout=120)
    assert child.returncode == 9, child.stderr
    assert child.stdout.splitlines() == ["committed"]

    # Committed, answered, not renamed: the index has the flags, the names not.
    view = store.open_folder(alice.id, "INBOX")
    rows = view.summaries(UidSet.of([1, 2, 3, 4]))
    assert [r.flags for r in rows] == [frozenset({"\\Seen", "$Label"})] * 3 + [frozenset()]
    assert _letters(inbox) == before
    highest, mark = _marks(engine, view.folder_id)
    assert mark < highest
    # Readers find each file under its old name meanwhile.
    for uid in (1, 2, 3):
        assert view.read(uid) is not None
        path = view.message_path(uid)
        assert path is not None and path.parent.name == "new"

    report = store.repair()
    assert (report.added, report.removed, report.renumbered) == (0, 0, 0)
    assert _letters(inbox) == {1: ("cur", "Sa"), 2: ("cur", "Sa"), 3: ("cur", "Sa"),
                               4: ("new", "")}
    assert _marks(engine, view.folder_id) == (highest, highest)
    assert (inbox / "dovecot-keywords").read_text() == "0 $Label\n"

    synced = store.dbsync([alice])
    assert (synced.total.added, synced.total.removed, synced.total.renumbered) == (0, 0, 0)
    again = store.open_folder(alice.id, "INBOX")
    assert [r.flags for r in again.summaries(UidSet.of([1, 2, 3, 4]))] == [r.flags for r in rows]
    assert again.info.unseen_count == 1 and again.info.highest_modseq == highest


def test_names_follow_after_the_answer_and_the_next_change_advances_the_mark(
    store: MailStore, alice: Account, engine: Engine, mail_root: Path
) -> None:
    store.ensure_account(alice)
    store.store([new(alice, subject=f"m{i}") for i in range(3)])
    inbox = folder_dir(mail_root, alice, "INBOX")
    view = store.open_folder(alice.id, "INBOX")
    first = view.store_flags(UidSet.of([1, 2]), "add", ["\\Flagged"])
    second = view.store_flags(UidSet.of([2, 3]), "add", ["\\Seen"])
    # The writer made the first change's renames before it took the second,
    # whose transaction moved the mark up to the first one's MODSEQ.
    assert _marks(engine, view.folder_id) == (second.highest_modseq, first.highest_modseq)
    store.create_folder(alice.id, "Later")  # a job after the second change: its renames done
    assert _letters(inbox) == {1: ("cur", "F"), 2: ("cur", "FS"), 3: ("cur", "S")}
    # An unchanged-flag call commits nothing and leaves the mark alone.
    same = view.store_flags(UidSet.of([1]), "add", ["\\Flagged"])
    assert same.changed == () and _marks(engine, view.folder_id) == (
        second.highest_modseq, first.highest_modseq)
    report = store.dbsync([alice])
    assert (report.total.added, report.total.removed, report.total.renumbered) == (0, 0, 0)
    assert _marks(engine, view.folder_id) == (second.highest_modseq, second.highest_modseq)


def test_below_the_mark_another_tools_letters_still_win_in_dbsync(
    store: MailStore, alice: Account, mail_root: Path
) -> None:
    store.ensure_account(alice)
    store.store([new(alice, subject="m")])
    view = store.open_folder(alice.id, "INBOX")
    view.store_flags(UidSet.of([1]), "add", ["\\Seen"])
    store.dbsync([alice])  # the mark reaches HIGHESTMODSEQ
    inbox = folder_dir(mail_root, alice, "INBOX")
    (name,) = os.listdir(inbox / "cur")
    os.rename(inbox / "cur" / name, inbox / "cur" / name.replace(":2,S", ":2,RS"))  # mutt: replied
    store.dbsync([alice])
    (row,) = store.open_folder(alice.id, "INBOX").summaries(UidSet.of([1]))
    assert row.flags == frozenset({"\\Seen", "\\Answered"})


def test_a_rename_that_failed_is_finished_by_the_next_change(
    store: MailStore, alice: Account, engine: Engine, mail_root: Path
) -> None:
    store.ensure_account(alice)
    store.store([new(alice, subject=f"m{i}") for i in range(2)])
    inbox = folder_dir(mail_root, alice, "INBOX")
    view = store.open_folder(alice.id, "INBOX")
    # The renames fail (a cur/ that is not a directory for a moment).
    (inbox / "cur").rmdir()
    (inbox / "cur").write_bytes(b"")
    first = view.store_flags(UidSet.of([1]), "add", ["\\Seen"])
    store.create_folder(alice.id, "Barrier")  # its renames were tried (and failed) before this
    (inbox / "cur").unlink()
    (inbox / "cur").mkdir()
    assert _letters(inbox) == {1: ("new", ""), 2: ("new", "")}
    second = view.store_flags(UidSet.of([2]), "add", ["\\Flagged"])
    store.create_folder(alice.id, "Barrier2")
    assert _letters(inbox) == {1: ("cur", "S"), 2: ("cur", "F")}
    assert _marks(engine, view.folder_id) == (second.highest_modseq, first.highest_modseq)


def test_a_new_folder_starts_with_names_following_and_keeps_another_tools_keyword(
    store: MailStore, alice: Account, engine: Engine, mail_root: Path
) -> None:
    store.ensure_account(alice)
    created = store.create_folder(alice.id, "Work")
    assert _marks(engine, created.id) == (created.highest_modseq, created.highest_modseq)
    for info in store.list_folders(alice.id):  # the default folders too
        assert _marks(engine, info.id)[1] == info.highest_modseq
    store.append(alice, "Work", new(alice).content, flags=["\\Seen"])
    before = store.open_folder(alice.id, "Work").info.highest_modseq
    # Another tool (Dovecot) gives the message a keyword: a letter and its line.
    work = folder_dir(mail_root, alice, "Work")
    (work / "dovecot-keywords").write_text("0 $Forwarded\n")
    (name,) = os.listdir(work / "cur")
    os.rename(work / "cur" / name, work / "cur" / name.replace(":2,S", ":2,Sa"))
    store.dbsync([alice])
    view = store.open_folder(alice.id, "Work")
    (row,) = view.summaries(UidSet.of([1]))
    assert row.flags == frozenset({"\\Seen", "$Forwarded"})
    changes = view.changes_since(before)
    assert [(uid, flags) for uid, _, flags in changes.changed] == [
        (1, frozenset({"\\Seen", "$Forwarded"}))]
    assert os.listdir(work / "cur") == [name.replace(":2,S", ":2,Sa")]

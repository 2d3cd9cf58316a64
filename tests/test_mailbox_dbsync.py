"""dbsync on the mailbox model: nested folders, keywords and UIDs come back from the files."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, delete

from nmail.db.tables import folders
from nmail.directory.model import Account
from nmail.mailstore.store import MailStore
from nmail.mailstore.uidset import UidSet
from test_mailstore_support import alice, folder_dir, mail_root, new, store

__all__ = ["alice", "mail_root", "store"]  # fixtures


def _snapshot(store: MailStore, account: Account) -> dict[str, object]:
    out: dict[str, object] = {}
    for info in store.list_folders(account.id):
        view = store.open_folder(account.id, info.name)
        rows = view.summaries(view.uid_set("1:*")) if info.next_uid > 1 else []
        out[info.name] = (info.uidvalidity, info.message_count, info.unseen_count,
                          info.total_size, info.role,
                          [(r.uid, r.subject, r.flags) for r in rows])
    return out


def test_a_lost_index_comes_back_with_nested_folders_keywords_and_uids(
    store: MailStore, alice: Account, engine: Engine, mail_root: Path
) -> None:
    store.ensure_account(alice)
    store.create_folder(alice.id, "거래처/2026")
    store.store([new(alice, "거래처/2026", subject=f"invoice {i}") for i in range(5)])
    store.store([new(alice, subject=f"hello {i}") for i in range(4)])
    view = store.open_folder(alice.id, "거래처/2026")
    view.store_flags(UidSet.of([2, 4]), "add", ["\\Seen", "$Forwarded", "$Label"])
    view.move(UidSet.of([5]), "Archive")
    inbox = store.open_folder(alice.id, "INBOX")
    inbox.store_flags(UidSet.of([1]), "add", ["\\Flagged", "$Junk"])
    inbox.expunge(UidSet.of([3]))
    sent = store.append(alice, "Sent", b"Subject: sent\r\n\r\nbody\r\n",
                        flags=["\\Seen", "$Forwarded"])
    path = store.open_folder(alice.id, "Sent").message_path(sent.uid)
    assert path is not None and path.name.endswith(":2,Sa")  # $Forwarded is letter a
    before = _snapshot(store, alice)
    assert (folder_dir(mail_root, alice, "거래처/2026") / "dovecot-keywords").read_text() == (
        "0 $Forwarded\n1 $Label\n")

    # Nothing to fix while the index is whole.
    report = store.dbsync([alice])
    assert (report.total.added, report.total.removed, report.total.renumbered) == (0, 0, 0)
    assert _snapshot(store, alice) == before

    # The index is lost (every folder row and so every message row).
    with engine.begin() as conn:
        conn.execute(delete(folders).where(folders.c.account_id == alice.id))
    report = store.dbsync([alice])
    assert report.total.renumbered == 0 and report.total.added == 9
    after = _snapshot(store, alice)
    for name, state in before.items():
        validity, count, unseen, size, role, rows = state  # type: ignore[misc]
        assert after[name] == (validity, count, unseen, size, role, rows), name
    # UIDs are never handed out again: the next delivery follows the old ones.
    assert store.store([new(alice)])[0].uid == 5

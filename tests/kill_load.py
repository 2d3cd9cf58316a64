"""Processes the kill -9 test starts: an index writer, and a load of mailbox changes.

    python tests/kill_load.py writer URL ADDRESS
    python tests/kill_load.py load URL MAILDIR ADDRESS ACCOUNT_ID SEED

The load delivers messages (each with a unique Message-ID), moves UID sets
between INBOX and Archive, and changes flags, all through the writer at
ADDRESS, printing "acked <message-id>" once a delivery's commit is
confirmed, until it is killed.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

from nmail.db.engine import make_engine
from nmail.mailstore.index_client import RemoteIndex
from nmail.mailstore.index_service import listen_socket, serve_index_writer
from nmail.mailstore.model import NewMessage, StoreError
from nmail.mailstore.store import MailStore
from nmail.mailstore.uidset import UidSet


def say(line: str) -> None:
    """One line in one write. print() is two even for one string (the text, then
    its end), each a write of its own with PYTHONUNBUFFERED=1, as CI runs: a kill
    between them left a line without its end (tests/test_mailbox_kill.py Output)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def writer(url: str, address: str) -> None:
    engine = make_engine(url)
    listener = listen_socket(address)
    say("ready")
    serve_index_writer(engine, listener)


def load(url: str, mail_dir: str, address: str, account_id: int, seed: int) -> None:
    from nmail.directory.model import Account

    engine = make_engine(url)
    store = MailStore(engine, Path(mail_dir), "kill.test", index_client=RemoteIndex(address))
    account = Account(id=account_id, domain="example.test", userid="alice",
                      display_name="Alice", quota_bytes=0, is_admin=False,
                      is_server_admin=False, receive_enabled=True, login_enabled=True)
    rng = random.Random(seed)
    n = 0
    while True:
        n += 1
        action = rng.random()
        try:
            if action < 0.5:
                ids = [f"<{seed}.{n}.{i}@kill.test>" for i in range(rng.randint(1, 4))]
                store.store([NewMessage(account, "INBOX", b"", (
                    f"From: x@kill.test\r\nMessage-ID: {mid}\r\nSubject: {mid}\r\n\r\nbody\r\n"
                ).encode()) for mid in ids])
                for mid in ids:
                    say(f"acked {mid}")
                continue
            source, target = rng.choice((("INBOX", "Archive"), ("Archive", "INBOX")))
            view = store.open_folder(account_id, source)
            uids = view.uids()
            if not uids:
                continue
            picked = UidSet.of(rng.sample(uids, min(len(uids), rng.randint(1, 20))))
            if action < 0.8:
                view.move(picked, target)
            else:
                view.store_flags(picked, rng.choice(("add", "remove")),
                                 rng.sample(["\\Seen", "\\Flagged", "$Label"], 2))
        except StoreError as exc:
            say(f"error {exc}")


if __name__ == "__main__":
    # ADDRESS is an abstract socket's name without its leading NUL (argv cannot hold one).
    if sys.argv[1] == "writer":
        writer(sys.argv[2], "\0" + sys.argv[3])
    else:
        load(sys.argv[2], sys.argv[3], "\0" + sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))

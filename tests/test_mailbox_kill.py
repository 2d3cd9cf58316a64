"""kill -9 of the index writer and the process sending it changes, in the middle of
deliveries, moves and flag changes, again and again: after each restart's repair
every message is in exactly one folder, nothing acknowledged is missing, and
`dbsync` finds nothing left to fix."""

from __future__ import annotations

import os
import random
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine

from nmail.mailstore.names import parse_disk_name
from nmail.mailstore.store import MailStore
from test_mailstore_support import HOST, alice, folder_dir, mail_root, message_rows

__all__ = ["alice", "mail_root"]  # fixtures

ROUNDS = 5
SCRIPT = str(Path(__file__).with_name("kill_load.py"))


class Output:
    """A child's stdout lines, read on a thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self.thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if not line.endswith("\n"):
                # The child was killed in the middle of a line: half an "acked" line
                # says nothing (kill_load.say writes a line at once; a print would not).
                break
            with self.cond:
                self.lines.append(line.strip())
                self.cond.notify_all()

    def wait_for(self, predicate: object, deadline: float) -> None:
        with self.cond:
            while not predicate(self.lines):  # type: ignore[operator]
                left = deadline - time.monotonic()
                assert left > 0, f"timed out; output so far: {self.lines[-5:]}"
                self.cond.wait(left)


def _message_ids(folder: Path) -> list[str]:
    found = []
    for sub in ("new", "cur"):
        for name in os.listdir(folder / sub):
            data = (folder / sub / name).read_bytes()
            head = data.split(b"\r\n\r\n", 1)[0]
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"message-id:"):
                    found.append(line.split(b":", 1)[1].strip().decode())
            assert parse_disk_name(name).uid is not None
    return found


@pytest.mark.timeout(900)
def test_kill_9_during_deliveries_moves_and_flags(
    engine: Engine, db_url: str, mail_root: Path, alice: object, tmp_path: Path
) -> None:
    account = alice
    setup = MailStore(engine, mail_root, HOST)
    setup.ensure_account(account)  # type: ignore[arg-type]
    setup.close()
    acked: set[str] = set()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    rng = random.Random(20261206)
    for round_number in range(ROUNDS):
        address = f"nmail-kill-{secrets.token_hex(8)}"  # abstract: the children add the NUL
        writer = subprocess.Popen([sys.executable, SCRIPT, "writer", db_url, address],
                                  stdout=subprocess.PIPE, text=True, env=env)
        writer_out = Output(writer)
        writer_out.wait_for(lambda lines: "ready" in lines, time.monotonic() + 60)
        load = subprocess.Popen(
            [sys.executable, SCRIPT, "load", db_url, str(mail_root), address,
             str(account.id), str(round_number)],  # type: ignore[attr-defined]
            stdout=subprocess.PIPE, text=True, env=env)
        out = Output(load)
        # Let it work a while (a random amount of acknowledged deliveries), then kill both.
        wanted = rng.randint(20, 80)
        out.wait_for(lambda lines, w=wanted: sum(1 for x in lines if x.startswith("acked")) >= w,
                     time.monotonic() + 300)
        # Where the kill lands, not a wait: any moment must leave a consistent store.
        time.sleep(rng.random() * 0.05)
        for proc in (writer, load) if round_number % 2 else (load, writer):
            os.kill(proc.pid, signal.SIGKILL)
        for proc in (writer, load):
            proc.wait(30)
        out.thread.join(10)
        acked |= {line.split()[1] for line in out.lines if line.startswith("acked")}

        # Restart: what `nmail serve` does first.
        store = MailStore(engine, mail_root, HOST)
        try:
            store.repair()
            inbox = _message_ids(folder_dir(mail_root, account, "INBOX"))  # type: ignore[arg-type]
            archive = _message_ids(folder_dir(mail_root, account, "Archive"))  # type: ignore[arg-type]
            everywhere = inbox + archive
            assert len(everywhere) == len(set(everywhere)), "a message in two places"
            assert acked <= set(everywhere), "an acknowledged message is missing"
            rows = message_rows(engine, account)  # type: ignore[arg-type]
            assert len(rows) == len(everywhere)
            for name in ("INBOX", "Archive"):
                info = store.folder(account.id, name)  # type: ignore[attr-defined]
                in_folder = [r for r in rows if r["name"] == name]
                assert info.message_count == len(in_folder)
                assert info.unseen_count == sum(1 for r in in_folder if not r["sysflags"] & 1)
                assert info.total_size == sum(r["size"] for r in in_folder)
            report = store.dbsync([account])  # type: ignore[list-item]
            total = report.total
            assert (total.added, total.removed, total.renumbered) == (0, 0, 0), report
            assert message_rows(engine, account) == rows  # type: ignore[arg-type]
        finally:
            store.close()

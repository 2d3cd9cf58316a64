"""Issue 9 item 2: a flood of logins keeps a process's memory bounded.

Argon2 with the default parameters takes 64 MiB per check. A real `nmail
serve` (one process, the real default hash cost: `nmail user add` hashes
with it and unknown users are checked against a dummy hash of the same
cost) gets 60 wrong logins at once from 60 loopback addresses (so the
throttle refuses none), on submission and on POP3. Its peak resident
memory (VmHWM after clear_refs) must grow by less than (checks + 2) x 64 MiB,
where `checks` is the gate's size (directory/login_gate.py: one per CPU),
far below 60 x 64 MiB. Attempts past the gate's places get the door's
temporary failure; the right password works afterwards.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from line_client import Line, plain
from nmail.directory.login_gate import PasswordGate
from serve_process import ServeProcess
from serve_setup import PASSWORD, as_options, listen_specs, make_data

pytestmark = pytest.mark.timeout(600)

MIB = 1024 * 1024
ARGON2_DEFAULT = 64 * MIB
FLOOD = 60
BOB = "bob@test.local"
SMTP_BUSY = b"454 4.7.0 Too many logins at once, try again in a moment"
POP3_BUSY = b"-ERR [SYS/TEMP] Too many logins at once, try again in a moment"


def rss(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for {pid}")


def smtp_ready(port: int, source: str) -> Line:
    client = Line(port, source, timeout=120)
    assert client.reply().startswith(b"220")
    client.send("EHLO flood")
    assert client.reply().startswith(b"250")
    return client


def pop3_ready(port: int, source: str) -> Line:
    client = Line(port, source, timeout=120)
    assert client.read().startswith(b"+OK")
    return client


def smtp_guess(client: Line, n: int) -> bytes:
    client.send("AUTH PLAIN " + plain(f"nobody{n}@test.local", "wrong-password"))
    return client.reply()


def pop3_guess(client: Line, n: int) -> bytes:
    client.send(f"USER nobody{n}@test.local")
    assert client.read().startswith(b"+OK")
    client.send("PASS wrong-password")
    return client.read()


def flood(pid: int, connect: Callable[[str], Line], guess: Callable[[Line, int], bytes],
          subnet: str) -> tuple[int, list[bytes]]:
    """FLOOD wrong logins at once, each from its own address; (peak growth, replies)."""
    clients = [connect(f"{subnet}.{10 + n}") for n in range(FLOOD)]
    replies: list[bytes] = [b""] * FLOOD
    start = threading.Barrier(FLOOD + 1, timeout=120)

    def run(n: int) -> None:
        start.wait()
        replies[n] = guess(clients[n], n)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(FLOOD)]
    for thread in threads:
        thread.start()
    before = rss(pid, "VmRSS")
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS now
    start.wait()
    for thread in threads:
        thread.join(300)
    growth = rss(pid, "VmHWM") - before
    for client in clients:
        client.close()
    return growth, replies


def test_a_login_flood_keeps_memory_bounded(tmp_path: Path) -> None:
    # On SQLite only (12 s a database): the bound is the gate's (in the process,
    # before any hash), and what the database adds (the unknown users' lookups,
    # the throttle's failure rows) is tested on every database elsewhere
    # (test_login_gate, test_directory_throttle_shared).
    data = make_data(tmp_path, BOB)
    ports = listen_specs("submission", "pop3")
    srv = ServeProcess(data, *as_options(ports), workers=1)
    checks = PasswordGate().checks  # the server's gate is sized the same way
    bound = (checks + 2) * ARGON2_DEFAULT
    try:
        pid = srv.proc.pid
        # Warm-up: a right and a wrong login on each door (code loaded, hash parameters read).
        client = smtp_ready(ports["submission"], "127.0.0.2")
        client.send("AUTH PLAIN " + plain(BOB, PASSWORD))
        assert client.reply().startswith(b"235")
        client.close()
        client = pop3_ready(ports["pop3"], "127.0.0.3")
        assert pop3_guess(client, 0).startswith(b"-ERR [AUTH]")
        client.close()

        growth, replies = flood(pid, lambda ip: smtp_ready(ports["submission"], ip),
                                smtp_guess, "127.0.1")
        print(f"SMTP: {FLOOD} wrong AUTHs at once, peak grew {growth / MIB:.0f} MiB "
              f"(gate: {checks} checks); {replies.count(SMTP_BUSY)} answered busy")
        assert growth < bound, f"peak grew {growth // MIB} MiB"
        assert set(replies) <= {b"535 5.7.8 Authentication credentials invalid", SMTP_BUSY}, \
            set(replies)
        assert SMTP_BUSY in replies
        client = smtp_ready(ports["submission"], "127.0.0.4")
        client.send("AUTH PLAIN " + plain(BOB, PASSWORD))
        assert client.reply().startswith(b"235")
        client.close()

        growth, replies = flood(pid, lambda ip: pop3_ready(ports["pop3"], ip),
                                pop3_guess, "127.0.2")
        print(f"POP3: {FLOOD} wrong PASSes at once, peak grew {growth / MIB:.0f} MiB "
              f"(gate: {checks} checks); {replies.count(POP3_BUSY)} answered busy")
        assert growth < bound, f"peak grew {growth // MIB} MiB"
        assert set(replies) <= {b"-ERR [AUTH] Authentication failed", POP3_BUSY}, set(replies)
        assert POP3_BUSY in replies
        client = pop3_ready(ports["pop3"], "127.0.0.5")
        client.send(f"USER {BOB}")
        assert client.read().startswith(b"+OK")
        client.send(f"PASS {PASSWORD}")
        assert client.read().startswith(b"+OK")
        client.send("QUIT")
        client.close()
    finally:
        srv.stop()

"""Issue 10: kill -9 of every process of `nmail serve` under a mixed load, again and again.

The real command (supervisor, two workers, the index writer, the web
process, the search follower in worker 0) gets deliveries over SMTP, moves,
Trash, flag changes and expunges through the webmail, and deletions over
POP3 (tests/serve_kill_load.py). At a moment chosen by what the clients were
just told (right after a delivery, a move, a flag change or an expunge was
answered, with others in flight) every process of the tree is killed at
once. After each restart (whose start-up repair is the only help) every
message that got 250 is in exactly one folder once, no answered expunge
came back, the index says what the files say (counts, UIDs, UIDNEXT,
HIGHESTMODSEQ never lower than at the crash, UIDVALIDITY never changed, a
UID never naming another message), and `nmail dbsync ALL` finds nothing to
fix: it reports nothing added, removed or renumbered, leaves every row as
it was, and (once the search follower caught up) indexes nothing: no
message is missing from the search index. On each database the suite was
asked for.
"""

from __future__ import annotations

import os
import random
import re
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import Engine

from mail_truth import Truth, folder_marks, index_snapshot, search_caught_up
from nmail.datadir import initialize
from nmail.directory import Directory
from nmail.directory.passwords import fast_hashing
from nmail.mailstore.store import MailStore
from serve_kill_load import KINDS, Doors, Ledger, Load
from serve_kill_rig import KilledServe
from serve_setup import PASSWORD, listen_specs, nmail
from support import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROUNDS = int(os.environ.get("NMAIL_TEST_KILL_ROUNDS", "4"))  # more for a soak
HOST = "mail.example.com"
WEB_USERS = ("ann@test.local", "ben@test.local")
POP3_USER = "cho@test.local"


def make_data(tmp_path: Path, db_url: str, engine: Engine) -> Path:
    """A data directory on `db_url` with the three users (in this process: the CLI
    would cost a Python start and a full-strength password hash per user)."""
    data = tmp_path / "data"
    initialize(data, hostname=HOST, password=PASSWORD, database_url=db_url)
    cfg = data / "nmail.toml"
    cfg.write_text(re.sub(r'(?m)^(\w+) = "0\.0\.0\.0"$', r'\1 = "off"', cfg.read_text()))
    directory = Directory(engine, passwords=fast_hashing())
    directory.add_domain("test.local")
    store = MailStore(engine, data / "mail", HOST)
    try:
        for address in (*WEB_USERS, POP3_USER):
            userid = address.split("@")[0]
            store.ensure_account(
                directory.add_account("test.local", userid.title(), userid, PASSWORD))
    finally:
        store.close()
    return data


def until_kill(ledger: Ledger, kind: str, rng: random.Random) -> None:
    """Wait until the round did some of everything, then for one more `kind` answered."""
    base = Counter(ledger.counts)
    least = {"deliver": rng.randint(10, 40), "move": 2, "flag": 2, "expunge": 1}
    ledger.wait_for(lambda c: all(c[k] - base[k] >= n for k, n in least.items()), 120,
                    f"a mixed load ({least})")
    seen = ledger.counts[kind]
    ledger.wait_for(lambda c: c[kind] > seen, 60, f"one more {kind}")


def dbsync_finds_nothing(data: Path, engine: Engine) -> None:
    """`nmail dbsync ALL` reports nothing added, removed or renumbered and leaves
    every folder and message row as it was (a flag it corrected would show there);
    once the search follower has caught up, nothing is missing from the search
    index either, nor indexed for another message."""
    wait_until(lambda: search_caught_up(engine), 60, "the search follower caught up")
    before = index_snapshot(engine)
    out = nmail(data, "dbsync", "ALL")
    assert re.search(r"dbsync: \d+ accounts, 0 added, 0 removed, \d+ kept, 0 renumbered, "
                     r"0 flags corrected", out), out
    assert "search index: 0 messages indexed\n" in out, out
    assert index_snapshot(engine) == before, "dbsync changed rows"


def test_kill_9_of_the_whole_server_under_load(
    tmp_path: Path, db_url: str, engine: Engine
) -> None:
    data = make_data(tmp_path, db_url, engine)
    ports = listen_specs("smtp", "pop3", "http")
    doors = Doors(ports["smtp"], ports["pop3"], ports["http"], WEB_USERS, POP3_USER, PASSWORD)
    log = tmp_path / "serve.log"
    ledger = Ledger()
    truth = Truth(data / "mail")
    rng = random.Random(20261206)
    timings: list[tuple[float, ...]] = []  # per round: load, restart, checks (s)
    with KilledServe(data, ports, log, engine) as server:
        for round_number in range(ROUNDS):
            started = time.monotonic()
            load = Load(doors, engine, ledger, seed=round_number)
            try:
                until_kill(ledger, KINDS[round_number % len(KINDS)], rng)
            finally:
                load.stop()
                server.kill()
                load.join()
            assert not ledger.errors, ledger.errors[:5]
            killed = time.monotonic()
            marks = folder_marks(engine)  # what clients may have seen: never lower later
            server.restart()
            restarted = time.monotonic()
            problems = truth.problems(engine, ledger.promises(), marks)
            assert not problems, f"round {round_number}: " + "\n".join(problems[:20])
            dbsync_finds_nothing(data, engine)
            timings.append(tuple(round(b - a, 1) for a, b in (
                (started, killed), (killed, restarted), (restarted, time.monotonic()))))
    print("rounds (load, restart, checks s):", timings, "answered:", dict(ledger.counts))

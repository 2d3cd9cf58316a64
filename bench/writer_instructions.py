"""The index writer's work per delivered message: instructions (callgrind) and WAL pages.

    python bench/writer_instructions.py [--messages 4800] [--batch 8] [--preload 0]
                                        [--replies 0.0] [--dir DIR] [--keep]

The index writer process (mailstore/index_service.py) is the one process
every `250` of inbound SMTP waits for. This runs its work for one-message
requests, as worker processes send them, in one process and without the
event loops around it: request frames read from two worker sockets and
decoded (index_wire), `_Commit.run` (the folder lock, thread resolution,
row inserts, renames into new/, the files' and directories' flushes,
COMMIT, the change feed's events to one subscriber, the replies). A commit
takes --batch requests, as a loaded writer finds them waiting.

Two runs on fresh copies of the same data (built outside valgrind: account,
--preload messages already in INBOX, the messages' files in tmp/ and their
frames, summarized as a worker does):

  pages         plain Python, the writer's connection with checkpoints off:
                WAL frames written per commit (the WAL file's growth)
  instructions  under `valgrind --tool=callgrind`, the writer's connection as
                `nmail serve` opens it (checkpoints every 4,000 frames),
                counters zeroed after warm-up commits and dumped at the end:
                user-space instructions per message (load-invariant)

Messages are ~10 KB with smtp-source's headers (bench/smtp_inbound.py: one
sender, the time, a Message-ID of their own, so each starts a
conversation); --replies makes that fraction reply to an earlier
one (In-Reply-To and References). The worker sides' sends and the
subscriber's reads happen in the same process and are counted too (a few
thousand instructions a commit). Never asserts a figure.
"""

from __future__ import annotations

import argparse
import marshal
import os
import random
import shutil
import socket
import sqlite3
import struct
import subprocess
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from benchlib import control, dumped_total
from nmail.db.engine import make_engine
from nmail.db.migrate import upgrade
from nmail.directory import Directory
from nmail.directory.passwords import fast_hashing
from nmail.mailstore.delivery_batch import deliver_batch
from nmail.mailstore.index_wire import encode_items, frame
from nmail.mailstore.model import NewMessage
from nmail.mailstore.preparing import prepare_all
from nmail.mailstore.store import MailStore

WORKERS = 2  # worker sockets the requests come in on, in turn
WARM = 4  # commits before the counters are zeroed
FRAMES = "frames.marshal"
RATE = 2000  # messages a second (nmail's inbound rate on the benchmark, ~1,900)


def message(n: int, rng: random.Random, replies: float, size: int) -> tuple[bytes, bytes]:
    """(trace prefix, content) of the n-th message: smtp-source's headers (one
    sender, one recipient, the time, a Message-ID of its own, no Subject)."""
    refs = ""
    if n and rng.random() < replies:
        parent = f"<{rng.randrange(n)}.bench@client.example>"
        refs = f"In-Reply-To: {parent}\r\nReferences: {parent}\r\n"
    second = n // 1000  # some thousand messages a second
    head = (f"From: <sender@client.example>\r\nTo: <user@bench.test>\r\n"
            f"Date: Mon, 07 Dec 2026 03:{second // 60 % 60:02d}:{second % 60:02d} +0000\r\n"
            f"Message-ID: <{n}.bench@client.example>\r\n{refs}\r\n").encode()
    line = b"La de da de da 1.\r\n"
    body = line * max(1, (size - len(head)) // len(line))
    prefix = (f"Return-Path: <sender@client.example>\r\n"
              f"Received: from client.example ([127.0.0.1]) by mx.bench.example with ESMTP "
              f"id {n:016x} for <user@bench.test>; Mon, 7 Dec 2026 03:00:00 +0000\r\n").encode()
    return prefix, head + body


def build(base: Path, count: int, preload: int, replies: float) -> None:
    """The data for one run: an account, `preload` messages in INBOX, `count`
    messages' files in tmp/ and their request frames (one message each)."""
    base.mkdir(parents=True)
    engine = make_engine(f"sqlite:///{base / 'index.sqlite3'}")
    upgrade(engine)
    directory = Directory(engine, passwords=fast_hashing())
    directory.add_domain("bench.test")
    account = directory.add_account("bench.test", "Bench", "user", "Bench-password-42")
    store = MailStore(engine, base / "mail", "mx.bench.example")
    try:
        store.ensure_account(account)
        rng = random.Random(1207)
        location = store._location(store_mailbox(account), "INBOX", account)
        clock = iter(range(1_796_000_000, 1_796_000_000 + 10 * (preload + count) + 10)).__next__

        def prepared(n: int, size: int) -> list:  # type: ignore[type-arg]
            prefix, content = message(n, rng, replies, size)
            item = NewMessage(account, "INBOX", prefix, content)
            return prepare_all([(item, location, frozenset(), "")], "mx.bench.example",
                               lambda: float(clock()))

        with engine.connect() as conn:
            for start in range(0, preload, 500):
                batch = [p for n in range(start, min(preload, start + 500))
                         for p in prepared(n, 2048)]
                deliver_batch(conn, batch)
        frames = [frame(encode_items(prepared(preload + n, 10240))) for n in range(count)]
        (base / FRAMES).write_bytes(marshal.dumps(frames))
    finally:
        store.close()
        engine.dispose()


def store_mailbox(account: object) -> object:
    from nmail.mailstore.store import _mailbox

    return _mailbox(account)  # type: ignore[arg-type]


def run(base: Path, batch: int, pages: bool) -> None:
    """The writer's side (this process under valgrind, or plain for pages)."""
    from nmail.mailstore.feed_hub import FeedHub
    from nmail.mailstore.index_service import _Client, _Commit, _read_requests
    from nmail.mailstore.thread_index import ThreadIndex
    from nmail.mailstore.writer_connection import writer_connection

    # New conversations are named after the time they began (thread_index), and
    # where their index entries land depends on how many begin in the same
    # second: the writer's clock runs at RATE messages a second, not at the
    # speed of this process (under valgrind, or not).
    now = [1_796_000_000.0]
    ThreadIndex.__init__.__defaults__ = (lambda: now[0],)

    engine = make_engine(f"sqlite:///{base / 'index.sqlite3'}")
    frames: list[bytes] = marshal.loads((base / FRAMES).read_bytes())
    conn = writer_connection(engine)
    wal = Path(str(base / "index.sqlite3") + "-wal")
    hub = FeedHub(f"\0nmail-bench-writer-{os.getpid()}")
    subscriber = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    subscriber.connect(f"\0nmail-bench-writer-{os.getpid()}")
    subscriber.sendall(b"S\n")
    if not subscriber.recv(4096).startswith(b"H "):
        raise SystemExit("no hello from the hub")
    workers: list[socket.socket] = []
    clients: dict[int, _Client] = {}
    for _ in range(WORKERS):
        ours, theirs = socket.socketpair()
        workers.append(theirs)
        clients[ours.fileno()] = _Client(ours)
    readable = [c.sock for c in clients.values()]
    commits = [frames[i:i + batch] for i in range(0, len(frames), batch)]

    def commit(group: list[bytes]) -> None:
        now[0] += len(group) / RATE
        for w, worker in enumerate(workers):
            worker.sendall(b"".join(group[w::WORKERS]))
        requests = _read_requests(readable, clients)
        _Commit(conn, engine, deliver_batch, clients, set(), hub.publish).run(requests)
        for worker in workers:
            worker.recv(1 << 16)
        subscriber.recv(1 << 16)

    for group in commits[:WARM]:
        commit(group)
    measured = commits[WARM:]
    if pages:
        conn.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.commit()
    else:
        print("READY", flush=True)
        sys.stdin.readline()
    for group in measured:
        commit(group)
    messages = sum(len(g) for g in measured)
    if pages:
        frames_written = (wal.stat().st_size - 32) / (4096 + 24)
        print(f"PAGES {frames_written / len(measured):.1f} {len(measured)} {messages}",
              flush=True)
        for name, count in wal_owners(base / "index.sqlite3", wal.read_bytes(), 50):
            print(f"OWNER {count:.2f} {name}", flush=True)
    else:
        print(f"DONE {len(measured)} {messages}", flush=True)
        sys.stdin.readline()
    hub.close()
    conn.close()
    engine.dispose()


def wal_owners(db: Path, wal: bytes, last: int) -> list[tuple[str, float]]:
    """The b-trees (tables, indexes) whose pages the last `last` commits in `wal`
    wrote, with pages per commit (SQLite's dbstat table names a page's owner)."""
    commits: list[set[int]] = []
    pages: set[int] = set()
    for offset in range(32, len(wal) - 24 - 4096 + 1, 24 + 4096):
        page, size_after = struct.unpack_from(">II", wal, offset)
        pages.add(page)
        if size_after:  # a commit's last frame
            commits.append(pages)
            pages = set()
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        owner = dict(con.execute("SELECT pageno, name FROM dbstat"))
    counts: Counter[str] = Counter()
    for written in commits[-last:]:
        counts.update(owner.get(page, "(free)") for page in written)
    return [(name, n / len(commits[-last:])) for name, n in counts.most_common()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=4800)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--preload", type=int, default=0, help="messages already in INBOX")
    parser.add_argument("--replies", type=float, default=0.0)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the dump (callgrind_annotate)")
    parser.add_argument("--skip-pages", action="store_true")
    parser.add_argument("--run", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--pages", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        run(args.run, args.batch, args.pages)
        return
    # tmpfs by default: flushes cost no waiting there, and user-space instructions
    # are the same on any filesystem.
    scratch = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path("/var/tmp")
    base = args.dir or scratch / f"nmail-writer-instructions-{os.getpid()}"
    count = args.messages + WARM * args.batch
    me = [sys.executable, str(Path(__file__).resolve())]
    env = dict(os.environ, PYTHONHASHSEED="0")
    try:
        print(f"index writer, {args.messages} one-message requests in commits of {args.batch},"
              f" {args.preload} messages in INBOX before, replies {args.replies:.0%}:")
        if not args.skip_pages:
            build(base / "pages", count, args.preload, args.replies)
            out = subprocess.run([*me, "--run", str(base / "pages"), "--batch", str(args.batch),
                                  "--pages"], check=True, capture_output=True, text=True,
                                 env=env).stdout
            lines = [line.split(maxsplit=2) for line in out.splitlines()]
            print(f"  WAL pages per commit      {float(lines[0][1]):10.1f}")
            for _, share, name in lines[1:]:
                print(f"    {float(share):5.2f}  {name}")
        build(base / "cg", count, args.preload, args.replies)
        dumps = base / "callgrind"
        dumps.mkdir()
        proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={dumps}/cg.%p", *me,
             "--run", str(base / "cg"), "--batch", str(args.batch)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
            text=True)
        assert proc.stdin is not None and proc.stdout is not None
        if proc.stdout.readline().strip() != "READY":
            raise SystemExit("the writer did not start")
        control(proc.pid, "-z")
        proc.stdin.write("\n")
        proc.stdin.flush()
        done = proc.stdout.readline().split()
        if not done or done[0] != "DONE":
            raise SystemExit("the writer did not finish")
        before = set(dumps.iterdir())
        control(proc.pid, "-d")
        proc.stdin.write("\n")
        proc.stdin.close()
        proc.wait(timeout=600)
        dumped = sorted(set(dumps.iterdir()) - before)
        total = sum(dumped_total(p) for p in dumped)
        messages = int(done[2])
        print(f"  instructions per message  {total / messages:10,.0f}")
        if args.keep:
            keep = Path(f"/var/tmp/writer-callgrind-{os.getpid()}")
            shutil.copytree(dumps, keep)
            print(f"  dump: {keep}")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()

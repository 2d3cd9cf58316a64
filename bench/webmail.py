"""Webmail HTTP latency at 1,000 and 100,000 messages, and the web process's memory.

    python bench/webmail.py [--sizes 1000,100000] [--runs 200] [--db URL]

For each size: one account with N messages (Korean and English, some
EUC-KR and HTML; bench/search.py's generator) stored through the mail store
and indexed for search, then `nmail serve --workers 1` (web process, index
writer) as a child process, driven over HTTP by httpx with a logged-in
session cookie:

- first INBOX page (HTML, 50 rows): p50/p99 warm, and the first request
  after a restart of `nmail serve`;
- opening a message (the full read page): p50/p99 over random messages;
- a body search (one Korean and one English word, all folders);
- the web process's resident memory at rest and after opening 1,000
  messages (the process holding the HTTP connection, found through /proc).

The web process's CPU time per page is printed too: on a shared machine
latency includes waiting for a CPU, CPU time does not. Roundcube in the
same invocation is not written yet (it needs Roundcube 1.6 + Dovecot IMAP
on the same Maildir behind php-fpm and nginx, see REFERENCE.md); until
then the figures measured for it on this kind of machine are printed for
context, marked as such. Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import free_port
from nmail.config import load_config
from nmail.datadir import initialize
from nmail.db.engine import make_engine
from nmail.directory import Directory
from nmail.directory.passwords import fast_hashing
from nmail.mailstore.search_indexer import SearchIndexer
from nmail.mailstore.store import MailStore, NewMessage
from search import _message

PASSWORD = "Bench-password-9"
HOST = "mail.example.test"


def build(root: Path, count: int, db: str | None) -> tuple[Path, int]:
    """A data directory with bench@example.test holding `count` messages; the INBOX size."""
    data = root / "data"
    initialize(data, hostname=HOST, password=PASSWORD, database_url=db)
    config = load_config(data)
    engine = make_engine(config.database_url)
    directory = Directory(engine, time.time, fast_hashing())
    if directory.get_domain("example.test") is None:
        directory.add_domain("example.test")
    account = directory.add_account("example.test", "Bench", "bench", PASSWORD)
    store = MailStore(engine, config.mail_dir, HOST)
    store.ensure_account(account)
    rng = random.Random(7)
    start = time.perf_counter()
    inbox = 0
    for at in range(0, count, 1000):
        items = []
        for i in range(at, min(count, at + 1000)):
            folder = "Sent" if i % 10 == 0 else "INBOX"
            inbox += folder == "INBOX"
            items.append(NewMessage(account, folder, b"", _message(rng, i),
                                    flags=frozenset({"\\Seen"}) if i % 3 else frozenset(),
                                    internal_date=1_700_000_000 + i * 60))
        for chunk in range(0, len(items), 200):
            store.store(items[chunk:chunk + 200])
    indexer = SearchIndexer(engine, config.mail_dir)
    while indexer.catch_up(budget=10_000) > 0:
        pass
    print(f"  built {count} messages in {time.perf_counter() - start:.1f} s", flush=True)
    store.close()
    engine.dispose()
    return data, inbox


class Serve:
    """`nmail serve --workers 1` with only the http listener."""

    def __init__(self, data: Path, port: int) -> None:
        self.port = port
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "nmail", "--data", str(data), "serve", "--workers", "1",
             *[a for name in ("smtp", "submission", "submissions", "pop3", "pop3s")
               for a in ("--listen", f"{name}=off")],
             "--listen", f"http=127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("nmail serve did not answer")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def web_pid(port: int, serve_pid: int) -> int | None:
    """The child process holding an established connection to the HTTP port."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            local, state, inode = parts[1], parts[3], parts[9]
            if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{inode}]")
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == serve_pid:
            continue
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") in inodes for fd in fds):
                return int(pid)
        except OSError:
            continue
    return None


def rss_mb(pid: int | None) -> float:
    if pid is None:
        return float("nan")
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process: its cost, whatever else the machine runs."""
    if pid is None:
        return float("nan")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def login(port: int) -> httpx.Client:
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}",
                          headers={"Host": HOST, "Accept": "text/html"}, timeout=30)
    form = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
    answer = client.post("/login", data={"userid": "bench", "password": PASSWORD,
                                         "csrf_token": token})
    if answer.status_code != 303:
        raise RuntimeError(f"login failed: {answer.status_code}")
    return client


def timed(client: httpx.Client, path: str) -> tuple[float, httpx.Response]:
    start = time.perf_counter()
    response = client.get(path)
    return time.perf_counter() - start, response


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered) * 1000:7.2f} ms  p99 {p99 * 1000:7.2f} ms"


def run_size(count: int, runs: int, db: str | None) -> None:
    root = Path(tempfile.mkdtemp(prefix=f"nmail-bench-web-{count}-", dir="/var/tmp"))
    try:
        print(f"\n== {count} messages ({root})", flush=True)
        data, inbox_count = build(root, count, db)
        port = free_port()
        serve = Serve(data, port)
        try:
            client = login(port)
            inbox = client.get("/").headers["location"]
            pid = web_pid(port, serve.proc.pid)
            rest = rss_mb(pid)
            cpu_before = cpu_seconds(pid)
            first_page = [timed(client, inbox)[0] for _ in range(runs)]
            cpu_page = (cpu_seconds(pid) - cpu_before) / runs
            rows = client.get(inbox).text.count('<li class="msg')
            print(f"  first INBOX page ({rows} rows, {inbox_count} in INBOX): "
                  f"{percentiles(first_page)}  (web process CPU {cpu_page * 1000:.2f} ms/page)")
            print(f"  machine load average: {os.getloadavg()[0]:.1f} "
                  f"on {os.cpu_count()} CPUs (latency includes waiting for a CPU)")
            rng = random.Random(3)
            opened = []
            for _ in range(runs):
                uid = rng.randrange(1, inbox_count + 1)
                took, response = timed(client, f"{inbox}/{uid}")
                if response.status_code == 200:
                    opened.append(took)
            print(f"  open a message (full page):          {percentiles(opened)}")
            for word in ("견적", "budget"):
                found = [timed(client, f"/search?q={word}&field=body")[0]
                         for _ in range(max(5, runs // 10))]
                print(f"  body search {word!r:10}:               {percentiles(found)}")
            for uid in range(1, min(1000, inbox_count) + 1):
                client.get(f"{inbox}/{uid}")
            after = rss_mb(pid)
            print(f"  web process memory: {rest:.0f} MB at rest, {after:.0f} MB after "
                  f"opening {min(1000, inbox_count)} messages")
            client.close()
        finally:
            serve.stop()
        serve = Serve(data, port)
        try:
            client = login(port)
            took, _ = timed(client, inbox)
            again = [timed(client, inbox)[0] for _ in range(min(runs, 50))]
            print(f"  after a restart: first INBOX page {took * 1000:.2f} ms, then "
                  f"{percentiles(again)}")
            client.close()
        finally:
            serve.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,100000")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--db", help="database URL (default: SQLite in the data directory)")
    args = parser.parse_args()
    print("Roundcube is not run by this script yet. For context only, NOT measured in this run:")
    print("  Roundcube 1.6.5 + Dovecot 2.3.19 measured on this kind of machine (REFERENCE.md),")
    print("  p50 at 1,000 / 100,000 messages: INBOX list 18 / 88 ms, open a message 18 / 228 ms,")
    print("  first list after a restart 767 ms at 100,000.")
    for size in (int(s) for s in args.sizes.split(",")):
        run_size(size, args.runs, args.db)


if __name__ == "__main__":
    main()

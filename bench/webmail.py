"""Webmail HTTP latency at 1,000 and 100,000 messages: nmail against Roundcube 1.6.

    python bench/webmail.py [--sizes 1000,100000] [--runs 200] [--db URL] [--no-roundcube]

For each size: one account with N messages (Korean and English, some
EUC-KR and HTML; bench/search.py's generator) stored through the mail store
and indexed for search. Then both on the same Maildir, up at the same time:

nmail: `nmail serve --workers 1` (web process, index writer) as a child
process, driven over HTTP by httpx with a logged-in session cookie:
- the INBOX page alone, before Roundcube is started (also the warm-up);
- opening a message (the full read page): p50/p99 over random messages;
- first INBOX page (the whole HTML page, 50 rows): p50/p99 warm, in blocks
  of 10 alternating with Roundcube's list (so load from elsewhere on the
  machine hits both alike);
- a body search (one Korean and one English word, all folders);
- the web process's resident memory at rest and after opening 1,000
  messages (the process holding the HTTP connection, found through /proc);
- after a restart: `nmail serve` stopped and started again (its SQL index
  kept, as it always is; the OS file cache stays warm), a login, then the
  first INBOX page, then more; `--restarts` rounds, alternating with
  Roundcube's.

Roundcube, when installed (bench/roundcube_peer.py says how; without it
this is skipped with a message): Roundcube 1.6 + a private Dovecot IMAP on
the very same Maildir, php-fpm, nginx, driven as its own pages do (login
with the form's `_token`, the mail screen for `request_token`, the list as
the `_action=list&_remote=1` XHR, a message as `_action=show`):
- first mail screen + list with Dovecot's index not built yet (Dovecot has
  never opened the Maildir: what an import or a fresh server costs);
- the list (50 rows) p50/p99 warm, the same number of runs as nmail; the
  mail screen p50 too (nmail's one page is both);
- opening the same random messages as nmail (nmail's UIDs mapped to
  Dovecot's through dovecot-uidlist, both keep the file's base name). nmail
  opened them first, before Dovecot ever looked at the Maildir (its first
  look moves new/ to cur/, which nmail then finds only by reading cur/), so
  those nmail marked read are read for Roundcube too;
- after a restart: Dovecot, php-fpm and nginx stopped and started again
  (Dovecot's index kept: the same meaning as nmail's restart), a login, the
  mail screen, the first list, then more; and once more with Dovecot's
  index files deleted (uidlist kept), REFERENCE.md's "cold index";
- the same with Roundcube's SQL caches on (imap_cache and messages_cache):
  the list, a first open and a second open of the same messages.

Ratios are Roundcube's time over nmail's (nmail's whole page against
Roundcube's list XHR alone, which favours Roundcube), against issue 11's
target of 8x. CPU time per request is printed too (nmail: its web process;
Roundcube: nginx + php-fpm + Dovecot and its per-login processes): on a
shared machine latency includes waiting for a CPU, CPU time does not.
Every peer process is stopped at exit, also on Ctrl-C or an error.
Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import roundcube_peer as rc
from benchlib import free_port
from nmail.config import load_config
from nmail.datadir import initialize
from nmail.db.engine import make_engine
from nmail.directory import Directory
from nmail.directory.passwords import fast_hashing
from nmail.mailstore.layout import maildir_path
from nmail.mailstore.search_indexer import SearchIndexer
from nmail.mailstore.store import MailStore, NewMessage
from search import _message

PASSWORD = "Bench-password-9"
BLOCK = 10  # list requests in a row before the other side's turn
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


def p50_p99(samples: list[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds (nan for no samples)."""
    if not samples:
        return float("nan"), float("nan")
    ordered = sorted(samples)
    return (statistics.median(ordered) * 1000,
            ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000)


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (5 min {five:.1f}) on {os.cpu_count()} CPUs"


def clock(call: Callable[[], httpx.Response]) -> tuple[float, httpx.Response]:
    start = time.perf_counter()
    response = call()
    return time.perf_counter() - start, response


Figures = dict[str, list[float]]


class Nmail:
    """`nmail serve` on a data directory, a logged-in client, the web process's pid."""

    def __init__(self, data: Path) -> None:
        self.data, self.port = data, free_port()
        self.serve = Serve(data, self.port)
        self.client = login(self.port)
        self.inbox = self.client.get("/").headers["location"]
        self.pid = web_pid(self.port, self.serve.proc.pid)

    def page(self) -> float:
        return timed(self.client, self.inbox)[0]

    def open(self, uid: int) -> tuple[float, httpx.Response]:
        return timed(self.client, f"{self.inbox}/{uid}")

    def stop(self) -> None:
        self.client.close()
        self.serve.stop()


def first_session(data: Path, stack: rc.PeerStack | None, inbox_count: int,
                  sample: list[int], runs: int) -> tuple[Figures, Figures]:
    """Warm figures, nmail and Roundcube up together; prints them as it goes."""
    ours: Figures = {}
    theirs: Figures = {}
    nmail = Nmail(data)
    peer = None
    try:
        rest = rss_mb(nmail.pid)
        # Warm-up, and the list with nothing else of the bench running (what the first
        # requests after a start cost is measured below, in `restarts`).
        alone = [nmail.page() for _ in range(runs)]
        print(f"  nmail INBOX page, Roundcube not started yet: {percentiles(alone)}")
        # Opening, nmail first: before Dovecot ever opens the Maildir, which moves every
        # file of new/ to cur/ (nmail then finds those by reading cur/, as after any other
        # tool that moved them); Roundcube opens the same messages afterwards.
        cpu = [cpu_seconds(nmail.pid), 0.0]
        ours["open"] = [took for took, r in map(nmail.open, sample) if r.status_code == 200]
        ours["cpu_open"] = [(cpu_seconds(nmail.pid) - cpu[0]) / len(sample)]
        print(f"  nmail open a message (full page):     {percentiles(ours['open'])}  "
              f"({len(ours['open'])} of {len(sample)} answered 200; "
              f"CPU {ours['cpu_open'][0] * 1000:.2f} ms/page)", flush=True)
        if stack is not None:
            stack.start()
            peer = rc.RoundcubeClient(stack.http_ports["plain"])
            peer.login(stack.user, stack.password)
            page, (listed, response) = clock(peer.mail_page)[0], clock(peer.list_page)
            theirs["never_indexed"] = [page + listed]
            print(f"  Roundcube, Dovecot's index never built: mail screen {page * 1000:.1f} ms"
                  f" + first list {listed * 1000:.1f} ms "
                  f"({len(rc.listed_uids(response))} rows)", flush=True)
        # The lists alternate in blocks of BLOCK requests, so load from elsewhere hits
        # both alike. (Request by request, the work a peer does after its answer went
        # out - php's session write, Dovecot's logout - fell into nmail's next request:
        # 24 ms instead of 5 at 100,000 messages.)
        ours["list"], theirs["list"] = [], []
        cpu = [cpu_seconds(nmail.pid), stack.cpu_seconds() if stack else 0.0]
        for at in range(0, runs, BLOCK):
            ours["list"] += [nmail.page() for _ in range(at, min(runs, at + BLOCK))]
            if peer is not None:
                theirs["list"] += [clock(peer.list_page)[0]
                                   for _ in range(at, min(runs, at + BLOCK))]
        ours["cpu_list"] = [(cpu_seconds(nmail.pid) - cpu[0]) / runs]
        rows = nmail.client.get(nmail.inbox).text.count('<li class="msg')
        print(f"  nmail INBOX page ({rows} rows, {inbox_count} in INBOX): "
              f"{percentiles(ours['list'])}  (web process CPU "
              f"{ours['cpu_list'][0] * 1000:.2f} ms/page)")
        if stack is not None and peer is not None:
            theirs["cpu_list"] = [(stack.cpu_seconds() - cpu[1]) / runs]
            print(f"  Roundcube list XHR (50 rows):          {percentiles(theirs['list'])}  "
                  f"(nginx+php+Dovecot CPU {theirs['cpu_list'][0] * 1000:.2f} ms/list)")
        print(f"  {load()}", flush=True)
        if stack is not None and peer is not None:
            uids = rc.sample_uids(stack.dovecot_uids(), sample)
            cpu[1] = stack.cpu_seconds()
            opened = [clock(lambda u=uid: peer.show(u)) for uid in uids]  # type: ignore[misc]
            theirs["open"] = [took for took, r in opened if r.status_code == 200]
            theirs["cpu_open"] = [(stack.cpu_seconds() - cpu[1]) / max(1, len(uids))]
            print(f"  Roundcube open a message (show page): {percentiles(theirs['open'])}  "
                  f"({len(theirs['open'])} of {len(sample)} answered 200; "
                  f"CPU {theirs['cpu_open'][0] * 1000:.2f} ms/page)")
            screens = [clock(peer.mail_page)[0] for _ in range(max(5, runs // 4))]
            print(f"  Roundcube mail screen (no rows):      {percentiles(screens)}", flush=True)
            peer.close()
            peer = rc.RoundcubeClient(stack.http_ports["cached"])
            peer.login(stack.user, stack.password)
            peer.mail_page()
            theirs["cached_list"] = [clock(peer.list_page)[0] for _ in range(runs)]
            first = [clock(lambda u=uid: peer.show(u))[0] for uid in uids]  # type: ignore[misc]
            theirs["cached_open"] = [clock(lambda u=uid: peer.show(u))[0]  # type: ignore[misc]
                                     for uid in uids]
            print(f"  Roundcube with its SQL cache: list {percentiles(theirs['cached_list'])}")
            print(f"    open, first time:  {percentiles(first)}")
            print(f"    open, again:       {percentiles(theirs['cached_open'])}", flush=True)
        for word in ("견적", "budget"):
            found = [timed(nmail.client, f"/search?q={word}&field=body")[0]
                     for _ in range(max(5, runs // 10))]
            print(f"  nmail body search {word!r:10}:         {percentiles(found)}")
        for uid in range(1, min(1000, inbox_count) + 1):
            nmail.open(uid)
        print(f"  nmail web process memory: {rest:.0f} MB at rest, "
              f"{rss_mb(nmail.pid):.0f} MB after opening {min(1000, inbox_count)} messages",
              flush=True)
    finally:
        if peer is not None:
            peer.close()
        nmail.stop()
    return ours, theirs


def restarts(data: Path, stack: rc.PeerStack | None, times: int, runs: int,
             ours: Figures, theirs: Figures) -> None:
    """First list after a restart, `times` rounds alternating nmail and Roundcube."""
    ours["restart"], theirs["restart"], theirs["restart_screen"] = [], [], []
    for _ in range(times):
        nmail = Nmail(data)
        try:
            ours["restart"].append(nmail.page())
            again = [nmail.page() for _ in range(min(runs, 50))]
        finally:
            nmail.stop()
        if stack is not None:
            stack.restart()
            peer = rc.RoundcubeClient(stack.http_ports["plain"])
            peer.login(stack.user, stack.password)
            page, listed = clock(peer.mail_page)[0], clock(peer.list_page)[0]
            theirs["restart"].append(listed)
            theirs["restart_screen"].append(page + listed)
            peer.close()
    print(f"  nmail after a restart ({times}x): first INBOX page "
          f"{', '.join(f'{t * 1000:.1f}' for t in ours['restart'])} ms; then (last round) "
          f"{percentiles(again)}")
    if stack is not None:
        print(f"  Roundcube after a restart ({times}x, Dovecot's index kept): mail screen + "
              f"first list {', '.join(f'{t * 1000:.1f}' for t in theirs['restart_screen'])} ms"
              f", of which the list {', '.join(f'{t * 1000:.1f}' for t in theirs['restart'])}")
        stack.restart(drop_index=True)
        peer = rc.RoundcubeClient(stack.http_ports["plain"])
        peer.login(stack.user, stack.password)
        page, listed = clock(peer.mail_page)[0], clock(peer.list_page)[0]
        theirs["cold_index"] = [page + listed]
        peer.close()
        print(f"  Roundcube after a restart with Dovecot's index files deleted: mail screen "
              f"{page * 1000:.1f} ms + first list {listed * 1000:.1f} ms")
    print(f"  {load()}", flush=True)


def compare(ours: Figures, theirs: Figures) -> None:
    """nmail and Roundcube side by side, with Roundcube/nmail ratios against 8x."""
    def row(label: str, a_key: str, b_key: str) -> None:
        a, b = p50_p99(ours[a_key]), p50_p99(theirs[b_key])
        ratio = b[0] / a[0]
        spread = f"p99 {b[1] / a[1]:5.1f}x" if len(ours[a_key]) > 10 else " " * 10
        print(f"  {label:36} {a[0]:8.2f} {a[1]:8.2f}  {b[0]:8.2f} {b[1]:8.2f}   "
              f"p50 {ratio:5.1f}x {spread}  {'meets 8x' if ratio >= 8 else 'BELOW 8x'}")

    print("  -- side by side, ms                    nmail p50      p99  Roundcube p50    p99"
          "   Roundcube/nmail")
    row("INBOX page : list XHR, warm", "list", "list")
    row("open a message, warm", "open", "open")
    row("after a restart: page : list XHR", "restart", "restart")
    row("after a restart: page : screen+list", "restart", "restart_screen")
    row("  same, Dovecot's index deleted", "restart", "cold_index")
    row("page : Roundcube SQL cache, list", "list", "cached_list")
    row("open : Roundcube SQL cache, again", "open", "cached_open")
    print(f"  CPU per request, Roundcube/nmail: list "
          f"{theirs['cpu_list'][0] / ours['cpu_list'][0]:.1f}x, open "
          f"{theirs['cpu_open'][0] / ours['cpu_open'][0]:.1f}x", flush=True)


def run_size(count: int, runs: int, db: str | None, roundcube: bool, times: int) -> None:
    root = Path(tempfile.mkdtemp(prefix=f"nmail-bench-web-{count}-", dir="/var/tmp"))
    stack = None
    try:
        print(f"\n== {count} messages ({root})", flush=True)
        data, inbox_count = build(root, count, db)
        rng = random.Random(3)
        sample = [rng.randrange(1, inbox_count + 1) for _ in range(runs)]
        absent = rc.missing() if roundcube else []
        if absent:
            print(f"  Roundcube skipped: not installed ({', '.join(absent)}); "
                  "bench/roundcube_peer.py has the apt-get line")
        elif roundcube:
            stack = rc.PeerStack(root, maildir_path(load_config(data).mail_dir,
                                                    "example.test", "bench"), "bench", PASSWORD)
            stack.prepare()
        ours, theirs = first_session(data, stack, inbox_count, sample, runs)
        restarts(data, stack, times, runs, ours, theirs)
        if stack is not None:
            compare(ours, theirs)
    finally:
        if stack is not None:
            stack.stop()
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,100000")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--db", help="database URL (default: SQLite in the data directory)")
    parser.add_argument("--no-roundcube", action="store_true", help="measure nmail only")
    args = parser.parse_args()
    # A TERM (from a job runner) unwinds like Ctrl-C, so every `finally` stops its peers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(f"webmail bench, {load()}")
    for size in (int(s) for s in args.sizes.split(",")):
        run_size(size, args.runs, args.db, not args.no_roundcube, args.restarts)


if __name__ == "__main__":
    main()

"""Instructions per message in a port-25 worker of `nmail serve`, counted by callgrind.

    python bench/smtp_instructions.py [-n 2000] [--sessions 20] [--size 10240]
                                      [--top 40] [--keep]

Wall-clock figures move with the load of a shared machine; instruction
counts do not (within ~0.2% run to run, loaded or not). This sets up what
`nmail serve` runs with several workers, with the one port-25 worker under
`valgrind --tool=callgrind`:

  the index writer   its own process, as the supervisor forks it
                     (cli/serve_cmd._serve_index_writer), not under valgrind
  one worker         a port-25-only worker (worker 1 and up of `nmail serve`:
                     no queue scheduler), cli/serve_cmd._serve_worker, under
                     callgrind, with uvloop, the serve logging and heap.settle

smtp-source (Postfix's load generator, as bench/smtp_inbound.py uses it)
sends 10 KB messages to one local mailbox, one message per connection,
`--sessions` at once. A first round of 200 messages warms the caches (the
directory cache, the mailbox's folder, the first-call imports); then the
counters are zeroed (callgrind_control -z) while the worker is idle in
epoll, N messages are sent, and the counters are dumped (-d). The figure is
the worker's user-space instructions per message, all of its threads
(the kernel's socket and file work is not seen here). Then
callgrind_annotate's top functions of that dump (C functions: the
interpreter's own, so they say where the kind of work went, e.g. frame
evaluation, allocation, dict lookups, rather than which Python function).

Never asserts a figure. Needs valgrind and smtp-source (apt-get install
valgrind postfix).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from benchlib import control, dumped_total, free_port

if TYPE_CHECKING:
    from nmail.config import Config

SMTP_SOURCE = "/usr/sbin/smtp-source"
ROOT = Path(os.environ.get("NMAIL_BENCH_DIR", "/var/tmp"))
WARM = 200


class _Started:
    """What _serve_worker and _serve_index_writer tell the supervisor: on stdout here."""

    def __init__(self, index: int) -> None:
        self.index = index

    def ready(self) -> None:
        print("READY", flush=True)

    def failed(self, reason: str) -> None:
        print(f"FAILED {reason}", flush=True)


def _config(data: Path) -> Config:
    from nmail.config import load_config

    return load_config(data)


def serve_writer(data: Path, address: str) -> None:
    """The index writer process (--writer): as `nmail serve`'s supervisor starts it."""
    from nmail.cli.serve_cmd import _serve_index_writer
    from nmail.cli.serve_log import configure_serve_logging
    from nmail.mailstore.index_service import listen_socket
    from nmail.permissions import PRIVATE_UMASK
    from nmail.startup import prepare_data

    configure_serve_logging("index")
    os.umask(PRIVATE_UMASK)
    config = _config(data)
    prepare_data(config)
    listener = listen_socket(address)
    _serve_index_writer(config, _Started(0), listener)


def serve_worker(data: Path, address: str, port: int) -> None:
    """One port-25 worker (--worker): as `nmail serve` forks worker 1 and up."""
    from nmail.cli.serve_cmd import _serve_worker
    from nmail.cli.serve_log import configure_serve_logging
    from nmail.permissions import PRIVATE_UMASK
    from nmail.servers.fd_limit import raise_open_file_limit
    from nmail.servers.limits import SharedCounts
    from nmail.startup import bind_socket

    configure_serve_logging("worker-1")
    raise_open_file_limit()
    os.umask(PRIVATE_UMASK)
    import uvloop

    uvloop.install()
    config = _config(data)
    sock = bind_socket("127.0.0.1", port)
    # Worker 1 pokes worker 0's queue through a pipe; nobody reads it here.
    _, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    rows = {"smtp": SharedCounts(2).row(1)}
    asyncio.run(_serve_worker(config, _Started(1), [("smtp", sock)], False, wake_write,
                              address, rows))


def smtp_source(port: int, count: int, sessions: int, size: int) -> None:
    subprocess.run(
        [SMTP_SOURCE, "-s", str(sessions), "-l", str(size), "-m", str(count),
         "-f", "a@test.local", "-t", "b@test.local", f"127.0.0.1:{port}"],
        check=True, stdout=subprocess.DEVNULL,
    )


def make_data(data: Path) -> None:
    nmail = [sys.executable, "-m", "nmail", "--data", str(data)]
    for command in (
        ["init", "--hostname", "mx.bench.example", "--postmaster-password", "bench-pass-1"],
        ["domain", "add", "test.local"],
        ["user", "add", "test.local", "B", "b", "bench-pass-1"],
    ):
        subprocess.run(nmail + command, check=True, stdout=subprocess.DEVNULL)
    config = data / "nmail.toml"
    config.write_text(re.sub(r'(?m)^(\w+) = "0\.0\.0\.0"$', r'\1 = "off"', config.read_text()))


def wait_ready(proc: subprocess.Popen[str], what: str) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "READY":
        raise SystemExit(f"{what} did not start: {line!r}")


def top_functions(dump: Path, top: int, inclusive: bool) -> str:
    """callgrind_annotate's first `top` functions of `dump`, in shorter lines."""
    args = ["callgrind_annotate", "--threshold=100", "--auto=no"]
    if inclusive:
        args.append("--inclusive=yes")
    out = subprocess.run(args + [str(dump)], check=True, capture_output=True, text=True).stdout
    total = dumped_total(dump)
    lines = []
    for line in out.splitlines():
        found = re.match(r"^\s*([\d,]+) \(\s*[\d.]+%\)\s+(\S.*)$", line)
        if found is None or "PROGRAM TOTALS" in line:
            continue
        cost = int(found.group(1).replace(",", ""))
        # A dump taken while the loop runs charges every frame then on the stack
        # (main, the loop's run, the outer eval) with the whole total, even as
        # self cost: not a function's own work.
        if not inclusive and cost >= total * 0.99:
            continue
        where = re.sub(r" \[[^]]*\]$", "", found.group(2))  # the object file
        where = re.sub(r"^/tmp/python-build[^:]*/Python-[\d.]+/", "Python/", where)
        lines.append(f"{cost / total * 100:6.2f}% {cost:>15,}  {where}")
        if len(lines) == top:
            break
    return "\n".join(lines)


def count_files(path: Path) -> int:
    try:
        return len(os.listdir(path))
    except FileNotFoundError:
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=2000, help="messages counted (default 2000)")
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--size", type=int, default=10240)
    parser.add_argument("--top", type=int, default=40, help="functions listed (0: none)")
    parser.add_argument("--inclusive", action="store_true", help="list by inclusive cost")
    parser.add_argument("--keep", action="store_true",
                        help="keep the callgrind dump (its path is printed)")
    parser.add_argument("--writer", nargs=2, metavar=("DATA", "ADDRESS"), help=argparse.SUPPRESS)
    parser.add_argument("--worker", nargs=3, metavar=("DATA", "ADDRESS", "PORT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.writer:
        serve_writer(Path(args.writer[0]), "\0" + args.writer[1])
        return
    if args.worker:
        serve_worker(Path(args.worker[0]), "\0" + args.worker[1], int(args.worker[2]))
        return
    for tool in (SMTP_SOURCE, shutil.which("valgrind"), shutil.which("callgrind_control")):
        if tool is None or not Path(tool).exists():
            raise SystemExit("needs valgrind and smtp-source: apt-get install valgrind postfix")
    base = Path(tempfile.mkdtemp(prefix="nmail-smtp-instructions-", dir=ROOT))
    data, out = base / "data", base / "callgrind"
    out.mkdir()
    procs: list[subprocess.Popen[str]] = []
    me = [sys.executable, str(Path(__file__).resolve())]
    # Fixed hashing: dict and set layouts (hence a few instructions) alike every run.
    env = dict(os.environ, PYTHONHASHSEED="0")
    try:
        make_data(data)
        address = f"nmail-index-bench-{os.getpid()}-{secrets.token_hex(4)}"
        writer = subprocess.Popen(me + ["--writer", str(data), address], stdout=subprocess.PIPE,
                                  text=True, env=env, start_new_session=True)
        procs.append(writer)
        wait_ready(writer, "the index writer")
        port = free_port()
        worker = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/cg.%p",
             *me, "--worker", str(data), address, str(port)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
            start_new_session=True,
        )
        procs.append(worker)
        wait_ready(worker, "the worker")
        smtp_source(port, WARM, args.sessions, args.size)
        time.sleep(1.0)  # idle in epoll before zeroing
        before = set(out.iterdir())
        control(worker.pid, "-z")
        smtp_source(port, args.n, args.sessions, args.size)
        time.sleep(1.0)
        control(worker.pid, "-d")
        dumps = sorted(set(out.iterdir()) - before)
        new = data / "mail" / "test.local" / "b" / "Maildir" / "new"
        delivered = count_files(new)
        if delivered != WARM + args.n:
            print(f"warning: {delivered} files for {WARM + args.n} messages", file=sys.stderr)
        total = sum(dumped_total(p) for p in dumps)
        print(f"port-25 worker, {args.n} messages of {args.size} bytes, one per connection, "
              f"{args.sessions} sessions (callgrind):")
        print(f"  instructions per message: {total / args.n:,.0f}")
        if args.top:
            kind = "inclusive" if args.inclusive else "self"
            print(f"top {args.top} functions by {kind} cost (callgrind_annotate):")
            for dump in dumps:
                print(top_functions(dump, args.top, args.inclusive))
        if args.keep:
            kept = Path(f"/var/tmp/smtp-callgrind-{os.getpid()}")
            kept.mkdir()
            for p in dumps:
                shutil.copy(p, kept / p.name)
            print(f"dump kept: {' '.join(str(kept / p.name) for p in dumps)}")
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()

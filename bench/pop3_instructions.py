"""Instructions per POP3 command in nmail's server process, counted by callgrind.

    python bench/pop3_instructions.py [--messages 2000] [--dir DIR]

Wall-clock figures move with the load of a shared machine; instruction counts
do not. This runs bench/pop3.py's server (same mailbox, same code) under
`valgrind --tool=callgrind`, logs in with a client outside valgrind, zeroes
the counters (callgrind_control -z), sends one kind of command N times, dumps
(callgrind_control -d) and prints the server's instructions per command:

  RETR pipelined   RETR 1..N, 64 in flight (bench/pop3.py's pipelined client)
  RETR one by one  RETR 1..N, each after the previous answer (poplib's way)
  LIST n / UIDL n / DELE n   one at a time (DELE in a session never ended by QUIT)
  LIST / UIDL      the whole listing, 20 times (per call, not per message)

The server is idle in epoll when the counters are zeroed and dumped, so a
figure is the commands' own work: the event loop, the session, the reads.
Only user-space instructions count (the kernel's socket and file work is the
same for any server and not seen here). Never asserts a figure.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pop3
from benchlib import control, dumped_total

Client = Callable[[socket.socket, bytearray, int], None]


def read_line(sock: socket.socket, buffer: bytearray) -> bytes:
    while b"\r\n" not in buffer:
        data = sock.recv(1 << 20)
        if not data:
            raise RuntimeError("connection closed")
        buffer.extend(data)
    end = buffer.index(b"\r\n")
    line = bytes(buffer[:end])
    del buffer[: end + 2]
    return line


def one_by_one(verb: bytes, multiline: bool) -> Client:
    def run(sock: socket.socket, buffer: bytearray, count: int) -> None:
        for n in range(1, count + 1):
            sock.sendall(b"%s %d\r\n" % (verb, n))
            if multiline:
                read_until_terminator(sock, buffer)
            else:
                line = read_line(sock, buffer)
                if not line.startswith(b"+OK"):
                    raise RuntimeError(f"{verb.decode()} {n}: {line!r}")

    return run


def read_until_terminator(sock: socket.socket, buffer: bytearray) -> None:
    line = read_line(sock, buffer)
    if not line.startswith(b"+OK"):
        raise RuntimeError(f"failed: {line!r}")
    while True:
        if buffer.startswith(b".\r\n"):
            del buffer[:3]
            return
        end = buffer.find(b"\r\n.\r\n")
        if end >= 0:
            del buffer[: end + 5]
            return
        data = sock.recv(1 << 20)
        if not data:
            raise RuntimeError("connection closed")
        buffer.extend(data)


def retr_pipelined(sock: socket.socket, buffer: bytearray, count: int) -> None:
    window, sent, done = 64, 0, 0
    while done < count:
        if sent < count and sent - done < window // 2 + 1:
            upto = min(count, done + window)
            sock.sendall(b"".join(b"RETR %d\r\n" % n for n in range(sent + 1, upto + 1)))
            sent = upto
        read_until_terminator(sock, buffer)
        done += 1


def listings(verb: bytes) -> Client:
    def run(sock: socket.socket, buffer: bytearray, count: int) -> None:
        for _ in range(count):
            sock.sendall(verb + b"\r\n")
            read_until_terminator(sock, buffer)

    return run


def login(port: int) -> tuple[socket.socket, bytearray]:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buffer = bytearray()
    read_line(sock, buffer)
    sock.sendall(f"USER {pop3.USER}\r\nPASS {pop3.PASSWORD}\r\nSTAT\r\n".encode())
    for _ in range(3):
        reply = read_line(sock, buffer)
        if not reply.startswith(b"+OK"):
            raise RuntimeError(f"login failed: {reply!r}")
    return sock, buffer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--only", default="", help="the cases whose label starts with this")
    parser.add_argument("--keep", action="store_true", help="keep the dumps (callgrind_annotate)")
    args = parser.parse_args()
    base = args.dir or Path(f"/var/tmp/nmail-pop3-instructions-{os.getpid()}")
    out = base / "callgrind"
    try:
        pop3.build_mailbox(base, args.messages, 0.01)
        out.mkdir()
        env = dict(os.environ, PYTHONHASHSEED="0", NMAIL_BENCH_CHECK_INTERVAL="3600")
        proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/cg.%p",
             sys.executable, str(Path(pop3.__file__)), "--serve", str(base)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
        )
        assert proc.stdout is not None and proc.stdin is not None
        line = proc.stdout.readline().decode()
        if not line.startswith("PORT "):
            raise SystemExit(f"server did not start: {line!r}")
        port = int(line.split()[1])
        n = args.messages
        cases: list[tuple[str, Client, int]] = [
            ("RETR pipelined", retr_pipelined, n),
            ("RETR one by one", one_by_one(b"RETR", True), n),
            ("LIST n", one_by_one(b"LIST", False), n),
            ("UIDL n", one_by_one(b"UIDL", False), n),
            ("LIST (whole)", listings(b"LIST"), 20),
            ("UIDL (whole)", listings(b"UIDL"), 20),
            ("DELE n", one_by_one(b"DELE", False), n),
        ]
        print(f"server instructions per command (callgrind, {n} messages of 2-4 KB):")
        for label, client, count in cases:
            if not label.startswith(args.only):
                continue
            sock, buffer = login(port)
            # Warm: the first pass opens caches (page cache, the generation read).
            client(sock, buffer, min(count, 50))
            sock.close()
            sock, buffer = login(port)
            time.sleep(0.5)  # let the server go idle in epoll before zeroing
            before = set(out.iterdir())
            control(proc.pid, "-z")
            client(sock, buffer, count)
            time.sleep(0.5)
            control(proc.pid, "-d")
            dumps = sorted(set(out.iterdir()) - before)
            sock.close()  # no QUIT: nothing is deleted
            total = sum(dumped_total(p) for p in dumps)
            print(f"  {label:16} {total / count:12,.0f}", *(
                [str(p) for p in dumps] if args.keep else []))
        proc.stdin.close()
        proc.wait(timeout=120)
    finally:
        if args.keep:
            shutil.copytree(out, Path(f"/var/tmp/pop3-callgrind-{os.getpid()}"))
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()

"""The change feed's abstract socket has no file permissions: both ends check the peer's user.

The hub's address is named after the data directory, so another local user
can bind it first (before `nmail serve`, or while the index writer restarts)
and wait. Played here by a process running as `nobody`: neither a subscriber
nor a publisher may talk to it, and the hub answers no such process.
Needs root (to start that process as another user).
"""

from __future__ import annotations

import asyncio
import os
import queue
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from nmail.mailstore.feed import AsyncFeed, ThreadFeed
from nmail.mailstore.feed_hub import FeedHub, FeedPublisher
from nmail.mailstore.feed_wire import Change

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c"]

# Binds the hub's address as `nobody`, greets like a hub, sends a forged event,
# and reports each connection's bytes on stdout, a line in one write: its
# connections' threads print at once, and print("data", n) is several writes
# (each a write of its own under PYTHONUNBUFFERED=1, as CI runs), so another
# thread's "eof" could land inside a "data" line and hide it.
IMPOSTOR = r"""
import socket, sys, threading
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind("\0" + sys.argv[1]); listener.listen(16)
lock = threading.Lock()
def say(line):
    with lock:
        sys.stdout.write(line + "\n"); sys.stdout.flush()
say("listening")
def serve(conn, n):
    try:
        conn.sendall(b"H forged\nE 1 10 99 deliver INBOX\n")
    except OSError:
        pass
    while True:
        try:
            data = conn.recv(4096)
        except OSError:
            data = b""
        if not data:
            say(f"eof {n}"); return
        say(f"data {n} {data!r}")
n = 0
while True:
    conn, _ = listener.accept(); n += 1
    threading.Thread(target=serve, args=(conn, n), daemon=True).start()
"""

# Connects to a hub as `nobody`, subscribes, reports what it is told (a line a write).
INTRUDER = r"""
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.settimeout(10)
s.connect("\0" + sys.argv[1])
try:
    s.sendall(b"S\nP 1 10 7 deliver INBOX\n")
    while (data := s.recv(4096)):
        sys.stdout.write(f"data {data!r}\n"); sys.stdout.flush()
except OSError:
    pass
sys.stdout.write("eof\n")
"""


class Impostor:
    def __init__(self, address: str) -> None:
        self.process = subprocess.Popen([*NOBODY, IMPOSTOR, address[1:]],
                                        stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "listening"
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.strip())

    def read_until(self, word: str, wait: float = 10.0) -> list[str]:
        """Lines up to the first that starts with `word`, or all seen in `wait` seconds."""
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            self.lines.append(line)
            if line.startswith(word):
                break
        return self.lines

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


@pytest.fixture
def impostor() -> Iterator[tuple[str, Impostor]]:
    address = f"\0nmail-feed-test-{secrets.token_hex(8)}"
    fake = Impostor(address)
    yield address, fake
    fake.stop()


def test_a_thread_subscriber_does_not_listen_to_another_users_socket(
        impostor: tuple[str, Impostor]) -> None:
    address, fake = impostor
    feed = ThreadFeed(address)
    try:
        sub = feed.subscribe(1, wait=0.2)
        lines = fake.read_until("eof")
        assert not [line for line in lines if line.startswith("data")]
        assert sub.get(0.2) is None  # the forged event never arrives
    finally:
        feed.close()


def test_an_async_subscriber_does_not_listen_to_another_users_socket(
        impostor: tuple[str, Impostor]) -> None:
    address, fake = impostor

    async def main() -> object:
        feed = AsyncFeed(address)
        try:
            sub = await feed.subscribe(1)
            await asyncio.to_thread(fake.read_until, "eof")
            return await sub.get(0.2)
        finally:
            await feed.close()

    assert asyncio.run(main()) is None
    assert not [line for line in fake.lines if line.startswith("data")]


def test_a_publisher_tells_another_users_socket_nothing(
        impostor: tuple[str, Impostor]) -> None:
    address, fake = impostor
    publisher = FeedPublisher(address)
    try:
        publisher.publish([_Committed()])
        lines = fake.read_until("eof")
        assert not [line for line in lines if line.startswith("data")]
    finally:
        publisher.close()


def test_the_hub_answers_no_other_user() -> None:
    address = f"\0nmail-feed-test-{secrets.token_hex(8)}"
    hub = FeedHub(address)
    feed = ThreadFeed(address)
    try:
        sub = feed.subscribe(1, wait=5)
        out = subprocess.run([*NOBODY, INTRUDER, address[1:]], capture_output=True, text=True,
                             timeout=30, check=True).stdout
        assert out.splitlines() == ["eof"]  # no hello, no event
        # Its published change reached nobody either.
        assert sub.get(0.2) is None
        hub.publish_changes([Change(1, 10, "INBOX", 8, "deliver")])
        assert sub.get(5) == Change(1, 10, "INBOX", 8, "deliver")
    finally:
        feed.close()
        hub.close()


class _Committed:
    account_id = 1
    folder_id = 10
    folder = "거래처/2026"
    highest_modseq = 3
    kind = "deliver"

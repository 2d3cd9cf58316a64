"""Small things every kind of test needs: clocks, loops, waiting, ports."""

from __future__ import annotations

import asyncio
import select
import socket
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class FakeClock:
    """A clock tests move by hand (no sleeping)."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


LOOPS = ["asyncio", "uvloop"]  # nmail serve runs on uvloop where it is installed


def new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


class LoopThread:
    """An event loop running in a daemon thread."""

    def __init__(self, kind: str = "asyncio") -> None:
        self.loop = new_loop(kind)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=timeout)

    def submit(self, coro: Coroutine[Any, Any, T]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


def wait_until(condition: Callable[[], bool], deadline: float = 10.0, what: str = "") -> None:
    """Poll a condition until it holds; fail after the deadline."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"condition not reached before the deadline: {what}")
        time.sleep(0.01)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def silent_for(sock: socket.socket, seconds: float) -> bool:
    """Whether the peer sent nothing and did not hang up for `seconds`.

    A slow client's pause between its bytes or commands: it ends at once when
    the server speaks or closes, so a test pacing a client this way waits on
    the server, not on the clock, once the server acts."""
    readable, _, _ = select.select([sock], [], [], seconds)
    return not readable


def closed_after(sock: socket.socket, send: bytes, every: float, limit: int) -> bytes:
    """Send `send`, then wait up to `every` s for the server to answer or hang up,
    at most `limit` times, until it closes; everything it said meanwhile
    (AssertionError if it never closed). The slow client of a timeout test."""
    said = b""
    sock.settimeout(every)
    for _ in range(limit):
        try:
            sock.sendall(send)
        except (BrokenPipeError, ConnectionResetError):
            return said
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return said
        if not chunk:
            return said
        said += chunk
    raise AssertionError(f"still open after {limit} sends; the server said {said!r}")

"""Start, kill -9 and restart `nmail serve` for the crash tests; their client threads.

tests/test_serve_kill.py, test_serve_kill_folders.py and test_serve_kill_queue.py
each run the real command (two workers, stderr appended to a log, a process
group of its own), kill every process of its tree at a moment the clients'
answers chose, start it again, and stop it at the end; their loads
(serve_kill_load.py, serve_kill_folders.py, the queue test's senders) run
client threads that end when the kill breaks their connections. Those
lines were written once per test; they are here once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from sqlalchemy import Engine, delete

from nmail.db.tables import login_failures
from proc_tree import alive, descendants, group_members
from serve_process import ServeProcess
from serve_setup import as_options
from support import wait_until


def kill_everything(srv: ServeProcess) -> None:
    """SIGKILL to every process of the tree at once, and wait until none is left."""
    group = srv.proc.pid  # it leads its own process group (ServeProcess with a log)
    pids = {group, *descendants(group), *group_members(group)}
    os.killpg(group, signal.SIGKILL)
    for pid in pids:  # any that left the group
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    srv.close()
    wait_until(lambda: not any(alive(p) for p in pids) and not group_members(group), 30,
               "every process of the tree gone")


class KilledServe:
    """`nmail serve --workers 2` on `ports`, killed and restarted by a crash test.

    Use it in `with`: at the end the command, if it runs, is stopped, and
    unless the block failed it must have exited 0.
    """

    def __init__(self, data: Path, ports: dict[str, int], log: Path, engine: Engine) -> None:
        self._data = data
        self._options = as_options(ports)
        self._log = log
        self._engine = engine
        self.srv = self._start()

    def _start(self) -> ServeProcess:
        return ServeProcess(self._data, *self._options, workers=2, log=self._log)

    @property
    def pid(self) -> int:
        """The supervisor's."""
        return self.srv.proc.pid

    def kill(self) -> None:
        """kill -9 of the whole tree (kill_everything)."""
        kill_everything(self.srv)

    def restart(self) -> None:
        """Start again after a kill; returns once it listens."""
        # A login the kill cut short stays counted as a failure (the throttle
        # counts before it checks the password: directory/throttle.py); round
        # after round that delays and then locks out 127.0.0.1. Lifted as
        # `nmail lockout clear --all` would.
        with self._engine.begin() as conn:
            conn.execute(delete(login_failures))
        self.srv = self._start()

    def __enter__(self) -> KilledServe:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        status: int | None = None
        if self.srv.proc.poll() is None:
            status, _ = self.srv.stop()
        if kind is None:
            assert status == 0, self.srv.stderr_text[-2000:]


class ClientThreads:
    """Client jobs, one thread each, until `stop()`; a failure before that goes to `fail`."""

    def __init__(self, fail: Callable[[str], None], what: str) -> None:
        self.stopping = threading.Event()
        self._fail = fail
        self._what = what
        self._threads: list[threading.Thread] = []

    def start(self, jobs: list[Callable[[], None]]) -> None:
        self._threads = [threading.Thread(target=self._guarded, args=(job,), daemon=True)
                         for job in jobs]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """From now on a failure is the kill's doing, not an error."""
        self.stopping.set()

    def join(self) -> None:
        for thread in self._threads:
            thread.join(60)
            assert not thread.is_alive(), f"{self._what} did not end"

    def _guarded(self, job: Callable[[], None]) -> None:
        try:
            job()
        except Exception as exc:  # the kill (the server went away), or a real failure
            if not self.stopping.is_set():
                self._fail(f"{type(exc).__name__}: {exc}")

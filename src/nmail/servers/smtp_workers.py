"""Worker processes for the SMTP listeners, and the supervisor that keeps them.

One Python process runs on one core at a time (the GIL); Postfix spreads a
mail's work over many processes. `nmail serve` with several workers forks
them from a supervisor that holds the listening sockets (bound before the
fork, so the kernel hands each new connection to whichever worker accepts
first) and does nothing else: it starts the workers, waits until each says
it is listening, forwards SIGHUP (certificate reload) and SIGTERM/SIGINT
(graceful stop), and starts a new worker when one dies.

The supervisor has no threads and no event loop, so forking a replacement
later is as safe as forking the first ones. Its signals stay blocked and
are taken with sigtimedwait(); workers get the original mask back.

Besides the workers it keeps a service process (the index writer: started
first, stopped last) and companions (the web process), restarted like
workers when they die.

A child must never outlive its supervisor, whatever it is doing (issue 9,
item 10: a worker left behind spun for 50 minutes). Two things see to it:
the kernel's parent-death signal (SIGTERM, which starts the child's
graceful stop), and a pipe whose only writer is the supervisor: a thread
in each child waits on it, and at its end-of-file (the supervisor is gone,
however it died) asks for the graceful stop itself, then ends the process
outright once the stop deadline has passed.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import select
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

log = logging.getLogger("nmail.workers")

_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD}
_PR_SET_PDEATHSIG = 1
STARTUP_TIMEOUT = 120.0


class WorkerStartError(Exception):
    """A worker could not start (its message says why); the others were stopped."""


@dataclass(slots=True)
class Worker:
    """What a worker process knows of itself: its slot, and how to report start-up."""

    index: int
    _report_fd: int | None = None

    def ready(self) -> None:
        """Listening: tell the supervisor (once; later calls do nothing)."""
        self._report("ok")

    def failed(self, reason: str) -> None:
        """Could not start: tell the supervisor why (one line)."""
        self._report("error " + " ".join(reason.split()))

    def _report(self, text: str) -> None:
        fd, self._report_fd = self._report_fd, None
        if fd is None:
            return
        try:
            os.write(fd, f"{self.index} {text}\n".encode()[:4000])
        finally:
            os.close(fd)


@dataclass(slots=True)
class _Slot:
    index: int
    pid: int = 0
    started: float = 0.0
    restart_at: float | None = None
    failures: int = 0
    exit_status: int | None = field(default=None)


def _watch_parent(life_fd: int, deadline: float) -> None:
    """In a child: when the supervisor's end of the life pipe closes, stop
    gracefully (SIGTERM to ourselves), and exit regardless `deadline` s later."""

    def watch() -> None:
        while True:
            try:
                if not os.read(life_fd, 1):
                    break  # end of file: no supervisor any more
            except InterruptedError:
                continue
            except OSError:
                break
        with contextlib.suppress(ProcessLookupError):
            os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(deadline)
        os._exit(1)

    threading.Thread(target=watch, name="nmail-parent-watch", daemon=True).start()


def _die_with_parent(parent: int) -> None:
    """Ask the kernel for SIGTERM when the supervisor goes away (Linux)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # it went away before prctl took effect
        os._exit(1)


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"status {os.waitstatus_to_exitcode(status)}"


class WorkerPool:
    """Forks `count` workers running `work(worker) -> exit status` and supervises them."""

    def __init__(
        self,
        count: int,
        work: Callable[[Worker], int],
        *,
        service: Callable[[Worker], int] | None = None,
        companions: Sequence[Callable[[Worker], int]] = (),
        stop_timeout: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`service`: one more process (Worker.index -1) the workers rely on; it
        starts first and is stopped only after every worker has ended.
        `companions`: other processes (Worker.index -2, -3, ...) kept like
        workers, e.g. the web process. `stop_timeout`: how long a graceful
        stop may take before SIGKILL (a child whose supervisor died gives
        itself as long)."""
        if count < 1:
            raise ValueError("at least one worker")
        self._work = work
        self._service = service
        self._companions = {-2 - i: run for i, run in enumerate(companions)}
        self._slots = [_Slot(i) for i in range(-1 if service else 0, count)]
        self._slots[1 if service else 0 : 1 if service else 0] = [
            _Slot(i) for i in self._companions
        ]
        self._life_read, self._life_write = os.pipe()
        self._stop_timeout = stop_timeout
        self._clock = clock
        self._old_mask: set[int | signal.Signals] | None = None
        self._pid = os.getpid()

    @property
    def pids(self) -> list[int]:
        """Process ids of the running workers."""
        return [s.pid for s in self._slots if s.pid]

    # -- start -------------------------------------------------------------------

    def start(self) -> None:
        """Fork every worker and wait until each is listening; WorkerStartError if one fails."""
        self._old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        read_fd, write_fd = os.pipe()
        try:
            for slot in self._slots:
                self._spawn(slot, write_fd, read_fd)
        finally:
            os.close(write_fd)
        try:
            self._await_reports(read_fd)
        except WorkerStartError:
            self._stop_all()
            self._restore_mask()
            raise
        finally:
            os.close(read_fd)

    def _spawn(self, slot: _Slot, report_fd: int | None, other_fd: int | None = None) -> None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()  # or the child would write the parent's buffer again
        pid = os.fork()
        if pid:
            slot.pid, slot.started, slot.restart_at = pid, self._clock(), None
            return
        status = 1
        try:
            if other_fd is not None:
                os.close(other_fd)
            _die_with_parent(self._pid)
            os.close(self._life_write)
            _watch_parent(self._life_read, self._stop_timeout)
            signal.pthread_sigmask(signal.SIG_SETMASK, self._old_mask or set())
            work = self._work
            if slot.index == -1 and self._service is not None:
                work = self._service
            elif slot.index in self._companions:
                work = self._companions[slot.index]
            status = work(Worker(slot.index, report_fd))
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os._exit(status)

    def _await_reports(self, read_fd: int) -> None:
        waiting = {slot.index for slot in self._slots}
        deadline = self._clock() + STARTUP_TIMEOUT
        buffer = b""
        while waiting:
            readable, _, _ = select.select([read_fd], [], [], 0.1)
            if readable:
                chunk = os.read(read_fd, 65536)
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    index_text, _, message = line.decode("utf-8", "replace").partition(" ")
                    waiting.discard(int(index_text))
                    if message != "ok":
                        raise WorkerStartError(message.removeprefix("error "))
                if not chunk and waiting:
                    raise WorkerStartError("a worker exited while starting")
            for slot in self._slots:
                if slot.index in waiting and self._reap(slot):
                    how = _describe(slot.exit_status or 0)
                    raise WorkerStartError(f"worker {slot.index} exited while starting ({how})")
            if self._clock() > deadline:
                raise WorkerStartError("workers did not start in time")

    # -- running -----------------------------------------------------------------

    def run(self, stopping: Callable[[], None] | None = None) -> None:
        """Supervise until SIGTERM or SIGINT, then stop every worker gracefully.

        `stopping` is called once the stop signal arrived, before the workers
        are told.
        """
        try:
            while True:
                timeout = self._next_restart_in()
                info = signal.sigtimedwait(_SIGNALS, timeout if timeout is not None else 3600.0)
                self._restart_due()
                if info is None:
                    continue
                signo = info.si_signo
                if signo == signal.SIGHUP:
                    self._signal_workers(signal.SIGHUP)
                elif signo == signal.SIGCHLD:
                    self._reap_all_and_schedule()
                else:
                    break
            if stopping is not None:
                stopping()
            self._stop_all()
        finally:
            self._restore_mask()

    def _next_restart_in(self) -> float | None:
        due = [s.restart_at for s in self._slots if s.restart_at is not None]
        if not due:
            return None
        return max(0.0, min(due) - self._clock())

    def _restart_due(self) -> None:
        now = self._clock()
        for slot in self._slots:
            if slot.restart_at is not None and slot.restart_at <= now:
                log.warning("starting worker %d again", slot.index)
                self._spawn(slot, None)

    def _reap_all_and_schedule(self) -> None:
        for slot in self._slots:
            if slot.pid and self._reap(slot):
                lived = self._clock() - slot.started
                slot.failures = slot.failures + 1 if lived < 10.0 else 1
                delay = min(30.0, 0.5 * 2 ** (slot.failures - 1))
                log.error(
                    "worker %d exited (%s); a new one starts in %.1f s",
                    slot.index,
                    _describe(slot.exit_status or 0),
                    delay,
                )
                slot.restart_at = self._clock() + delay

    def _reap(self, slot: _Slot) -> bool:
        """True if the slot's process has ended (and is now reaped)."""
        if not slot.pid:
            return False
        try:
            pid, status = os.waitpid(slot.pid, os.WNOHANG)
        except ChildProcessError:
            pid, status = slot.pid, 0
        if pid == 0:
            return False
        slot.pid, slot.exit_status = 0, status
        return True

    def _signal_workers(self, signo: signal.Signals) -> None:
        for slot in self._slots:
            if slot.pid and slot.index >= 0:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(slot.pid, signo)

    def _stop_all(self) -> None:
        """Stop the workers, then the service (SIGTERM; SIGKILL after stop_timeout)."""
        for slot in self._slots:
            slot.restart_at = None
        self._stop([s for s in self._slots if s.index != -1])
        self._stop([s for s in self._slots if s.index == -1])

    def _stop(self, slots: list[_Slot]) -> None:
        for slot in slots:
            if slot.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(slot.pid, signal.SIGTERM)
        deadline = self._clock() + self._stop_timeout
        while True:
            for slot in slots:
                self._reap(slot)
            running = [slot for slot in slots if slot.pid]
            if not running:
                return
            left = deadline - self._clock()
            if left <= 0:
                log.error("processes still running after %.0f s; killing them", self._stop_timeout)
                for slot in running:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(slot.pid, signal.SIGKILL)
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(slot.pid, 0)
                    slot.pid = 0
                return
            signal.sigtimedwait({signal.SIGCHLD}, min(left, 0.5))

    def close(self) -> None:
        """Release the life pipe (after run() or a failed start())."""
        for fd in (self._life_read, self._life_write):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._life_read = self._life_write = -1

    def _restore_mask(self) -> None:
        if self._old_mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, self._old_mask)
            self._old_mask = None

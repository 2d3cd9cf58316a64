"""`nmail serve` as a child process, for the tests that drive the real command.

Its stderr (the log: a line per session, limit and error) always goes to a
file, never to a pipe left unread until `stop`: a busy test fills a 64 KiB
pipe in about six hundred log lines, and the server would then block in its
logging; and a file can be read whenever a test fails, the command still
running or killed. Each command started is listed in STARTED, so that a
failing test's report carries what its servers logged (conftest.py,
`server_log_sections`): the CI run whose failure printed nothing from the
server needed a reproduction to be understood. A command belongs to the test
that started it: one still running after that test's teardown is stopped.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO

NMAIL = [sys.executable, "-m", "nmail"]
REPORT_LINES = 400  # the tail of a server's log a failure report shows


class ServeProcess:
    """`nmail --data DATA serve [--workers N] --listen ...`; returns once it listens.

    The banner line ("... listening: ...") tells where; `lines` holds what it
    printed until then.
    """

    def __init__(
        self,
        data: Path,
        *listen: str,
        workers: int | None = None,
        open_files: tuple[int, int] | None = None,
        log: Path | None = None,
        shared: bool = False,
    ) -> None:
        """`open_files`: the (soft, hard) RLIMIT_NOFILE the command starts with.
        `log`: a file its stderr is appended to (else an unnamed temporary file);
        the command leads a process group of its own then, so a test can kill the
        tree. `shared`: a module fixture's server, kept across its tests (SHARED)."""
        args = [*NMAIL, "--data", str(data), "serve"]
        if workers is not None:
            args += ["--workers", str(workers)]
        for spec in listen:
            args += ["--listen", spec]
        def limit() -> None:
            if open_files is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, open_files)

        self.log_path = log
        # Binary, unbuffered on our side: the child writes through its own fd.
        self._err: IO[bytes] = (
            open(log, "a+b") if log is not None else tempfile.TemporaryFile()  # noqa: SIM115
        )
        self._start = self._err.tell()  # an appended log: only this command's lines
        self.stderr_text = ""
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=self._err, text=True,
            preexec_fn=limit, start_new_session=log is not None,
        )
        (SHARED if shared else STARTED).append(self)
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if "listening:" in line:
                break
        else:
            raise AssertionError("serve exited: " + "".join(self.lines) + self.stderr())

    def stderr(self) -> str:
        """What the command wrote to stderr so far (all of it once `stop` returned)."""
        if self._err.closed:
            return self.stderr_text
        fd = self._err.fileno()
        size = os.fstat(fd).st_size
        return os.pread(fd, max(0, size - self._start), self._start).decode(errors="replace")

    def _forget_log(self) -> None:
        if not self._err.closed:
            self.stderr_text = self.stderr()
            self._err.close()

    def close(self) -> None:
        """Forget a command that was killed (its pipes and log file)."""
        self.proc.wait(30)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        self._forget_log()

    def stop(self) -> tuple[int, str]:
        """SIGTERM; the exit status and everything printed (stderr: `stderr_text`)."""
        if self in SHARED:
            SHARED.remove(self)
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=90)
        self._forget_log()
        return self.proc.returncode, "".join(self.lines) + (out or "")

    def report(self) -> str:
        """The tail of the log, for a failure report: where it is, whether it still runs."""
        try:
            text = self.stderr()
        except OSError as error:  # a report must not fail the run
            text = f"(the log could not be read: {error})"
        lines = text.splitlines()
        state = "running" if self.proc.poll() is None else f"exit status {self.proc.returncode}"
        head = " ".join(str(a) for a in self.proc.args[3:]) + f"\npid {self.proc.pid}, {state}"  # type: ignore[index]
        if self.log_path is not None:
            head += f", log {self.log_path}"
        if len(lines) > REPORT_LINES:
            head += f"; its last {REPORT_LINES} of {len(lines)} lines"
            lines = lines[-REPORT_LINES:]
        return head + ":\n" + ("\n".join(lines) if lines else "(nothing on stderr)") + "\n"


# The commands started by the test running in this pytest process (conftest.py
# reports them when it fails, and forgets them after its teardown).
STARTED: list[ServeProcess] = []
# The commands a module-scoped fixture started for all of its tests (`shared`):
# in the report of each test that fails meanwhile, never stopped after one test;
# the fixture stops them.
SHARED: list[ServeProcess] = []


def server_log_sections() -> list[tuple[str, str]]:
    """(title, text) for each command the test started or shares: its failure report's
    sections."""
    return [(f"nmail serve stderr (pid {srv.proc.pid})", srv.report())
            for srv in (*SHARED, *STARTED)]


def end_of_test() -> None:
    """After a test's teardown: stop what it left running, and forget them all.

    A test that failed before its `stop` would otherwise leave a server (its
    workers, its CPU) running under the next tests."""
    for srv in STARTED:
        if srv.proc.poll() is None:
            try:
                srv.stop()
            except subprocess.TimeoutExpired:
                srv.proc.kill()
                srv.close()
    STARTED.clear()

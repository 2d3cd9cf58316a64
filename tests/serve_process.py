"""`nmail serve` as a child process, for the tests that drive the real command."""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
from pathlib import Path

NMAIL = [sys.executable, "-m", "nmail"]


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
    ) -> None:
        """`open_files`: the (soft, hard) RLIMIT_NOFILE the command starts with.
        `log`: a file its stderr is appended to (else a pipe, read by `stop`); the
        command leads a process group of its own then, so a test can kill the tree."""
        args = [*NMAIL, "--data", str(data), "serve"]
        if workers is not None:
            args += ["--workers", str(workers)]
        for spec in listen:
            args += ["--listen", spec]
        def limit() -> None:
            if open_files is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, open_files)

        self._log = open(log, "a") if log is not None else None  # noqa: SIM115
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=self._log or subprocess.PIPE, text=True,
            preexec_fn=limit, start_new_session=log is not None,
        )
        assert self.proc.stdout is not None
        self.lines: list[str] = []
        self.stderr_text = ""
        for line in self.proc.stdout:
            self.lines.append(line)
            if "listening:" in line:
                break
        else:
            raise AssertionError("serve exited: " + "".join(self.lines) + self.stderr())

    def stderr(self) -> str:
        if self._log is not None:
            self._log.flush()
            return Path(self._log.name).read_text()
        assert self.proc.stderr is not None
        return self.proc.stderr.read()

    def close(self) -> None:
        """Forget a command that was killed (its pipes and log file)."""
        self.proc.wait(30)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        if self._log is not None:
            self._log.close()

    def stop(self) -> tuple[int, str]:
        """SIGTERM; the exit status and everything printed (stderr: `stderr_text`)."""
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=90)
        self.stderr_text = err if self._log is None else self.stderr()
        if self._log is not None:
            self._log.close()
        return self.proc.returncode, "".join(self.lines) + out

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
    ) -> None:
        """`open_files`: the (soft, hard) RLIMIT_NOFILE the command starts with."""
        args = [*NMAIL, "--data", str(data), "serve"]
        if workers is not None:
            args += ["--workers", str(workers)]
        for spec in listen:
            args += ["--listen", spec]
        def limit() -> None:
            if open_files is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, open_files)

        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=limit
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
        assert self.proc.stderr is not None
        return self.proc.stderr.read()

    def stop(self) -> tuple[int, str]:
        """SIGTERM; the exit status and everything printed (stderr: `stderr_text`)."""
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=90)
        self.stderr_text = err
        return self.proc.returncode, "".join(self.lines) + out

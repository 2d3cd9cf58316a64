"""A writer of the mail store killed -9: what a crash leaves for the next start.

A test that fakes a crash's leftovers (a file without its row, a row without
its file) while the store is stopped cleanly must also leave what the crash
would have: a writer that never stopped (mailstore/clean_stop.py), or the
next start skips its repair.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")


def killed_writer(mail_dir: Path, code: str = "") -> None:
    """A process that registers as a writer of `mail_dir` (and runs `code`), then is
    killed with SIGKILL."""
    script = ("import sys, time\nfrom pathlib import Path\n"
              "from nmail.mailstore.clean_stop import WriterMark\n"
              f"mark = WriterMark(Path({str(mail_dir)!r}))\n{code}\n"
              "print('ready', flush=True)\ntime.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": SRC})
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()

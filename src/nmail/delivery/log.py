"""The delivery log: one line per recipient and attempt, in DIR/logs/.

Format (tab separated, one file per UTC day, `delivery-YYYYMMDD.log`):
time  id  from  to  size  result  reply
where result is one of stored, queued, rejected, delivered, deferred, bounced.
Fields never contain tabs or line breaks (they are replaced by spaces), so the
file stays greppable and safe to parse. Other controls (ESC, C1, bidi
overrides) are written out as `\\x1b`, `\\u202e`: addresses and remote
replies come from strangers, and admins read this file in a terminal.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from nmail.cli.outside_text import one_line

_BREAKS = re.compile(r"[\t\r\n]")


def _clean(value: object) -> str:
    text = str(value)
    if text.isascii() and text.isprintable():
        # No control at all (the usual id, address and reply): the two
        # substitutions would change nothing and cost ~3k instructions each.
        return text or "-"
    return one_line(_BREAKS.sub(" ", text)) or "-"


class DeliveryLog:
    """Append-only, thread-safe, rotated by day."""

    def __init__(self, logs_dir: Path, clock: Callable[[], float] = time.time) -> None:
        self.logs_dir = logs_dir
        self.clock = clock
        self._lock = threading.Lock()
        self._day = ""
        self._fh: TextIO | None = None
        self._last_stamp: tuple[int, str, str] = (-1, "", "")

    def _file(self, day: str) -> TextIO:
        if self._fh is None or day != self._day:
            if self._fh is not None:
                self._fh.close()
            self.logs_dir.mkdir(parents=True, exist_ok=True)
            path = self.logs_dir / f"delivery-{day}.log"
            self._fh = path.open("a", encoding="utf-8", buffering=1)
            self._day = day
        return self._fh

    def write(
        self, msg_id: str, sender: str, recipient: str, size: int, result: str, reply: str
    ) -> None:
        stamp, day = self._stamp(self.clock())
        line = (
            f"{stamp}\t{_clean(msg_id)}\t{_clean(sender or '<>')}\t{_clean(recipient)}"
            f"\t{size}\t{_clean(result)}\t{_clean(reply)}\n"
        )
        with self._lock:
            self._file(day).write(line)

    def _stamp(self, when: float) -> tuple[str, str]:
        """The line's UTC time and the file's day; formatted once per second."""
        second = math.floor(when)
        last = self._last_stamp
        if last[0] != second:
            now = dt.datetime.fromtimestamp(second, dt.UTC)
            last = self._last_stamp = (second, now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                       now.strftime("%Y%m%d"))
        return last[1], last[2]

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None

"""The delivery log: one line per recipient and attempt, in DIR/logs/.

Format (tab separated, one file per UTC day, `delivery-YYYYMMDD.log`):
time  id  from  to  size  result  reply
where result is one of stored, queued, rejected, delivered, deferred, bounced.
Fields never contain tabs or line breaks (they are replaced by spaces), so the
file stays greppable and safe to parse.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO


def _clean(value: object) -> str:
    text = str(value)
    if any(c in text for c in "\t\r\n"):
        text = text.replace("\t", " ").replace("\r", " ").replace("\n", " ")
    return text or "-"


class DeliveryLog:
    """Append-only, thread-safe, rotated by day."""

    def __init__(self, logs_dir: Path, clock: Callable[[], float] = time.time) -> None:
        self.logs_dir = logs_dir
        self.clock = clock
        self._lock = threading.Lock()
        self._day = ""
        self._fh: TextIO | None = None

    def _file(self, now: dt.datetime) -> TextIO:
        day = now.strftime("%Y%m%d")
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
        now = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        line = "\t".join(
            _clean(v)
            for v in (
                now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                msg_id,
                sender or "<>",
                recipient,
                size,
                result,
                reply,
            )
        )
        with self._lock:
            self._file(now).write(line + "\n")

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None

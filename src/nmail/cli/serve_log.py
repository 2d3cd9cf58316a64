"""Logging of `nmail serve`: one line per event on stderr, controls escaped.

Without a configuration Python prints only WARNING and above, through its
last-resort handler, with neither time nor process, and nothing at INFO
(permissions tightened at start, limits hit, sessions closed) reaches the
admin. Log messages carry text strangers chose (an EHLO name, an address, a
remote reply): a terminal or `journalctl` obeys an ESC, a C1 CSI or a bidi
override inside them. So the one handler escapes every message with the
project's escaping (cli.outside_text.one_line: a forged line break cannot
fake a log line of its own either; a traceback keeps its lines).

A line: `2026-12-06T20:31:07Z worker-1[4242] INFO nmail.servers.pop3: ...`
(UTC). The role says which process of `nmail serve` wrote it: `main` (the
single process, or the supervisor), `worker-N`, `index` or `web`; each
forked process names itself with `set_role`. nmail's loggers log from INFO,
other libraries' (alembic's migration chatter, asyncio) from WARNING.
"""

from __future__ import annotations

import logging
import sys
import time

from nmail.cli.outside_text import escape_controls, one_line

_role = "main"
_handler: logging.Handler | None = None


class ServeLogFormatter(logging.Formatter):
    """Time stamp (UTC), process role and pid, level, logger: the message escaped."""

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))
        line = (
            f"{stamp} {_role}[{record.process}]"
            f" {record.levelname} {record.name}: {one_line(record.message)}"
        )
        if record.exc_info:
            line += "\n" + escape_controls(self.formatException(record.exc_info))
        if record.stack_info:
            line += "\n" + escape_controls(self.formatStack(record.stack_info))
        return line


def set_role(role: str) -> None:
    """Name this process in the log lines it writes from now on (after a fork)."""
    global _role
    _role = role


def configure_serve_logging(role: str = "main") -> None:
    """Send log lines to stderr in ServeLogFormatter's form; once per process."""
    global _handler
    set_role(role)
    if _handler is not None:
        return
    _handler = logging.StreamHandler(sys.stderr)
    _handler.setFormatter(ServeLogFormatter())
    root = logging.getLogger()
    root.addHandler(_handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("nmail").setLevel(logging.INFO)

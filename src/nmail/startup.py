"""What a start of nmail does once, before any listener serves.

`nmail serve`'s supervisor binds every listening socket and prepares the
data (schema, start-up repair) before it forks the workers, each of which
then builds its own Runtime on those sockets; a Runtime started alone (a
test's, the web process's) binds through the same `bind_socket`. Kept apart
from runtime.py, the composition root, because none of it builds a part.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass

from nmail.config import Config
from nmail.db.engine import make_engine
from nmail.db.migrate import upgrade
from nmail.mailstore.store import MailStore
from nmail.mailstore.thread_sweep import sweep_pending

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Bound:
    """A listener that is up: its name and the address it really got."""

    name: str
    host: str
    port: int


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket (port 0 picks a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(512)
    sock.setblocking(False)
    return sock


def prepare_data(config: Config) -> str:
    """Once per start, before any worker: migrate the schema, sweep the conversation
    links an upgrade left (once: thread_sweep.sweep_pending) and repair the index
    unless every writer of the mail store stopped cleanly (mailstore/clean_stop.py).

    Returns the repair report ("" when nothing was missing; "skipped, ..." when skipped).
    """
    for path in (config.mail_dir, config.queue_dir, config.logs_dir):
        path.mkdir(parents=True, exist_ok=True)
    engine = make_engine(config.database_url)
    try:
        upgrade(engine)
        forgotten = sweep_pending(engine)
        if forgotten:
            log.info("forgot the links of %d conversations with no message left", forgotten)
        store = MailStore(engine, config.mail_dir, config.hostname)
        try:
            report = store.repair(unless_clean=True)
        finally:
            store.close()
    finally:
        engine.dispose()
    return report.said()

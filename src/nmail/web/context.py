"""What the web app is given to work with: the core's services, built elsewhere.

The web app (webmail, admin console, autoconfig) is constructed by
`nmail.web.app.create_app(context)` and nothing else: no engine, thread
pool or socket is made at import or inside the app, so the same app runs in
the web process `nmail serve` forks (servers/web_process.py) and in a test's
in-process Runtime. Every field is built by nmail.runtime.Runtime from the
configuration; in the web process the store commits through the index
writer process and queued mail wakes worker 0's queue, as in any worker.

Blocking core calls (SQL, files, Argon2) must run in `executor`
(`await loop.run_in_executor(context.executor, ...)`), never on the loop.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from nmail.config import Config
    from nmail.delivery.intake import Intake
    from nmail.directory import Directory
    from nmail.directory.login_gate import PasswordGate
    from nmail.directory.throttle import LoginThrottle
    from nmail.mailstore.feed import AsyncFeed
    from nmail.mailstore.store import MailStore
    from nmail.web.endpoints import ClientEndpoints


@dataclass(frozen=True, slots=True)
class WebContext:
    """The services one web process uses (see the module docstring)."""

    config: Config  # nmail.toml as loaded (hostname, data_dir, database_url, [http] ...)
    directory: Directory  # domains, accounts, aliases, passwords, is_hosted()
    store: MailStore  # the mailbox model; writes go through the index writer
    intake: Intake  # the one way in, for sending (local copies stored, the rest queued)
    throttle: LoginThrottle  # the login throttle SMTP AUTH and POP3 share (in SQL)
    executor: Executor  # for blocking core calls
    client_endpoints: Callable[[], ClientEndpoints]  # the mail ports in use, for help pages
    engine: Engine  # the index database, for the web's own tables (sessions) only
    # Socket address of the index writer process (None: this process writes itself).
    index_address: str | None = None
    # The node's change feed (mailstore/feed.py): subscribe per account for new
    # mail, flags and moves; the hub runs beside the index writer.
    feed: AsyncFeed | None = None
    # The process's password gate (directory/login_gate.py), shared with its
    # other login services; None: the web's login service makes its own.
    login_gate: PasswordGate | None = None

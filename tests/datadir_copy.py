"""Initialized data directories for tests: copies of one made once a run.

`nmail.datadir.initialize` makes a self-signed certificate, a DKIM key, the
postmaster account (a full-cost Argon2 hash; its Maildir folders synced to
disk) and the migrated index: 2-3.6 s of wall time a directory with the
machine loaded (0.25-0.4 s of CPU; the rest waiting for the disk), before
some 200 tests a run. A copy (modes kept) of a directory initialized once
with the same hostname and postmaster password is the same directory: its
configuration names its files relative to it, the default index lives in it.
On a database server the rows are the server's: those are made for real.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from databases import fresh_sqlite
from nmail.datadir import initialize

_made: dict[tuple[str, str], Path] = {}


def initialized(data: Path, *, hostname: str, password: str,
                database_url: str | None = None) -> None:
    """`initialize(data, ...)`: on the default SQLite index, as a copy."""
    if database_url is not None:
        initialize(data, hostname=hostname, password=password, database_url=database_url)
        return
    template = _made.get((hostname, password))
    if template is None:
        home = Path(tempfile.mkdtemp(prefix="nmail-datadir-"))
        atexit.register(shutil.rmtree, home, True)
        template = home / "data"
        template.mkdir(mode=0o700)
        fresh_sqlite(template)  # the run's migrated index: upgrade finds nothing to do
        initialize(template, hostname=hostname, password=password)
        # Every connection closed: nothing but the index itself (and its lock file).
        assert not list(template.glob("index.sqlite3-*")), list(template.iterdir())
        _made[(hostname, password)] = template
    shutil.copytree(template, data, symlinks=True, dirs_exist_ok=True)

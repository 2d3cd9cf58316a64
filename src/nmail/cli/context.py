"""What every CLI command gets: the data directory, config and database."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import NoReturn

from rich.console import Console
from sqlalchemy import Engine

from nmail.cli.outside_text import SafeConsole, one_line
from nmail.config import Config, load_config
from nmail.db.engine import make_engine
from nmail.db.migrate import upgrade


class CliError(Exception):
    """Bad input or a refused change: one line on stderr, exit status 1."""


@dataclass
class CliContext:
    data_dir: Path
    # Wide when piped, so scripts get one row per line instead of wrapped cells.
    # SafeConsole: controls in printed text (much of it from outside) are escaped.
    out: Console = field(
        default_factory=lambda: SafeConsole(
            highlight=False, width=None if sys.stdout.isatty() else 400
        )
    )
    err: Console = field(default_factory=lambda: SafeConsole(stderr=True, highlight=False))

    @cached_property
    def config(self) -> Config:
        return load_config(self.data_dir)

    @cached_property
    def engine(self) -> Engine:
        engine = make_engine(self.config.database_url)
        upgrade(engine)  # cheap when current; keeps upgrades a non-event
        return engine

    def fail(self, message: str) -> NoReturn:
        raise CliError(message)

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()


def print_error(message: str) -> None:
    print(f"nmail: error: {one_line(message)}", file=sys.stderr)

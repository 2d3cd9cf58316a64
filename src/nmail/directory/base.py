"""What every part of the Directory shares: the engine, the clock, transactions."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, CursorResult, Engine
from sqlalchemy.exc import IntegrityError

from nmail.directory.errors import Conflict
from nmail.directory.generation import bump_generation
from nmail.directory.passwords import PasswordHashing


class DirectoryBase:
    """State shared by the Directory's parts; holds nothing mutable but the engine's pool."""

    def __init__(
        self,
        engine: Engine,
        clock: Callable[[], float] = time.time,
        passwords: PasswordHashing | None = None,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._passwords = passwords or PasswordHashing()

    @property
    def engine(self) -> Engine:
        return self._engine

    def _now(self) -> int:
        return int(self._clock())

    @contextmanager
    def _transaction(self, conflict: str) -> Iterator[Connection]:
        """One transaction; a unique-key violation becomes Conflict(conflict).

        The checks before each insert give the precise message; the database
        constraint catches the race where two admins add the same thing. The
        directory generation is bumped first, in the same transaction, so every
        cache of directory answers sees the change with it.
        """
        try:
            with self._engine.begin() as conn:
                bump_generation(conn)
                yield conn
        except IntegrityError:
            raise Conflict(conflict) from None


def inserted_id(result: CursorResult[Any]) -> int:
    """The primary key an INSERT of one row produced."""
    key = result.inserted_primary_key
    if key is None or key[0] is None:
        raise RuntimeError("the database returned no primary key for the new row")
    return int(key[0])

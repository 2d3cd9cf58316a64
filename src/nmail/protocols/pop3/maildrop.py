"""The maildrop a POP3 session works on: numbered messages and deletion marks."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from nmail.protocols.pop3.events import MaildropEntry

# More digits than any maildrop can have messages: refuse before int().
_MAX_NUMBER_DIGITS = 10


class MaildropError(ValueError):
    """A message number the client gave does not name a usable message."""


class Maildrop:
    """The messages fixed at login (RFC 1939: numbering never changes in a session)."""

    __slots__ = ("_deleted", "_entries", "_live_size", "_retrieved", "retrieved")

    def __init__(self, entries: Sequence[MaildropEntry]) -> None:
        self._entries = tuple(entries)
        self._deleted: set[int] = set()  # message numbers marked by DELE
        self._retrieved: set[int] = set()  # message numbers sent whole by RETR
        # retrieved(number): note that a message was sent whole (RETR). The
        # set's own add, not a method of ours: called for every RETR, where a
        # Python frame is a few hundred instructions.
        self.retrieved: Callable[[int], None] = self._retrieved.add
        self._live_size = sum(e.size for e in self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def count(self) -> int:
        """Messages not marked as deleted."""
        return len(self._entries) - len(self._deleted)

    @property
    def size(self) -> int:
        """Octets of the messages not marked as deleted."""
        return self._live_size

    def live(self) -> list[tuple[int, MaildropEntry]]:
        """(number, entry) of every message not marked as deleted."""
        deleted = self._deleted
        return [(n, e) for n, e in enumerate(self._entries, 1) if n not in deleted]

    def lookup(self, argument: str) -> tuple[int, MaildropEntry]:
        """The live message a number argument names, or MaildropError with the reason."""
        if not argument.isascii() or not argument.isdigit():
            raise MaildropError(f"Invalid message number {argument[:20]!r}")
        if len(argument) > _MAX_NUMBER_DIGITS:
            raise MaildropError("No such message")
        number = int(argument)
        if not 1 <= number <= len(self._entries):
            raise MaildropError(f"No such message {number}")
        if number in self._deleted:
            raise MaildropError(f"message {number} already deleted")
        return number, self._entries[number - 1]

    def delete(self, number: int) -> None:
        """Mark a live message (from lookup) as deleted."""
        self._deleted.add(number)
        self._live_size -= self._entries[number - 1].size

    def reset(self) -> None:
        """RSET: unmark every message."""
        self._deleted.clear()
        self._live_size = sum(e.size for e in self._entries)

    def retrieved_entries(self) -> tuple[MaildropEntry, ...]:
        """The messages sent whole and not marked as deleted, in number order."""
        kept = self._retrieved - self._deleted
        return tuple(self._entries[n - 1] for n in sorted(kept))

    def deleted_entries(self) -> tuple[MaildropEntry, ...]:
        """The messages to remove at UPDATE, in message-number order."""
        return tuple(self._entries[n - 1] for n in sorted(self._deleted))

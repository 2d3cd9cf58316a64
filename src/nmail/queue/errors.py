"""Errors the outbound queue raises to its callers."""

from __future__ import annotations


class QueueInputError(ValueError):
    """The caller handed the queue something it must not send (e.g. CR/LF in an address)."""


class QueueEntryNotFound(LookupError):
    """No queue entry has that id."""

    def __init__(self, queue_id: str) -> None:
        super().__init__(f"no queue entry {queue_id!r}")
        self.queue_id = queue_id

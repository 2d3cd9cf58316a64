"""What `nmail queue` is shown: one queued message, and what a bounce did.

Values read from the queue's rows (queue/store.py) for the command line
(cli/queue_cmd.py): OutboundQueue (outbound.py) returns them from
list_entries, show and bounce. A room of their own: they only present
rows, and outbound.py was at its 400-line limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nmail.queue.store import BOUNCING, CORRUPT, DELIVERING, QUEUED, MessageInfo, RecipientInfo


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """One queued message as `nmail queue list/show` presents it."""

    message: MessageInfo
    recipients: tuple[RecipientInfo, ...]
    body_path: Path | None  # where the body is (queue/ or queue/corrupt/), None if gone

    @property
    def id(self) -> str:
        return self.message.id

    @property
    def state(self) -> str:
        """corrupt, bouncing, delivering or queued: the most urgent of the pending ones."""
        states = {r.state for r in self.recipients}
        for state in (CORRUPT, BOUNCING, DELIVERING, QUEUED):
            if state in states:
                return state
        return "done"

    @property
    def attempts(self) -> int:
        return max((r.attempts for r in self.recipients), default=0)

    @property
    def next_attempt(self) -> int | None:
        times = [r.next_attempt for r in self.recipients if r.state == QUEUED]
        return min(times) if times else None

    @property
    def last_error(self) -> str | None:
        errors = [r.last_error for r in self.recipients if r.last_error and r.state != "delivered"]
        return errors[-1] if errors else None

    @property
    def pending(self) -> tuple[RecipientInfo, ...]:
        return tuple(r for r in self.recipients if r.state in (QUEUED, DELIVERING, CORRUPT,
                                                                BOUNCING))


@dataclass(frozen=True, slots=True)
class BounceResult:
    """What `bounce(id)` did: notices sent now, or left for a running server."""

    marked: int
    sent_now: int

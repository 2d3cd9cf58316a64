"""A feed link's subscriptions: each one's filter, bounded queue and Resync.

What a subscriber of the change feed can rely on (feed.py) is decided here,
apart from the I/O: AsyncFeed calls this on its event loop, ThreadFeed
under its condition, so both keep one set of rules and these classes take
no lock. A subscription queues at most QUEUE_LIMIT events: a stuck
consumer costs bounded memory, and once it falls behind it gets one
`Resync("slow")` with the last modseq it was given per folder, which
is all it needs to read the rest from the database. A new hub connection
("H") tells every subscription from before it to resync ("reconnected"),
a hub that may have missed events ("R") tells all of them ("lost").
"""

from __future__ import annotations

import collections
from collections.abc import Mapping
from dataclasses import dataclass, field

from nmail.mailstore.feed_wire import Change, WireError, parse_change

QUEUE_LIMIT = 256


@dataclass(frozen=True, slots=True)
class Resync:
    """Events may have been lost: read the account's changes from the database."""

    account_id: int
    last_seen: Mapping[int, int]  # folder id -> the last modseq this subscription delivered
    reason: str  # "slow", "reconnected" or "lost"


Event = Change | Resync


@dataclass(slots=True)
class SubscriberQueue:
    """One subscription's filter, bounded queue and loss marker (no locking here)."""

    account_id: int  # 0: every account (subscribe_all)
    folder_id: int | None
    generation: int  # the hub connection it was registered on (-1: none)
    events: collections.deque[Change] = field(default_factory=collections.deque)
    last_seen: dict[int, int] = field(default_factory=dict)
    lost: str | None = None
    closed: bool = False

    def matches(self, change: Change) -> bool:
        return (change.account_id == self.account_id or not self.account_id) and (
            self.folder_id is None or change.folder_id == self.folder_id)

    def offer(self, change: Change) -> None:
        if len(self.events) >= QUEUE_LIMIT:
            self.events.clear()
            self.lost = "slow"
        self.events.append(change)

    def mark_lost(self, reason: str) -> None:
        self.events.clear()
        if self.lost != "slow":  # "slow" says the most: the consumer should hurry
            self.lost = reason

    def take(self) -> Event | None:
        if self.lost is not None:
            reason, self.lost = self.lost, None
            return Resync(self.account_id, dict(self.last_seen), reason)
        if not self.events:
            return None
        change = self.events.popleft()
        if change.modseq > self.last_seen.get(change.folder_id, 0):
            self.last_seen[change.folder_id] = change.modseq
        return change


class Fanout:
    """The subscriptions of one feed connection and the state of the link."""

    def __init__(self) -> None:
        self.queues: list[tuple[SubscriberQueue, object]] = []  # (queue, its subscription)
        self.generation = -1  # counts hub connections; -1 while there is none
        self._connections = 0

    def connected(self) -> list[object]:
        """A hub said hello: subscriptions from before this link must resync."""
        self._connections += 1
        self.generation = self._connections
        woken = []
        for queue, sub in self.queues:
            if queue.generation != self.generation:
                queue.mark_lost("reconnected")
                queue.generation = self.generation
                woken.append(sub)
        return woken

    def disconnected(self) -> None:
        self.generation = -1

    def lost_all(self) -> list[object]:
        for queue, _ in self.queues:
            queue.mark_lost("lost")
        return [sub for _, sub in self.queues]

    def dispatch(self, change: Change) -> list[object]:
        woken = []
        for queue, sub in self.queues:
            if queue.matches(change):
                queue.offer(change)
                woken.append(sub)
        return woken

    def remove(self, queue: SubscriberQueue) -> None:
        self.queues = [(q, s) for q, s in self.queues if q is not queue]


def handle_lines(fanout: Fanout, lines: list[tuple[str, str]]) -> list[object]:
    """Apply a batch of hub lines; the subscriptions to wake."""
    woken: list[object] = []
    for letter, rest in lines:
        if letter == "E":
            woken.extend(fanout.dispatch(parse_change(rest)))
        elif letter == "H":
            woken.extend(fanout.connected())
        elif letter == "R":
            woken.extend(fanout.lost_all())
        else:
            raise WireError(f"unknown feed line {letter!r}")
    return woken

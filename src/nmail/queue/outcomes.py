"""What the queue hands to a remote server, and what came of it.

`Outgoing` is one message with its recipients for one host; `Outcome` is
what one attempt did for one recipient, classified from the remote's reply
(2xx delivered, 4xx temporary, 5xx permanent) with its RFC 3463 status, in
one printable line for DSNs and logs. The two exceptions are how a session
(queue/smtp_client.py) tells route_delivery.py to try the next host or that
the line died.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nmail.queue.body_file import QueuedBody

DELIVERED = "delivered"
TEMPORARY = "temporary"
PERMANENT = "permanent"

MAX_RECIPIENTS_PER_TRANSACTION = 100

_KINDS = {2: DELIVERED, 4: TEMPORARY, 5: PERMANENT}
_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})\b")


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to hand over: its envelope for this host and its bytes."""

    queue_id: str
    sender: str
    recipients: tuple[str, ...]
    body: bytes | QueuedBody  # a large one stays in its file (queue/body_file.py)
    notify: tuple[str | None, ...] = ()
    orcpt: tuple[str | None, ...] = ()
    envid: str | None = None
    ret: str | None = None
    tags: tuple[int, ...] = ()  # the caller's ids for the recipients, in order


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt did for one recipient."""

    kind: str  # delivered | temporary | permanent
    reply: str  # the remote's reply ("550 5.1.1 No such user") or our own words
    status: str  # RFC 3463 enhanced status code
    remote_host: str | None
    remote_dsn: bool = False  # the remote took our DSN parameters (it reports success)


class HostUnusable(Exception):
    """This host cannot be used now; try the next one."""

    def __init__(self, message: str, *, tls_failed: bool = False) -> None:
        super().__init__(message)
        self.tls_failed = tls_failed


class SessionLost(Exception):
    """The connection died in the middle of a transaction.

    `body_sent` False: it died before the server said 354, so the message
    certainly did not arrive and may be sent again at once.
    """

    def __init__(self, message: str, *, body_sent: bool = True) -> None:
        super().__init__(message)
        self.body_sent = body_sent


def outcome_for(code: int, text: str, host: str | None, *, remote_dsn: bool = False) -> Outcome:
    """Classify a reply: 2xx delivered, 4xx temporary, 5xx permanent."""
    reply = one_line(f"{code} {text}")
    kind = _KINDS.get(code // 100, TEMPORARY)
    return Outcome(kind, reply, enhanced_status(code, text), host, remote_dsn)


def enhanced_status(code: int, text: str) -> str:
    """The reply's own x.y.z when it has a plausible one, else x.0.0 from the code."""
    found = _ENHANCED.match(text.strip())
    if found and found.group(1) == str(code // 100):
        return found.group(0)
    klass = code // 100 if code // 100 in (2, 4, 5) else 4
    return f"{klass}.0.0"


def one_line(text: str, limit: int = 1000) -> str:
    """A remote's reply as one printable line (it goes into DSNs and logs)."""
    if text.isprintable():  # the usual case, without the walk over every character
        return " ".join(text.split())[:limit]
    cleaned = "".join(ch if ch.isprintable() else " " for ch in text.replace("\n", " "))
    return " ".join(cleaned.split())[:limit]


def xtext(value: str) -> str:
    """RFC 3461 xtext encoding for ENVID and ORCPT values."""
    return "".join(
        ch if 33 <= ord(ch) <= 126 and ch not in "+=" else f"+{ord(ch):02X}"
        for ch in value
    )

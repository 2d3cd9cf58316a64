"""What the POP3 state machine hands to the server, and what it gets back.

The session answers every command it can from its own state (STAT, LIST,
UIDL, DELE, RSET, NOOP, CAPA, errors). Commands that need the outside world
come out as one of the events below; the server does the work and reports
the result through the session's matching method.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MaildropEntry:
    """One message of the maildrop as POP3 sees it (numbered from 1 by position)."""

    uid: int
    size: int
    uidl: str
    # Whether a line of the message starts with "." (to be stuffed); True when
    # not known. Trusted only for a file of exactly `size` octets.
    dot_lines: bool = True


class LoginFailure(enum.Enum):
    """Why a login was refused; each has its own RFC 2449/3206 response code."""

    BAD_CREDENTIALS = "bad-credentials"
    DISABLED = "disabled"
    IN_USE = "in-use"
    LOCKED_OUT = "locked-out"  # too many failed logins: temporary
    TEMPORARY = "temporary"  # server-side trouble (database down...)
    BUSY = "busy"  # too many password checks at once: try again in a moment


class Revocation(enum.Enum):
    """Why a logged-in session ends: its account changed after the login."""

    LOGIN_DISABLED = "login-disabled"
    DELETED = "deleted"
    REPLACED = "replaced"  # deleted and created again: another account


@dataclass(frozen=True, slots=True)
class Authenticate:
    """Check these credentials, then lock and open the maildrop.

    Answer with `Pop3Session.login_accepted(entries)` or `login_refused(why)`.
    """

    username: str
    password: str
    mechanism: str  # "USER" (USER/PASS), "PLAIN" or "LOGIN" (AUTH)


# Not frozen: one is made per RETR, and a frozen dataclass's __init__ (one
# object.__setattr__ per field) cost four times as much, ~5% of a whole RETR
# (callgrind). Nobody changes an event after it is made.
@dataclass(slots=True)
class Retrieve:
    """Send message `number` (RETR), or its headers and `lines` body lines (TOP).

    Answer with `message_missing()` or `message_begin()`, `message_data(chunk)`
    as long as it returns True, then `message_end()`.
    """

    number: int
    entry: MaildropEntry
    lines: int | None  # None: the whole message


@dataclass(frozen=True, slots=True)
class StartTls:
    """Flush the output, run the TLS handshake, then call `tls_started()`."""


@dataclass(frozen=True, slots=True)
class Update:
    """QUIT in TRANSACTION: remove `deleted`, then call `update_finished(ok)`.

    `retrieved` lists the messages sent whole by RETR and not deleted, for a
    server that marks them as seen (as Dovecot does), so the webmail shows
    what the mail client has already downloaded.
    """

    deleted: tuple[MaildropEntry, ...]
    retrieved: tuple[MaildropEntry, ...] = ()


@dataclass(frozen=True, slots=True)
class Close:
    """Flush the output and close the connection."""


Event = Authenticate | Retrieve | StartTls | Update | Close

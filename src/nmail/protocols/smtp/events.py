"""Typed events the SMTP connection yields: client commands, message data, errors.

Events marked `needs_decision` stop the connection until the server answers
with one of the connection's decision methods (accept_mail, accept_rcpt,
accept_message, auth_succeeded, reject, ...). Every other event has already
been answered by the connection; it is reported so the server can follow
along (log, track HELO, start TLS, close).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from nmail.message_source import MessageSource
from nmail.protocols.smtp.replies import Reply


@dataclass(frozen=True, slots=True)
class MailParams:
    """The ESMTP parameters of MAIL FROM (RFC 1870, 6152, 6531, 3461, 4954)."""

    size: int | None = None
    body: str | None = None  # "7BIT" | "8BITMIME"
    smtputf8: bool = False
    ret: str | None = None  # "FULL" | "HDRS"
    envid: str | None = None  # xtext-decoded
    auth: str | None = None  # xtext-decoded mailbox, or "<>"


@dataclass(frozen=True, slots=True)
class RcptParams:
    """The ESMTP parameters of RCPT TO (RFC 3461)."""

    notify: tuple[str, ...] | None = None  # ("NEVER",) or a subset of SUCCESS/FAILURE/DELAY
    orcpt: str | None = None  # "addr-type;address", xtext-decoded


# What a command without parameters gets, and a session outside a
# transaction: frozen, so one serves every session (making a frozen
# dataclass costs ~1.4k instructions a field, callgrind).
NO_MAIL_PARAMS = MailParams()
NO_RCPT_PARAMS = RcptParams()


@dataclass(frozen=True, slots=True)
class Event:
    """Base class of everything next_event() returns."""

    needs_decision: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class Ehlo(Event):
    domain: str


@dataclass(frozen=True, slots=True)
class Helo(Event):
    domain: str


@dataclass(frozen=True, slots=True)
class MailFrom(Event):
    """MAIL FROM; `address` is "" for the null sender, source route stripped."""

    needs_decision: ClassVar[bool] = True
    address: str
    params: MailParams = field(default_factory=MailParams)


@dataclass(frozen=True, slots=True)
class RcptTo(Event):
    needs_decision: ClassVar[bool] = True
    address: str
    params: RcptParams = field(default_factory=RcptParams)


@dataclass(frozen=True, slots=True)
class Data(Event):
    """DATA was accepted (354 sent); content follows."""


@dataclass(frozen=True, slots=True)
class MessageData(Event):
    """The message content of one DATA, CRLF line endings, dot-unstuffed.

    A message past the spill threshold is a SpooledMessage: the server
    closes it once answered (nmail/message_source.py)."""

    needs_decision: ClassVar[bool] = True
    content: MessageSource = field(repr=False)
    # False: no line of the content starts with "." (the unstuffing saw every
    # line start); True: one may; None: not known.
    dot_lines: bool | None = None


@dataclass(frozen=True, slots=True)
class Rset(Event):
    pass


@dataclass(frozen=True, slots=True)
class Noop(Event):
    pass


@dataclass(frozen=True, slots=True)
class Quit(Event):
    pass


@dataclass(frozen=True, slots=True)
class Vrfy(Event):
    argument: str


@dataclass(frozen=True, slots=True)
class Expn(Event):
    argument: str


@dataclass(frozen=True, slots=True)
class Help(Event):
    topic: str


@dataclass(frozen=True, slots=True)
class StartTls(Event):
    """220 was sent: the server must now run the TLS handshake, then call tls_started()."""


@dataclass(frozen=True, slots=True)
class Auth(Event):
    """AUTH accepted to start; `initial_response` is the raw base64 (secret: not in repr)."""

    mechanism: str
    initial_response: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class SaslResponse(Event):
    """A continuation line of a SASL exchange (secret: not in repr)."""

    line: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class AuthCredentials(Event):
    """A complete PLAIN or LOGIN exchange: check the password and answer."""

    needs_decision: ClassVar[bool] = True
    mechanism: str
    authzid: str
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class ProtocolError(Event):
    """Something the connection refused; `reply` was already queued to send.

    `closes` is true when the connection closed after it (421 Too many errors).
    """

    reply: Reply
    closes: bool = False

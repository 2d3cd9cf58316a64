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

# The events of every message (EHLO or HELO, MAIL, RCPT, the data) and
# MailParams have an __init__ of their own that sets each slot through its
# descriptor's setter (taken once the dataclass made the class anew, as
# slots=True does), where a frozen dataclass's __init__ goes through
# object.__setattr__: ~750 instructions a field less (MailFrom 4.7k -> 3.2k,
# callgrind). They are frozen dataclasses as the others: eq, hash, repr,
# dataclasses.replace, and assignment refused. A field added to one of them
# goes into its __init__ too (tests/test_smtp_protocol_quick.py checks the
# signatures against the fields).


@dataclass(frozen=True, slots=True, init=False)
class MailParams:
    """The ESMTP parameters of MAIL FROM (RFC 1870, 6152, 6531, 3461, 4954)."""

    size: int | None = None
    body: str | None = None  # "7BIT" | "8BITMIME"
    smtputf8: bool = False
    ret: str | None = None  # "FULL" | "HDRS"
    envid: str | None = None  # xtext-decoded
    auth: str | None = None  # xtext-decoded mailbox, or "<>"

    def __init__(
        self,
        size: int | None = None,
        body: str | None = None,
        smtputf8: bool = False,
        ret: str | None = None,
        envid: str | None = None,
        auth: str | None = None,
    ) -> None:
        _PARAMS_SIZE(self, size)
        _PARAMS_BODY(self, body)
        _PARAMS_SMTPUTF8(self, smtputf8)
        _PARAMS_RET(self, ret)
        _PARAMS_ENVID(self, envid)
        _PARAMS_AUTH(self, auth)


_PARAMS_SIZE = MailParams.__dict__["size"].__set__
_PARAMS_BODY = MailParams.__dict__["body"].__set__
_PARAMS_SMTPUTF8 = MailParams.__dict__["smtputf8"].__set__
_PARAMS_RET = MailParams.__dict__["ret"].__set__
_PARAMS_ENVID = MailParams.__dict__["envid"].__set__
_PARAMS_AUTH = MailParams.__dict__["auth"].__set__


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


@dataclass(frozen=True, slots=True, init=False)
class Ehlo(Event):
    domain: str

    def __init__(self, domain: str) -> None:
        _EHLO_DOMAIN(self, domain)


@dataclass(frozen=True, slots=True, init=False)
class Helo(Event):
    domain: str

    def __init__(self, domain: str) -> None:
        _HELO_DOMAIN(self, domain)


@dataclass(frozen=True, slots=True, init=False)
class MailFrom(Event):
    """MAIL FROM; `address` is "" for the null sender, source route stripped."""

    needs_decision: ClassVar[bool] = True
    address: str
    params: MailParams = NO_MAIL_PARAMS

    def __init__(self, address: str, params: MailParams = NO_MAIL_PARAMS) -> None:
        _MAIL_ADDRESS(self, address)
        _MAIL_PARAMS(self, params)


@dataclass(frozen=True, slots=True, init=False)
class RcptTo(Event):
    needs_decision: ClassVar[bool] = True
    address: str
    params: RcptParams = NO_RCPT_PARAMS

    def __init__(self, address: str, params: RcptParams = NO_RCPT_PARAMS) -> None:
        _RCPT_ADDRESS(self, address)
        _RCPT_PARAMS(self, params)


@dataclass(frozen=True, slots=True)
class Data(Event):
    """DATA was accepted (354 sent); content follows."""


@dataclass(frozen=True, slots=True, init=False)
class MessageData(Event):
    """The message content of one DATA, CRLF line endings, dot-unstuffed.

    A message past the spill threshold is a SpooledMessage: the server
    closes it once answered (nmail/message_source.py)."""

    needs_decision: ClassVar[bool] = True
    content: MessageSource = field(repr=False)
    # False: no line of the content starts with "." (the unstuffing saw every
    # line start); True: one may; None: not known.
    dot_lines: bool | None = None

    def __init__(self, content: MessageSource, dot_lines: bool | None = None) -> None:
        _MESSAGE_CONTENT(self, content)
        _MESSAGE_DOT_LINES(self, dot_lines)


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


# The slot setters of the events' __init__s.
_EHLO_DOMAIN = Ehlo.__dict__["domain"].__set__
_HELO_DOMAIN = Helo.__dict__["domain"].__set__
_MAIL_ADDRESS = MailFrom.__dict__["address"].__set__
_MAIL_PARAMS = MailFrom.__dict__["params"].__set__
_RCPT_ADDRESS = RcptTo.__dict__["address"].__set__
_RCPT_PARAMS = RcptTo.__dict__["params"].__set__
_MESSAGE_CONTENT = MessageData.__dict__["content"].__set__
_MESSAGE_DOT_LINES = MessageData.__dict__["dot_lines"].__set__

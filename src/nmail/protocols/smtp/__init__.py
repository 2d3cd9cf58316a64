"""SMTP server protocol without I/O (RFC 5321 and its ESMTP extensions).

Feed bytes to an SmtpConnection, take events, answer the ones that need a
decision, send data_to_send(). See connection.py. The client side (reading
replies, EHLO keywords, building commands and the DATA body) is client.py.
"""

from __future__ import annotations

from nmail.protocols.smtp.client import (
    Extensions,
    ReplyError,
    ReplyReader,
    ServerReply,
    parse_ehlo,
    wire_body,
)
from nmail.protocols.smtp.connection import SmtpConnection
from nmail.protocols.smtp.events import (
    Auth,
    AuthCredentials,
    Data,
    Ehlo,
    Event,
    Expn,
    Helo,
    Help,
    MailFrom,
    MailParams,
    MessageData,
    Noop,
    ProtocolError,
    Quit,
    RcptParams,
    RcptTo,
    Rset,
    SaslResponse,
    StartTls,
    Vrfy,
)
from nmail.protocols.smtp.options import SmtpOptions
from nmail.protocols.smtp.replies import Reply
from nmail.protocols.smtp.session import SmtpUsageError
from nmail.protocols.smtp.state import SmtpState

__all__ = [
    "Auth",
    "AuthCredentials",
    "Data",
    "Ehlo",
    "Event",
    "Expn",
    "Extensions",
    "Helo",
    "Help",
    "MailFrom",
    "MailParams",
    "MessageData",
    "Noop",
    "ProtocolError",
    "Quit",
    "RcptParams",
    "RcptTo",
    "Reply",
    "ReplyError",
    "ReplyReader",
    "Rset",
    "SaslResponse",
    "ServerReply",
    "SmtpConnection",
    "SmtpOptions",
    "SmtpState",
    "SmtpUsageError",
    "StartTls",
    "Vrfy",
    "parse_ehlo",
    "wire_body",
]

"""Where an SMTP session is: the explicit state the connection moves through."""

from __future__ import annotations

import enum


class SmtpState(enum.Enum):
    """The session states of RFC 5321 plus the SASL and TLS side trips."""

    CONNECTED = "connected"  # greeted, waiting for EHLO/HELO
    READY = "ready"  # EHLO/HELO done, no transaction
    MAIL = "mail"  # MAIL FROM accepted, no recipient accepted yet
    RCPT = "rcpt"  # at least one recipient accepted
    DATA = "data"  # reading message content up to CRLF.CRLF
    AUTH = "auth"  # inside a SASL exchange (334 sent, waiting for a response line)
    TLS_HANDSHAKE = "tls-handshake"  # 220 sent to STARTTLS, bytes are the server's to handle
    CLOSED = "closed"  # 221 or 421 sent; nothing more is read


# The members as module names, for the code that checks the state on every
# command. On Python 3.11 `SmtpState.CLOSED` is an attribute lookup through
# EnumType's __getattr__ slot: about 0.8k instructions each, ~90 of them per
# message in an SMTP session (5% of a port-25 worker's CPU, callgrind).
CONNECTED = SmtpState.CONNECTED
READY = SmtpState.READY
MAIL = SmtpState.MAIL
RCPT = SmtpState.RCPT
DATA = SmtpState.DATA
AUTH = SmtpState.AUTH
TLS_HANDSHAKE = SmtpState.TLS_HANDSHAKE
CLOSED = SmtpState.CLOSED

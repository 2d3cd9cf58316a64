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

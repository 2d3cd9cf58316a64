"""POP3 (RFC 1939, 2449, 2595, 5034) as a state machine: bytes in, events and replies out."""

from nmail.protocols.pop3.events import (
    Authenticate,
    Close,
    Event,
    LoginFailure,
    MaildropEntry,
    Retrieve,
    Revocation,
    StartTls,
    Update,
)
from nmail.protocols.pop3.session import Pop3Session, State
from nmail.protocols.pop3.transfer import MessageEncoder

__all__ = [
    "Authenticate",
    "Close",
    "Event",
    "LoginFailure",
    "MaildropEntry",
    "MessageEncoder",
    "Pop3Session",
    "Retrieve",
    "Revocation",
    "StartTls",
    "State",
    "Update",
]

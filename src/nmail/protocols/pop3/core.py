"""The state every part of a POP3 session shares, and how replies are queued."""

from __future__ import annotations

import enum
from typing import Final

from nmail.protocols.pop3 import replies
from nmail.protocols.pop3.events import Retrieve
from nmail.protocols.pop3.lines import LineReader
from nmail.protocols.pop3.maildrop import Maildrop
from nmail.protocols.pop3.transfer import MessageEncoder
from nmail.protocols.sasl import SaslExchange

GREETING = b"+OK nmail POP3 server ready\r\n"


class State(enum.Enum):
    AUTHORIZATION = "AUTHORIZATION"
    TRANSACTION = "TRANSACTION"
    UPDATE = "UPDATE"
    CLOSED = "CLOSED"  # the connection is to be closed; nothing more is read


class Wait(enum.Enum):
    """The event the server has not answered yet."""

    LOGIN = "login"
    MESSAGE = "message"
    TLS = "tls"
    UPDATE = "update"


# The members the per-command paths compare with, read once: `State.CLOSED`
# goes through EnumType.__getattr__ on CPython 3.11 (70-190 ns a read, several
# reads a command: 8% of the instructions of a RETR in Python, by callgrind).
AUTHORIZATION: Final = State.AUTHORIZATION
TRANSACTION: Final = State.TRANSACTION
CLOSED: Final = State.CLOSED
WAIT_MESSAGE: Final = Wait.MESSAGE
WAIT_TLS: Final = Wait.TLS


class SessionCore:
    """Connection facts, buffers and the error count; the commands live in subclasses."""

    def __init__(
        self,
        *,
        tls_active: bool = False,
        tls_available: bool = False,
        plaintext_allowed: bool = False,
        max_errors: int = 10,
        fix_bare_lf: bool = False,
    ) -> None:
        """tls_available: STLS can be offered; plaintext_allowed: USER/PASS/AUTH without TLS;
        fix_bare_lf: messages may have bare LF line ends to turn into CRLF."""
        self.state = State.AUTHORIZATION
        self.tls_active = tls_active
        self.tls_available = tls_available
        self.plaintext_allowed = plaintext_allowed
        self.max_errors = max_errors
        self.fix_bare_lf = fix_bare_lf
        self.errors = 0
        self._lines = LineReader()
        self._out: list[bytes] = [GREETING]
        # Octets waiting in data_to_send(); an attribute, not a property: read
        # after every RETR, and a property's call cost more than the read.
        self.pending_output = len(GREETING)
        self._waiting: Wait | None = None
        # next_event() returned None with complete commands still buffered.
        self.more_buffered = False
        # Set while the next line is a SASL response to "+ ".
        self._sasl: SaslExchange | None = None
        self._user: str | None = None
        self._maildrop: Maildrop | None = None
        self._retrieving: Retrieve | None = None
        self._encoder: MessageEncoder | None = None

    def receive_data(self, data: bytes) -> None:
        """Buffer bytes from the client."""
        if self._waiting is WAIT_TLS or self.state is CLOSED:
            return  # plaintext after STLS must never be read as commands
        self._lines.feed(data)

    def data_to_send(self) -> bytes:
        """Everything to write to the client so far (and forget it)."""
        if not self._out:
            return b""
        data = self._out[0] if len(self._out) == 1 else b"".join(self._out)
        self._out.clear()
        self.pending_output = 0
        return data

    def output_pieces(self) -> list[bytes]:
        """data_to_send() unjoined: the pieces in order, for a vectored write."""
        out = self._out
        self._out = []
        self.pending_output = 0
        return out

    @property
    def pending_input(self) -> int:
        """Octets received and not yet handled."""
        return self._lines.pending

    def _expect(self, wait: Wait) -> None:
        if self._waiting is not wait:
            raise RuntimeError(f"no pending {wait.value} event")
        self._waiting = None

    def _send(self, data: bytes) -> None:
        self._out.append(data)
        self.pending_output += len(data)

    def _error(self, reply: bytes) -> None:
        """Send a -ERR; after too many, say so and close."""
        self.errors += 1
        if self.errors >= self.max_errors:
            self._send(replies.err("Too many bad commands, closing connection"))
            self.state = State.CLOSED
        else:
            self._send(reply)

    def _no_arguments(self, verb: str, argument: str) -> bool:
        if argument.strip():
            self._error(replies.err(f"{verb} takes no arguments"))
            return False
        return True

    def _drop(self) -> Maildrop:
        assert self._maildrop is not None
        return self._maildrop

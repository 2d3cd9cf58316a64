"""SASL PLAIN (RFC 4616) and LOGIN exchanges, for SMTP AUTH (RFC 4954), POP3
AUTH (RFC 5034) and IMAP AUTHENTICATE (RFC 3501).

The three protocols carry SASL the same way: a challenge line of base64
('334 ' in SMTP, '+ ' in POP3 and IMAP), a base64 response line, '*' to
cancel, '=' for an empty initial response. Only the reply wording differs,
so the exchange lives here once and each protocol maps a `SaslFailure` to
its own reply.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from enum import Enum

MECHANISMS = ("PLAIN", "LOGIN")
USERNAME_PROMPT = base64.b64encode(b"Username:").decode("ascii")
PASSWORD_PROMPT = base64.b64encode(b"Password:").decode("ascii")


class SaslFailure(Enum):
    """Why an exchange ended without credentials."""

    CANCELLED = "cancelled"  # the client sent '*'
    BAD_BASE64 = "bad base64"
    NOT_UTF8 = "not UTF-8"
    MALFORMED = "malformed PLAIN"  # not authzid NUL authcid NUL passwd, or an empty part
    EMPTY_USER_NAME = "empty user name"  # LOGIN


@dataclass(frozen=True, slots=True)
class Challenge:
    """Send this base64 text as a continuation and wait for the next line."""

    text: str


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the client logs in as; `authzid` is empty unless it asked to act as another."""

    authzid: str
    username: str
    password: str = field(repr=False)

    @property
    def acts_as_other(self) -> bool:
        """Proxy authorization (an authzid other than the login), which nmail refuses."""
        return bool(self.authzid) and self.authzid != self.username


@dataclass(frozen=True, slots=True)
class Failure:
    reason: SaslFailure


SaslStep = Challenge | Credentials | Failure


def decode_response(line: str) -> bytes | Failure:
    """The bytes of a client response: '*' cancels, '=' is empty, otherwise base64."""
    line = line.strip()
    if line == "*":
        return Failure(SaslFailure.CANCELLED)
    if line == "=":
        return b""
    try:
        return base64.b64decode(line.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return Failure(SaslFailure.BAD_BASE64)


class SaslExchange:
    """One PLAIN or LOGIN exchange; feed it the client's lines until it is done."""

    def __init__(self, mechanism: str) -> None:
        # ASCII only before upper(): it maps "pla\u0131n" (dotless i) to PLAIN.
        mechanism = mechanism.upper() if mechanism.isascii() else mechanism
        if mechanism not in MECHANISMS:
            raise ValueError(f"unsupported SASL mechanism {mechanism!r}")
        self.mechanism = mechanism
        self._username: str | None = None

    def start(self, initial_response: str | None) -> SaslStep:
        """The first step, given the optional initial response of the command line."""
        if initial_response is None:
            return Challenge("" if self.mechanism == "PLAIN" else USERNAME_PROMPT)
        return self.feed(initial_response)

    def feed(self, line: str) -> SaslStep:
        """The step after one client response line."""
        raw = decode_response(line)
        if isinstance(raw, Failure):
            return raw
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return Failure(SaslFailure.NOT_UTF8)
        if self.mechanism == "PLAIN":
            parts = text.split("\0")
            if len(parts) != 3 or not parts[1] or not parts[2]:
                return Failure(SaslFailure.MALFORMED)
            return Credentials(parts[0], parts[1], parts[2])
        if self._username is None:
            if not text:
                return Failure(SaslFailure.EMPTY_USER_NAME)
            self._username = text
            return Challenge(PASSWORD_PROMPT)
        return Credentials("", self._username, text)

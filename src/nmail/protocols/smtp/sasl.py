"""SASL PLAIN (RFC 4616) and LOGIN exchanges for SMTP AUTH (RFC 4954)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from nmail.protocols.smtp.replies import (
    AUTH_BAD_BASE64,
    AUTH_CANCELLED,
    Reply,
    reply,
)

MECHANISMS = ("PLAIN", "LOGIN")
_USERNAME_PROMPT = base64.b64encode(b"Username:").decode("ascii")
_PASSWORD_PROMPT = base64.b64encode(b"Password:").decode("ascii")
_BAD_PLAIN = reply(501, "5.5.2", "Malformed PLAIN credentials")
_BAD_UTF8 = reply(501, "5.5.2", "Credentials are not valid UTF-8")


@dataclass(frozen=True, slots=True)
class Challenge:
    """Send '334 <text>' and wait for the next line."""

    text: str


@dataclass(frozen=True, slots=True)
class Credentials:
    authzid: str
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Failure:
    reply: Reply


SaslStep = Challenge | Credentials | Failure


def decode_response(line: str) -> bytes | Failure:
    """Base64 of a client response; '*' cancels; '=' is an empty initial response."""
    line = line.strip()
    if line == "*":
        return Failure(AUTH_CANCELLED)
    if line == "=":
        return b""
    try:
        return base64.b64decode(line, validate=True)
    except (binascii.Error, ValueError):
        return Failure(AUTH_BAD_BASE64)


def _text(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


class SaslExchange:
    """One PLAIN or LOGIN exchange; feed it the client's lines until it is done."""

    def __init__(self, mechanism: str) -> None:
        if mechanism not in MECHANISMS:
            raise ValueError(f"unsupported SASL mechanism {mechanism!r}")
        self.mechanism = mechanism
        self._username: str | None = None

    def start(self, initial_response: str | None) -> SaslStep:
        """The first step, given the optional initial response of the AUTH line."""
        if initial_response is None:
            return Challenge("" if self.mechanism == "PLAIN" else _USERNAME_PROMPT)
        return self.feed(initial_response)

    def feed(self, line: str) -> SaslStep:
        """The step after one client response line."""
        raw = decode_response(line)
        if isinstance(raw, Failure):
            return raw
        text = _text(raw)
        if text is None:
            return Failure(_BAD_UTF8)
        if self.mechanism == "PLAIN":
            parts = text.split("\0")
            if len(parts) != 3 or not parts[1] or not parts[2]:
                return Failure(_BAD_PLAIN)
            return Credentials(parts[0], parts[1], parts[2])
        if self._username is None:
            if not text:
                return Failure(reply(501, "5.5.2", "Empty user name"))
            self._username = text
            return Challenge(_PASSWORD_PROMPT)
        return Credentials("", self._username, text)

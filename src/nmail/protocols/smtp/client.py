"""The SMTP client side without I/O: reading replies, EHLO keywords, writing commands.

The queue's client (queue/smtp_client.py) pipelines (RFC 2920): it writes
several commands at once and then reads their replies in order, so the
reply reader is incremental (feed any bytes, get the complete replies) and
strict about what a reply is. Bytes that are not SMTP replies, or a reply
too long to be honest, raise ReplyError: the caller hangs up rather than
guess which reply answers which command.

Every command is built here, and every value that goes into one is checked:
a CR, LF or other control character raises ValueError, so no envelope
value can inject a command (or a second message) into the session.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

# RFC 5321 4.5.3.1.5 says 512 octets per reply line; servers exceed it in
# the wild, so allow some slack, but never an unbounded buffer.
MAX_REPLY_LINE = 4096
MAX_REPLY = 64 * 1024

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NOT_IN_PATH = re.compile(r"[\x00-\x20\x7f<>]")
_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*\Z")
_LINE_ENDINGS = re.compile(rb"\r\n|\r|\n")


class ReplyError(ValueError):
    """The server sent something that is not an SMTP reply."""


@dataclass(frozen=True, slots=True)
class ServerReply:
    """One reply from the server: its code and its text lines (one per reply line)."""

    code: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300

    def __str__(self) -> str:
        return f"{self.code} {' '.join(self.lines)}".rstrip()


class ReplyReader:
    """Turns received bytes into ServerReplys, however the bytes are split.

    Lines may end in CRLF or a bare LF (sloppy servers). Every line of a
    reply must carry the same three-digit code (2xx to 5xx), then a space
    (last line), a hyphen (more lines follow) or nothing.
    """

    def __init__(self) -> None:
        self._buf = b""
        self._code = 0
        self._lines: list[str] = []
        self._size = 0

    @property
    def pending(self) -> bool:
        """True while part of a reply has arrived and not the rest."""
        return bool(self._buf) or bool(self._lines)

    def feed(self, data: bytes) -> list[ServerReply]:
        """The replies `data` completes (often none, often one); ReplyError on garbage."""
        buf = self._buf + data if self._buf else data
        replies: list[ServerReply] = []
        start = 0
        while True:
            end = buf.find(b"\n", start)
            if end < 0:
                break
            line = buf[start:end]
            start = end + 1
            if len(line) > MAX_REPLY_LINE:
                raise ReplyError(f"reply line longer than {MAX_REPLY_LINE} bytes")
            done = self._line(line[:-1] if line.endswith(b"\r") else line)
            if done is not None:
                replies.append(done)
        rest = buf[start:]
        if len(rest) > MAX_REPLY_LINE:
            raise ReplyError(f"reply line longer than {MAX_REPLY_LINE} bytes")
        self._buf = rest
        return replies

    def _line(self, line: bytes) -> ServerReply | None:
        code_part = line[:3]
        sep = line[3:4]
        if len(code_part) != 3 or not code_part.isdigit() or sep not in (b"", b" ", b"-"):
            raise ReplyError(f"not an SMTP reply line: {line[:80]!r}")
        code = int(code_part)
        if not 200 <= code < 600:
            raise ReplyError(f"reply code out of range: {code}")
        if self._lines and code != self._code:
            raise ReplyError(f"reply code changed within a reply: {self._code} then {code}")
        self._size += len(line) + 2
        if self._size > MAX_REPLY:
            raise ReplyError(f"reply longer than {MAX_REPLY} bytes")
        self._code = code
        self._lines.append(line[4:].decode("utf-8", "replace"))
        if sep == b"-":
            return None
        reply = ServerReply(code, tuple(self._lines))
        self._lines = []
        self._size = 0
        return reply


@dataclass(frozen=True, slots=True)
class Extensions:
    """What an EHLO reply advertised: keyword (upper case) -> its parameters."""

    keywords: dict[str, tuple[str, ...]]

    def __contains__(self, keyword: object) -> bool:
        return isinstance(keyword, str) and keyword.upper() in self.keywords

    def params(self, keyword: str) -> tuple[str, ...]:
        return self.keywords.get(keyword.upper(), ())

    @property
    def auth_mechanisms(self) -> frozenset[str]:
        return frozenset(m.upper() for m in self.params("AUTH"))

    @property
    def size_limit(self) -> int | None:
        """SIZE's fixed limit in bytes; None when absent or 0 (no fixed limit)."""
        params = self.params("SIZE")
        if params and params[0].isdigit() and int(params[0]) > 0:
            return int(params[0])
        return None


NO_EXTENSIONS = Extensions({})


def parse_ehlo(reply: ServerReply) -> Extensions:
    """The extensions of a 250 reply to EHLO (its first line names the server)."""
    found: dict[str, tuple[str, ...]] = {}
    for line in reply.lines[1:]:
        words = line.split()
        if not words:
            continue
        keyword, params = words[0], tuple(words[1:])
        if keyword.upper().startswith("AUTH="):  # the pre-RFC 2554 form some servers send
            keyword, params = "AUTH", (keyword[5:], *params)
        if not _KEYWORD.match(keyword):
            continue
        key = keyword.upper()
        found[key] = found.get(key, ()) + params if key == "AUTH" else params
    return Extensions(found)


# -- commands ----------------------------------------------------------------------------


def _checked(value: str, what: str) -> str:
    if _CONTROL.search(value):
        raise ValueError(f"{what} contains a control character (CR, LF, NUL...): {value!r}")
    return value


def _path(address: str, what: str) -> str:
    if _NOT_IN_PATH.search(address):
        _checked(address, what)
        raise ValueError(f"{what} contains a space or angle bracket: {address!r}")
    return address


def _params(params: tuple[str, ...] | list[str], what: str) -> str:
    out = ""
    for param in params:
        _checked(param, what)
        if not param or " " in param:
            raise ValueError(f"{what} parameter is empty or has a space: {param!r}")
        out += " " + param
    return out


def hello_command(verb: str, name: str) -> bytes:
    """EHLO or HELO with our host name."""
    if verb not in ("EHLO", "HELO"):
        raise ValueError(f"not a greeting verb: {verb!r}")
    if not name or " " in _checked(name, "host name"):
        raise ValueError(f"bad host name for {verb}: {name!r}")
    return f"{verb} {name}\r\n".encode()


def mail_command(sender: str, params: tuple[str, ...] | list[str] = ()) -> bytes:
    """MAIL FROM:<sender> with parameters; "" is the null sender of bounces."""
    text = f"MAIL FROM:<{_path(sender, 'sender')}>{_params(params, 'MAIL')}\r\n"
    return text.encode("utf-8")


def rcpt_command(recipient: str, params: tuple[str, ...] | list[str] = ()) -> bytes:
    """RCPT TO:<recipient> with parameters."""
    if not recipient:
        raise ValueError("empty recipient")
    text = f"RCPT TO:<{_path(recipient, 'recipient')}>{_params(params, 'RCPT')}\r\n"
    return text.encode("utf-8")


def auth_plain_command(username: str, password: str) -> bytes:
    """AUTH PLAIN with its initial response (RFC 4616)."""
    if "\0" in username or "\0" in password:
        raise ValueError("NUL in AUTH PLAIN credentials")
    blob = base64.b64encode(f"\0{username}\0{password}".encode()).decode("ascii")
    return f"AUTH PLAIN {blob}\r\n".encode("ascii")


def sasl_line(value: str) -> bytes:
    """One base64 line answering a 334 challenge (AUTH LOGIN's user name, password)."""
    return base64.b64encode(value.encode()) + b"\r\n"


DATA = b"DATA\r\n"
RSET = b"RSET\r\n"
QUIT = b"QUIT\r\n"
STARTTLS = b"STARTTLS\r\n"
AUTH_LOGIN = b"AUTH LOGIN\r\n"
END_OF_DATA = b".\r\n"


# -- the message -------------------------------------------------------------------------


def clean_lines(body: bytes) -> bytes:
    """`body` with CRLF line endings only, ending in CRLF (a copy only when needed)."""
    crlf = body.count(b"\r\n")
    if body.count(b"\r") != crlf or body.count(b"\n") != crlf or not body.endswith(b"\r\n"):
        body = _LINE_ENDINGS.sub(b"\r\n", body)
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
    return body


def wire_body(body: bytes) -> bytes:
    """What follows DATA's 354: the body dot-stuffed, then the terminating ".\\r\\n".

    A clean body (CRLF only, as the queue stores them) costs three counts and
    one replace; a bare CR or LF never reaches the wire (no SMTP smuggling).
    """
    stuffed = clean_lines(body).replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    return stuffed + END_OF_DATA

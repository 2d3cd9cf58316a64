"""A loopback SMTP server that records how a client talks, for the queue's client tests.

It keeps every read as it arrived (`chunks`) and, for every command line,
how many replies it had sent before the line arrived (`commands`): a client
that pipelines sends MAIL, the RCPTs and DATA before any of their replies.
With `hold_until_data` it answers MAIL and RCPT only once DATA is in, so a
client that waits for each reply stalls (and times out) instead of passing.
Replies can be scripted per verb and per recipient, and misbehaviour
switched on: silence, a dropped line mid-body, extra or garbage replies.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Command:
    """One command line as received, and how many reply lines had left before it came."""

    line: str
    replies_before: int


@dataclass
class Message:
    """A message the server took: envelope, dot-unstuffed content, whether over TLS."""

    sender: str
    recipients: list[str]
    content: bytes
    tls: bool


@dataclass
class Behaviour:
    """What the server says and does; the defaults accept everything."""

    greeting: str = "220 rec.test ESMTP recorder"
    extensions: tuple[str, ...] = ("PIPELINING", "8BITMIME", "SIZE 1000000", "DSN", "SMTPUTF8")
    ehlo_reply: str | None = None  # e.g. "502 5.5.1 EHLO not here" (HELO still works)
    mail_reply: str = "250 2.1.0 OK"
    rcpt_replies: dict[str, str] = field(default_factory=dict)  # address -> reply
    data_reply: str | None = None  # to DATA itself; None: 354, or 554 with no recipients
    final_reply: str = "250 2.0.0 Queued"
    starttls_reply: str = "220 2.0.0 Ready to start TLS"
    auth: dict[str, str] | None = None  # user -> password
    auth_mechanisms: tuple[str, ...] = ("PLAIN", "LOGIN")
    hold_until_data: bool = False
    silent_from: str | None = None  # a verb from which on nothing is answered
    close_in_body: bool = False
    linger_after_quit: bool = False  # leave the hang-up after QUIT to the client
    stall_body: bool = False  # stop reading after 354 (the client's writes back up)
    close_at_tls: bool = False  # 220 to STARTTLS, then hang up
    # Called with each command's verb as it arrives, before it is answered: a
    # test moves its clock there to play a server slow to answer.
    on_command: Callable[[str], None] | None = None


class Recorder:
    """The server: start(), then read `chunks`, `commands`, `messages` after the client ran."""

    def __init__(
        self, behaviour: Behaviour | None = None, *, tls: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
    ) -> None:
        self.behaviour = behaviour or Behaviour()
        self.tls = tls  # offered with STARTTLS, or from the first byte with implicit_tls
        self.implicit_tls = implicit_tls
        self.chunks: list[bytes] = []
        self.commands: list[Command] = []
        self.messages: list[Message] = []
        self.logins: list[tuple[str, str]] = []
        self.sessions: list[_Session] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> Recorder:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Session(self), "127.0.0.1", 0, ssl=self.tls if self.implicit_tls else None
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for session in self.sessions:
                session.hang_up()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    def verbs(self) -> list[str]:
        return [c.line.split(" ", 1)[0].split(":", 1)[0].upper() for c in self.commands]

    def say(self, text: str) -> None:
        """Send `text` (CRLF added) on the latest session, asked for or not."""
        self.sessions[-1].send(text)


class _Session(asyncio.Protocol):
    def __init__(self, server: Recorder) -> None:
        self.server = server
        self.b = server.behaviour
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.sent = 0
        self.held: list[str] = []
        self.in_data = False
        self.tls = server.implicit_tls
        self.sender: str | None = None
        self.rcpts: list[str] = []
        self.auth_step: list[str] = []  # AUTH LOGIN: what has been answered so far
        self.silent = False
        self.tls_pending = False
        self.tls_task: asyncio.Future[None] | None = None
        server.sessions.append(self)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.b.stall_body:  # a small window, so a stalled reader blocks the client soon
            sock = transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.send(self.b.greeting)

    def data_received(self, data: bytes) -> None:
        self.server.chunks.append(data)
        self.buf += data
        self._process()

    def _process(self) -> None:
        while self.transport is not None and not self.transport.is_closing():
            if self.tls_pending:
                return  # what came over TLS waits for the TLS transport
            if self.in_data:
                if not self.buf or not self._body():
                    return
                continue
            end = self.buf.find(b"\r\n")
            if end < 0:
                return
            line, self.buf = self.buf[:end].decode("utf-8", "replace"), self.buf[end + 2 :]
            self.server.commands.append(Command(line, self.sent))
            self._command(line)

    def _body(self) -> bool:
        if self.b.close_in_body:
            self.hang_up()
            return False
        end = 0 if self.buf.startswith(b".\r\n") else self.buf.find(b"\r\n.\r\n")
        if end < 0:
            return False
        raw = self.buf[: end + 2] if end else b""
        self.buf = self.buf[end + (3 if end == 0 else 5) :]
        self.in_data = False
        lines = raw.split(b"\r\n")
        content = b"\r\n".join(x[1:] if x.startswith(b".") else x for x in lines)
        if self.b.final_reply.startswith("2") and self.sender is not None:
            self.server.messages.append(Message(self.sender, self.rcpts, content, self.tls))
        self.sender, self.rcpts = None, []
        self.reply(self.b.final_reply, "DATA-END")
        return True

    def _command(self, line: str) -> None:
        b = self.b
        verb = line.split(" ", 1)[0].split(":", 1)[0].upper()
        if b.on_command is not None:
            b.on_command(verb)
        if b.silent_from is not None and verb == b.silent_from:
            self.silent = True
        if self.auth_step:
            self._auth_login(line)
        elif verb == "EHLO":
            if b.ehlo_reply is not None:
                self.reply(b.ehlo_reply, verb)
                return
            exts = list(b.extensions)
            if self.server.tls is not None and not self.tls and not self.server.implicit_tls:
                exts.append("STARTTLS")
            if b.auth is not None:
                exts.append("AUTH " + " ".join(b.auth_mechanisms))
            lines = ["rec.test", *exts]
            self.reply("\r\n".join(
                f"250{'-' if i < len(lines) - 1 else ' '}{x}" for i, x in enumerate(lines)
            ), verb)
        elif verb == "HELO":
            self.reply("250 rec.test", verb)
        elif verb == "STARTTLS" and self.server.tls is not None and not self.server.implicit_tls:
            self.reply(b.starttls_reply, verb)
            if b.close_at_tls:
                self.hang_up()
            elif b.starttls_reply.startswith("220"):
                self.tls_pending = True
                self.tls_task = asyncio.ensure_future(self._start_tls())
        elif verb == "AUTH" and b.auth is not None:
            words = line.split()
            if words[1].upper() == "PLAIN" and len(words) == 3:
                _, user, password = base64.b64decode(words[2]).decode().split("\0")
                self._login(user, password)
            elif words[1].upper() == "LOGIN":
                self.auth_step = ["LOGIN"]
                self.reply("334 VXNlcm5hbWU6", verb)
            else:
                self.reply("504 5.5.4 Unrecognized authentication type", verb)
        elif verb == "MAIL":
            if b.mail_reply.startswith("250"):
                self.sender = line[10:].split(">", 1)[0].lstrip("<")
                self.rcpts = []
            self.reply(b.mail_reply, verb)
        elif verb == "RCPT":
            address = line[8:].split(">", 1)[0].lstrip("<")
            answer = b.rcpt_replies.get(address, "250 2.1.5 OK")
            if answer.startswith("250") and self.sender is not None:
                self.rcpts.append(address)
            self.reply(answer, verb)
        elif verb == "DATA":
            answer = b.data_reply or (
                "354 Go ahead" if self.sender and self.rcpts else "554 5.5.1 No valid recipients"
            )
            self.in_data = answer.startswith("354")
            self.reply(answer, verb)
            if self.in_data and b.stall_body and self.transport is not None:
                self.transport.pause_reading()
        elif verb == "RSET":
            self.sender, self.rcpts = None, []
            self.reply("250 2.0.0 OK", verb)
        elif verb == "QUIT":
            self.reply("221 2.0.0 Bye", verb)
            if not b.linger_after_quit:
                self.hang_up()
        else:
            self.reply("502 5.5.2 Command not recognized", verb)

    def _auth_login(self, line: str) -> None:
        self.auth_step.append(base64.b64decode(line).decode())
        if len(self.auth_step) == 2:
            self.reply("334 UGFzc3dvcmQ6", "AUTH")
        else:
            _, user, password = self.auth_step
            self.auth_step = []
            self._login(user, password)

    def _login(self, user: str, password: str) -> None:
        assert self.b.auth is not None
        if self.b.auth.get(user) == password:
            self.server.logins.append((user, password))
            self.reply("235 2.7.0 Authentication successful", "AUTH")
        else:
            self.reply("535 5.7.8 Authentication credentials invalid", "AUTH")

    async def _start_tls(self) -> None:
        assert self.transport is not None and self.server.tls is not None
        loop = asyncio.get_running_loop()
        try:
            transport = await loop.start_tls(
                self.transport, self, self.server.tls, server_side=True
            )
        except (OSError, ssl.SSLError):
            return
        self.transport = transport  # type: ignore[assignment]
        self.tls = True
        self.tls_pending = False
        self.sender, self.rcpts = None, []
        self._process()

    def reply(self, text: str, verb: str) -> None:
        if self.silent:
            return
        if self.b.hold_until_data and verb in ("MAIL", "RCPT"):
            self.held.append(text)
            return
        if verb == "DATA" and self.held:
            text = "\r\n".join([*self.held, text])
            self.held = []
        self.send(text)
        if text.startswith("421"):
            self.hang_up()  # as servers do after 421

    def send(self, text: str) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.sent += text.count("\r\n") + 1  # counts lines; one per reply here
            self.transport.write(text.encode() + b"\r\n")

    def hang_up(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

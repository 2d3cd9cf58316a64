"""A scriptable loopback SMTP server for outbound tests.

Replies are scripted per recipient and per attempt (250; 451 then 250;
550; "drop" closes the line), the greeting and MAIL/DATA replies can be
scripted too, STARTTLS and AUTH PLAIN are offered when configured. DATA
ends at any line that is "." whether the line ends in CRLF or a bare LF,
like the lenient servers SMTP smuggling abuses, so a client that failed
to normalise line endings would be caught splitting one message in two.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


@dataclass
class Received:
    """One message a sink accepted."""

    mail_from: str
    rcpts: list[str]
    data: bytes
    sink: str
    session: int
    tls: bool
    mail_params: list[str] = field(default_factory=list)
    rcpt_params: list[list[str]] = field(default_factory=list)


class SmtpSink:
    """A scriptable SMTP server on one loopback address.

    rcpt_replies[address] = ["451 4.3.0 later", "250 OK"]: one reply per
    attempt for that recipient, the last repeating. `hold` (an Event) makes
    the sink store the message, then wait for it before replying to DATA.
    """

    def __init__(
        self,
        host: str,
        port: int = 0,
        *,
        name: str | None = None,
        tls: ssl.SSLContext | None = None,
        auth: dict[str, str] | None = None,
        extensions: tuple[str, ...] = ("PIPELINING", "8BITMIME", "SIZE 100000000"),
    ) -> None:
        self.host = host
        self.port = port
        self.name = name or host
        self.tls = tls
        self.auth = auth
        self.extensions = extensions
        self.greeting = f"220 {self.name} ESMTP sink"
        self.offer_dsn = True
        self.rcpt_replies: dict[str, list[str]] = {}
        self.mail_replies: list[str] = []
        self.data_replies: list[str] = []
        self.hold: asyncio.Event | None = None
        self.received: list[Received] = []
        self.rcpt_attempts: dict[str, int] = {}
        self.sessions = 0
        self.active = 0
        self.max_active = 0
        self.ehlo_names: list[str] = []
        self.auth_users: list[str] = []
        self.on_message: Callable[[Received], Awaitable[None]] | None = None
        self._server: asyncio.Server | None = None
        self._data_count = 0
        self._mail_count = 0

    async def start(self) -> SmtpSink:
        self._server = await asyncio.start_server(self._session, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.sessions += 1
        session = self.sessions
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        tls_on = False
        try:
            await self._send(writer, self.greeting)
            if not self.greeting.startswith("220"):
                return
            mail_from: str | None = None
            mail_params: list[str] = []
            rcpts: list[str] = []
            rcpt_params: list[list[str]] = []
            while True:
                line = await reader.readline()
                if not line:
                    return
                text = line.decode("utf-8", "replace").rstrip("\r\n")
                verb = text[:4].upper()
                if verb == "EHLO":
                    self.ehlo_names.append(text[5:])
                    exts = [*self.extensions, "SMTPUTF8"] + (["DSN"] if self.offer_dsn else [])
                    if self.tls is not None and not tls_on:
                        exts.append("STARTTLS")
                    if self.auth is not None:
                        exts.append("AUTH PLAIN")
                    lines = [self.name, *exts]
                    await self._send(writer, "\r\n".join(
                        f"250{'-' if i < len(lines) - 1 else ' '}{item}"
                        for i, item in enumerate(lines)
                    ))
                elif verb == "HELO":
                    await self._send(writer, f"250 {self.name}")
                elif text.upper() == "STARTTLS" and self.tls is not None:
                    await self._send(writer, "220 go ahead")
                    await writer.start_tls(self.tls)
                    tls_on = True
                    mail_from, rcpts = None, []
                elif verb == "AUTH" and self.auth is not None:
                    parts = text.split()
                    if len(parts) == 2:
                        await self._send(writer, "334 ")
                        blob = (await reader.readline()).strip()
                    else:
                        blob = parts[2].encode()
                    _, user, password = base64.b64decode(blob).decode().split("\0")
                    if self.auth.get(user) == password:
                        self.auth_users.append(user)
                        await self._send(writer, "235 2.7.0 Authentication successful")
                    else:
                        await self._send(writer, "535 5.7.8 Authentication failed")
                elif verb == "MAIL":
                    reply = _pick(self.mail_replies, self._mail_count, "250 2.1.0 OK")
                    self._mail_count += 1
                    if reply.startswith("250"):
                        addr, params = _path(text[10:])
                        mail_from, mail_params, rcpts, rcpt_params = addr, params, [], []
                    await self._send(writer, reply)
                elif verb == "RCPT":
                    addr, params = _path(text[8:])
                    attempt = self.rcpt_attempts.get(addr, 0)
                    self.rcpt_attempts[addr] = attempt + 1
                    reply = _pick(self.rcpt_replies.get(addr, []), attempt, "250 2.1.5 OK")
                    if reply == "drop":
                        return
                    if reply.startswith("250"):
                        rcpts.append(addr)
                        rcpt_params.append(params)
                    await self._send(writer, reply)
                elif verb == "DATA":
                    if mail_from is None or not rcpts:
                        await self._send(writer, "503 5.5.1 No valid recipients")
                        continue
                    await self._send(writer, "354 End data with <CR><LF>.<CR><LF>")
                    data = await _read_data(reader)
                    reply = _pick(self.data_replies, self._data_count, "250 2.0.0 Queued")
                    self._data_count += 1
                    if reply.startswith("250"):
                        item = Received(mail_from, rcpts, data, self.name, session, tls_on,
                                        mail_params, rcpt_params)
                        self.received.append(item)
                        if self.hold is not None:
                            await self.hold.wait()
                        if self.on_message is not None:
                            await self.on_message(item)
                    await self._send(writer, reply)
                    mail_from, rcpts = None, []
                elif verb == "RSET":
                    mail_from, rcpts = None, []
                    await self._send(writer, "250 2.0.0 OK")
                elif verb == "NOOP":
                    await self._send(writer, "250 2.0.0 OK")
                elif verb == "QUIT":
                    await self._send(writer, "221 2.0.0 Bye")
                    return
                else:
                    await self._send(writer, "502 5.5.2 Command not recognized")
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            return
        finally:
            self.active -= 1
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _send(self, writer: asyncio.StreamWriter, text: str) -> None:
        writer.write(text.encode() + b"\r\n")
        await writer.drain()


def _pick(replies: list[str], index: int, default: str) -> str:
    if not replies:
        return default
    return replies[min(index, len(replies) - 1)]


def _path(text: str) -> tuple[str, list[str]]:
    text = text.strip()
    end = text.find(">")
    addr = text[1:end] if text.startswith("<") and end > 0 else text.split()[0]
    params = text[end + 1 :].split() if end > 0 else []
    return addr, params


async def _read_data(reader: asyncio.StreamReader) -> bytes:
    """Lenient end-of-data: a line "." ending in CRLF *or bare LF* ends the message."""
    lines: list[bytes] = []
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("eof in DATA")
        if line.rstrip(b"\r\n") == b".":
            break
        if line.startswith(b".."):
            line = line[1:]
        lines.append(line)
    return b"".join(lines)


async def start_sinks(*hosts: str, **kwargs: object) -> list[SmtpSink]:
    """Sinks on several loopback addresses sharing one free port number."""
    for _ in range(50):
        first = await SmtpSink(hosts[0], 0, **kwargs).start()  # type: ignore[arg-type]
        sinks = [first]
        try:
            for host in hosts[1:]:
                sinks.append(await SmtpSink(host, first.port, **kwargs).start())  # type: ignore[arg-type]
        except OSError:
            for sink in sinks:
                await sink.stop()
            continue
        return sinks
    raise RuntimeError("no common free port for the sinks")

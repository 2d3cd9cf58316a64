"""The SMTP client side of the queue: sessions to remote hosts, one transaction per message.

One `RemoteSession` is one connection to one remote host; it carries any
number of messages, each with all of its recipients for that host
(route_delivery.py walks a route's hosts and reuses sessions).

When the server offers PIPELINING (RFC 2920), MAIL, every RCPT and DATA
leave in one write and their replies are read in order, so a message costs
two round trips instead of three plus one per recipient; a RSET owed after
a refused transaction rides along with the next one. The commands and the
body are built by protocols/smtp/client.py, which refuses control
characters in envelope values and sends a body containing "\\n.\\r\\n" as
one message (no SMTP smuggling); the queue normalised the line endings
already, so the DKIM signature covers exactly the bytes sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Sequence

from nmail.protocols.smtp import client as cmd
from nmail.protocols.smtp.client import NO_EXTENSIONS, Extensions, ServerReply, parse_ehlo
from nmail.queue.body_file import QueuedBody, wire_piece
from nmail.queue.outcomes import (
    PERMANENT,
    HostUnusable,
    Outcome,
    Outgoing,
    SessionLost,
    one_line,
    outcome_for,
    xtext,
)
from nmail.queue.routing import TLS_IMPLICIT, TLS_NONE, TLS_REQUIRED, Route
from nmail.queue.smtp_link import LinkError, SmtpLink
from nmail.timers import Timers

CONNECT_TIMEOUT = 30.0
COMMAND_TIMEOUT = 120.0
DATA_TIMEOUT = 600.0
QUIT_TIMEOUT = 10.0


class TlsContexts:
    """The two client contexts: opportunistic (no checks) and verifying."""

    def __init__(self, cafile: str | None = None) -> None:
        self.unverified = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        self.unverified.check_hostname = False
        self.unverified.verify_mode = ssl.CERT_NONE
        self.verified = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)

    def for_route(self, route: Route) -> ssl.SSLContext:
        return self.verified if route.verify else self.unverified


class RemoteSession:
    """One open SMTP connection to one host."""

    def __init__(self, link: SmtpLink, host: str, address: str, port: int) -> None:
        self._link = link
        self.host = host
        self.address = address
        self.tls = False
        self._where = f"{host}[{address}]:{port}"
        self._extensions = NO_EXTENSIONS
        self._reset_due = False  # a refused transaction left state behind: RSET first
        self._body_sent = False  # this transaction got as far as sending the message
        self.opened_at = asyncio.get_running_loop().time()

    @property
    def alive(self) -> bool:
        return self._link.usable

    @classmethod
    async def open(
        cls, route: Route, host: str, address: str, local_hostname: str, tls: TlsContexts,
        *, try_tls: bool = True, timers: Timers | None = None,
    ) -> RemoteSession:
        """Connect, EHLO, STARTTLS (per the route's policy) and AUTH; HostUnusable on failure.

        timers: the clock of the reply deadlines (default: the event loop's)."""
        implicit = route.tls == TLS_IMPLICIT
        where = f"{host}[{address}]:{route.port}"
        loop = asyncio.get_running_loop()
        link: SmtpLink | None = None
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                # The address we resolved ourselves (our cache, our nameservers);
                # implicit TLS needs the name too, for SNI and verification.
                _, link = await loop.create_connection(
                    lambda: SmtpLink(timers), address, route.port,
                    ssl=tls.for_route(route) if implicit else None,
                    server_hostname=host if implicit else None,
                    ssl_handshake_timeout=CONNECT_TIMEOUT if implicit else None,
                )
                greeting = await link.reply(CONNECT_TIMEOUT)
            if greeting.code != 220:
                link.close()
                raise HostUnusable(f"{where} refused service: {one_line(str(greeting))}")
            session = cls(link, host, address, route.port)
            session.tls = implicit
            await session._hello(local_hostname)
            wants_tls = route.tls == TLS_REQUIRED or (route.tls != TLS_NONE and try_tls)
            if not implicit and wants_tls:
                if "STARTTLS" in session._extensions:
                    await session._starttls(tls.for_route(route))
                    session.tls = True
                    await session._hello(local_hostname)
                elif route.tls == TLS_REQUIRED or route.verify:
                    raise HostUnusable(f"{where}: server does not offer STARTTLS")
            if route.username is not None:
                if route.verify and not session.tls:
                    raise HostUnusable(f"{where}: no verified TLS, the password is not sent")
                await session._login(route.username, route.password or "")
        except HostUnusable:
            if link is not None:
                await _quit(link)
            raise
        except (LinkError, OSError, ssl.SSLError, TimeoutError, ValueError) as exc:
            if link is not None:
                link.fail(LinkError("given up"))
            raise HostUnusable(f"{where}: {one_line(str(exc)) or type(exc).__name__}") from None
        except BaseException:
            if link is not None:
                link.fail(LinkError("cancelled"))
            raise
        return session

    async def send(self, item: Outgoing) -> list[Outcome]:
        """One transaction; outcomes align with item.recipients. SessionLost if the line dies."""
        host = self.host
        extensions = self._extensions
        self._body_sent = False
        dsn = "DSN" in extensions
        utf8 = not (item.sender.isascii() and all(a.isascii() for a in item.recipients))
        if utf8 and "SMTPUTF8" not in extensions:
            text = f"5.6.7 {host} does not support SMTPUTF8 (non-ASCII address)"
            return [Outcome(PERMANENT, text, "5.6.7", host)] * len(item.recipients)
        outcomes: list[Outcome | None] = [None] * len(item.recipients)
        try:
            mail = cmd.mail_command(item.sender, _mail_options(extensions, item, dsn, utf8))
        except ValueError as exc:
            return [Outcome(PERMANENT, f"5.1.7 {exc}", "5.1.7", None)] * len(item.recipients)
        rcpts: list[tuple[int, bytes]] = []
        for i, rcpt in enumerate(item.recipients):
            try:
                rcpts.append((i, cmd.rcpt_command(rcpt, _rcpt_options(item, i, dsn))))
            except ValueError as exc:
                outcomes[i] = Outcome(PERMANENT, f"5.1.3 {exc}", "5.1.3", None)
        try:
            if rcpts:
                await self._transaction(item.body, mail, rcpts, outcomes, dsn)
        except LinkError as exc:
            self._link.fail(exc)
            where = f"{host}[{self.address}]"
            raise SessionLost(
                f"lost connection with {where}: {one_line(str(exc))}", body_sent=self._body_sent
            ) from None
        return [o for o in outcomes if o is not None]

    async def _transaction(
        self, body: bytes | QueuedBody, mail: bytes, rcpts: Sequence[tuple[int, bytes]],
        outcomes: list[Outcome | None], dsn: bool,
    ) -> None:
        """MAIL, RCPTs, DATA and the body; fills `outcomes` (None = not decided yet)."""
        link = self._link
        host = self.host
        pipelined = "PIPELINING" in self._extensions
        reset = self._reset_due
        self._reset_due = False
        if pipelined:
            # RFC 2920: DATA last in the group; RSET may lead it.
            group = [cmd.RSET] if reset else []
            group += [mail, *(command for _, command in rcpts), cmd.DATA]
            link.write(b"".join(group), len(group))

        async def answer(command: bytes) -> ServerReply:
            if not pipelined:
                link.write(command, 1)
            return await link.reply(COMMAND_TIMEOUT)

        if reset:
            reply = await answer(cmd.RSET)
            if not reply.ok:
                raise LinkError(f"RSET refused: {one_line(str(reply))}")
        reply = await answer(mail)
        if not reply.ok:
            _fill(outcomes, outcome_for(reply.code, reply.text, host))
            if self._closing(reply):
                return
            self._reset_due = True
            if pipelined:
                await self._discard(len(rcpts) + 1)
            return
        accepted: list[int] = []
        for i, command in rcpts:
            reply = await answer(command)
            if reply.ok:
                accepted.append(i)
                continue
            outcomes[i] = outcome_for(reply.code, reply.text, host)
            if self._closing(reply):  # the server is going away: the rest waits too
                _fill(outcomes, outcomes[i])
                return
        if not accepted:
            self._reset_due = True
            if pipelined:
                await self._discard(1)
            return
        reply = await answer(cmd.DATA)
        if reply.code == 354:
            self._body_sent = True
            if isinstance(body, bytes):
                link.write(cmd.wire_body(body), 1)
            else:
                await _send_pieces(link, body)
            await link.drain(DATA_TIMEOUT)
            reply = await link.reply(DATA_TIMEOUT)
            done = outcome_for(reply.code, reply.text, host, remote_dsn=dsn and reply.ok)
        else:
            done = outcome_for(reply.code, reply.text, host)
            self._reset_due = True
        self._closing(reply)
        for i in accepted:
            outcomes[i] = done

    async def _discard(self, count: int) -> None:
        """Read the rest of a pipelined group whose transaction failed; DATA's reply last."""
        for left in range(count, 0, -1):
            reply = await self._link.reply(COMMAND_TIMEOUT)
            if self._closing(reply):
                return
            if left == 1 and reply.code == 354:
                # DATA accepted with no recipient (a broken server): end the empty message.
                self._link.write(cmd.END_OF_DATA, 1)
                await self._link.reply(DATA_TIMEOUT)

    def _closing(self, reply: ServerReply) -> bool:
        """True (and hang up) when the reply says the server is closing the line."""
        if reply.code != 421:
            return False
        self._link.fail(LinkError(f"the server closed the session: {one_line(str(reply))}"))
        return True

    async def _command(self, command: bytes) -> ServerReply:
        self._link.write(command, 1)
        return await self._link.reply(COMMAND_TIMEOUT)

    async def _hello(self, local_hostname: str) -> None:
        """EHLO, or HELO for the rare server that refuses EHLO (RFC 5321 4.1.4)."""
        reply = await self._command(cmd.hello_command("EHLO", local_hostname))
        if reply.ok:
            self._extensions = parse_ehlo(reply)
            return
        if reply.code >= 500:
            reply = await self._command(cmd.hello_command("HELO", local_hostname))
            if reply.ok:
                self._extensions = NO_EXTENSIONS
                return
        raise HostUnusable(f"{self._where}: {one_line(str(reply))}")

    async def _starttls(self, context: ssl.SSLContext) -> None:
        try:
            reply = await self._command(cmd.STARTTLS)
            if reply.code != 220:
                raise LinkError(f"STARTTLS refused: {one_line(str(reply))}")
            await self._link.start_tls(context, self.host, COMMAND_TIMEOUT)
        except (LinkError, OSError, ssl.SSLError, TimeoutError) as exc:
            self._link.fail(LinkError("TLS failed"))
            text = one_line(str(exc)) or type(exc).__name__
            raise HostUnusable(f"{self._where}: STARTTLS failed: {text}", tls_failed=True) from None
        self._extensions = NO_EXTENSIONS  # forget what was said in the clear

    async def _login(self, username: str, password: str) -> None:
        """AUTH PLAIN where offered, else AUTH LOGIN; HostUnusable when refused."""
        mechanisms = self._extensions.auth_mechanisms
        if "PLAIN" in mechanisms:
            reply = await self._command(cmd.auth_plain_command(username, password))
        elif "LOGIN" in mechanisms:
            reply = await self._command(cmd.AUTH_LOGIN)
            if reply.code == 334:
                reply = await self._command(cmd.sasl_line(username))
            if reply.code == 334:
                reply = await self._command(cmd.sasl_line(password))
        else:
            raise HostUnusable(f"{self._where}: the server offers no AUTH PLAIN or LOGIN")
        if reply.code != 235:
            raise HostUnusable(f"{self._where}: authentication failed: {one_line(str(reply))}")

    async def close(self) -> None:
        """QUIT politely (a short wait for the reply), then close."""
        await _quit(self._link)

    def abort(self) -> None:
        self._link.fail(LinkError("aborted"))


async def _quit(link: SmtpLink) -> None:
    if link.usable:
        try:
            link.write(cmd.QUIT, 1)
            await link.reply(QUIT_TIMEOUT)
        except LinkError:
            pass
    link.close()


async def _send_pieces(link: SmtpLink, body: QueuedBody) -> None:
    """A large body from its file: each piece read in a thread, written once the
    link has room for it, then the terminator (which owes the reply)."""
    pieces = body.pieces()
    try:
        while (piece := await asyncio.to_thread(next, pieces, None)) is not None:
            link.write(wire_piece(piece), 0)
            await link.drain(DATA_TIMEOUT)
    except OSError as exc:
        raise LinkError(f"queued body unreadable: {exc}") from None
    finally:
        with contextlib.suppress(ValueError):  # cancelled while a thread reads: GC closes it
            pieces.close()
    link.write(cmd.END_OF_DATA, 1)


def _fill(outcomes: list[Outcome | None], outcome: Outcome | None) -> None:
    for i, known in enumerate(outcomes):
        if known is None:
            outcomes[i] = outcome


def _mail_options(extensions: Extensions, item: Outgoing, dsn: bool, utf8: bool) -> list[str]:
    options: list[str] = []
    if "SIZE" in extensions:
        options.append(f"SIZE={len(item.body)}")
    if "8BITMIME" in extensions and not item.body.isascii():
        options.append("BODY=8BITMIME")
    if utf8:
        options.append("SMTPUTF8")
    if dsn:
        if item.ret:
            options.append(f"RET={item.ret}")
        if item.envid:
            options.append(f"ENVID={xtext(item.envid)}")
    return options


def _rcpt_options(item: Outgoing, index: int, dsn: bool) -> list[str]:
    if not dsn:
        return []
    options: list[str] = []
    notify = item.notify[index] if index < len(item.notify) else None
    if notify:
        options.append(f"NOTIFY={notify}")
    orcpt = item.orcpt[index] if index < len(item.orcpt) else None
    if orcpt:
        kind, sep, addr = orcpt.partition(";")
        if not sep:
            kind, addr = "rfc822", orcpt
        options.append(f"ORCPT={kind.strip()};{xtext(addr.strip())}")
    return options

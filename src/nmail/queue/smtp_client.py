"""The SMTP client side of the queue, over aiosmtplib.

One `RemoteSession` is one connection to one remote host; it carries any
number of messages, each with all of its recipients for that host
(route_delivery.py walks a route's hosts and reuses sessions).

aiosmtplib refuses control characters in commands; smtp_data turns bare
CR/LF into CRLF and dot-stuffs the body, so a body containing "\\n.\\r\\n"
leaves as one message (no SMTP smuggling); the queue normalised the line
endings already so the DKIM signature covers exactly these bytes.
"""

from __future__ import annotations

import contextlib
import re
import ssl
from dataclasses import dataclass

import aiosmtplib

from nmail.queue.routing import TLS_IMPLICIT, TLS_NONE, TLS_REQUIRED, Route
from nmail.queue.smtp_data import send_data

DELIVERED = "delivered"
TEMPORARY = "temporary"
PERMANENT = "permanent"

CONNECT_TIMEOUT = 30.0
COMMAND_TIMEOUT = 120.0
DATA_TIMEOUT = 600.0
MAX_RECIPIENTS_PER_TRANSACTION = 100

_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})\b")


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to hand over: its envelope for this host and its bytes."""

    queue_id: str
    sender: str
    recipients: tuple[str, ...]
    body: bytes
    notify: tuple[str | None, ...] = ()
    orcpt: tuple[str | None, ...] = ()
    envid: str | None = None
    ret: str | None = None
    tags: tuple[int, ...] = ()  # the caller's ids for the recipients, in order


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt did for one recipient."""

    kind: str  # delivered | temporary | permanent
    reply: str  # the remote's reply ("550 5.1.1 No such user") or our own words
    status: str  # RFC 3463 enhanced status code
    remote_host: str | None
    remote_dsn: bool = False  # the remote took our DSN parameters (it reports success)


class HostUnusable(Exception):
    """This host cannot be used now; try the next one."""

    def __init__(self, message: str, *, tls_failed: bool = False) -> None:
        super().__init__(message)
        self.tls_failed = tls_failed


class SessionLost(Exception):
    """The connection died in the middle of a transaction."""


def outcome_for(code: int, text: str, host: str | None, *, remote_dsn: bool = False) -> Outcome:
    """Classify a reply: 2xx delivered, 4xx temporary, 5xx permanent."""
    reply = one_line(f"{code} {text}")
    kind = {2: DELIVERED, 4: TEMPORARY, 5: PERMANENT}.get(code // 100, TEMPORARY)
    return Outcome(kind, reply, enhanced_status(code, text), host, remote_dsn)


def enhanced_status(code: int, text: str) -> str:
    """The reply's own x.y.z when it has a plausible one, else x.0.0 from the code."""
    found = _ENHANCED.match(text.strip())
    if found and found.group(1) == str(code // 100):
        return found.group(0)
    klass = code // 100 if code // 100 in (2, 4, 5) else 4
    return f"{klass}.0.0"


def one_line(text: str, limit: int = 1000) -> str:
    """A remote's reply as one printable line (it goes into DSNs and logs)."""
    cleaned = "".join(ch if ch.isprintable() else " " for ch in text.replace("\n", " "))
    return " ".join(cleaned.split())[:limit]


def xtext(value: str) -> str:
    """RFC 3461 xtext encoding for ENVID and ORCPT values."""
    return "".join(
        ch if 33 <= ord(ch) <= 126 and ch not in "+=" else f"+{ord(ch):02X}"
        for ch in value
    )


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

    def __init__(self, smtp: aiosmtplib.SMTP, host: str, address: str) -> None:
        self._smtp = smtp
        self.host = host
        self.address = address
        self.tls = False

    @property
    def alive(self) -> bool:
        return self._smtp.is_connected

    @classmethod
    async def open(
        cls, route: Route, host: str, address: str, local_hostname: str, tls: TlsContexts,
        *, try_tls: bool = True,
    ) -> RemoteSession:
        """Connect, EHLO, STARTTLS (per the route's policy) and AUTH; HostUnusable on failure."""
        implicit = route.tls == TLS_IMPLICIT
        smtp = aiosmtplib.SMTP(
            # Implicit TLS needs the name for SNI and verification; otherwise the
            # address we resolved ourselves (our cache, our nameservers).
            hostname=host if implicit else address,
            port=route.port,
            local_hostname=local_hostname,
            timeout=COMMAND_TIMEOUT,
            use_tls=implicit,
            start_tls=False,
            tls_context=tls.for_route(route) if implicit else None,
        )
        where = f"{host}[{address}]:{route.port}"
        try:
            await smtp.connect(timeout=CONNECT_TIMEOUT)
            session = cls(smtp, host, address)
            session.tls = implicit
            await _hello(smtp)
            wants_tls = route.tls == TLS_REQUIRED or (route.tls != TLS_NONE and try_tls)
            if not implicit and wants_tls:
                if smtp.supports_extension("starttls"):
                    await _starttls(smtp, host, tls.for_route(route), where)
                    session.tls = True
                    await _hello(smtp)
                elif route.tls == TLS_REQUIRED or route.verify:
                    raise HostUnusable(f"{where}: server does not offer STARTTLS")
            if route.username is not None:
                await smtp.login(route.username, route.password or "")
        except HostUnusable:
            smtp.close()
            raise
        except aiosmtplib.SMTPConnectResponseError as exc:
            smtp.close()
            reply = one_line(f"{exc.code} {exc.message}")
            raise HostUnusable(f"{where} refused service: {reply}") from None
        except aiosmtplib.SMTPResponseException as exc:
            await _quit(smtp)
            raise HostUnusable(f"{where}: {one_line(f'{exc.code} {exc.message}')}") from None
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
            smtp.close()
            raise HostUnusable(f"{where}: {one_line(str(exc)) or type(exc).__name__}") from None
        return session

    async def send(self, item: Outgoing) -> list[Outcome]:
        """One transaction; outcomes align with item.recipients. SessionLost if the line dies."""
        smtp = self._smtp
        host = self.host
        dsn = smtp.supports_extension("dsn")
        utf8 = not (item.sender.isascii() and all(a.isascii() for a in item.recipients))
        if utf8 and not smtp.supports_extension("smtputf8"):
            text = f"5.6.7 {host} does not support SMTPUTF8 (non-ASCII address)"
            return [Outcome(PERMANENT, text, "5.6.7", host)] * len(item.recipients)
        options = _mail_options(smtp, item, dsn, utf8)
        encoding = "utf-8" if utf8 else "ascii"
        outcomes: list[Outcome | None] = [None] * len(item.recipients)
        try:
            try:
                await smtp.mail(item.sender, options=options, encoding=encoding)
            except aiosmtplib.SMTPSenderRefused as exc:
                refused = outcome_for(exc.code, exc.message, host)
                await self._reset()
                return [refused] * len(item.recipients)
            accepted: list[int] = []
            for i, rcpt in enumerate(item.recipients):
                try:
                    await smtp.rcpt(rcpt, options=_rcpt_options(item, i, dsn), encoding=encoding)
                    accepted.append(i)
                except aiosmtplib.SMTPRecipientRefused as exc:
                    refused = outcome_for(exc.code, exc.message, host)
                    outcomes[i] = refused
                    if exc.code == 421:  # the server is closing: the rest waits too
                        return [refused if o is None or o is refused else o for o in outcomes]
            if not accepted:
                await self._reset()
                return [o for o in outcomes if o is not None]
            try:
                reply = await send_data(smtp, item.body, DATA_TIMEOUT)
                done = outcome_for(reply.code, reply.message, host, remote_dsn=dsn)
            except aiosmtplib.SMTPDataError as exc:
                done = outcome_for(exc.code, exc.message, host)
                await self._reset()
            for i in accepted:
                outcomes[i] = done
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError) as exc:
            where = f"{host}[{self.address}]"
            raise SessionLost(f"lost connection with {where}: {one_line(str(exc))}") from None
        return [o for o in outcomes if o is not None]

    async def _reset(self) -> None:
        if self._smtp.is_connected:
            try:
                await self._smtp.rset()
            except aiosmtplib.SMTPException:
                self._smtp.close()

    async def close(self) -> None:
        await _quit(self._smtp)

    def abort(self) -> None:
        self._smtp.close()


async def _hello(smtp: aiosmtplib.SMTP) -> None:
    """EHLO, or HELO for the rare server that refuses EHLO (RFC 5321 4.1.4)."""
    try:
        await smtp.ehlo()
    except aiosmtplib.SMTPHeloError:
        if not smtp.is_connected:
            raise
        await smtp.helo()


async def _starttls(smtp: aiosmtplib.SMTP, host: str, context: ssl.SSLContext, where: str) -> None:
    try:
        await smtp.starttls(server_hostname=host, tls_context=context)
    except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
        text = one_line(str(exc)) or type(exc).__name__
        raise HostUnusable(f"{where}: STARTTLS failed: {text}", tls_failed=True) from None


async def _quit(smtp: aiosmtplib.SMTP) -> None:
    if smtp.is_connected:
        with contextlib.suppress(aiosmtplib.SMTPException, OSError):
            await smtp.quit(timeout=10)
    smtp.close()


def _mail_options(smtp: aiosmtplib.SMTP, item: Outgoing, dsn: bool, utf8: bool) -> list[str]:
    options: list[str] = []
    if smtp.supports_extension("size"):
        options.append(f"SIZE={len(item.body)}")
    if smtp.supports_extension("8bitmime") and not item.body.isascii():
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

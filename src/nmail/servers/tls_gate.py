"""Implicit TLS (SMTP 465, POP3 995) with the connection limits counted from accept.

With `create_server(ssl=...)` the loop does the handshake before the
session's `connection_made`, and that is where the listener counted the
connection: a client that connects and sends no ClientHello was counted
nowhere for the whole handshake timeout. Thousands of such half-open
handshakes (per-address limit or not) fill the worker's file descriptors
and every other door of the process starves (issue 9 items 2, 6).

So those listeners accept plain connections into a TlsGate: it asks the
listener's `admit` at once (a refused client is cut off; there is no way to
say why before TLS), counts the connection in the listener's limits while
the handshake runs (bounded by the handshake timeout), and hands the TLS
transport to a new session, which counts it from then on. Reading is paused
from the first moment, so no byte of the ClientHello is lost before the
loop's TLS layer takes the transport over (as STARTTLS does). What the
client sends in the flight that ends the handshake (the TLS layer delivers
it before `start_tls` returns) is held by a _Handover and replayed once the
session has its transport.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import cast

from nmail.servers.limits import ConnectionLimits

log = logging.getLogger("nmail.tls")

# Handshakes in progress (a task the loop holds only weakly must not vanish).
_handshakes: set[asyncio.Task[None]] = set()


class TlsGate(asyncio.Protocol):
    """The first protocol of a connection on an implicit-TLS listener."""

    def __init__(
        self,
        admit: Callable[[str], object | None],
        limits: ConnectionLimits,
        session: Callable[[], asyncio.Protocol],
        context: ssl.SSLContext,
        handshake_timeout: float,
    ) -> None:
        self._admit = admit
        self._limits = limits
        self._session = session
        self._context = context
        self._timeout = handshake_timeout
        self._early: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        raw = cast(asyncio.Transport, transport)
        raw.pause_reading()  # the ClientHello waits for the TLS layer
        peer = raw.get_extra_info("peername")
        ip = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        if self._admit(ip) is not None:  # over a limit (admit logged it)
            raw.abort()
            return
        self._limits.add(self, ip)
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._handshake(raw, ip))
        _handshakes.add(task)
        task.add_done_callback(_handshakes.discard)
        # Runs right after the task's first step, in which start_tls put its
        # TLS protocol on the transport (and before that protocol reads).
        loop.call_soon(self._pass_early_bytes, raw)

    async def _handshake(self, raw: asyncio.Transport, ip: str) -> None:
        handover = _Handover()
        try:
            secure = await asyncio.get_running_loop().start_tls(
                raw, handover, self._context, server_side=True,
                ssl_handshake_timeout=self._timeout,
            )
        except Exception as exc:  # a failed or timed-out handshake just ends it
            log.info("TLS handshake with %s failed: %s", ip, exc)
            raw.abort()
            return
        finally:
            self._limits.remove(self)  # the session counts it from here
        if secure is None:
            raw.abort()
            return
        handover.attach(self._session(), secure)

    def connection_lost(self, exc: Exception | None) -> None:
        self._limits.remove(self)

    def data_received(self, data: bytes) -> None:
        # uvloop starts reading after connection_made whatever it was told:
        # the ClientHello may come here before the TLS layer is in place.
        self._early.append(data)

    def _pass_early_bytes(self, raw: asyncio.Transport) -> None:
        """Give the TLS layer what came before it (its handshake reads them)."""
        early, self._early = self._early, []
        tls = raw.get_protocol()
        if tls is self or not early or raw.is_closing():
            return
        # uvloop's TLS protocol is no asyncio.BufferedProtocol subclass: duck typing.
        buffered = hasattr(tls, "get_buffer")
        for data in early:
            if buffered:
                while data:
                    view = tls.get_buffer(len(data))  # type: ignore[attr-defined]
                    size = min(len(view), len(data))
                    view[:size] = data[:size]
                    tls.buffer_updated(size)  # type: ignore[attr-defined]
                    data = data[size:]
            else:
                tls.data_received(data)  # type: ignore[attr-defined]


class _Handover(asyncio.Protocol):
    """Holds what arrives between the end of the handshake and the session's start."""

    def __init__(self) -> None:
        self._held: list[bytes] = []
        self._eof = False
        self._lost: tuple[Exception | None] | None = None

    def data_received(self, data: bytes) -> None:
        self._held.append(data)

    def eof_received(self) -> bool | None:
        self._eof = True
        return True  # keep the transport open until the session has seen it

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = (exc,)

    def attach(self, session: asyncio.Protocol, transport: asyncio.Transport) -> None:
        transport.set_protocol(session)
        session.connection_made(transport)
        if self._lost is not None:
            session.connection_lost(self._lost[0])
            return
        for data in self._held:
            if transport.is_closing():
                return  # the session refused the connection
            session.data_received(data)
        if self._eof and not transport.is_closing() and not session.eof_received():
            transport.close()

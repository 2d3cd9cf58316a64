"""The http listener: uvicorn serving the web app, with nmail's limits in front.

uvicorn alone has no per-address limit and no deadline before the first
request: an idle connection is kept for ever, so a client could hold every
file descriptor of the process (issue 9, item 6). `GatedHttpProtocol`
adds, per connection:

- the listener's connection limits (servers.limits: in all and per client
  address, loopback not limited per address); a connection over a limit
  gets one `503` and is closed, and the refusal is logged (at most one line
  every few seconds, with the number refused since);
- a header deadline: a request head must be complete within
  `[http] header_timeout` of the connection (or of the previous response),
  however slowly its bytes trickle in; past it the connection is closed;
- a body rate: while the app waits for more of a request's body, at least
  MIN_BODY_RATE bytes a second must arrive, measured over each
  `header_timeout`; else the connection is closed. Without it a head sent
  in time followed by a body of a byte a minute held the connection for
  ever, and a few addresses could hold every connection the listener allows.
  A body the app has not read yet (a slow handler) is not held against the
  client.

It subclasses uvicorn's h11 protocol (the one uvicorn picks without
httptools) and relies on three of its documented-by-code attributes:
`cycle` (the request in progress), `transport` and `on_response_complete`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
from collections.abc import Iterator
from typing import Any, cast

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from nmail.config_http import HttpSettings
from nmail.servers.limits import ConnectionLimits, RefusalLog

log = logging.getLogger("nmail.http")

MIN_BODY_RATE = 1024  # bytes a second of a request body (a very slow phone link sends more)

BUSY_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 31\r\n"
    b"Retry-After: 10\r\n"
    b"Connection: close\r\n\r\n"
    b"Too many connections, retry.\r\n\r\n"
)


class HttpGate:
    """What every connection of one http listener shares: its limits and timeouts."""

    def __init__(self, settings: HttpSettings) -> None:
        self.settings = settings
        self.limits = ConnectionLimits(settings.max_connections, settings.max_connections_per_ip)
        self.refusals = RefusalLog(log, "http")
        self.open = 0


class GatedHttpProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol behind the gate's limits and header deadline."""

    def __init__(self, *args: Any, gate: HttpGate, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._gate = gate
        self._admitted = False
        self._header_timer: asyncio.TimerHandle | None = None
        self._timed_cycle: object | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._received = 0  # bytes since the body rate was last looked at

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        peer = transport.get_extra_info("peername")
        ip = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        gate = self._gate
        refusal = gate.limits.admit(ip)
        if refusal is not None:
            gate.refusals.refused(ip, refusal)
            transport.write(BUSY_RESPONSE)
            transport.close()
            return
        self._admitted = True
        gate.limits.add(self, ip)
        gate.open += 1
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._stop_body_watch()
        if not self._admitted:
            return
        self._admitted = False
        self._gate.limits.remove(self)
        self._gate.open -= 1
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._received += len(data)
        super().data_received(data)
        self._note_request()

    def on_response_complete(self) -> None:
        self._stop_body_watch()
        super().on_response_complete()
        if self.transport.is_closing():
            return
        if not self._note_request():  # no pipelined request started: the next head is due
            self._arm()

    def _note_request(self) -> bool:
        """True when a request head newly arrived (its deadline is then met)."""
        cycle = self.cycle
        if cycle is None or cycle is self._timed_cycle or cycle.response_complete:
            return False
        self._timed_cycle = cycle
        self._disarm()
        self._watch_body()
        return True

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(
            self._gate.settings.header_timeout, self._header_timeout
        )

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _watch_body(self) -> None:
        self._stop_body_watch()
        self._received = 0
        self._body_timer = self.loop.call_later(
            self._gate.settings.header_timeout, self._body_check
        )

    def _stop_body_watch(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_check(self) -> None:
        self._body_timer = None
        cycle = self.cycle
        if cycle is None or not cycle.more_body or self.transport.is_closing():
            return  # the whole body is in: the app may take as long as it needs
        interval = self._gate.settings.header_timeout
        if cycle.body or self._received >= MIN_BODY_RATE * interval:
            self._watch_body()  # still coming, or waiting for the app to read it
            return
        log.info("http %s sent %d body bytes in %d s: closed", self.client, self._received,
                 interval)
        self.transport.close()

    def _header_timeout(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            log.info(
                "http %s sent no request in %d s: closed",
                self.client,
                self._gate.settings.header_timeout,
            )
            self.transport.close()


class _EmbeddedServer(uvicorn.Server):
    # nmail handles SIGTERM/SIGHUP itself; uvicorn must not take them over.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class WebServer:
    """uvicorn serving `app` on an already bound socket, behind an HttpGate."""

    def __init__(
        self,
        app: FastAPI,
        sock: socket.socket,
        settings: HttpSettings,
        *,
        stop_timeout: float = 10.0,
    ) -> None:
        self.gate = HttpGate(settings)
        protocol = functools.partial(GatedHttpProtocol, gate=self.gate)
        config = uvicorn.Config(
            app,
            http=cast(Any, protocol),
            log_level="warning",
            access_log=False,
            lifespan="on",
            server_header=False,
            # X-Forwarded-* is read by the web app from [web] trusted_proxies only
            # (web/client_address.py); uvicorn's default would trust any loopback peer.
            proxy_headers=False,
            timeout_keep_alive=settings.keepalive_timeout,
            timeout_graceful_shutdown=max(int(stop_timeout), 1),
        )
        self._server = _EmbeddedServer(config)
        self._sock = sock
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("the web server stopped while starting")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task

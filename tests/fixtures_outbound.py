"""Loopback test doubles for outbound delivery, and a harness that runs them.

The DNS server lives in fixtures_dns.py, the SMTP sink in
fixtures_smtp_sink.py; this module adds a fake clock, waiting on
conditions, a Config pointing at them, and `Harness`: DNS + sinks + an
OutboundQueue on the fake clock for one test. To check that nothing
happens, advance the clock and await `Harness.settled()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine

from fixtures_dns import DnsServer
from fixtures_smtp_sink import Received, SmtpSink, start_sinks
from nmail.certs import generate_self_signed, server_context
from nmail.config import Config, QueueSettings, RelayHost
from nmail.queue.outbound import OutboundQueue
from support import FakeClock

__all__ = [
    "DnsServer", "FakeClock", "Harness", "Received", "SmtpSink", "message",
    "outbound_config", "self_signed_context", "start_sinks", "wait_until",
]


async def wait_until(
    predicate: Callable[[], bool], within: float = 15.0, what: str = "condition"
) -> None:
    """Poll `predicate` until true; fail after `within` real seconds."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)  # the poll's step, on the loop the predicate's work runs on


def outbound_config(
    data_dir: Path,
    db_url: str,
    *,
    dns: DnsServer | None,
    port: int,
    hostname: str = "mail.nmail.test",
    transport: dict[str, str] | None = None,
    relay: RelayHost | None = None,
    **queue: object,
) -> Config:
    """A Config that sends to loopback sinks on `port`, resolving through `dns`."""
    settings = QueueSettings(remote_port=port, **queue)  # type: ignore[arg-type]
    return Config(
        data_dir=data_dir,
        hostname=hostname,
        database_url=db_url,
        queue=settings,
        nameservers=(dns.address,) if dns is not None else (),
        transport=transport or {},
        relay=relay,
    )


def self_signed_context(tmp_path: Path, name: str) -> ssl.SSLContext:
    """A server TLS context with a fresh self-signed certificate for `name`."""
    cert_path, key_path = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    generate_self_signed(name, cert_path, key_path)
    return server_context(cert_path, key_path)


def message(
    sender: str = "alice@nmail.test",
    to: str = "bob@remote.test",
    subject: str = "hello",
    body: str = "Hello there.\r\n",
) -> bytes:
    return (
        f"From: Alice <{sender}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n"
        f"Message-ID: <{time.time_ns()}@nmail.test>\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\n"
        f"\r\n{body}"
    ).encode()


class Harness:
    """DNS + sinks + an OutboundQueue running on a fake clock, for one test."""

    def __init__(
        self,
        engine: Engine,
        tmp_path: Path,
        *,
        sink_hosts: tuple[str, ...] = ("127.0.0.2",),
        local_domains: tuple[str, ...] = ("nmail.test",),
        node_id: str = "node-a",
        **queue: object,
    ) -> None:
        self.engine = engine
        self.tmp_path = tmp_path
        self.sink_hosts = sink_hosts
        self.local_domains = local_domains
        self.node_id = node_id
        self.queue_settings = queue
        self.clock = FakeClock(time.time())
        self.dns = DnsServer().start()
        self.bounces: list[tuple[bytes, str]] = []
        self.sinks: list[SmtpSink] = []
        self.port = 0
        self.config: Config | None = None
        self.queue: OutboundQueue
        self._task: asyncio.Task[None] | None = None

    async def start_sinks(self, **kwargs: object) -> None:
        self.sinks = await start_sinks(*self.sink_hosts, **kwargs)
        self.port = self.sinks[0].port

    def make_queue(self, node_id: str | None = None, **overrides: object) -> OutboundQueue:
        settings = {**self.queue_settings, **overrides}
        transport = settings.pop("transport", None)
        relay = settings.pop("relay", None)
        self.config = outbound_config(
            self.tmp_path, self.engine.url.render_as_string(hide_password=False),
            dns=self.dns, port=self.port,
            transport=transport, relay=relay, **settings,  # type: ignore[arg-type]
        )
        return OutboundQueue(
            self.engine, self.tmp_path / "queue", self.config, clock=self.clock,
            local_bounce=lambda data, rcpt: self.bounces.append((data, rcpt)),
            node_id=node_id or self.node_id,
            is_local_domain=lambda d: d in self.local_domains,
        )

    async def start(self, **kwargs: object) -> OutboundQueue:
        if not self.sinks:
            await self.start_sinks()
        self.queue = self.make_queue(**kwargs)
        self._task = asyncio.create_task(self.queue.run())
        return self.queue

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            await self.queue.stop()
            await self._task
        self._task = None

    async def crash(self) -> None:
        """Kill the scheduler mid-flight: no bookkeeping, leases left behind."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.queue.wake()

    async def settled(self, within: float = 15.0) -> int:
        """Wait for a quiet scheduler pass (nothing due left to try); fail after `within` s."""
        try:
            return await asyncio.wait_for(self.queue.settled(), within)
        except TimeoutError:
            raise AssertionError(f"the queue did not settle within {within} s") from None

    async def close(self) -> None:
        await self.stop()
        for sink in self.sinks:
            await sink.stop()
        self.dns.stop()

    def received(self) -> list[Received]:
        return [m for sink in self.sinks for m in sink.received]

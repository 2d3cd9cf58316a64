"""The composition root: builds every part from a Config. No globals.

`nmail serve` makes one Runtime; tests make as many as they like (each on
its own data directory and ports).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from nmail.accounts import AccountService, StoreMailboxes
from nmail.certs import CertificateError, Certificates
from nmail.config import Config
from nmail.config_listen import IMPLEMENTED_LISTENERS, Listen
from nmail.db.engine import make_engine
from nmail.db.migrate import upgrade
from nmail.delivery.intake import Intake
from nmail.delivery.log import DeliveryLog
from nmail.delivery.srs import SrsError, SrsRewriter, is_srs, load_secret
from nmail.directory import Directory
from nmail.directory.login import LoginService
from nmail.directory.login_gate import PasswordGate
from nmail.directory.passwords import PasswordHashing
from nmail.directory.throttle import LoginThrottle
from nmail.directory.throttle_store import SqlRecords
from nmail.mailstore.commit_hook import CommitHook
from nmail.mailstore.feed import AsyncFeed
from nmail.mailstore.feed_wire import feed_address
from nmail.mailstore.index_client import IndexClient, LoopRemoteIndex, RemoteIndex
from nmail.mailstore.search_follower import SearchFollower
from nmail.mailstore.search_indexer import SearchIndexer
from nmail.mailstore.store import MailStore
from nmail.servers.delays import Sleep
from nmail.servers.limits import SharedRow
from nmail.startup import Bound, bind_socket
from nmail.web.context import WebContext
from nmail.web.endpoints import ClientEndpoints, endpoints_for

log = logging.getLogger(__name__)


class _Notifying:
    """The outbound queue, calling `notify` after every message it accepts."""

    def __init__(self, queue: Any, notify: Callable[[], None]) -> None:
        self._queue = queue
        self._notify = notify

    def enqueue(self, *args: Any, **kwargs: Any) -> str:
        queue_id: str = self._queue.enqueue(*args, **kwargs)
        self._notify()
        return queue_id

    def check_envelope(self, *args: Any, **kwargs: Any) -> Any:
        return self._queue.check_envelope(*args, **kwargs)


def _index_client(address: str) -> IndexClient:
    """The connection to the index writer process: on the event loop if one runs here."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return RemoteIndex(address)
    return LoopRemoteIndex(address, loop)


class Runtime:
    """Everything one nmail process runs, wired together."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Callable[[], float] = time.time,
        passwords: PasswordHashing | None = None,
        throttle: LoginThrottle | None = None,
        migrate: bool = True,
        on_queued: Callable[[], None] | None = None,
        index_writer: str | None = None,
        connection_counts: Mapping[str, SharedRow] | None = None,
        on_commit: CommitHook | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """`migrate=False`: the schema is known to be current (a worker process).

        `on_queued` is called after each message queued for remote delivery:
        a worker process that runs no queue scheduler uses it to wake the one
        that does. `index_writer`: the socket address of the process that
        commits deliveries (mailstore.index_service), for worker processes.
        `connection_counts`: per listener, this worker's row of the connection
        counts all workers share (servers.limits.SharedCounts). `on_commit`:
        where this process's own index commits are reported (the change feed's
        hub when the index writer is here; see cli/serve_cmd). `sleep`: how the
        listeners wait a reply they hold back (a failed login's; tests hold it).
        """
        self.config = config
        self._index_address = index_writer
        self.connection_counts: Mapping[str, SharedRow] = dict(connection_counts or {})
        self.clock = clock
        self.sleep = sleep
        for path in (config.mail_dir, config.queue_dir, config.logs_dir):
            path.mkdir(parents=True, exist_ok=True)
        self.engine = make_engine(config.database_url)
        if migrate:
            upgrade(self.engine)
        self.directory = Directory(self.engine, clock, passwords)
        self.store = MailStore(
            self.engine,
            config.mail_dir,
            config.hostname,
            clock=clock,
            index_client=_index_client(index_writer) if index_writer else None,
            on_commit=on_commit,
        )
        self.delivery_log = DeliveryLog(config.logs_dir, clock)
        # In SQL: every worker process and node counts the same failures.
        self.throttle = (
            throttle
            if throttle is not None
            else LoginThrottle(clock=clock, records=SqlRecords(self.engine))
        )
        # The process's one gate on password checks (64 MiB of Argon2 each):
        # every login service of this process shares it (directory/login_gate.py).
        sizes = config.login
        self.login_gate = PasswordGate(sizes.concurrent_checks, sizes.waiting_checks,
                                       max_wait=sizes.wait_seconds)
        # The one login service of every door (SMTP AUTH, POP3, IMAP, webmail).
        self.login = LoginService(self.directory, self.throttle, gate=self.login_gate)
        # The one account service (accounts with their mailboxes) of every door.
        self.accounts = AccountService(
            self.directory, StoreMailboxes(self.store), config.mail_dir,
            login=self.login, clock=clock,
        )
        self.certificates = self._load_certificates()
        self.srs = SrsRewriter(load_secret(config.data_dir), config.srs_domain)
        self.queue = self._make_queue()
        queue = self.queue
        if queue is not None and on_queued is not None:
            queue = _Notifying(queue, on_queued)
        self.intake = Intake(
            self.directory,
            self.store,
            queue,
            config.smtp,
            config.hostname,
            self.delivery_log,
            clock=clock,
            srs=self.srs,
        )
        self.executor = ThreadPoolExecutor(max_workers=32, thread_name_prefix="nmail")
        # The change feed of this node (mailstore/feed.py): IMAP IDLE and the
        # webmail subscribe here; the hub is where commits happen (serve_cmd).
        self.feed_address = feed_address(config.data_dir)
        self.feed = AsyncFeed(self.feed_address)
        self._search_follower: SearchFollower | None = None
        self._servers: list[Any] = []
        self._bound: list[Bound] = []
        self._queue_task: asyncio.Task[None] | None = None

    # -- construction helpers ------------------------------------------------

    def _load_certificates(self) -> Certificates:
        tls = self.config.tls
        if tls.cert and tls.key and tls.cert.exists() and tls.key.exists():
            return Certificates(tls.cert, tls.key)
        if tls.cert or tls.key:
            log.warning("TLS certificate files missing; STARTTLS and implicit TLS disabled")
        return Certificates(None, None)

    def _make_queue(self) -> Any:
        try:
            from nmail.queue.outbound import OutboundQueue
        except ImportError:
            return None
        from nmail.queue.dkim import DkimKeys

        return OutboundQueue(
            self.engine,
            self.config.queue_dir,
            self.config,
            clock=self.clock,
            local_bounce=self.deliver_bounce,
            is_local_domain=self.directory.is_hosted,
            dkim=DkimKeys(self.engine),
            return_path=self._notice_address,
        )

    def _notice_address(self, sender: str) -> str:
        """Where a notice about mail from `sender` goes: SRS senders of ours reversed."""
        local, _, domain = sender.rpartition("@")
        if is_srs(local) and (
            domain.lower() == self.srs.domain or self.directory.is_hosted(domain)
        ):
            try:
                return self.srs.reverse(local, self.clock())
            except SrsError as exc:
                log.warning("notice for <%s> not reversed: %s", sender, exc)
        return sender

    def deliver_bounce(self, content: bytes, recipient: str) -> None:
        """Put a DSN into a local sender's mailbox through the one way in."""
        from nmail.delivery.envelope import ClientInfo, Envelope

        resolution = self.directory.resolve(recipient)
        if not resolution.accounts:
            log.warning("bounce for %s dropped: not a local mailbox", recipient)
            return
        envelope = Envelope(
            sender="",
            recipients=(resolution,),
            client=ClientInfo(ip="127.0.0.1", helo=self.config.hostname, protocol="LOCAL"),
        )
        decision = self.intake.accept(envelope, content)
        if not decision.accepted:
            raise RuntimeError(f"bounce to {recipient} not stored: {decision.text}")

    # -- lifecycle -------------------------------------------------------------

    def repair(self) -> str:
        """Index what was delivered but not indexed (a crash between file and row)."""
        report = self.store.repair(unless_clean=True)
        return report.said()

    def reload_certificates(self) -> None:
        try:
            self.certificates.reload()
            log.info("TLS certificates reloaded")
        except CertificateError as exc:
            log.error("TLS reload failed, keeping the old certificate: %s", exc)

    def client_endpoints(self) -> ClientEndpoints:
        return endpoints_for(self.config.hostname, {b.name: b.port for b in self._bound})

    async def start(self, listeners: list[Listen]) -> list[Bound]:
        """Bind and start `listeners`, and the queue scheduler."""
        sockets: list[tuple[str, socket.socket]] = []
        for listen in listeners:
            if listen.name not in IMPLEMENTED_LISTENERS:
                log.warning("%s listener is not implemented yet; skipped", listen.name)
                continue
            sockets.append((listen.name, bind_socket(listen.host, listen.port)))
        return await self.start_on(sockets)

    async def start_on(
        self, sockets: list[tuple[str, socket.socket]], *, run_queue: bool = True
    ) -> list[Bound]:
        """Start listeners on sockets bound already (by `nmail serve`'s supervisor)."""
        loop = asyncio.get_running_loop()
        loop.set_default_executor(self.executor)
        for name, sock in sockets:
            host, port = sock.getsockname()[:2]
            server = await self._start_listener(name, sock)
            self._servers.append(server)
            self._bound.append(Bound(name, host, port))
        if run_queue and self.queue is not None:
            self._queue_task = asyncio.create_task(self.queue.run())
        return list(self._bound)

    def start_search_indexer(self) -> None:
        """Keep the search index caught up on a thread of this process (one per node)."""
        if self._search_follower is None:
            self._search_follower = SearchFollower(
                SearchIndexer(self.engine, self.config.mail_dir), self.feed_address)

    def wake_queue(self) -> None:
        """Look at the outbound queue now (another process queued something)."""
        if self.queue is not None:
            self.queue.wake()

    async def _start_listener(self, name: str, sock: socket.socket) -> Any:
        if name in ("smtp", "submission", "submissions"):
            from nmail.servers.smtp import start_smtp_server

            return await start_smtp_server(self, name, sock)
        if name in ("pop3", "pop3s"):
            from nmail.servers.pop3 import start_pop3_server

            return await start_pop3_server(self, name, sock)
        return await self.start_web(sock)

    async def start_web(self, sock: socket.socket) -> Any:
        """Serve the web app on `sock` in this process (the web process, or a test's Runtime)."""
        from nmail.servers.http import WebServer
        from nmail.web.app import create_app

        web = WebServer(
            create_app(self.web_context()),
            sock,
            self.config.http,
            stop_timeout=self.config.stop_timeout,
        )
        await web.start()
        return web

    def web_context(self, index_address: str | None = None) -> WebContext:
        """The services the web app is built from (web/context.py)."""
        return WebContext(
            config=self.config,
            directory=self.directory,
            store=self.store,
            intake=self.intake,
            throttle=self.throttle,
            executor=self.executor,
            client_endpoints=self.client_endpoints,
            engine=self.engine,
            index_address=index_address or self._index_address,
            feed=self.feed,
            login_gate=self.login_gate,
        )

    def note_listeners(self, bound: list[Bound]) -> None:
        """Listeners other processes serve, for client_endpoints (the web process)."""
        self._bound.extend(bound)

    async def stop(self) -> None:
        """Graceful: stop accepting, let transactions finish (or 421), stop the queue.

        Each part gets `[server] stop_timeout`: the listeners say 421 to what is
        left by then, and a queue delivery still running is given up (its lease
        expires and the message goes out again later).
        """
        await asyncio.gather(*(s.stop() for s in self._servers), return_exceptions=True)
        self._servers.clear()
        if self.queue is not None and self._queue_task is not None:
            try:
                await asyncio.wait_for(self.queue.stop(), self.config.stop_timeout)
            except TimeoutError:
                log.warning("queue deliveries still running at the stop deadline: left")
                self._queue_task.cancel()
            await asyncio.gather(self._queue_task, return_exceptions=True)
            self._queue_task = None
        await self.feed.close()

    def close(self) -> None:
        if self._search_follower is not None:
            self._search_follower.close()
            self._search_follower = None
        self.executor.shutdown(wait=True)
        self.intake.close()
        self.store.close()
        self.delivery_log.close()
        self.engine.dispose()

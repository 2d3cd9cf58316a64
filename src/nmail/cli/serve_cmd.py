"""`nmail serve`: run every listener, the queue and the web app.

With one worker (`--workers 1`, or `[smtp] workers = 1`) and no http
listener everything runs in this process. Otherwise this process becomes a
supervisor (servers.smtp_workers): it migrates the schema and repairs the
index once, binds every listener, then forks the index writer, the workers
and the web process. Worker 0 runs every mail listener and the outbound
queue; the others run the port-25 listener only, on the same socket, so
inbound mail uses every core. The web app has a process of its own
(servers.web_process), so it never holds up SMTP or POP3. Things that must
exist once (the queue scheduler, POP3's maildrop locks) stay in worker 0;
the other workers and the web process wake worker 0's queue through a pipe
when they queue mail.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
from typing import TYPE_CHECKING, Any

from nmail.cli.context import CliContext, CliError
from nmail.cli.init_cmd import report
from nmail.cli.serve_log import configure_serve_logging, set_role
from nmail.config import Config, load_config
from nmail.config_listen import IMPLEMENTED_LISTENERS, Listen, listeners_from, parse_listen
from nmail.datadir import initialize, is_initialized
from nmail.permissions import PRIVATE_UMASK, tighten
from nmail.servers import heap
from nmail.servers.fd_limit import raise_open_file_limit

if TYPE_CHECKING:
    from nmail.servers.limits import SharedRow

# Listeners every worker serves; the rest only in worker 0, but for the web's.
SHARED_LISTENERS = ("smtp",)
WEB_LISTENER = "http"

log = logging.getLogger("nmail.serve")


def register(commands: Any) -> None:
    p = commands.add_parser("serve", help="run the mail server (initializes DIR on first use)")
    p.add_argument(
        "--listen",
        metavar="NAME=HOST:PORT",
        action="append",
        default=[],
        help="override a listener (smtp, submission, submissions, pop3, pop3s, imap, imaps,"
        " http), or NAME=off to not start it; repeatable",
    )
    p.add_argument("--hostname", metavar="FQDN", help="hostname to use if DIR is initialized now")
    p.add_argument(
        "--workers",
        metavar="N",
        help="processes serving port 25 (default: [smtp] workers, else one per CPU, at most 4)",
    )
    p.set_defaults(handler=run)


# Past this many the default stops growing: each worker is a whole Python
# process (about 60 MB), and four already receive far more mail than most
# sites get; `--workers` or `[smtp] workers` asks for more.
DEFAULT_MAX_WORKERS = 4


def default_workers() -> int:
    """One worker per CPU, at most DEFAULT_MAX_WORKERS."""
    return max(1, min(os.cpu_count() or 1, DEFAULT_MAX_WORKERS))


def worker_count(option: str | None, config: Config) -> int:
    """--workers, else [smtp] workers, else the number of CPUs; CliError if not >= 1."""
    if option is not None:
        value: Any = option
        where = "--workers"
    else:
        smtp = config.raw.get("smtp", {})
        value = smtp.get("workers") if isinstance(smtp, dict) else None
        where = "[smtp] workers"
        if value is None:
            return default_workers()
    try:
        count = int(value)
    except (TypeError, ValueError):
        raise CliError(f"{where}: expected a number of processes, got {value!r}") from None
    if not 1 <= count <= 256:
        raise CliError(f"{where}: expected 1 to 256 processes, got {count}")
    return count


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    configure_serve_logging()  # first: every later line, in every process, goes through it
    raise_open_file_limit()  # before any fork: every process inherits it
    # Everything the server creates is the owner's alone (mail, queue, logs, index).
    os.umask(PRIVATE_UMASK)
    overrides = [parse_listen(spec) for spec in args.listen]
    if not is_initialized(ctx.data_dir):
        report(ctx, initialize(ctx.data_dir, hostname=args.hostname))
    config = load_config(ctx.data_dir)
    _tighten_install(config)
    workers = worker_count(args.workers, config)
    listeners = listeners_from(config, overrides)
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        pass
    names = {listen.name for listen in listeners}
    if (workers > 1 and names & set(SHARED_LISTENERS)) or WEB_LISTENER in names:
        return _supervise(ctx, config, listeners, workers)
    return asyncio.run(_serve(ctx, config, listeners))


def _tighten_install(config: Config) -> None:
    """An install made by an older nmail (0644 files in 0755 directories) is closed now."""
    changed, failed = tighten(config.data_dir, config)
    for item in changed:
        log.warning("permissions tightened: %s", item.tightened())
    for line in failed:
        log.warning("permissions NOT tightened: %s", line)


async def _serve(ctx: CliContext, config: Config, listeners: list[Listen]) -> int:
    from nmail.mailstore.feed_node import open_hub
    from nmail.runtime import Runtime

    # Commits happen in this process: the change feed's hub is here too.
    hub = open_hub(config.data_dir, config.database_url)
    try:
        runtime = Runtime(config, on_commit=hub.publish if hub is not None else None)
    except BaseException:
        if hub is not None:
            hub.close()
        raise
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, runtime.reload_certificates)
    try:
        repaired = await loop.run_in_executor(None, runtime.repair)
        if repaired:
            ctx.out.print(f"index repair: {repaired}")
        try:
            bound = await runtime.start(listeners)
        except OSError as exc:
            raise CliError(str(exc.strerror or exc)) from None
        runtime.start_search_indexer()
        _banner(ctx, config, [(b.name, b.host, b.port) for b in bound])
        heap.settle()
        await stop.wait()
        ctx.out.print("stopping: finishing transactions in progress")
    finally:
        await runtime.stop()
        runtime.close()
        if hub is not None:
            hub.close()
    return 0


def _banner(ctx: CliContext, config: Config, bound: list[tuple[str, str, int]]) -> None:
    where = ", ".join(f"{name} {host}:{port}" for name, host, port in bound)
    ctx.out.print(f"nmail {config.hostname} listening: {where}", soft_wrap=True)


# -- several workers --------------------------------------------------------------


def _supervise(ctx: CliContext, config: Config, listeners: list[Listen], count: int) -> int:
    from nmail.mailstore.index_service import listen_socket
    from nmail.servers.limits import SharedCounts
    from nmail.servers.search_process import serve_search
    from nmail.servers.smtp_workers import WorkerPool, WorkerStartError
    from nmail.servers.web_process import serve_web
    from nmail.startup import Bound, bind_socket, prepare_data

    repaired = prepare_data(config)
    if repaired:
        ctx.out.print(f"index repair: {repaired}")
    sockets: list[tuple[str, socket.socket]] = []
    wake_read, wake_write = os.pipe()
    index_address = f"\0nmail-index-{os.getpid()}-{secrets.token_hex(8)}"
    index_listener = listen_socket(index_address)
    # The connection limits of a listener every worker serves count all of them.
    counts = {name: SharedCounts(count) for name in SHARED_LISTENERS}
    try:
        for listen in listeners:
            if listen.name in IMPLEMENTED_LISTENERS:
                try:
                    sockets.append((listen.name, bind_socket(listen.host, listen.port)))
                except OSError as exc:
                    raise CliError(str(exc.strerror or exc)) from None
        os.set_blocking(wake_write, False)

        web_socket = next((s for n, s in sockets if n == WEB_LISTENER), None)
        bound = [Bound(n, *s.getsockname()[:2]) for n, s in sockets]

        def work(worker: Any) -> int:
            set_role(f"worker-{worker.index}")
            primary = worker.index == 0
            mine = [
                (n, s)
                for n, s in sockets
                if n != WEB_LISTENER and (primary or n in SHARED_LISTENERS)
            ]
            for name, sock in sockets:
                if (name, sock) not in mine:
                    sock.close()
            index_listener.close()
            os.close(wake_write if primary else wake_read)
            pipe = wake_read if primary else wake_write
            rows = {name: shared.row(worker.index) for name, shared in counts.items()}
            return asyncio.run(
                _serve_worker(config, worker, mine, primary, pipe, index_address, rows)
            )

        def index_writer(worker: Any) -> int:
            set_role("index")
            # Stopped by the supervisor after the workers, never by a terminal's ^C.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            for _, sock in sockets:
                sock.close()
            os.close(wake_read)
            os.close(wake_write)
            return _serve_index_writer(config, worker, index_listener)

        def web(worker: Any) -> int:
            set_role("web")
            assert web_socket is not None
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor stops it
            for _, sock in sockets:
                if sock is not web_socket:
                    sock.close()
            index_listener.close()
            os.close(wake_read)
            os.set_blocking(wake_write, False)
            return serve_web(
                config,
                worker,
                web_socket,
                index_address=index_address,
                wake_fd=wake_write,
                listeners=bound,
            )

        def search(worker: Any) -> int:
            set_role("search")
            for _, sock in sockets:
                sock.close()
            index_listener.close()
            os.close(wake_read)
            os.close(wake_write)
            return serve_search(config, worker)

        pool = WorkerPool(
            count,
            work,
            service=index_writer,
            companions=[search, web] if web_socket is not None else [search],
            stop_timeout=config.stop_timeout + 5,
        )
        try:
            pool.start()
        except WorkerStartError as exc:
            raise CliError(str(exc)) from None
        _banner(ctx, config, [(name, *sock.getsockname()[:2]) for name, sock in sockets])
        pool.run(lambda: ctx.out.print("stopping: finishing transactions in progress"))
        pool.close()
    finally:
        for _, sock in sockets:
            sock.close()
        index_listener.close()
        os.close(wake_read)
        os.close(wake_write)
    return 0


def _serve_index_writer(config: Config, worker: Any, listener: socket.socket) -> int:
    """The process that commits every worker's deliveries to the index."""
    from nmail.db.engine import make_engine
    from nmail.mailstore.clean_stop import WriterMark
    from nmail.mailstore.feed_node import open_hub
    from nmail.mailstore.index_service import serve_index_writer

    engine = make_engine(config.database_url)
    # The change feed's hub lives where the commits happen (mailstore/feed_hub.py).
    hub = open_hub(config.data_dir, config.database_url)
    mark = WriterMark(config.mail_dir)  # before its first write (clean_stop)
    stopped = False
    try:
        worker.ready()
        heap.settle()
        serve_index_writer(engine, listener,
                           on_commit=hub.publish if hub is not None else None,
                           on_failure=mark.taint)
        stopped = True
    finally:
        mark.stop(clean=stopped)
        if hub is not None:
            hub.close()
        engine.dispose()
    return 0


async def _serve_worker(
    config: Config,
    worker: Any,
    sockets: list[tuple[str, socket.socket]],
    primary: bool,
    pipe: int,
    index_address: str,
    connection_counts: dict[str, SharedRow],
) -> int:
    """One worker: its listeners until SIGTERM; worker 0 also runs the queue."""
    from nmail.runtime import Runtime

    def poke_queue() -> None:
        with contextlib.suppress(BlockingIOError):  # full: a wake-up is pending anyway
            os.write(pipe, b"\0")

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        runtime = Runtime(
            config,
            migrate=False,
            on_queued=None if primary else poke_queue,
            index_writer=index_address,
            connection_counts=connection_counts,
        )
    except Exception as exc:
        worker.failed(f"worker {worker.index}: {exc}")
        return 1
    loop.add_signal_handler(signal.SIGHUP, runtime.reload_certificates)
    try:
        try:
            await runtime.start_on(sockets, run_queue=primary)
        except Exception as exc:
            worker.failed(f"worker {worker.index}: {exc}")
            return 1
        if primary:
            os.set_blocking(pipe, False)

            def woken() -> None:
                try:
                    if not os.read(pipe, 4096):
                        # End of file: every writer is gone, the supervisor too
                        # (it holds one end until it exits). Stop, never spin.
                        loop.remove_reader(pipe)
                        stop.set()
                        return
                except BlockingIOError:
                    return
                runtime.wake_queue()

            loop.add_reader(pipe, woken)
        worker.ready()
        heap.settle()
        await stop.wait()
    finally:
        await runtime.stop()
        runtime.close()
    return 0

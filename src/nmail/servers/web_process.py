"""The web process: the web app in a process of its own, forked by the supervisor.

Rendering a large message, sanitising HTML or building a ZIP is CPU work
in Python; in worker 0 it held up SMTP and POP3 sessions for as long, and
the web's idle connections used worker 0's file descriptors (issue 9 item
6, issue 11). So `nmail serve` forks the web app into its own process
whenever the http listener is on: its own event loop, its own descriptors
(the soft limit raised to the hard one) and its own limits (servers/http.py).
The supervisor restarts it when it dies, like any worker.

It is built like a worker: a Runtime without migration whose store commits
through the index writer process and whose queued mail wakes worker 0's
queue through the wake-up pipe. The app gets the Runtime's services as a
WebContext (web/context.py) and runs no queue, no mail listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from typing import Any

from nmail.config import Config
from nmail.servers import heap
from nmail.servers.fd_limit import raise_open_file_limit
from nmail.startup import Bound


def serve_web(
    config: Config,
    worker: Any,
    sock: socket.socket,
    *,
    index_address: str,
    wake_fd: int,
    listeners: list[Bound],
) -> int:
    """Run the web app on `sock` until SIGTERM; `listeners`: every listener of this
    `nmail serve` (for the client settings the app shows)."""
    raise_open_file_limit()
    # Stopped by the supervisor, never by a terminal's ^C alone.
    return asyncio.run(_serve(config, worker, sock, index_address, wake_fd, listeners))


async def _serve(
    config: Config,
    worker: Any,
    sock: socket.socket,
    index_address: str,
    wake_fd: int,
    listeners: list[Bound],
) -> int:
    from nmail.runtime import Runtime

    def poke_queue() -> None:
        # Full: a wake-up is pending anyway; broken: worker 0 is being replaced.
        with contextlib.suppress(BlockingIOError, BrokenPipeError):
            os.write(wake_fd, b"\0")

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: None)  # no TLS here (yet): nothing to reload
    try:
        runtime = Runtime(config, migrate=False, on_queued=poke_queue, index_writer=index_address)
    except Exception as exc:
        worker.failed(f"web process: {exc}")
        return 1
    loop.set_default_executor(runtime.executor)
    runtime.note_listeners(listeners)
    web: Any = None
    try:
        try:
            web = await runtime.start_web(sock)
        except Exception as exc:
            worker.failed(f"web process: {exc}")
            return 1
        worker.ready()
        heap.freeze_startup()
        await stop.wait()
    finally:
        if web is not None:
            await web.stop()
        await runtime.stop()  # no listeners or queue here: closes the feed link
        runtime.close()
    return 0

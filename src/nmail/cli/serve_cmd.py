"""`nmail serve`: run every listener, the queue and the web app in one process."""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

from nmail.cli.context import CliContext, CliError
from nmail.cli.init_cmd import report
from nmail.config import Listen, listeners_from, load_config, parse_listen
from nmail.datadir import initialize, is_initialized


def register(commands: Any) -> None:
    p = commands.add_parser("serve", help="run the mail server (initializes DIR on first use)")
    p.add_argument(
        "--listen",
        metavar="NAME=HOST:PORT",
        action="append",
        default=[],
        help="override a listener (smtp, submission, submissions, pop3, pop3s, imap, imaps,"
        " http); repeatable",
    )
    p.add_argument("--hostname", metavar="FQDN", help="hostname to use if DIR is initialized now")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    overrides = [parse_listen(spec) for spec in args.listen]
    if not is_initialized(ctx.data_dir):
        report(ctx, initialize(ctx.data_dir, hostname=args.hostname))
    config = load_config(ctx.data_dir)
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        pass
    return asyncio.run(_serve(ctx, config, listeners_from(config, overrides)))


async def _serve(ctx: CliContext, config: Any, listeners: list[Listen]) -> int:
    from nmail.runtime import Runtime

    runtime = Runtime(config)
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
        where = ", ".join(f"{b.name} {b.host}:{b.port}" for b in bound)
        ctx.out.print(f"nmail {config.hostname} listening: {where}", soft_wrap=True)
        await stop.wait()
        ctx.out.print("stopping: finishing transactions in progress")
    finally:
        await runtime.stop()
        runtime.close()
    return 0

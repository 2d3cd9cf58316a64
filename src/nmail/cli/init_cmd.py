"""`nmail init`: create a data directory."""

from __future__ import annotations

import argparse
import os
from typing import Any

from nmail.cli.context import CliContext
from nmail.datadir import InitResult, initialize
from nmail.permissions import PRIVATE_UMASK


def register(commands: Any) -> None:
    p = commands.add_parser("init", help="create the data directory, index and postmaster account")
    p.add_argument(
        "--hostname", metavar="FQDN", help="this server's name (default: the machine's FQDN)"
    )
    p.add_argument(
        "--postmaster-password",
        metavar="P",
        help="password for postmaster@<domain> (default: generated and printed once)",
    )
    p.add_argument("--database-url", metavar="URL", help="SQLAlchemy URL (default: SQLite in DIR)")
    p.set_defaults(handler=run)


def report(ctx: CliContext, result: InitResult) -> None:
    ctx.out.print(f"initialized {result.data_dir} for {result.hostname}")
    ctx.out.print(f"server administrator: {result.postmaster}")
    if result.password_generated:
        ctx.out.print(f"postmaster password (shown once, store it now): {result.password}")


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    # Files 0600, directories 0700: the index holds hashes and DKIM keys.
    previous = os.umask(PRIVATE_UMASK)
    try:
        result = initialize(
            ctx.data_dir,
            hostname=args.hostname,
            password=args.postmaster_password,
            database_url=args.database_url,
        )
    finally:
        os.umask(previous)
    report(ctx, result)
    return 0

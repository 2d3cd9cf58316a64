"""`nmail lockout ...`: see and lift login lockouts (failed-password throttling)."""

from __future__ import annotations

import argparse
import ipaddress
import time
from typing import Any

from nmail.cli.context import CliContext, CliError
from nmail.cli.directory_access import new_table, text
from nmail.directory import Directory
from nmail.directory.throttle import account_key, ip_key
from nmail.directory.throttle_store import SqlRecords


def register(commands: Any) -> None:
    p = commands.add_parser("lockout", help="failed logins: list, or lift a lockout")
    sub = p.add_subparsers(dest="lockout_command", metavar="ACTION", required=True)

    lst = sub.add_parser("list", help="addresses and accounts with recent failed logins")
    lst.set_defaults(handler=list_cmd)

    clear = sub.add_parser("clear", help="forget the failures of an ADDRESS or IP (or --all)")
    clear.add_argument("who", metavar="ADDRESS|IP", nargs="?")
    clear.add_argument("--all", action="store_true", help="forget every record")
    clear.set_defaults(handler=clear_cmd)


def list_cmd(args: argparse.Namespace, ctx: CliContext) -> int:
    entries = SqlRecords(ctx.engine).entries()
    if not entries:
        ctx.out.print("(no failed logins on record)")
        return 0
    now = time.time()
    table = new_table("Who", "Failures", "Last failure", "Locked")
    for key, failures, last, locked_until in entries:
        kind, _, who = key.partition(":")
        locked = f"{int(locked_until - now) // 60 + 1} min more" if locked_until > now else "no"
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last))
        table.add_row(text(f"{who} ({kind})"), str(failures), when, locked)
    ctx.out.print(table)
    return 0


def clear_cmd(args: argparse.Namespace, ctx: CliContext) -> int:
    records = SqlRecords(ctx.engine)
    if args.all == (args.who is not None):
        raise CliError("give an ADDRESS or IP, or --all")
    if args.all:
        ctx.out.print(f"cleared {records.clear()} record(s)")
        return 0
    who = args.who.strip()
    try:
        ipaddress.ip_address(who)
        key = ip_key(who)
    except ValueError:
        if "@" not in who and who.count(".") == 0:
            raise CliError(f"{who!r}: expected an address like user@example.com or an IP") from None
        # Failures are counted under the account's one canonical spelling.
        key = account_key(Directory(ctx.engine).login_name(who))
    if not records.clear(key):
        raise CliError(f"no failed logins on record for {who}")
    ctx.out.print(f"cleared the failed logins of {who}", markup=False)
    return 0

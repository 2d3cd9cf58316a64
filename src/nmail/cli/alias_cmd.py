"""`nmail alias ...`: forwarding addresses in hosted domains."""

from __future__ import annotations

import argparse
from typing import Any

from nmail.cli.context import CliContext
from nmail.cli.directory_access import new_table, open_directory, refusals, text


def register(commands: Any) -> None:
    p = commands.add_parser("alias", help="aliases: an address that forwards to others")
    sub = p.add_subparsers(dest="alias_command", metavar="ACTION", required=True)

    add = sub.add_parser(
        "add",
        help="make ADDRESS deliver to TARGET(s) (added to existing targets)",
        description="TARGET is a full address (local or external), or a user of"
        " ADDRESS's domain.",
    )
    add.add_argument("address", metavar="ADDRESS")
    add.add_argument("targets", metavar="TARGET", nargs="+")
    add.set_defaults(handler=add_cmd)

    rm = sub.add_parser("del", help="delete an alias, or one of its targets")
    rm.add_argument("address", metavar="ADDRESS")
    rm.add_argument("target", metavar="TARGET", nargs="?")
    rm.set_defaults(handler=del_cmd)

    lst = sub.add_parser("list", help="list aliases, of one domain or all")
    lst.add_argument("domain", metavar="DOMAIN", nargs="?")
    lst.set_defaults(handler=list_cmd)


def add_cmd(args: argparse.Namespace, ctx: CliContext) -> int:
    with refusals():
        alias = open_directory(ctx).add_alias(args.address, args.targets)
    ctx.out.print(f"{alias.address} -> {', '.join(alias.targets)}", markup=False)
    return 0


def del_cmd(args: argparse.Namespace, ctx: CliContext) -> int:
    with refusals():
        directory = open_directory(ctx)
        directory.delete_alias(args.address, args.target)
        remaining = directory.get_alias(args.address)
    if remaining is None:
        ctx.out.print(f"deleted alias {args.address}", markup=False)
    else:
        ctx.out.print(f"{remaining.address} -> {', '.join(remaining.targets)}", markup=False)
    return 0


def list_cmd(args: argparse.Namespace, ctx: CliContext) -> int:
    with refusals():
        aliases = open_directory(ctx).list_aliases(args.domain)
    if not aliases:
        ctx.out.print("(no aliases)")
        return 0
    table = new_table("Alias", "Targets")
    for alias in aliases:
        table.add_row(text(alias.address), text("\n".join(alias.targets)))
    ctx.out.print(table)
    return 0

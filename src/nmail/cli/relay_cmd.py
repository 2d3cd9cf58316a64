"""`nmail relay ...`: networks allowed to relay without authenticating."""

from __future__ import annotations

import argparse
from typing import Any

from nmail.cli.context import CliContext
from nmail.cli.directory_access import new_table, open_directory, refusals, text
from nmail.directory.relay import parse_network


def register(commands: Any) -> None:
    p = commands.add_parser("relay", help="networks allowed to send anywhere without AUTH")
    sub = p.add_subparsers(dest="relay_command", metavar="ACTION", required=True)

    add = sub.add_parser("add", help="trust a network (CIDR like 192.168.0.0/16, or one IP)")
    add.add_argument("cidr", metavar="CIDR")
    add.set_defaults(handler=add_cmd)

    rm = sub.add_parser("del", help="stop trusting a network")
    rm.add_argument("cidr", metavar="CIDR")
    rm.set_defaults(handler=del_cmd)

    lst = sub.add_parser("list", help="list trusted networks")
    lst.set_defaults(handler=list_cmd)


def add_cmd(args: argparse.Namespace, ctx: CliContext) -> int:
    with refusals():
        network = open_directory(ctx).add_relay_network(args.cidr)
    ctx.out.print(f"added relay network {network}", markup=False)
    return 0


def del_cmd(args: argparse.Namespace, ctx: CliContext) -> int:
    with refusals():
        open_directory(ctx).delete_relay_network(args.cidr)
        network = parse_network(args.cidr)
    ctx.out.print(f"deleted relay network {network}", markup=False)
    return 0


def list_cmd(args: argparse.Namespace, ctx: CliContext) -> int:
    networks = open_directory(ctx).relay_networks()
    if not networks:
        # The policy always lets loopback relay; an empty list means only that.
        ctx.out.print("(none: loopback only)")
        return 0
    table = new_table("Network")
    for network in networks:
        table.add_row(text(network))
    ctx.out.print(table)
    return 0

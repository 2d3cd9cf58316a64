"""`nmail user sendas add|del|list`: addresses an account may send as (From:, MAIL FROM).

Besides its own address and its aliases, an authenticated user may send
only as what the admin grants here: a shared address, or @domain for a
whole domain. Submission refuses any other From:/Sender: with 550 5.7.1,
and only accepted mail is DKIM-signed.
"""

from __future__ import annotations

import argparse
from typing import Any

from nmail.cli.context import CliContext
from nmail.cli.directory_access import open_directory, refusals


def register(user_actions: Any) -> None:
    """Add `sendas` to the `nmail user` actions."""
    p = user_actions.add_parser("sendas", help="addresses an account may send as")
    sub = p.add_subparsers(dest="sendas_command", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="let ACCOUNT send as ADDRESS (or @DOMAIN)")
    add.add_argument("account", metavar="ACCOUNT")
    add.add_argument("address", metavar="ADDRESS")
    add.set_defaults(handler=add_cmd)
    rm = sub.add_parser("del", help="withdraw a send-as grant")
    rm.add_argument("account", metavar="ACCOUNT")
    rm.add_argument("address", metavar="ADDRESS")
    rm.set_defaults(handler=del_cmd)
    lst = sub.add_parser("list", help="the send-as grants of ACCOUNT")
    lst.add_argument("account", metavar="ACCOUNT")
    lst.set_defaults(handler=list_cmd)


def add_cmd(args: argparse.Namespace, ctx: CliContext) -> int:
    with refusals():
        grant = open_directory(ctx).add_send_as(args.account, args.address)
    ctx.out.print(f"{args.account} may send as {grant}", markup=False)
    return 0


def del_cmd(args: argparse.Namespace, ctx: CliContext) -> int:
    with refusals():
        open_directory(ctx).delete_send_as(args.account, args.address)
    ctx.out.print(f"{args.account} may no longer send as {args.address}", markup=False)
    return 0


def list_cmd(args: argparse.Namespace, ctx: CliContext) -> int:
    with refusals():
        grants = open_directory(ctx).list_send_as(args.account)
    for grant in grants:
        ctx.out.print(grant, markup=False)
    return 0

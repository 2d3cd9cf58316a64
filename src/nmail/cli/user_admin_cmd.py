"""`nmail user admin ADDRESS --server|--domain|--none`: grant or revoke administration.

Three roles, as `nmail user list` shows them: a server administrator (the
postmaster: every domain, the host's postmaster mail; `nmail init` makes
the first one), a domain administrator (`user add ... ADMIN`: its domain,
and its domain's postmaster mail when no address there takes it), or
neither. A server administrator is a domain administrator of its own domain
too, as `init` makes it. The last server administrator cannot be demoted:
make another one first.
"""

from __future__ import annotations

import argparse
from typing import Any

from nmail.cli.context import CliContext
from nmail.cli.directory_access import open_accounts, refusals
from nmail.directory import Account

# Flag -> (is_admin, is_server_admin), and its help.
ROLES = {"server": (True, True), "domain": (True, False), "none": (False, False)}
HELP = {
    "server": "make it a server administrator",
    "domain": "make it an administrator of its domain only",
    "none": "make it no administrator",
}


def register(user_actions: Any) -> None:
    """Add `admin` to the `nmail user` actions."""
    p = user_actions.add_parser(
        "admin",
        help="make an account a server or domain administrator, or neither",
        description="Set the administrator role of ADDRESS: --server (every domain and the"
        " host's postmaster mail), --domain (its own domain) or --none. The last server"
        " administrator keeps the role until another account has it.",
    )
    p.add_argument("address", metavar="ADDRESS")
    role = p.add_mutually_exclusive_group(required=True)
    for name in ROLES:
        role.add_argument(f"--{name}", dest="role", action="store_const", const=name,
                          help=HELP[name])
    p.set_defaults(handler=admin_cmd)


def role_of(account: Account) -> str:
    """The role as `user list` and `user admin` print it ("" for none)."""
    if account.is_server_admin:
        return "server admin"
    return "domain admin" if account.is_admin else ""


def admin_cmd(args: argparse.Namespace, ctx: CliContext) -> int:
    admin, server_admin = ROLES[args.role]
    with refusals(), open_accounts(ctx) as accounts:
        account = accounts.set_roles(args.address, admin=admin, server_admin=server_admin)
    ctx.out.print(f"role of {account.address}: {role_of(account) or 'none'}", markup=False)
    return 0

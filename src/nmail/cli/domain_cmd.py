"""`nmail domain ...`: hosted domains, domain aliases and catch-all (the seed's domain_add.php)."""

from __future__ import annotations

import argparse
import ipaddress
from typing import Any

from nmail.accounts.purge_area import PURGE_DIR
from nmail.cli.context import CliContext
from nmail.cli.directory_access import new_table, open_accounts, open_directory, refusals, text
from nmail.directory.names import display_domain, normalize_domain
from nmail.queue.dkim import DkimKeys, dns_records, public_record


def register(commands: Any) -> None:
    p = commands.add_parser("domain", help="hosted domains, domain aliases, catch-all")
    sub = p.add_subparsers(dest="domain_command", metavar="ACTION", required=True)

    add = sub.add_parser("add", help="host a domain (domain_add.php DOMAIN)")
    add.add_argument("domain", metavar="DOMAIN")
    add.set_defaults(handler=add_cmd)

    dns = sub.add_parser("dns", help="print the DNS records to publish (MX, SPF, DKIM, DMARC...)")
    dns.add_argument("domain", metavar="DOMAIN")
    dns.add_argument(
        "--ip", metavar="IP", help="this server's public address, for its A/AAAA record"
    )
    dns.set_defaults(handler=dns_cmd)

    lst = sub.add_parser("list", help="list hosted domains")
    lst.set_defaults(handler=list_cmd)

    rm = sub.add_parser("del", help="stop hosting a domain")
    rm.add_argument("domain", metavar="DOMAIN")
    rm.add_argument(
        "--force", action="store_true", help="also delete its accounts (mail files are kept)"
    )
    rm.set_defaults(handler=del_cmd)

    alias = sub.add_parser("alias", help="domain aliases: mail for ALIAS goes to REAL")
    alias_sub = alias.add_subparsers(dest="alias_command", metavar="ACTION", required=True)
    alias_add = alias_sub.add_parser("add", help="make ALIAS receive the mail of REAL")
    alias_add.add_argument("alias", metavar="ALIAS")
    alias_add.add_argument("real", metavar="REAL")
    alias_add.set_defaults(handler=alias_add_cmd)
    alias_del = alias_sub.add_parser("del", help="remove a domain alias")
    alias_del.add_argument("alias", metavar="ALIAS")
    alias_del.set_defaults(handler=alias_del_cmd)
    alias_list = alias_sub.add_parser("list", help="list domain aliases")
    alias_list.set_defaults(handler=alias_list_cmd)

    catchall = sub.add_parser(
        "catchall", help="where mail for unknown users of DOMAIN goes (or --clear)"
    )
    catchall.add_argument("domain", metavar="DOMAIN")
    catchall.add_argument(
        "target", metavar="TARGET", nargs="?", help="address, or a user of DOMAIN"
    )
    catchall.add_argument("--clear", action="store_true", help="refuse unknown users again")
    catchall.set_defaults(handler=catchall_cmd)


def _shown(domain: str) -> str:
    """'한국.kr (xn--3e0b707e.kr)' for international names, the name otherwise."""
    unicode_name = display_domain(domain)
    return domain if unicode_name == domain else f"{unicode_name} ({domain})"


def add_cmd(args: argparse.Namespace, ctx: CliContext) -> int:
    with refusals():
        domain = open_directory(ctx).add_domain(args.domain)
    # Every hosted domain signs its outgoing mail; the key is made now so
    # `nmail domain dns` can print the record to publish.
    DkimKeys(ctx.engine).ensure(domain.name, ctx.config.dkim_selector)
    ctx.out.print(f"added domain {_shown(domain.name)}", markup=False)
    ctx.out.print(
        f"DKIM key created (selector {ctx.config.dkim_selector}); "
        f"DNS records to publish: nmail domain dns {domain.name}",
        markup=False,
    )
    return 0


def zone_line(name: str, rtype: str, value: str) -> str:
    """One record in zone-file syntax; long TXT values split in 255-octet strings."""
    owner = name if name.endswith(".") else name + "."
    if rtype == "TXT":
        chunks = [value[i : i + 255] for i in range(0, len(value), 255)] or [""]
        value = " ".join(f'"{c}"' for c in chunks)
        if len(chunks) > 1:
            value = f"( {value} )"
    return f"{owner}\t3600\tIN\t{rtype}\t{value}"


def dns_cmd(args: argparse.Namespace, ctx: CliContext) -> int:
    with refusals():
        name = normalize_domain(args.domain)
        if open_directory(ctx).get_domain(name) is None:
            ctx.fail(f"{args.domain}: not a hosted domain")
        if args.ip:
            try:
                ipaddress.ip_address(args.ip)
            except ValueError:
                ctx.fail(f"--ip {args.ip!r}: not an IP address")
    selector = ctx.config.dkim_selector
    pem = DkimKeys(ctx.engine).ensure(name, selector)
    ctx.out.print(
        f"; DNS records for {_shown(name)} (mail server {ctx.config.hostname})", markup=False
    )
    for record in dns_records(name, ctx.config.hostname, selector, public_record(pem), args.ip):
        print(zone_line(*record), file=ctx.out.file)  # tabs kept: zone-file syntax
    return 0


def list_cmd(args: argparse.Namespace, ctx: CliContext) -> int:
    directory = open_directory(ctx)
    domains = directory.list_domains()
    if not domains:
        ctx.out.print("(no domains)")
        return 0
    counts = directory.account_counts()
    aliases: dict[str, list[str]] = {}
    for alias in directory.list_domain_aliases():
        aliases.setdefault(alias.domain, []).append(alias.name)
    table = new_table("Domain", "Accounts", "Catch-all", "Domain aliases")
    for domain in domains:
        table.add_row(
            text(_shown(domain.name)),
            text(counts.get(domain.name, 0)),
            text(domain.catchall or "-"),
            text(", ".join(aliases.get(domain.name, [])) or "-"),
        )
    ctx.out.print(table)
    return 0


def del_cmd(args: argparse.Namespace, ctx: CliContext) -> int:
    with refusals(), open_accounts(ctx) as accounts:
        deleted = accounts.delete_domain(args.domain, force=args.force)
    name = normalize_domain(args.domain)  # valid: the delete succeeded
    ctx.out.print(f"deleted domain {_shown(name)}", markup=False)
    if deleted:
        moved = sum(1 for d in deleted if d.mail_moved_to is not None)
        ctx.out.print(
            f"deleted {len(deleted)} account(s); the mail files of {moved} were moved to"
            f" {ctx.config.mail_dir / PURGE_DIR}",
            markup=False,
        )
    return 0


def alias_add_cmd(args: argparse.Namespace, ctx: CliContext) -> int:
    with refusals():
        alias = open_directory(ctx).add_domain_alias(args.alias, args.real)
    ctx.out.print(f"mail for {_shown(alias.name)} now goes to {alias.domain}", markup=False)
    return 0


def alias_del_cmd(args: argparse.Namespace, ctx: CliContext) -> int:
    with refusals():
        open_directory(ctx).delete_domain_alias(args.alias)
    ctx.out.print(f"deleted domain alias {_shown(normalize_domain(args.alias))}", markup=False)
    return 0


def alias_list_cmd(args: argparse.Namespace, ctx: CliContext) -> int:
    aliases = open_directory(ctx).list_domain_aliases()
    if not aliases:
        ctx.out.print("(no domain aliases)")
        return 0
    table = new_table("Alias", "Domain")
    for alias in aliases:
        table.add_row(text(_shown(alias.name)), text(alias.domain))
    ctx.out.print(table)
    return 0


def catchall_cmd(args: argparse.Namespace, ctx: CliContext) -> int:
    if args.clear == (args.target is not None):
        ctx.fail("give either a TARGET address or --clear")
    with refusals():
        directory = open_directory(ctx)
        if args.clear:
            domain = directory.clear_catchall(args.domain)
        else:
            domain = directory.set_catchall(args.domain, args.target)
    if domain.catchall is None:
        ctx.out.print(f"{domain.name}: mail for unknown users is refused", markup=False)
    else:
        ctx.out.print(
            f"{domain.name}: mail for unknown users goes to {domain.catchall}", markup=False
        )
    return 0

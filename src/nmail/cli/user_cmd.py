"""`nmail user ...`: accounts (the seed's mbr_add.php), and bulk import from CSV."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.text import Text

from nmail.accounts import NewAccount, purge_area
from nmail.cli import sendas_cmd, user_admin_cmd
from nmail.cli.context import CliContext
from nmail.cli.directory_access import (
    new_table,
    open_accounts,
    open_directory,
    open_store,
    read_password,
    refusals,
    text,
    yes_no,
)
from nmail.directory import DirectoryError
from nmail.directory.account_csv import HEADER_HINT, BadLine, decode_csv, read_accounts_csv
from nmail.directory.sizes import format_size, parse_size


def register(commands: Any) -> None:
    p = commands.add_parser("user", help="mail accounts")
    sub = p.add_subparsers(dest="user_command", metavar="ACTION", required=True)

    add = sub.add_parser(
        "add",
        help="add an account (mbr_add.php DOMAIN NAME USERID PASSWORD [ADMIN])",
        description="Add userid@DOMAIN. A fifth argument ADMIN makes a domain administrator."
        " PASSWORD - reads the password from standard input.",
    )
    add.add_argument("domain", metavar="DOMAIN")
    add.add_argument("name", metavar="NAME", help="display name")
    add.add_argument("userid", metavar="USERID")
    add.add_argument("password", metavar="PASSWORD")
    add.add_argument("admin", metavar="ADMIN", nargs="?", help="the word ADMIN, or nothing")
    add.add_argument("--quota", metavar="SIZE", default="0", help="e.g. 500M, 2G (0: unlimited)")
    add.set_defaults(handler=add_cmd)

    lst = sub.add_parser("list", help="list accounts, of one domain or all")
    lst.add_argument("domain", metavar="DOMAIN", nargs="?")
    lst.set_defaults(handler=list_cmd)

    rm = sub.add_parser(
        "del", help="delete an account (its mail files are moved to DIR/mail/.purge)"
    )
    rm.add_argument("address", metavar="ADDRESS")
    rm.add_argument("--purge", action="store_true", help="delete its mail files at once")
    rm.set_defaults(handler=del_cmd)

    purged = sub.add_parser(
        "purged",
        help="mail of deleted accounts waiting in DIR/mail/.purge; --delete-older-than DAYS",
    )
    purged.add_argument(
        "--delete-older-than", metavar="DAYS", type=_days, default=None,
        help="delete what was moved there more than DAYS days ago (0: everything)",
    )
    purged.set_defaults(handler=purged_cmd)

    passwd = sub.add_parser("passwd", help="set a password (- reads it from standard input)")
    passwd.add_argument("address", metavar="ADDRESS")
    passwd.add_argument("password", metavar="PASSWORD")
    passwd.set_defaults(handler=passwd_cmd)

    quota = sub.add_parser("quota", help="set the mailbox size limit")
    quota.add_argument("address", metavar="ADDRESS")
    quota.add_argument("size", metavar="SIZE", help="bytes, or 100M, 2G ...; 0 = unlimited")
    quota.set_defaults(handler=quota_cmd)

    for action, enabled in (("disable", False), ("enable", True)):
        toggle = sub.add_parser(
            action, help=f"{action} receiving and/or logins (both when neither flag is given)"
        )
        toggle.add_argument("address", metavar="ADDRESS")
        toggle.add_argument("--receive", action="store_true", help=f"{action} receiving mail")
        toggle.add_argument("--login", action="store_true", help=f"{action} logins")
        toggle.set_defaults(handler=toggle_cmd, enabled=enabled)

    imp = sub.add_parser(
        "import",
        help="add accounts from a CSV file",
        description=f"Add accounts from a CSV file with the header {HEADER_HINT}"
        " (UTF-8, UTF-16 or CP949/EUC-KR as Korean Excel saves it). Bad lines are"
        " reported and skipped; the exit status is 1 when any line failed.",
    )
    imp.add_argument("file", metavar="FILE.csv")
    imp.set_defaults(handler=import_cmd)

    user_admin_cmd.register(sub)
    sendas_cmd.register(sub)


def add_cmd(args: argparse.Namespace, ctx: CliContext) -> int:
    admin = False
    if args.admin is not None:
        if args.admin.upper() != "ADMIN":
            ctx.fail(
                f"fifth argument must be ADMIN (to make a domain administrator), not {args.admin!r}"
            )
        admin = True
    password = read_password(args.password)
    with refusals():
        quota = parse_size(args.quota)
        with open_accounts(ctx) as accounts:
            new = accounts.create(
                args.domain, args.name, args.userid, password, admin=admin, quota=quota
            )
    role = " (domain administrator)" if admin else ""
    ctx.out.print(f"added {new.account.address}{role}", markup=False)
    _say_earlier_mail(ctx, new)
    return 0


def _say_earlier_mail(ctx: CliContext, new: NewAccount) -> None:
    if new.earlier_mail_moved_to is not None:
        ctx.out.print(
            f"mail files found at its place (a deleted account's) were moved to"
            f" {new.earlier_mail_moved_to}",
            markup=False,
        )


def list_cmd(args: argparse.Namespace, ctx: CliContext) -> int:
    with refusals():
        accounts = open_directory(ctx).list_accounts(args.domain)
    if not accounts:
        ctx.out.print("(no accounts)")
        return 0
    table = new_table("Address", "Name", "Role", "Used", "Quota", "Receive", "Login")
    with open_store(ctx) as store:
        used = {account.id: store.usage(account.id) for account in accounts}
    for account in accounts:
        table.add_row(
            text(account.address),
            text(account.display_name),
            text(user_admin_cmd.role_of(account)),
            text(format_size(used[account.id]) if used[account.id] else "0"),
            text(format_size(account.quota_bytes)),
            yes_no(account.receive_enabled),
            yes_no(account.login_enabled),
        )
    ctx.out.print(table)
    return 0


def del_cmd(args: argparse.Namespace, ctx: CliContext) -> int:
    with refusals(), open_accounts(ctx) as accounts:
        deleted = accounts.delete(args.address, purge_now=args.purge)
    ctx.out.print(f"deleted {deleted.account.address}", markup=False)
    if deleted.mail_removed:
        ctx.out.print("deleted its mail files", markup=False)
    elif deleted.mail_moved_to is not None:
        ctx.out.print(
            f"its mail files were moved to {deleted.mail_moved_to}"
            " (`nmail user purged` lists and deletes them)",
            markup=False,
        )
    return 0


def _days(text: str) -> float:
    try:
        days = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of days, got {text!r}") from None
    if not 0 <= days <= 100_000:
        raise argparse.ArgumentTypeError(f"expected 0 to 100000 days, got {text!r}")
    return days


def _bytes(size: int) -> str:
    return format_size(size) if size else "0"  # format_size(0) means "unlimited"


def purged_cmd(args: argparse.Namespace, ctx: CliContext) -> int:
    mail_dir = ctx.config.mail_dir
    entries = purge_area.waiting(mail_dir)
    if args.delete_older_than is not None:
        cutoff = time.time() - args.delete_older_than * 86400
        doomed = [e for e in entries if e.moved_at <= cutoff]
        with refusals():
            for entry in doomed:
                purge_area.remove(mail_dir, entry.path)
                ctx.out.print(Text(f"deleted {entry.path} ({_bytes(entry.size)})"))
        ctx.out.print(Text(f"deleted {len(doomed)}, kept {len(entries) - len(doomed)}"))
        return 0
    if not entries:
        ctx.out.print(Text(f"(nothing in {mail_dir / purge_area.PURGE_DIR})"))
        return 0
    table = new_table("Deleted account's mail", "Moved there", "Size")
    for entry in entries:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.moved_at))
        table.add_row(text(entry.path), text(when), text(_bytes(entry.size)))
    ctx.out.print(table)
    return 0


def passwd_cmd(args: argparse.Namespace, ctx: CliContext) -> int:
    password = read_password(args.password)
    with refusals(), open_accounts(ctx) as accounts:
        account = accounts.set_password(args.address, password)
    ctx.out.print(f"password of {account.address} changed", markup=False)
    return 0


def quota_cmd(args: argparse.Namespace, ctx: CliContext) -> int:
    with refusals():
        size = parse_size(args.size)
        with open_accounts(ctx) as accounts:
            account = accounts.set_quota(args.address, size)
    ctx.out.print(f"quota of {account.address}: {format_size(account.quota_bytes)}", markup=False)
    return 0


def toggle_cmd(args: argparse.Namespace, ctx: CliContext) -> int:
    both = not args.receive and not args.login
    enabled: bool = args.enabled
    with refusals(), open_accounts(ctx) as accounts:
        account = accounts.set_enabled(
            args.address,
            receive=enabled if both or args.receive else None,
            login=enabled if both or args.login else None,
        )
    ctx.out.print(
        f"{account.address}: receiving {'on' if account.receive_enabled else 'off'},"
        f" logins {'on' if account.login_enabled else 'off'}",
        markup=False,
    )
    return 0


def import_cmd(args: argparse.Namespace, ctx: CliContext) -> int:
    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        ctx.fail(f"cannot read {path}: {exc.strerror or exc}")
    with refusals():
        content, encoding = decode_csv(data)
        lines, _ = read_accounts_csv(content)
    failures: list[tuple[int, str]] = []
    imported = 0
    progress = Progress(
        TextColumn("importing"), BarColumn(), MofNCompleteColumn(),
        console=ctx.err, transient=True,
        # A bar is for people watching; in pipes and logs it is noise on stderr.
        disable=not ctx.err.is_terminal,
    )
    with progress, open_accounts(ctx) as accounts:
        task = progress.add_task("import", total=len(lines))
        for item in lines:
            if isinstance(item, BadLine):
                failures.append((item.line, item.reason))
            else:
                try:
                    accounts.create(
                        item.domain, item.name, item.userid, item.password,
                        admin=item.admin, quota=item.quota,
                    )
                    imported += 1
                except DirectoryError as exc:
                    failures.append((item.line, str(exc)))
            progress.advance(task)
    ctx.out.print(f"read {path} as {encoding}", markup=False)
    for line, reason in failures:
        ctx.out.print(f"line {line}: {reason}", markup=False)
    ctx.out.print(f"imported {imported}, failed {len(failures)}")
    if failures:
        ctx.fail(f"{len(failures)} of {len(lines)} lines failed (see the report above)")
    return 0

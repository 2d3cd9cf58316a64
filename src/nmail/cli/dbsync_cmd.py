"""`nmail dbsync ALL | ADDRESS`: rebuild the mail index from the Maildir files.

The seed's `mail_box_dbsync.php ALL`, for when the webmail does not show
mail that POP3 clients can still fetch. UIDs are kept where the files carry
them, so IMAP clients do not download everything again. The search index
is then mended, not rebuilt (SearchIndexer.refresh): only messages missing
from it, or indexed for another message, are read again, unless
`--rebuild-search` asks for every one.

Before it compares files and rows, each account's folder renames and deletes
that a crash cut short before their COMMIT are put back (the same step as
`nmail serve`'s start-up repair: mailstore/folder_undo.py), and the report
names them: run offline right after a crash, dbsync used to drop the rows of
a delete the user was never answered for. It runs under the account's folder
lock, which a running server's folder change holds until its COMMIT, so
beside `nmail serve` it waits for that change rather than undoing it.
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from nmail.cli.context import CliContext
from nmail.cli.outside_text import one_line
from nmail.directory import Directory
from nmail.directory.model import Account
from nmail.mailstore.feed_node import open_publisher
from nmail.mailstore.model import SyncReport
from nmail.mailstore.search_indexer import SearchIndexer, SearchRefresh
from nmail.mailstore.store import MailStore, StoreError


def register(commands: Any) -> None:
    p = commands.add_parser(
        "dbsync",
        help="rebuild the mail index from the mail files (ALL accounts or one ADDRESS)",
        description="Re-read every message file of the accounts and bring the index in line: "
        "add missing messages, drop messages whose file is gone, keep known UIDs.",
    )
    p.add_argument("target", metavar="ALL|ADDRESS", help="ALL, or one account's address")
    p.add_argument(
        "--rebuild-search", action="store_true",
        help="make the accounts' search index again from every message file (by default only"
        " messages missing from it, or indexed for another message, are indexed)")
    p.set_defaults(handler=run)


def _accounts(ctx: CliContext, target: str) -> list[Account]:
    directory = Directory(ctx.engine)
    if target.upper() == "ALL":
        return directory.list_accounts()
    account = directory.get_account(target)
    if account is None:
        ctx.fail(f"no such account: {target}")
    return [account]


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    accounts = _accounts(ctx, args.target)
    feed = open_publisher(ctx.config.data_dir, ctx.config.database_url)
    store = MailStore(ctx.engine, ctx.config.mail_dir, ctx.config.hostname,
                      on_commit=feed.publish)
    try:
        with Progress(
            TextColumn("dbsync"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=ctx.err, transient=True, disable=not ctx.err.is_terminal,
        ) as progress:
            task = progress.add_task("accounts", total=len(accounts))

            def advance(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            report = store.dbsync(accounts, progress=advance)
            indexer = SearchIndexer(ctx.engine, ctx.config.mail_dir)
            scope = None if args.target.upper() == "ALL" else [a.id for a in accounts]
            mended = (SearchRefresh(indexer.rebuild(scope), 0) if args.rebuild_search
                      else indexer.refresh(scope))
    except StoreError as exc:
        ctx.fail(str(exc))
    except SQLAlchemyError as exc:
        ctx.fail(f"could not update the search index: {exc}")
    finally:
        store.close()
        feed.close()
    print_report(ctx, report, show_all=len(accounts) == 1)
    ctx.out.print(f"search index: {mended.indexed} messages indexed"
                  + (f" ({mended.stale} had a row made for another message)"
                     if mended.stale else ""))
    for line in report.errors:
        ctx.err.print(f"nmail: warning: skipped {line}")
    return 1 if report.errors else 0


def print_report(ctx: CliContext, report: SyncReport, *, show_all: bool) -> None:
    """Per-account counts (accounts with changes, or the one asked for) and the total."""
    rows = [
        a for a in report.accounts
        if show_all or a.counts.added or a.counts.removed or a.counts.renumbered
        or a.counts.flags or a.folders_created or a.folders_restored
    ]
    if rows:
        table = Table("account", "added", "removed", "kept", "renumbered", "flags corrected",
                      "new folders")
        for a in rows:
            c = a.counts
            table.add_row(a.address, str(c.added), str(c.removed), str(c.kept),
                          str(c.renumbered), str(c.flags), ", ".join(a.folders_created))
        ctx.out.print(table)
    for a in report.accounts:
        if a.folders_restored:
            names = ", ".join(one_line(name) for name in a.folders_restored)
            ctx.out.print(f"{one_line(a.address)}: put back folder(s) a crash left renamed or "
                          f"deleted before the change was committed: {names}")
    t = report.total
    n = len(report.accounts)
    ctx.out.print(
        f"dbsync: {n} account{'' if n == 1 else 's'}, {t.added} added, {t.removed} removed, "
        f"{t.kept} kept, {t.renumbered} renumbered, {t.flags} flags corrected"
    )
    if t.forgotten:
        ctx.out.print(f"conversations: the links of {t.forgotten} with no message left dropped")

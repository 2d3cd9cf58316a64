"""What the admin commands (domain, user, alias, relay) share.

Opening the Directory and the account service (which owns every mailbox
file operation), turning their refusals into one-line CLI errors, and rich
table cells that print user data literally (never as rich markup).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich import box
from rich.table import Table
from rich.text import Text

from nmail.accounts import AccountService, StoreMailboxes
from nmail.cli.context import CliContext, CliError
from nmail.cli.outside_text import one_line
from nmail.directory import Directory, DirectoryError
from nmail.mailstore.feed_node import open_publisher
from nmail.mailstore.store import MailStore


def open_directory(ctx: CliContext) -> Directory:
    """The Directory over the data directory's database."""
    return Directory(ctx.engine)


@contextmanager
def refusals() -> Iterator[None]:
    """Turn a DirectoryError into a CliError: one line on stderr, exit status 1."""
    try:
        yield
    except DirectoryError as exc:
        raise CliError(str(exc)) from None


def read_password(value: str) -> str:
    """The password argument; `-` reads it from the first line of standard input.

    Reading from stdin keeps it out of the process list and shell history.
    """
    if value != "-":
        return value
    line = sys.stdin.readline()
    return line.rstrip("\r\n")


@contextmanager
def open_store(ctx: CliContext) -> Iterator[MailStore]:
    """The mail store for one command (the directory never touches mail files)."""
    # Its commits reach the running server's subscribers (IMAP IDLE, webmail).
    feed = open_publisher(ctx.config.data_dir, ctx.config.database_url)
    store = MailStore(ctx.engine, ctx.config.mail_dir, ctx.config.hostname,
                      on_commit=feed.publish)
    try:
        yield store
    finally:
        store.close()
        feed.close()


@contextmanager
def open_accounts(ctx: CliContext) -> Iterator[AccountService]:
    """The account service (accounts with their mailboxes) for one command."""
    with open_store(ctx) as store:
        yield AccountService(open_directory(ctx), StoreMailboxes(store), ctx.config.mail_dir)


def text(value: object) -> Text:
    """A table cell printed literally (addresses may hold '[' which rich reads as
    markup), on one line: a newline from outside cannot fake a row."""
    return Text(one_line(str(value)))


def new_table(*columns: str) -> Table:
    """A plain table for admin listings."""
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def yes_no(value: bool) -> Text:
    return Text("yes" if value else "no")

"""What the admin commands (domain, user, alias, relay) share.

Opening the Directory, turning its refusals into one-line CLI errors,
creating and locating an account's mailbox, and rich table cells that print
user data literally (never as rich markup).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich import box
from rich.table import Table
from rich.text import Text

from nmail.cli.context import CliContext, CliError
from nmail.directory import Account, Directory, DirectoryError
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
    store = MailStore(ctx.engine, ctx.config.mail_dir, ctx.config.hostname)
    try:
        yield store
    finally:
        store.close()


@contextmanager
def mailbox_maker(ctx: CliContext) -> Iterator[Callable[[Account], None] | None]:
    """A function that creates an account's mailbox; one store serves a whole command."""
    with open_store(ctx) as store:
        yield store.ensure_account


def add_with_mailbox(
    directory: Directory, make_mailbox: Callable[[Account], None] | None, account: Account
) -> None:
    """Create the new account's mailbox; on failure remove the account again.

    Raises DirectoryError then, so an account never exists without its mailbox.
    """
    if make_mailbox is None:
        return
    try:
        make_mailbox(account)
    except Exception as exc:
        directory.delete_account(account.address)
        raise DirectoryError(
            f"could not create the mailbox of {account.address} ({exc}); account not added"
        ) from None


def account_dir(ctx: CliContext, account: Account) -> Path:
    """Where the account's mail files live: DIR/mail/<domain>/<userid>."""
    return ctx.config.mail_dir / account.domain / account.userid


def purge_account_dir(ctx: CliContext, account: Account) -> Path | None:
    """Delete the account's mail directory; the path removed, None when there was none."""
    mail_dir = ctx.config.mail_dir.resolve()
    path = account_dir(ctx, account)
    if not path.exists() and not path.is_symlink():
        return None
    # Never follow a link out of the mail directory.
    if path.is_symlink() or mail_dir not in path.resolve().parents:
        raise CliError(f"{path} is not a directory inside {mail_dir}; remove it by hand")
    shutil.rmtree(path)
    return path


def text(value: object) -> Text:
    """A table cell printed literally (addresses may hold '[' which rich reads as markup)."""
    return Text(str(value))


def new_table(*columns: str) -> Table:
    """A plain table for admin listings."""
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def yes_no(value: bool) -> Text:
    return Text("yes" if value else "no")

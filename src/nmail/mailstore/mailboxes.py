"""Which directory belongs to which account: the one read of the directory's tables.

The mail store knows accounts by id in most calls; their Maildir path comes
from the domain and user id, read here each time (never cached: an account
id can be reused after a deletion, and a stale path would be someone else's).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, select

from nmail.db.tables import accounts, domains
from nmail.mailstore.layout import LayoutError, folder_dir, maildir_path
from nmail.mailstore.model import StoreError


@dataclass(frozen=True, slots=True)
class Mailbox:
    """An account as the mail store needs it."""

    account_id: int
    domain: str
    userid: str

    @property
    def address(self) -> str:
        return f"{self.userid}@{self.domain}"

    def maildir(self, mail_dir: Path) -> Path:
        try:
            return maildir_path(mail_dir, self.domain, self.userid)
        except LayoutError as exc:
            raise StoreError(str(exc)) from None

    def folder_dir(self, mail_dir: Path, name: str) -> Path:
        try:
            return folder_dir(self.maildir(mail_dir), name)
        except LayoutError as exc:
            raise StoreError(str(exc)) from None


_QUERY = select(accounts.c.id, domains.c.name, accounts.c.userid).join(
    domains, domains.c.id == accounts.c.domain_id
)


def mailbox_by_id(conn: Connection, account_id: int) -> Mailbox:
    row = conn.execute(_QUERY.where(accounts.c.id == account_id)).first()
    if row is None:
        raise StoreError(f"no account {account_id}")
    return Mailbox(int(row[0]), str(row[1]), str(row[2]))


def all_mailboxes(conn: Connection) -> list[Mailbox]:
    rows = conn.execute(_QUERY.order_by(domains.c.name, accounts.c.userid)).all()
    return [Mailbox(int(r[0]), str(r[1]), str(r[2])) for r in rows]

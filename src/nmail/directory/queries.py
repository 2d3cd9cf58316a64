"""Row lookups every part of the directory shares; each is one indexed query."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, select

from nmail.db.tables import accounts, aliases, domain_aliases, domains, folders
from nmail.directory.errors import NotFound
from nmail.directory.model import Account


@dataclass(frozen=True, slots=True)
class DomainRow:
    id: int
    name: str
    catchall: str | None


ACCOUNT_COLUMNS = (
    accounts.c.id,
    domains.c.name.label("domain"),
    accounts.c.userid,
    accounts.c.display_name,
    accounts.c.quota_bytes,
    accounts.c.is_admin,
    accounts.c.is_server_admin,
    accounts.c.receive_enabled,
    accounts.c.login_enabled,
)


def account_from_row(row: Row[Any]) -> Account:
    """An Account from a row selected with ACCOUNT_COLUMNS."""
    return Account(
        id=int(row.id),
        domain=str(row.domain),
        userid=str(row.userid),
        display_name=str(row.display_name),
        quota_bytes=int(row.quota_bytes),
        is_admin=bool(row.is_admin),
        is_server_admin=bool(row.is_server_admin),
        receive_enabled=bool(row.receive_enabled),
        login_enabled=bool(row.login_enabled),
    )


def account_select() -> Any:
    """SELECT of ACCOUNT_COLUMNS over accounts joined to their domain."""
    return select(*ACCOUNT_COLUMNS).select_from(
        accounts.join(domains, accounts.c.domain_id == domains.c.id)
    )


def domain_row(conn: Connection, name: str) -> DomainRow | None:
    """The hosted domain named exactly `name` (normalized), not following aliases."""
    row = conn.execute(
        select(domains.c.id, domains.c.name, domains.c.catchall).where(domains.c.name == name)
    ).first()
    return None if row is None else DomainRow(int(row.id), str(row.name), row.catchall)


def domain_alias_target(conn: Connection, name: str) -> DomainRow | None:
    """The hosted domain that domain alias `name` stands for, if it is one."""
    row = conn.execute(
        select(domains.c.id, domains.c.name, domains.c.catchall)
        .select_from(domain_aliases.join(domains, domain_aliases.c.domain_id == domains.c.id))
        .where(domain_aliases.c.name == name)
    ).first()
    return None if row is None else DomainRow(int(row.id), str(row.name), row.catchall)


def hosted_domain(conn: Connection, name: str) -> DomainRow | None:
    """The hosted domain `name` means, after domain-alias mapping; None when not ours."""
    return domain_row(conn, name) or domain_alias_target(conn, name)


def require_domain(conn: Connection, name: str) -> DomainRow:
    """The hosted domain `name` (not an alias); NotFound saying what it is otherwise."""
    found = domain_row(conn, name)
    if found is not None:
        return found
    real = domain_alias_target(conn, name)
    if real is not None:
        raise NotFound(f"{name} is an alias of {real.name}; use {real.name}")
    raise NotFound(f"no such domain: {name}")


def find_account(conn: Connection, domain_id: int, userid: str) -> Account | None:
    row = conn.execute(
        account_select().where(accounts.c.domain_id == domain_id, accounts.c.userid == userid)
    ).first()
    return None if row is None else account_from_row(row)


def alias_targets(conn: Connection, domain_id: int, local_part: str) -> list[str]:
    """Targets of alias local_part@domain in the order they were added."""
    rows = conn.execute(
        select(aliases.c.target)
        .where(aliases.c.domain_id == domain_id, aliases.c.local_part == local_part)
        .order_by(aliases.c.id)
    )
    return [str(r.target) for r in rows]


def alias_exists(conn: Connection, domain_id: int, local_part: str) -> bool:
    """Whether local_part@domain is an alias (with at least one target)."""
    row = conn.execute(
        select(aliases.c.id)
        .where(aliases.c.domain_id == domain_id, aliases.c.local_part == local_part)
        .limit(1)
    ).first()
    return row is not None



def lock_mail_folders(conn: Connection, *, account_id: int | None = None,
                      domain_id: int | None = None) -> None:
    """Lock the folder rows of an account or of every account of a domain
    (FOR UPDATE, in id order): the first step of deleting them.

    The lock order of every writer (docs/ARCHITECTURE.md, "Lock order"): folder
    rows in id order, then the account row. The index writer holds a folder row
    and then links a delivery's thread (thread_links: a KEY SHARE lock on the
    account row on PostgreSQL, an S lock on MariaDB); a delete that locked the
    account row first and reached the folders through ON DELETE CASCADE
    deadlocked with it (tests/test_lock_order.py). The domain's accounts are a
    subquery, which neither database locks. SQLite ignores FOR UPDATE: it lets
    one writer in at a time.
    """
    if (account_id is None) == (domain_id is None):
        raise ValueError("lock_mail_folders takes an account or a domain")
    owner = (folders.c.account_id == account_id if account_id is not None else
             folders.c.account_id.in_(select(accounts.c.id)
                                      .where(accounts.c.domain_id == domain_id)))
    conn.execute(select(folders.c.id).where(owner).order_by(folders.c.id)
                 .with_for_update()).all()

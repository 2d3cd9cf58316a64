"""The one guard that keeps the server administered.

Every directory change that can take a server administrator away (deleting
the account or its domain, revoking the role, turning its logins off) asks
`keep_a_server_admin` inside its own transaction, after the generation bump
has taken the directory's write lock (base.DirectoryBase._transaction): two
changes at once are serialised there, so they cannot both see "one other is
left" and leave none.

Two things must not drop to zero once they exist: server administrators
(someone reads the host's postmaster mail, policy/postmaster.py), and server
administrators who can log in (someone can reach the admin console; the
CLI can always bring one back, but a server whose only administrator is
locked out of the web is the same outage). Receiving is not guarded: an
administrator who turns off their own mail can still log in and turn it on,
and every message refused meanwhile gets a 550 that says so.

A directory that already has none (a fresh database before `nmail init`,
or one damaged by hand) refuses nothing here: there is nothing to keep.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import Connection, select

from nmail.db.tables import accounts, domains
from nmail.directory.errors import Conflict

WAY_OUT = "make another account a server administrator first: nmail user admin ADDRESS --server"


class LastServerAdmin(Conflict):
    """The change would leave the server with no (usable) server administrator."""


def keep_a_server_admin(
    conn: Connection,
    *,
    losing_role: Collection[int] = (),
    losing_login: Collection[int] = (),
    domain: str | None = None,
) -> None:
    """Raise LastServerAdmin when the change about to be made in `conn`'s transaction
    (the account ids in `losing_role` deleted or demoted, those in `losing_login`
    locked out) would leave no server administrator, or none who can log in, where
    there was one. `domain`: the change deletes that domain (named in the message)."""
    rows = conn.execute(
        select(accounts.c.id, accounts.c.userid, accounts.c.login_enabled, domains.c.name)
        .select_from(accounts.join(domains, accounts.c.domain_id == domains.c.id))
        .where(accounts.c.is_server_admin.is_(True))
        .order_by(domains.c.name, accounts.c.userid)
    ).all()
    kept = [r for r in rows if r.id not in losing_role]
    if rows and not kept:
        raise LastServerAdmin(_refusal([r for r in rows if r.id in losing_role], domain, ""))
    could_log_in = [r for r in rows if r.login_enabled]
    if could_log_in and not any(r.login_enabled and r.id not in losing_login for r in kept):
        raise LastServerAdmin(_refusal(could_log_in, domain, " who can log in"))


def _refusal(last: Sequence[Any], domain: str | None, which: str) -> str:
    """One line: who would be lost, and the way out."""
    names = ", ".join(f"{r.userid}@{r.name}" for r in last)
    what = ("the last server administrator" if len(last) == 1
            else "the last server administrators") + which
    if domain is not None:
        return f"domain {domain} holds {names}, {what}; {WAY_OUT}"
    return f"{names} {'is' if len(last) == 1 else 'are'} {what}; {WAY_OUT}"

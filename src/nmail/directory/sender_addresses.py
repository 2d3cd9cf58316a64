"""Which envelope senders an authenticated user may use."""

from __future__ import annotations

from sqlalchemy import Connection, select

from nmail.db.tables import aliases, domain_aliases, domains, send_as
from nmail.directory.base import DirectoryBase
from nmail.directory.errors import InvalidName
from nmail.directory.names import is_userid, normalize_address, split_address
from nmail.directory.queries import find_account, hosted_domain
from nmail.directory.resolver import MAX_DEPTH


class SenderAddressesMixin(DirectoryBase):
    """Addresses a login owns."""

    def sender_addresses(self, login: str) -> frozenset[str]:
        """Addresses `login` may send as: its own, its aliases', its send-as grants.

        Aliases count in every domain alias; a grant "@domain" is a whole domain.

        Empty when `login` names no account. Used to refuse MAIL FROM with
        someone else's address from an authenticated session.
        """
        try:
            local, domain = split_address(normalize_address(login))
        except InvalidName:
            return frozenset()
        if not is_userid(local):
            return frozenset()
        with self._engine.connect() as conn:
            row = hosted_domain(conn, domain)
            account = None if row is None else find_account(conn, row.id, local)
            if account is None:
                return frozenset()
            owned = _with_domain_aliases(conn, {account.address})
            frontier = set(owned)
            # Walk aliases backwards: an alias of an alias of the account is also its own.
            for _ in range(MAX_DEPTH):
                rows = conn.execute(
                    select(aliases.c.local_part, domains.c.name)
                    .select_from(aliases.join(domains, aliases.c.domain_id == domains.c.id))
                    .where(aliases.c.target.in_(sorted(frontier)))
                )
                found = {f"{r.local_part}@{r.name}" for r in rows}
                frontier = _with_domain_aliases(conn, found) - owned
                if not frontier:
                    break
                owned |= frontier
            # Admin grants (directory/send_as.py): addresses, or "@domain".
            owned.update(
                str(g) for g in conn.execute(
                    select(send_as.c.address).where(send_as.c.account_id == account.id)
                ).scalars()
            )
        return frozenset(owned)


def _with_domain_aliases(conn: Connection, addresses: set[str]) -> set[str]:
    """`addresses` plus the same local parts in each domain alias of their domains."""
    if not addresses:
        return set()
    by_domain: dict[str, list[str]] = {}
    for address in addresses:
        local, domain = split_address(address)
        by_domain.setdefault(domain, []).append(local)
    rows = conn.execute(
        select(domain_aliases.c.name, domains.c.name.label("domain"))
        .select_from(domain_aliases.join(domains, domain_aliases.c.domain_id == domains.c.id))
        .where(domains.c.name.in_(sorted(by_domain)))
    )
    result = set(addresses)
    for r in rows:
        for local in by_domain[str(r.domain)]:
            result.add(f"{local}@{r.name}")
    return result

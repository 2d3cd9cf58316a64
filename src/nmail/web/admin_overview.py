"""The first screen of the admin console: a read-only overview for administrators.

Who sees what is decided here and nowhere else: the postmaster (server
administrator) every hosted domain and the outbound queue; a domain
administrator the one domain of their account and no queue (it holds
everyone's mail); anyone else nothing (the route answers 403). A domain that
is not the reader's is `None`, which the route turns into 404 like another
user's folder. Figures are read, never counted from files: account rows from
the directory, storage from the folders' kept sizes (one grouped query), the
queue from its rows (two counting queries). Blocking; run in the web pool.
"""

from __future__ import annotations

from dataclasses import dataclass

from nmail.directory.model import Account
from nmail.mailstore.folder_reads import usage_by_account
from nmail.queue.store import QueueStore
from nmail.web.backends import WebBackends


@dataclass(frozen=True, slots=True)
class AccountLine:
    address: str
    display_name: str
    used: int  # bytes stored
    quota: int  # 0 = unlimited
    is_admin: bool
    is_server_admin: bool
    login_enabled: bool
    receive_enabled: bool

    @property
    def percent(self) -> int | None:
        """Share of the quota used (capped at 100 for the bar), None when unlimited."""
        if not self.quota:
            return None
        return min(100, int(self.used * 100 / self.quota))


@dataclass(frozen=True, slots=True)
class DomainLine:
    name: str
    accounts: int
    used: int
    near_full: int  # accounts at 90 % of their quota or more


@dataclass(frozen=True, slots=True)
class QueueLine:
    messages: int
    recipients: int
    oldest: int | None  # arrival time of the oldest waiting message


@dataclass(frozen=True, slots=True)
class Overview:
    domains: list[DomainLine]
    queue: QueueLine | None  # the postmaster's only


def may_administer(account: Account) -> bool:
    return account.is_server_admin or account.is_admin


def administered(backends: WebBackends, account: Account) -> list[str]:
    """Names of the domains `account` administers (by name)."""
    if account.is_server_admin:
        return [d.name for d in backends.directory.list_domains()]
    return [account.domain] if account.is_admin else []


def _lines(backends: WebBackends, accounts: list[Account],
           usage: dict[int, int]) -> list[AccountLine]:
    return [AccountLine(a.address, a.display_name, usage.get(a.id, 0), a.quota_bytes,
                        a.is_admin, a.is_server_admin, a.login_enabled, a.receive_enabled)
            for a in accounts]


def overview(backends: WebBackends, account: Account) -> Overview:
    names = administered(backends, account)
    if account.is_server_admin:
        everyone = backends.directory.list_accounts()
        with backends.engine.connect() as conn:
            usage = usage_by_account(conn, None)
    else:
        everyone = [a for name in names for a in backends.directory.list_accounts(name)]
        with backends.engine.connect() as conn:
            usage = usage_by_account(conn, [a.id for a in everyone])
    lines = _lines(backends, everyone, usage)
    domains = []
    for name in names:
        own = [line for line, a in zip(lines, everyone, strict=True) if a.domain == name]
        domains.append(DomainLine(
            name, len(own), sum(line.used for line in own),
            sum(1 for line in own if line.quota and line.used * 10 >= line.quota * 9)))
    queue = None
    if account.is_server_admin:
        messages, recipients, oldest = QueueStore(backends.engine).pending_counts()
        queue = QueueLine(messages, recipients, oldest)
    return Overview(domains, queue)


def domain_accounts(backends: WebBackends, account: Account,
                    domain: str) -> list[AccountLine] | None:
    """The accounts of `domain` with their storage, or None unless `account` administers it."""
    wanted = domain.strip().lower()
    if wanted not in administered(backends, account):
        return None
    accounts = backends.directory.list_accounts(wanted)
    with backends.engine.connect() as conn:
        usage = usage_by_account(conn, [a.id for a in accounts])
    return _lines(backends, accounts, usage)

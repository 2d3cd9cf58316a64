"""Values the directory hands out: domains, accounts, and what an address resolves to."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from nmail.quick_init import quick_init


@dataclass(frozen=True, slots=True)
class Domain:
    id: int
    name: str
    catchall: str | None


@dataclass(frozen=True, slots=True)
class Account:
    """A mailbox owner. `address` is userid@domain, both lower case."""

    id: int
    domain: str
    userid: str
    display_name: str
    quota_bytes: int  # 0 = unlimited
    is_admin: bool  # domain administrator (mbr_add ... ADMIN)
    is_server_admin: bool  # the postmaster
    receive_enabled: bool
    login_enabled: bool

    @property
    def address(self) -> str:
        return f"{self.userid}@{self.domain}"


@quick_init
@dataclass(frozen=True, slots=True)
class Resolution:
    """What one RCPT address means for us.

    hosted: the domain (after domain-alias mapping) is one of ours.
    accounts: local mailboxes the address delivers to (after aliases and catch-all).
    remote: external addresses the address forwards to (aliases to outside),
            or the address itself when the domain is not hosted.
    unknown: hosted domain but nothing matched (550 5.1.1).
    """

    address: str
    hosted: bool
    accounts: tuple[Account, ...] = ()
    remote: tuple[str, ...] = ()

    @property
    def unknown(self) -> bool:
        return self.hosted and not self.accounts and not self.remote


@dataclass(frozen=True, slots=True)
class DomainAlias:
    """`name` (e.g. alias.com) receives the mail of the hosted `domain` (real.com)."""

    name: str
    domain: str


@dataclass(frozen=True, slots=True)
class Alias:
    """address -> targets (local accounts, other aliases or external addresses)."""

    address: str
    targets: tuple[str, ...]


class AuthStatus(Enum):
    OK = "ok"
    BAD_CREDENTIALS = "bad credentials"  # unknown user or wrong password: one answer for both
    LOGIN_DISABLED = "login disabled"  # right password, but the admin disabled logins


class Standing(Enum):
    """Whether a logged-in session's account may go on (asked again after login)."""

    ACTIVE = "active"
    LOGIN_DISABLED = "login disabled"
    DELETED = "deleted"
    REPLACED = "deleted and created again"  # same address, another account id


@dataclass(frozen=True, slots=True)
class AuthResult:
    """The outcome of a login; `account` is set only when the password was right."""

    status: AuthStatus
    account: Account | None = None

    @property
    def ok(self) -> bool:
        return self.status is AuthStatus.OK

"""The host's reserved mailboxes: postmaster (RFC 5321 4.5.1) and MAILER-DAEMON.

Every server that delivers mail MUST accept postmaster, case-insensitively,
at the names it answers for, and `RCPT TO:<postmaster>` with no domain. Our
host name (the name in the greeting and EHLO, `[server] hostname`) is one of
them even when it is not a hosted domain, as Postfix puts $myhostname in
mydestination. MAILER-DAEMON is where our delivery reports come from
(`From: MAILER-DAEMON@<hostname>`, bounce/dsn.py); a person who answers one
reaches the postmaster, as Postfix's default aliases(5) has it. Both go to
the server administrators (accounts with is_server_admin).

postmaster at a hosted domain (or one of its domain aliases) is that
domain's first: an account, alias or catch-all there takes it as any other
name. With none, it goes to the domain's administrators (is_admin there)
who receive mail, and, when it has none, to the server administrators: the
hosting provider runs the server, so mail about it reaches someone
(docs/ARCHITECTURE.md, Addresses).

Only these exact local parts at exactly the host name match, compared in
normal form (lower case, IDNA, no trailing dot: the directory's), so no
percent hack, bang path or source route can make an address of another
domain one of them. IP literals are not ours (they are not mail domains here).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

from nmail.policy.decision import Decision

HOST_MAILBOXES = frozenset({"postmaster", "mailer-daemon"})
DOMAIN_MAILBOX = "postmaster"


class _Mailbox(Protocol):
    @property
    def receive_enabled(self) -> bool: ...


M = TypeVar("M", bound=_Mailbox)


def is_host_mailbox(address: str, host_name: str) -> bool:
    """Whether `address` is postmaster or MAILER-DAEMON at our host name.

    Both in normal form (directory.names.normalize_address / normalize_domain):
    the comparison is exact.
    """
    local, at, domain = address.rpartition("@")
    return bool(at) and bool(host_name) and domain == host_name and local in HOST_MAILBOXES


def is_domain_postmaster(address: str) -> bool:
    """Whether `address` (normal form) is postmaster at some domain: exactly that
    local part (no +tag, percent or bang form), whichever the domain."""
    local, at, domain = address.rpartition("@")
    return bool(at) and bool(domain) and local == DOMAIN_MAILBOX


def domain_administrators(domain_admins: Sequence[M], server_admins: Sequence[M]) -> tuple[M, ...]:
    """Who reads a hosted domain's postmaster mail when nothing there takes it:
    its administrators who receive mail, else the server administrators (each
    then checked as any recipient; none at all: no_administrator)."""
    receiving = tuple(admin for admin in domain_admins if admin.receive_enabled)
    return receiving or tuple(server_admins)


def no_administrator(address: str) -> Decision:
    """Postmaster mail with nobody to read it: no server administrator account
    (and, for a hosted domain's postmaster, no domain administrator receiving).

    A 5xx, as Postfix answers for a local name its tables do not know: the
    state lasts until an administrator acts, so a sender retrying for days
    would only learn it later. The text says why.
    """
    return Decision(
        550, "5.1.1", f"No server administrator receives mail for <{address}> on this host"
    )

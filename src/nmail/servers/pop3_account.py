"""A POP3 session's account: the login, and looking it up again (issue 9 item 7).

`log_in` checks the credentials (holding a refusal back as the login
service says) and locks the maildrop; `update` is QUIT's UPDATE, the
account looked up exactly first.

The connection compares the directory generation at every command itself
(`Pop3Backend.known_generation`, a memory read); when it moved, `recheck`
asks the directory for the account, and a session whose account was
disabled for login, deleted, or deleted and created again is told so and
closes without UPDATE. `may_update` does the same look-up exactly (the
generation read now) before UPDATE removes or marks anything.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nmail.directory import Account
from nmail.directory.model import Standing
from nmail.protocols.pop3 import Authenticate, LoginFailure, Pop3Session, Revocation, Update
from nmail.servers.pop3_backend import Maildrop, Pop3Backend

if TYPE_CHECKING:
    from nmail.servers.pop3 import Pop3Server

log = logging.getLogger(__name__)

_REVOCATIONS = {
    Standing.LOGIN_DISABLED: Revocation.LOGIN_DISABLED,
    Standing.DELETED: Revocation.DELETED,
    Standing.REPLACED: Revocation.REPLACED,
}


@dataclass(frozen=True, slots=True)
class LoggedIn:
    maildrop: Maildrop
    account: Account
    generation: int  # the directory generation read before the login (-1: none yet)


async def log_in(
    server: Pop3Server, session: Pop3Session, event: Authenticate, ip: str
) -> LoggedIn | None:
    """The credentials checked and the maildrop locked; None when refused (the
    session was told why). The caller says `login_accepted` once it takes it."""
    backend = server.backend
    # Read before the login: a change after this is seen at the first command.
    before = backend.known_generation()
    outcome = await backend.authenticate(
        event.username, event.password, ip, server.settings.default_domain or None
    )
    if outcome.account is None:
        failure = outcome.failure or LoginFailure.BAD_CREDENTIALS
        log.info("POP3 login refused for %r from %s: %s", event.username, ip, failure.value)
        if outcome.delay > 0:
            await server.login_delay(outcome.delay)
        session.login_refused(failure)
        return None
    try:
        maildrop = await backend.open_maildrop(outcome.account)
    except Exception:
        log.exception("POP3 maildrop of %s cannot be opened", event.username)
        session.login_refused(LoginFailure.TEMPORARY)
        return None
    if maildrop is None:
        session.login_refused(LoginFailure.IN_USE)
        return None
    return LoggedIn(maildrop, outcome.account, -1 if before is None else before)


async def recheck(
    backend: Pop3Backend, session: Pop3Session, account: Account, ip: str
) -> int:
    """Look the account up; end the session if it changed. The generation looked at."""
    generation, standing = await backend.standing(account)
    _end_unless_active(session, account, ip, standing)
    return generation


async def may_update(
    backend: Pop3Backend, session: Pop3Session, account: Account, ip: str
) -> bool:
    """Before UPDATE: True if the account is still there; else the session is ended."""
    _, standing = await backend.standing(account, exact=True)
    return _end_unless_active(session, account, ip, standing)


async def update(
    backend: Pop3Backend,
    session: Pop3Session,
    maildrop: Maildrop,
    account: Account,
    event: Update,
    ip: str,
) -> None:
    """UPDATE: remove what was deleted, mark what was retrieved as seen, unless
    the account is gone by now (then nothing is removed or marked)."""
    if (event.deleted or event.retrieved) and not await may_update(
        backend, session, account, ip
    ):
        return
    ok = await maildrop.commit([e.uid for e in event.deleted], [e.uid for e in event.retrieved])
    session.update_finished(ok)


def _end_unless_active(
    session: Pop3Session, account: Account, ip: str, standing: Standing
) -> bool:
    if standing is Standing.ACTIVE:
        return True
    log.info("POP3 session of %s from %s ended: account %s", account.address, ip, standing.value)
    session.login_revoked(_REVOCATIONS[standing])
    return False

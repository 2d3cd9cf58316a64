"""A logged-in POP3 session's account, looked up again (issue 9 item 7).

The connection compares the directory generation at every command itself
(`Pop3Backend.known_generation`, a memory read); when it moved, `recheck`
asks the directory for the account, and a session whose account was
disabled for login, deleted, or deleted and created again is told so and
closes without UPDATE. `may_update` does the same look-up exactly (the
generation read now) before UPDATE removes or marks anything.
"""

from __future__ import annotations

import logging

from nmail.directory import Account
from nmail.directory.model import Standing
from nmail.protocols.pop3 import Pop3Session, Revocation
from nmail.servers.pop3_backend import Pop3Backend

log = logging.getLogger(__name__)

_REVOCATIONS = {
    Standing.LOGIN_DISABLED: Revocation.LOGIN_DISABLED,
    Standing.DELETED: Revocation.DELETED,
    Standing.REPLACED: Revocation.REPLACED,
}


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


def _end_unless_active(
    session: Pop3Session, account: Account, ip: str, standing: Standing
) -> bool:
    if standing is Standing.ACTIVE:
        return True
    log.info("POP3 session of %s from %s ended: account %s", account.address, ip, standing.value)
    session.login_revoked(_REVOCATIONS[standing])
    return False

"""Accounts: creation, settings, passwords and login."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, update

from nmail.db.tables import accounts, domains
from nmail.db.web_tables import web_sessions
from nmail.directory.base import DirectoryBase, inserted_id
from nmail.directory.errors import Conflict, InvalidName, NotFound
from nmail.directory.model import Account, AuthResult, AuthStatus
from nmail.directory.names import (
    is_userid,
    normalize_address,
    normalize_domain,
    normalize_userid,
    split_address,
)
from nmail.directory.passwords import check_password_policy
from nmail.directory.queries import (
    account_from_row,
    account_select,
    alias_exists,
    find_account,
    hosted_domain,
    lock_mail_folders,
    require_domain,
)
from nmail.directory.server_admins import keep_a_server_admin

MAX_DISPLAY_NAME = 200
# Login names are throttle keys; longer ones are no account's anyway.
MAX_LOGIN_KEY = 300


def normalize_display_name(name: str) -> str:
    """A display name without surrounding blanks or control characters."""
    cleaned = name.strip()
    if len(cleaned) > MAX_DISPLAY_NAME:
        raise InvalidName(f"name is longer than {MAX_DISPLAY_NAME} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in cleaned):
        raise InvalidName("name contains a control character")
    return cleaned


# The webmail asks it on every request: built once (building and keying it anew
# cost ~0.07 ms of CPU a call here).
_BY_ID = account_select().where(accounts.c.id == bindparam("account_id"))


class AccountsMixin(DirectoryBase):
    """Mailbox owners."""

    def add_account(
        self,
        domain: str,
        name: str,
        userid: str,
        password: str,
        admin: bool = False,
        quota: int = 0,
        *,
        server_admin: bool = False,
    ) -> Account:
        """Create userid@domain; the mailstore creates its mailbox from the returned Account."""
        domain_name = normalize_domain(domain)
        user = normalize_userid(userid)
        display = normalize_display_name(name)
        if quota < 0:
            raise InvalidName("quota cannot be negative (0 means unlimited)")
        check_password_policy(password, user)
        address = f"{user}@{domain_name}"
        # Hashed before the transaction: it takes a tenth of a second by design.
        hashed = self._passwords.hash(password)
        with self._transaction(f"account {address} already exists") as conn:
            row = require_domain(conn, domain_name)
            if find_account(conn, row.id, user) is not None:
                raise Conflict(f"account {address} already exists")
            if alias_exists(conn, row.id, user):
                raise Conflict(f"{address} is an alias; delete the alias first")
            result = conn.execute(
                insert(accounts).values(
                    domain_id=row.id,
                    userid=user,
                    display_name=display,
                    password_hash=hashed,
                    quota_bytes=quota,
                    is_admin=admin,
                    is_server_admin=server_admin,
                    receive_enabled=True,
                    login_enabled=True,
                    created_at=self._now(),
                )
            )
            new_id = inserted_id(result)
        return Account(
            id=new_id,
            domain=domain_name,
            userid=user,
            display_name=display,
            quota_bytes=quota,
            is_admin=admin,
            is_server_admin=server_admin,
            receive_enabled=True,
            login_enabled=True,
        )

    def get_account(self, address: str) -> Account | None:
        """The account at `address` (domain aliases followed), or None."""
        try:
            local, domain = split_address(normalize_address(address))
        except InvalidName:
            return None
        if not is_userid(local):
            return None
        with self._engine.connect() as conn:
            row = hosted_domain(conn, domain)
            return None if row is None else find_account(conn, row.id, local)

    def get_account_by_id(self, account_id: int) -> Account | None:
        """The account with database id `account_id`, or None."""
        with self._engine.connect() as conn:
            row = conn.execute(_BY_ID, {"account_id": account_id}).first()
        return None if row is None else account_from_row(row)

    def list_accounts(self, domain: str | None = None) -> list[Account]:
        """Every account, or those of one hosted domain, by domain then user id."""
        query = account_select().order_by(domains.c.name, accounts.c.userid)
        with self._engine.connect() as conn:
            if domain is not None:
                row = require_domain(conn, normalize_domain(domain))
                query = query.where(accounts.c.domain_id == row.id)
            return [account_from_row(r) for r in conn.execute(query)]

    def delete_account(self, address: str, *, keep_server_admin: bool = True) -> Account:
        """Delete an account (its folder rows and reject list go with it, not its files).
        Refused (LastServerAdmin) for the last server administrator, or the last who
        can log in; `keep_server_admin` False only to undo the account's own creation."""
        with self._transaction("the account changed meanwhile") as conn:
            account = self._require_account(conn, address)
            if keep_server_admin:
                keep_a_server_admin(conn, losing_role=[account.id])
            lock_mail_folders(conn, account_id=account.id)  # before the account row
            conn.execute(delete(accounts).where(accounts.c.id == account.id))
        return account

    def set_password(self, address: str, password: str, *,
                     keep_web_session: str | None = None) -> Account:
        """Replace the account's password (policy checked). Every webmail session
        opened with the old one ends in the same transaction (but `keep_web_session`,
        the one a user changed it from): a password reset after a theft must not leave
        the thief's session alive for up to [web] session_max."""
        account = self._require(address)
        check_password_policy(password, account.userid)
        hashed = self._passwords.hash(password)
        return self._update(account.address, _end_sessions=keep_web_session or True,
                            password_hash=hashed)

    def set_display_name(self, address: str, name: str) -> Account:
        """Change the account's display name (checked like at creation)."""
        return self._update(address, display_name=normalize_display_name(name))

    def set_quota(self, address: str, quota_bytes: int) -> Account:
        """Set the mailbox size limit in bytes; 0 is unlimited."""
        if quota_bytes < 0:
            raise InvalidName("quota cannot be negative (0 means unlimited)")
        return self._update(address, quota_bytes=quota_bytes)

    def set_receive_enabled(self, address: str, enabled: bool) -> Account:
        """Accept (True) or refuse with 550 (False) new mail for the account."""
        return self._update(address, receive_enabled=enabled)

    def set_login_enabled(self, address: str, enabled: bool) -> Account:
        """Allow or refuse logins (POP3, IMAP, SMTP AUTH, webmail); refused, the
        account's webmail sessions end with it, as set_enabled does."""
        return self.set_enabled(address, login=enabled)

    def set_enabled(
        self, address: str, *, receive: bool | None = None, login: bool | None = None
    ) -> Account:
        """Change receiving and/or logins in one transaction (None leaves one as it is)."""
        values: dict[str, Any] = {}  # Any: mypy would match bools to _update's _check
        if receive is not None:
            values["receive_enabled"] = receive
        if login is not None:
            values["login_enabled"] = login
        if not values:
            return self._require(address)
        # Logins turned off end the webmail sessions (turned on again, they stay dead);
        # not the last server administrator's who can log in (server_admins.py).
        return self._update(address, _end_sessions=login is False,
                            _check=_keep_login if login is False else None, **values)

    def set_admin(self, address: str, admin: bool) -> Account:
        """Make the account a domain administrator, or not."""
        return self._update(address, is_admin=admin)

    def set_roles(self, address: str, *, admin: bool, server_admin: bool) -> Account:
        """Set both administrator flags at once (domain: is_admin; server:
        is_server_admin). Refused (LastServerAdmin) when it would leave the server
        with no server administrator, or none who can log in (server_admins.py)."""

        def keep_one(conn: Connection, account: Account) -> None:
            if not server_admin:
                keep_a_server_admin(conn, losing_role=[account.id])

        return self._update(address, _check=keep_one, is_admin=admin,
                            is_server_admin=server_admin)

    def login_name(self, name: str, domain_hint: str | None = None) -> str:
        """The one spelling of the account a login name means (see directory.login)."""
        text = name.strip()
        with self._engine.connect() as conn:
            if "@" not in text:
                if not domain_hint or not text:
                    return text.lower()[:MAX_LOGIN_KEY]
                domain = _hinted_domain(conn, domain_hint)
                if domain is None:
                    return text.lower()[:MAX_LOGIN_KEY]
                text = f"{text}@{domain}"
            try:
                local, domain = split_address(normalize_address(text))
            except InvalidName:
                return text.lower()[:MAX_LOGIN_KEY]
            row = hosted_domain(conn, domain)
        return f"{local}@{row.name if row is not None else domain}"[:MAX_LOGIN_KEY]

    def authenticate(self, address: str, password: str) -> AuthResult:
        """Check a login; unknown users cost the same time as known ones."""
        account: Account | None = None
        stored_hash: str | None = None
        try:
            local, domain = split_address(normalize_address(address))
        except InvalidName:
            local = domain = ""
        if local and is_userid(local):
            with self._engine.connect() as conn:
                row = hosted_domain(conn, domain)
                if row is not None:
                    account, stored_hash = _account_and_hash(conn, row.id, local)
        if account is None or stored_hash is None:
            self._passwords.verify_dummy(password)
            return AuthResult(AuthStatus.BAD_CREDENTIALS)
        if not self._passwords.verify(stored_hash, password):
            return AuthResult(AuthStatus.BAD_CREDENTIALS)
        # Only someone who knows the password learns that logins are disabled.
        if not account.login_enabled:
            return AuthResult(AuthStatus.LOGIN_DISABLED)
        if self._passwords.needs_rehash(stored_hash):
            self._rehash(account.id, stored_hash, password)
        return AuthResult(AuthStatus.OK, account)

    def _rehash(self, account_id: int, old_hash: str, password: str) -> None:
        new_hash = self._passwords.hash(password)
        with self._engine.begin() as conn:
            # Guarded by the old hash so a password changed meanwhile wins.
            conn.execute(
                update(accounts)
                .where(accounts.c.id == account_id, accounts.c.password_hash == old_hash)
                .values(password_hash=new_hash)
            )

    def _require(self, address: str) -> Account:
        with self._engine.connect() as conn:
            return self._require_account(conn, address)

    def _require_account(self, conn: Connection, address: str) -> Account:
        normalized = normalize_address(address, require_dot=True)
        local, domain = split_address(normalized)
        row = hosted_domain(conn, domain)
        if row is None:
            raise NotFound(f"no such domain: {domain}")
        account = find_account(conn, row.id, local) if is_userid(local) else None
        if account is None:
            raise NotFound(f"no such account: {local}@{row.name}")
        return account

    def _update(self, address: str, _end_sessions: bool | str = False,
                _check: Callable[[Connection, Account], None] | None = None,
                **values: Any) -> Account:
        """Change the account row; `_end_sessions` True deletes its webmail sessions
        after it (account-level rows, the lock order's last), a string all but that one.
        `_check(conn, account)` may refuse the change first, in its transaction."""
        with self._transaction("the account changed meanwhile") as conn:
            account = self._require_account(conn, address)
            if _check is not None:
                _check(conn, account)
            conn.execute(update(accounts).where(accounts.c.id == account.id).values(**values))
            if _end_sessions:
                ended = web_sessions.c.account_id == account.id
                if isinstance(_end_sessions, str):
                    ended = ended & (web_sessions.c.id != _end_sessions)
                conn.execute(delete(web_sessions).where(ended))
            row = conn.execute(account_select().where(accounts.c.id == account.id)).one()
        return account_from_row(row)


def _keep_login(conn: Connection, account: Account) -> None:
    """Logins turned off: refused for the last server administrator who can log in."""
    keep_a_server_admin(conn, losing_login=[account.id])


def _hinted_domain(conn: Connection, hint: str) -> str | None:
    """The hosted domain a hint names: itself or its nearest hosted parent
    (the webmail's host name mail.example.com hints example.com)."""
    try:
        labels = normalize_domain(hint.strip(), require_dot=False).split(".")
    except InvalidName:
        return None
    for start in range(len(labels) - 1):
        row = hosted_domain(conn, ".".join(labels[start:]))
        if row is not None:
            return row.name
    return None


def _account_and_hash(
    conn: Connection, domain_id: int, userid: str
) -> tuple[Account | None, str | None]:
    row = conn.execute(
        account_select()
        .add_columns(accounts.c.password_hash)
        .where(accounts.c.domain_id == domain_id, accounts.c.userid == userid)
    ).first()
    if row is None:
        return None, None
    return account_from_row(row), str(row.password_hash)

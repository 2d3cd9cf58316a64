"""The typed async facade every route uses: core calls run in a thread pool.

Directory and mailstore code blocks (SQL, files, Argon2); none of it may run
on the event loop, or one slow page would stall every other user. Routes
call `await web.<method>(...)` and never touch the core directly, so when a
core API changes (the mailbox room's folders and moves, the services room's
login) only this module changes.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from typing import BinaryIO, ParamSpec, TypeVar

from nmail.accounts import AccountService, StoreMailboxes
from nmail.delivery.srs import load_secret
from nmail.directory.login import LoginService
from nmail.directory.login import LoginStatus as ServiceStatus
from nmail.directory.model import Account
from nmail.mailstore import folder_reads, thread_reads
from nmail.mailstore.model import FOLDERS, FolderInfo, MessageRow, SortKey
from nmail.mailstore.search import SearchHit, search
from nmail.mailstore.thread_reads import Conversation
from nmail.mailstore.uidset import UidSet
from nmail.web import index_reads
from nmail.web.backends import WebBackends
from nmail.web.change_watch import ChangeWatch
from nmail.web.event_streams import OpenStreams
from nmail.web.login_tokens import SECRET_FILE, LoginTokens
from nmail.web.prefs import Prefs, PrefsStore
from nmail.web.sessions import Session, SessionStore
from nmail.web.settings_facade import SettingsFacade

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")
MAX_LOGIN_DELAY = 4.0


class LoginStatus(Enum):
    OK = "ok"
    BAD = "bad"  # unknown user, wrong password, or a bare id on a host with no domain
    LOCKED = "locked"
    DISABLED = "disabled"
    FAILED = "failed"  # the directory did not answer
    BUSY = "busy"  # too many password checks at once: 503, try again in a moment


@dataclass(frozen=True, slots=True)
class LoginOutcome:
    status: LoginStatus
    account: Account | None = None
    delay: float = 0.0  # answer the failure only after this long


class WebFacade:
    def __init__(self, backends: WebBackends) -> None:
        self.backends = backends
        # The process's executor (web/context.py); a pool of our own only when none is given.
        self._own_pool = None if backends.executor else ThreadPoolExecutor(
            max_workers=8, thread_name_prefix="nmail-web")
        self._pool: Executor = backends.executor or self._own_pool  # type: ignore[assignment]
        self.sessions = SessionStore(backends.engine, backends.clock,
                                     backends.settings.session_idle,
                                     backends.settings.session_max)
        self._prefs = PrefsStore(backends.engine)
        # The login form's token (no session row before login: web/login_tokens.py).
        web_key = load_secret(backends.config.data_dir, SECRET_FILE)
        self.login_tokens = LoginTokens(web_key, backends.clock)
        self.notice_key = web_key  # the list's notices after an action (web/notices.py)
        self.image_key = web_key  # "show images" tokens, a label of their own (web/image_grant.py)
        # The process's one password gate (directory/login_gate.py), shared with
        # any other login service of this process.
        self._login_service = LoginService(backends.directory, backends.throttle,
                                           gate=backends.login_gate)
        self._accounts = AccountService(backends.directory, StoreMailboxes(backends.store),
                                        backends.config.mail_dir, login=self._login_service,
                                        clock=backends.clock)
        self.settings = SettingsFacade(backends, self.run)
        self.changes = ChangeWatch(backends, self.run)  # what /events waits on
        self.streams = OpenStreams()  # this process's /events streams (routes/events.py)
        self._ensured: set[int] = set()

    def close(self) -> None:
        if self._own_pool is not None:
            self._own_pool.shutdown(wait=False, cancel_futures=True)

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run blocking `fn` in the web pool (for facades of later rooms too)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    # -- sessions and login ----------------------------------------------------

    async def new_session(self, account_id: int | None, ip: str,
                          time_zone: str = "") -> tuple[str, Session]:
        return await self.run(self.sessions.create, account_id, ip, time_zone)

    async def load_session(self, token: str, touch: bool = True
                           ) -> tuple[Session | None, Account | None]:
        """The live session of a cookie token and its account, in one trip to the pool
        (`touch`: refresh its idle clock, as SessionStore.load)."""
        def read() -> tuple[Session | None, Account | None]:
            session = self.sessions.load(token, touch)
            if session is None or session.account_id is None:
                return session, None
            return session, self.backends.directory.get_account_by_id(session.account_id)
        return await self.run(read)

    async def end_session(self, session_id: str) -> None:
        await self.run(self.sessions.delete, session_id)
        self.streams.end_session(session_id)

    async def login(self, name: str, password: str, ip: str,
                    domain: str | None) -> LoginOutcome:
        """Through the one login service of every door (its throttle, its spellings).

        `domain` is the host's domain (web/access.py); it completes a bare id.
        """
        return await self.run(self._login, name, password, ip, domain)

    def _login(self, name: str, password: str, ip: str, domain: str | None) -> LoginOutcome:
        if not name.strip() or len(name) > 320 or not password:
            return LoginOutcome(LoginStatus.BAD)
        if "@" not in name and domain is None:
            # A bare id on a host that names no domain of ours: counted like any
            # failure, never completed with some other domain.
            name = name.strip() + "@invalid"
        result = self._login_service.login(name, password, ip, domain_hint=domain)
        if result.status is ServiceStatus.OK and result.account is not None:
            self._ensure(result.account)
            return LoginOutcome(LoginStatus.OK, result.account)
        status = {
            ServiceStatus.LOCKED_OUT: LoginStatus.LOCKED,
            ServiceStatus.DISABLED: LoginStatus.DISABLED,
            ServiceStatus.TEMPORARY: LoginStatus.FAILED,
            ServiceStatus.BUSY: LoginStatus.BUSY,
        }.get(result.status, LoginStatus.BAD)
        return LoginOutcome(status, delay=min(result.delay, MAX_LOGIN_DELAY))

    def _ensure(self, account: Account) -> None:
        if account.id not in self._ensured:
            self.backends.store.ensure_account(account)
            self._ensured.add(account.id)

    async def account(self, account_id: int) -> Account | None:
        return await self.run(self.backends.directory.get_account_by_id, account_id)

    async def change_password(self, account: Account, current: str, new: str,
                              ip: str, keep_session: str) -> None:
        """The account service's user change: `current` is checked as a login (throttled
        on the client's address and the account), so a stolen session cannot guess
        at full speed. CurrentPasswordRefused (with a delay) or WeakPassword."""
        await self.run(self._accounts.change_password, account.address, current, new, ip,
                       keep_session)

    async def revoke_other_sessions(self, account_id: int, keep: str) -> int:
        count = await self.run(self.sessions.delete_account_sessions, account_id, keep)
        self.streams.end_account(account_id, keep)
        return count

    async def load_session_by_id(self, session_id: str) -> bool | None:
        """True while the session row exists (the event stream checks revocation)."""
        def read() -> bool | None:
            from sqlalchemy import select

            from nmail.db.web_tables import web_sessions
            with self.backends.engine.connect() as conn:
                row = conn.execute(select(web_sessions.c.id)
                                   .where(web_sessions.c.id == session_id)).first()
            return True if row is not None else None
        return await self.run(read)

    async def contacts_matching(self, account_id: int, text: str,
                                limit: int = 10) -> list[tuple[str, str]]:
        """(name, address) from the address book for recipient completion (webmsg)."""
        return await self.run(self.settings.contacts.matching, account_id, text, limit)

    # -- start-up --------------------------------------------------------------

    def warm_up(self) -> None:
        """Run the list and read screens' queries once, on ids no row has, at start.

        SQLAlchemy compiles a statement the first time it runs (and the pool
        opens its connection): after a restart the first INBOX page cost
        40-130 ms against 4-11 ms for the next one (bench/webmail.py, a
        loaded 2-core machine), most of it that. Reads only; a failure here
        is logged and the requests compile what they need as before.
        """
        try:
            self.sessions.load("warm-up")
            self.backends.directory.get_account_by_id(0)
            self.backends.store.list_folders(0)
            with self.backends.engine.connect() as conn:
                folder_reads.page(conn, 0, "date", True, 0, 50)
                folder_reads.location(conn, 0, 1)
                index_reads.rows_by_uid(conn, 0, [1])
                thread_reads.conversation_page(conn, 0, 0, 50)
                thread_reads.conversation_count(conn, 0)
        except Exception:
            log.exception("web warm-up failed (the first requests compile their queries)")

    # -- preferences ---------------------------------------------------------

    async def prefs(self, account_id: int) -> Prefs:
        return await self.run(self._prefs.get, account_id)

    async def update_prefs(self, account_id: int, **changes: object) -> Prefs:
        return await self.run(functools.partial(self._prefs.update, account_id, **changes))

    # -- folders and listing -------------------------------------------------

    async def folder_tree(self, account_id: int) -> list[FolderInfo]:
        """Every folder with its kept counts (unseen_count, message_count): one SELECT."""
        return await self.run(self.backends.store.list_folders, account_id)

    async def folder(self, account_id: int, folder_id: int) -> FolderInfo | None:
        """The folder if it is this account's, else None."""
        def read() -> FolderInfo | None:
            folders = self.backends.store.list_folders(account_id)
            return next((f for f in folders if f.id == folder_id), None)
        return await self.run(read)

    async def folder_named(self, account_id: int, name: str) -> FolderInfo:
        return await self.run(self.backends.store.folder, account_id, name)

    async def folder_page(self, account_id: int, folder_id: int, sort: SortKey,
                          descending: bool, limit: int, offset: int
                          ) -> tuple[list[FolderInfo], FolderInfo | None, list[MessageRow]]:
        """The folder tree, the folder (None if not this account's) and one page of it."""
        def read() -> tuple[list[FolderInfo], FolderInfo | None, list[MessageRow]]:
            tree = self.backends.store.list_folders(account_id)
            folder = next((f for f in tree if f.id == folder_id), None)
            if folder is None:
                return tree, None, []
            with self.backends.engine.connect() as conn:
                rows = folder_reads.page(conn, folder.id, sort, descending, offset, limit)
            return tree, folder, rows
        return await self.run(read)

    async def rows(self, folder: FolderInfo, uids: list[int]) -> list[MessageRow]:
        def read() -> list[MessageRow]:
            with self.backends.engine.connect() as conn:
                return index_reads.rows_by_uid(conn, folder.id, uids)
        return await self.run(read)

    async def folder_conversations(
        self, account_id: int, folder_id: int, limit: int, offset: int
    ) -> tuple[list[FolderInfo], FolderInfo | None, list[Conversation], int]:
        """The folder tree, the folder (None if not this account's), one page of its
        conversations (newest activity first) and how many it has."""
        def read() -> tuple[list[FolderInfo], FolderInfo | None, list[Conversation], int]:
            tree = self.backends.store.list_folders(account_id)
            folder = next((f for f in tree if f.id == folder_id), None)
            if folder is None:
                return tree, None, [], 0
            with self.backends.engine.connect() as conn:
                page = thread_reads.conversation_page(conn, folder.id, offset, limit)
                total = thread_reads.conversation_count(conn, folder.id)
            return tree, folder, page, total
        return await self.run(read)

    async def thread(self, account_id: int, folder: FolderInfo, thread_id: str
                     ) -> tuple[str, list[tuple[int, MessageRow]]]:
        """One conversation, oldest first, as (folder id, message): its messages in
        `folder`, and around them those in the account's other folders but Trash,
        Spam and Drafts (your replies in Sent). Empty when `folder` has none.

        Returned with the conversation's current id: when `thread_id` has no
        messages here because it was merged into another conversation
        (thread_reads.merged_thread_id, this account's links only), that one's."""
        def read() -> tuple[str, list[tuple[int, MessageRow]]]:
            with self.backends.engine.connect() as conn:
                current = thread_id
                own = thread_reads.thread_messages(conn, folder.id, current)
                if not own:
                    merged = thread_reads.merged_thread_id(conn, account_id, thread_id)
                    if merged is None:
                        return thread_id, []
                    current = merged
                    own = thread_reads.thread_messages(conn, folder.id, current)
                    if not own:
                        return thread_id, []
                found = [(folder.id, row) for row in own] + [
                    (fid, row) for fid, row in thread_reads.account_thread_messages(
                        conn, account_id, current) if fid != folder.id]
            return current, sorted(found, key=lambda item: (item[1].date,
                                                            item[0] != folder.id, item[1].uid))
        return await self.run(read)

    async def thread_uids(self, folder: FolderInfo, uids: list[int]) -> list[int]:
        """Every UID of the folder in the conversations of `uids` (a conversation row's
        action applies to all its messages here)."""
        def read() -> list[int]:
            with self.backends.engine.connect() as conn:
                return index_reads.thread_uids(conn, folder.id, uids)
        return await self.run(read)

    async def search(self, account_id: int, query: str, folder_id: int | None,
                     fields: tuple[str, ...], limit: int, offset: int) -> list[SearchHit]:
        """Full-text search (mailstore/search.py); QueryError carries a message for the user."""
        return await self.run(functools.partial(
            search, self.backends.engine, account_id, query, folder_id=folder_id,
            fields=fields, limit=limit, offset=offset))

    async def read_message(self, account_id: int, folder: str, uid: int) -> bytes | None:
        return await self.run(self.backends.store.read_message, account_id, folder, uid)

    async def open_message(self, account_id: int, folder: str, uid: int) -> BinaryIO | None:
        """The message's file opened for reading (the caller closes it), None if gone."""
        opened: BinaryIO | None = await self.run(self.backends.store.open_message,
                                                 account_id, folder, uid)
        return opened

    # -- changes -------------------------------------------------------------

    async def set_flags(self, account_id: int, folder: str, uids: Iterable[int],
                        add: frozenset[str] = frozenset(),
                        remove: frozenset[str] = frozenset()) -> None:
        await self.run(self.backends.store.set_flags, account_id, folder, list(uids), add, remove)

    async def move(self, account: Account, source: str, uids: list[int], target: str) -> int:
        """Move messages between two folders of the account; returns how many moved."""
        return await self.run(self._move, account, source, uids, target)

    def _move(self, account: Account, source: str, uids: list[int], target: str) -> int:
        # One operation of the index writer: atomic, UIDL kept (mailstore FolderView).
        view = self.backends.store.open_folder(account.id, source)
        wanted = [u for u in uids if 0 < u < view.info.next_uid]
        if not wanted:
            return 0
        result = view.move(UidSet.of(wanted), target)
        return len(result.pairs)

    async def delete(self, account: Account, folder: str, uids: list[int]) -> int:
        """To Trash; in Trash (and Spam emptied) for good."""
        if folder == "Trash":
            return await self.run(self.backends.store.expunge, account.id, folder, uids)
        return await self.move(account, folder, uids, "Trash")

    async def empty(self, account_id: int, folder: str) -> int:
        def work() -> int:
            view = self.backends.store.open_folder(account_id, folder)
            uids = view.uids()
            return len(view.expunge(UidSet.of(uids))) if uids else 0
        return await self.run(work)

    async def create_folder(self, account_id: int, name: str) -> FolderInfo:
        """StoreError subclasses (BadFolderName, FolderExists...) say why not."""
        return await self.run(self.backends.store.create_folder, account_id, name)

    async def rename_folder(self, account_id: int, name: str, new_name: str) -> None:
        await self.run(self.backends.store.rename_folder, account_id, name, new_name)

    async def set_subscribed(self, account_id: int, name: str, subscribed: bool) -> None:
        """The mailbox model's subscription (IMAP's LSUB list too); NoSuchFolder if gone."""
        await self.run(self.backends.store.subscribe, account_id, name, subscribed)

    async def delete_folder(self, account_id: int, name: str) -> None:
        """Its messages and subfolders go too (the page asked the user first)."""
        await self.run(functools.partial(self.backends.store.delete_folder, account_id, name,
                                         force=True))


SPECIAL_FOLDERS = FOLDERS

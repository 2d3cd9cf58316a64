"""The settings screens' facade: account, reject list, delivery rules, address book.

Like WebFacade (whose `run` it uses), every call runs the blocking core code
in the process executor; routes reach it as `web.settings`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from nmail.directory.accounts import normalize_display_name
from nmail.directory.mail_rules import MailRules, MailRulesStore, Vacation
from nmail.directory.model import Account
from nmail.web.backends import WebBackends
from nmail.web.contacts_store import Contact, ContactsStore

P = ParamSpec("P")
T = TypeVar("T")
Runner = Callable[..., Awaitable[Any]]


class SettingsFacade:
    def __init__(self, backends: WebBackends, run: Runner) -> None:
        self._b = backends
        self._run = run
        self.rules = MailRulesStore(backends.engine, backends.clock)
        self.contacts = ContactsStore(backends.engine, backends.clock)

    async def _call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        result: T = await self._run(fn, *args, **kwargs)
        return result

    # -- account ---------------------------------------------------------------

    async def set_display_name(self, account: Account, name: str) -> Account:
        """DirectoryError (one line for the user) when the name is refused."""
        def change() -> Account:
            directory: Any = self._b.directory
            setter = getattr(directory, "set_display_name", None)
            if callable(setter):  # the services room's account API, once it has one
                changed: Account = setter(account.address, name)
                return changed
            updated: Account = directory._update(account.address,
                                                 display_name=normalize_display_name(name))
            return updated
        return await self._call(change)

    # -- reject list -------------------------------------------------------------

    async def rejects(self, account: Account) -> list[str]:
        return await self._call(self._b.directory.list_rejects, account.address)

    async def add_reject(self, account: Account, pattern: str) -> str:
        return await self._call(self._b.directory.add_reject, account.address, pattern)

    async def delete_reject(self, account: Account, pattern: str) -> None:
        await self._call(self._b.directory.delete_reject, account.address, pattern)

    # -- forwarding and vacation ---------------------------------------------------

    async def mail_rules(self, account_id: int) -> MailRules:
        return await self._call(self.rules.get, account_id)

    async def vacation_settings(self, account_id: int) -> tuple[bool, Vacation]:
        return await self._call(self.rules.vacation_settings, account_id)

    async def set_forwarding(self, account_id: int, targets: tuple[str, ...],
                             keep: bool) -> None:
        await self._call(self.rules.set_forwarding, account_id, targets, keep)

    async def set_vacation(self, account_id: int, on: bool, vacation: Vacation) -> None:
        await self._call(self.rules.set_vacation, account_id, on, vacation)

    # -- address book -------------------------------------------------------------

    async def contact_list(self, account_id: int, group: str = "",
                           text: str = "") -> list[Contact]:
        return await self._call(self.contacts.entries, account_id, group, text)

    async def contact(self, account_id: int, contact_id: int) -> Contact | None:
        return await self._call(self.contacts.get, account_id, contact_id)

    async def contact_groups(self, account_id: int) -> list[str]:
        return await self._call(self.contacts.groups, account_id)

    async def save_contact(self, account_id: int, contact: Contact) -> int:
        return await self._call(self.contacts.save, account_id, contact)

    async def delete_contacts(self, account_id: int, ids: list[int]) -> int:
        return await self._call(self.contacts.delete, account_id, ids)

    async def import_contacts(self, account_id: int, data: bytes) -> tuple[int, int]:
        return await self._call(self.contacts.import_file, account_id, data)

    async def export_contacts(self, account_id: int, kind: str) -> str:
        if kind == "vcf":
            return await self._call(self.contacts.export_vcard, account_id)
        return await self._call(self.contacts.export_csv, account_id)

"""The account lifecycle for every door: create, delete, settings (accounts.service)."""

from nmail.accounts.service import (
    AccountService,
    CurrentPasswordRefused,
    DeletedAccount,
    NewAccount,
    StoreMailboxes,
)

__all__ = [
    "AccountService",
    "CurrentPasswordRefused",
    "DeletedAccount",
    "NewAccount",
    "StoreMailboxes",
]

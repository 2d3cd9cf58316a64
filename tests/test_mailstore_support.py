"""Shared pieces of the mailstore and dbsync tests (no tests here).

Accounts are inserted with plain SQL: these tests are about the mail store,
and password hashing would only slow them down.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select

from nmail.db.tables import accounts, domains, folders, messages
from nmail.directory.model import Account
from nmail.mailstore import layout
from nmail.mailstore.store import MailStore, NewMessage

HOST = "mx.example.test"


def make_account(engine: Engine, userid: str = "alice", domain: str = "example.test") -> Account:
    with engine.begin() as conn:
        row = conn.execute(select(domains.c.id).where(domains.c.name == domain)).first()
        if row is None:
            domain_id = conn.execute(
                insert(domains).values(name=domain, created_at=int(time.time()))
            ).inserted_primary_key[0]
        else:
            domain_id = row[0]
        account_id = conn.execute(
            insert(accounts).values(
                domain_id=domain_id, userid=userid, display_name=userid.title(),
                password_hash="x", quota_bytes=0, is_admin=False, is_server_admin=False,
                receive_enabled=True, login_enabled=True, created_at=int(time.time()),
            )
        ).inserted_primary_key[0]
    return Account(
        id=int(account_id), domain=domain, userid=userid, display_name=userid.title(),
        quota_bytes=0, is_admin=False, is_server_admin=False, receive_enabled=True,
        login_enabled=True,
    )


def message(subject: str = "hello", *, date: str | None = "Tue, 01 Jul 2025 10:00:00 +0000",
            body: str = "Hi there.\r\n", sender: str = "Bob <bob@sender.test>") -> bytes:
    lines = [f"From: {sender}", "To: alice@example.test", f"Subject: {subject}",
             f"Message-ID: <{subject.replace(' ', '.')}@sender.test>"]
    if date is not None:
        lines.append(f"Date: {date}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def trace(n: int = 0) -> bytes:
    return (
        f"Return-Path: <bob@sender.test>\r\nDelivered-To: alice@example.test\r\n"
        f"Received: from sender.test by {HOST} id {n}; Tue, 01 Jul 2025 10:00:00 +0000\r\n"
    ).encode()


def new(account: Account, folder: str = "INBOX", subject: str = "hello", **kw: Any) -> NewMessage:
    content = kw.pop("content", None) or message(subject, **{k: kw.pop(k) for k in list(kw)
                                                              if k in ("date", "body")})
    return NewMessage(account, folder, kw.pop("prefix", trace()), content, **kw)


def maildir(root: Path, account: Account) -> Path:
    return root / account.domain / account.userid / "Maildir"


def folder_dir(root: Path, account: Account, name: str) -> Path:
    return layout.folder_dir(maildir(root, account), name)


def entries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def message_rows(engine: Engine, account: Account) -> list[dict[str, Any]]:
    """Every messages row of the account (without ids), ordered by folder name and UID."""
    cols = [c for c in messages.c if c.name not in ("id", "folder_id")]
    with engine.connect() as conn:
        rows = conn.execute(
            select(folders.c.name, *cols)
            .join(folders, folders.c.id == messages.c.folder_id)
            .where(folders.c.account_id == account.id)
            .order_by(folders.c.name, messages.c.uid)
        ).mappings().all()
    return [dict(r) for r in rows]


def folder_rows(engine: Engine, account: Account) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(folders).where(folders.c.account_id == account.id)
        ).mappings().all()
    return {r["name"]: {k: v for k, v in r.items() if k != "id"} for r in rows}


@pytest.fixture
def mail_root(tmp_path: Path) -> Path:
    return tmp_path / "mail"


@pytest.fixture
def store(engine: Engine, mail_root: Path) -> Iterator[MailStore]:
    s = MailStore(engine, mail_root, HOST)
    yield s
    s.close()


@pytest.fixture
def alice(engine: Engine) -> Account:
    return make_account(engine)

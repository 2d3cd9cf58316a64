from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, delete, func, insert, inspect, select
from sqlalchemy.exc import IntegrityError

from databases import sqlite_url
from nmail.db.engine import make_engine
from nmail.db.migrate import downgrade, upgrade
from nmail.db.tables import (
    accounts,
    domains,
    folder_threads,
    folders,
    messages,
    metadata,
    thread_links,
)
from nmail.db.web_tables import web_sessions


def test_migrations_create_every_table(engine: Engine) -> None:
    names = set(inspect(engine).get_table_names())
    assert {t.name for t in metadata.sorted_tables} <= names


def test_migrations_downgrade_and_upgrade_again(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        downgrade(engine, "base")
        assert "messages" not in inspect(engine).get_table_names()
        upgrade(engine)
        assert "messages" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def _add_account(conn: Connection, domain_id: int, userid: str) -> int:
    row = conn.execute(insert(accounts).values(
        domain_id=domain_id, userid=userid, password_hash="x", created_at=0))
    return int(row.inserted_primary_key[0])


def _add_folder(conn: Connection, account_id: int, name: str) -> int:
    row = conn.execute(insert(folders).values(
        account_id=account_id, name=name, uidvalidity=1))
    return int(row.inserted_primary_key[0])


def test_sqlite_ids_are_never_reused_and_the_rebuild_keeps_every_row(tmp_path: Path) -> None:
    """0012 rebuilds domains/accounts/folders with AUTOINCREMENT; no child row is lost."""
    engine = make_engine(sqlite_url(tmp_path))
    try:
        upgrade(engine, "0011")
        with engine.begin() as conn:
            dom = int(conn.execute(insert(domains).values(
                name="test.local", created_at=0)).inserted_primary_key[0])
            ids = [_add_account(conn, dom, u) for u in ("a", "b", "c")]
            folder = _add_folder(conn, ids[1], "INBOX")
            conn.execute(insert(messages).values(
                folder_id=folder, uid=1, modseq=1, filename="m1", size=10,
                internal_date=0, date=0))
            conn.execute(insert(web_sessions).values(
                id="s" * 64, account_id=ids[1], csrf="c", created_at=0, last_seen=0))
        # Before 0012 SQLite hands a deleted id out again (what 0012 is for).
        with engine.begin() as conn:
            conn.execute(delete(accounts).where(accounts.c.id == ids[2]))
            assert _add_account(conn, dom, "c2") == ids[2]

        upgrade(engine)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.scalar(select(func.count()).select_from(messages)) == 1
            assert conn.scalar(select(web_sessions.c.account_id)) == ids[1]
            assert conn.scalar(select(folders.c.account_id)) == ids[1]
            assert sorted(conn.scalars(select(accounts.c.id))) == ids
            for table in ("domains", "accounts", "folders"):
                sql = conn.exec_driver_sql(
                    "SELECT sql FROM sqlite_master WHERE name = ?", (table,)).scalar()
                assert "AUTOINCREMENT" in str(sql), table

        with engine.begin() as conn:
            conn.execute(delete(accounts).where(accounts.c.id == ids[2]))
            again = _add_account(conn, dom, "c3")
            assert again > ids[2]
            # Deleting a folder and an account cascades as before, and their ids stay used.
            conn.execute(delete(folders).where(folders.c.id == folder))
            assert conn.scalar(select(func.count()).select_from(messages)) == 0
            assert _add_folder(conn, ids[0], "INBOX") > folder
            conn.execute(delete(accounts).where(accounts.c.id == ids[1]))
            assert conn.scalar(select(func.count()).select_from(web_sessions)) == 0
            conn.execute(delete(domains))
            assert int(conn.execute(insert(domains).values(
                name="test.local", created_at=0)).inserted_primary_key[0]) > dom

        downgrade(engine, "0011")
        with engine.connect() as conn:
            sql = conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = 'accounts'").scalar()
            assert "AUTOINCREMENT" not in str(sql)
    finally:
        engine.dispose()


def test_sqlite_thread_tables_lose_their_rowid_and_keep_every_row(tmp_path: Path) -> None:
    """0016 rebuilds thread_links and folder_threads WITHOUT ROWID; rows, keys and
    the cascade from their parents stay."""
    engine = make_engine(sqlite_url(tmp_path))

    def table_sql(conn: Connection, name: str) -> str:
        return str(conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE name = ?", (name,)).scalar())

    try:
        upgrade(engine, "0015")
        with engine.begin() as conn:
            dom = int(conn.execute(insert(domains).values(
                name="test.local", created_at=0)).inserted_primary_key[0])
            acc = _add_account(conn, dom, "a")
            folder = _add_folder(conn, acc, "INBOX")
            conn.execute(insert(thread_links), [
                {"account_id": acc, "link_key": f"{i:016x}", "thread_id": "t1"}
                for i in range(3)])
            conn.execute(insert(folder_threads).values(
                folder_id=folder, thread_id="t1", latest_date=5))
        upgrade(engine)
        with engine.begin() as conn:
            for table in ("thread_links", "folder_threads"):
                assert "WITHOUT ROWID" in table_sql(conn, table), table
            assert conn.scalar(select(func.count()).select_from(thread_links)) == 3
            assert conn.execute(select(folder_threads)).all() == [(folder, "t1", 5)]
            with pytest.raises(IntegrityError), conn.begin_nested():  # the key still holds
                conn.execute(insert(thread_links).values(
                    account_id=acc, link_key=f"{0:016x}", thread_id="t2"))
            conn.execute(delete(accounts).where(accounts.c.id == acc))
            assert conn.scalar(select(func.count()).select_from(thread_links)) == 0
            assert conn.scalar(select(func.count()).select_from(folder_threads)) == 0
        downgrade(engine, "0015")
        with engine.connect() as conn:
            assert "WITHOUT ROWID" not in table_sql(conn, "thread_links")
    finally:
        engine.dispose()


def test_messages_lose_the_two_indexes_no_query_uses_and_downgrade_makes_them(
        db_url: str) -> None:
    """0018 drops ix_messages_folder_filename and ix_messages_folder_sysflags (on
    every database; MariaDB keeps the folder key's foreign key on another index)."""
    engine = make_engine(db_url)
    dropped = {"ix_messages_folder_filename", "ix_messages_folder_sysflags"}

    def names() -> set[str]:
        return {str(ix["name"]) for ix in inspect(engine).get_indexes("messages")}

    try:
        assert not dropped & names() and "ix_messages_folder_modseq" in names()
        downgrade(engine, "0017")
        assert dropped <= names()
        upgrade(engine)
        assert not dropped & names() and "ix_messages_thread" in names()
        assert {fk["referred_table"] for fk in inspect(engine).get_foreign_keys("messages")} == {
            "folders"}
    finally:
        engine.dispose()

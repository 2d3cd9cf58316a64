"""`nmail dbsync` mends (or rebuilds) the search index of the accounts it synced."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, update

from cli_admin_support import Cli, make_cli
from nmail.db.tables import message_search
from nmail.directory import Directory
from nmail.mailstore.search import search
from nmail.mailstore.store import MailStore, NewMessage
from test_mailstore_support import message, trace


@pytest.fixture
def cli(tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> Cli:
    return make_cli(tmp_path, db_url, capsys, monkeypatch)


def _rows(cli: Cli) -> int:
    engine = cli.engine()
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(message_search)).scalar()
                       or 0)
    finally:
        engine.dispose()


def test_dbsync_rebuilds_a_lost_search_index(cli: Cli) -> None:
    engine = cli.engine()
    try:
        directory = Directory(engine)
        directory.add_domain("example.com")
        ann = directory.add_account("example.com", "Ann", "ann", "secret-pass1")
        store = MailStore(engine, cli.data_dir / "mail", "mail.example.com")
        try:
            store.store([NewMessage(ann, "INBOX", trace(), message(s, body="회의록을 보냅니다\r\n"))
                         for s in ("one", "two")])
        finally:
            store.close()
    finally:
        engine.dispose()
    out = cli.ok("dbsync", "ALL")
    assert "search index: 2 messages indexed" in out
    assert _rows(cli) == 2
    engine = cli.engine()
    try:
        with engine.begin() as conn:
            conn.execute(delete(message_search))
        assert search(engine, ann.id, "회의") == []
        out = cli.ok("dbsync", "ann@example.com")
        assert "search index: 2 messages indexed" in out
        assert [hit.uid for hit in search(engine, ann.id, "회의")] == [2, 1]
    finally:
        engine.dispose()


def test_dbsync_indexes_only_what_is_missing_or_stale(cli: Cli) -> None:
    engine = cli.engine()
    try:
        directory = Directory(engine)
        directory.add_domain("example.com")
        ann = directory.add_account("example.com", "Ann", "ann", "secret-pass1")
        store = MailStore(engine, cli.data_dir / "mail", "mail.example.com")
        try:
            store.store([NewMessage(ann, "INBOX", trace(), message(s, body=f"{w}\r\n"))
                         for s, w in (("one", "apples"), ("two", "pears"), ("three", "plums"))])
        finally:
            store.close()
        assert "search index: 3 messages indexed\n" in cli.ok("dbsync", "ALL")
        # Nothing missing: no message file is read again.
        assert "search index: 0 messages indexed\n" in cli.ok("dbsync", "ALL")
        with engine.connect() as conn:
            ids = sorted(conn.execute(select(message_search.c.message_id)).scalars())
        with engine.begin() as conn:
            conn.execute(delete(message_search).where(message_search.c.message_id == ids[0]))
            # A row made for another message (as an id handed out again would leave it).
            conn.execute(update(message_search).where(message_search.c.message_id == ids[1])
                         .values(folder_id=message_search.c.folder_id + 1000))
        out = cli.ok("dbsync", "ann@example.com")
        assert "search index: 2 messages indexed (1 had a row made for another message)" in out
        assert [hit.uid for hit in search(engine, ann.id, "apples")] == [1]
        assert [hit.uid for hit in search(engine, ann.id, "pears")] == [2]
        assert "search index: 0 messages indexed\n" in cli.ok("dbsync", "ALL")
        assert "search index: 3 messages indexed\n" in cli.ok("dbsync", "ALL",
                                                              "--rebuild-search")
        assert [hit.uid for hit in search(engine, ann.id, "plums")] == [3]
    finally:
        engine.dispose()

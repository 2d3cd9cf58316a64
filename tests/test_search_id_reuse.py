"""The search follower never gives a message another message's index row.

On SQLite a message id is handed out again when the newest message is
expunged (INTEGER PRIMARY KEY without AUTOINCREMENT). The follower reads a
batch of messages, then works out their terms (the files: the slow part)
and inserts the rows; a message expunged meanwhile, and its id taken by a
delivery, must not leave its terms on the newcomer, which would then be
found by the old message's words and never indexed for its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from nmail.directory.model import Account
from nmail.mailstore.search import search
from nmail.mailstore.search_indexer import SearchIndexer
from nmail.mailstore.store import MailStore, NewMessage
from test_mailstore_support import alice, mail_root, store, trace

__all__ = ["alice", "mail_root", "store"]  # fixtures


def _mail(subject: str, word: str) -> bytes:
    return (f"From: bob@sender.test\r\nTo: alice@example.test\r\nSubject: {subject}\r\n"
            f"\r\n{word}\r\n").encode()


def test_an_id_handed_out_again_meanwhile_gets_no_stale_row(
    engine: Engine, store: MailStore, alice: Account, mail_root: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store.ensure_account(alice)

    def put(subject: str, word: str) -> int:
        [stored] = store.store([NewMessage(alice, "INBOX", trace(), _mail(subject, word))])
        return stored.uid

    put("first", "oranges")
    newest = put("second", "apricots")
    indexer = SearchIndexer(engine, mail_root)
    real = indexer._terms

    def racing(row: Any, folder_dir: Path | None) -> list[str]:
        terms = real(row, folder_dir)
        if row.subject == "second":  # expunged and replaced while its terms are made
            store.expunge(alice.id, "INBOX", [newest])
            put("third", "bananas")
        return terms

    monkeypatch.setattr(indexer, "_terms", racing)
    indexer.catch_up()
    monkeypatch.setattr(indexer, "_terms", real)
    indexer.catch_up()

    def found(word: str) -> list[int]:
        return [hit.uid for hit in search(engine, alice.id, word)]

    assert found("apricots") == []
    assert found("bananas") == [3]
    assert found("oranges") == [1]

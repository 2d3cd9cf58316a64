"""The search follower: woken by the change feed, it indexes what was just committed."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from nmail.directory.model import Account
from nmail.mailstore.feed_hub import FeedHub
from nmail.mailstore.search import search
from nmail.mailstore.search_follower import SearchFollower
from nmail.mailstore.search_indexer import SearchIndexer
from nmail.mailstore.store import MailStore, NewMessage
from support import wait_until
from test_mailstore_support import HOST, make_account, message, trace


@pytest.fixture
def rig(engine: Engine, tmp_path: Path) -> Iterator[tuple[MailStore, Account]]:
    address = f"\0nmail-feed-test-{secrets.token_hex(8)}"
    hub = FeedHub(address)
    store = MailStore(engine, tmp_path / "mail", HOST, on_commit=hub.publish)
    # An interval far beyond the test's deadlines: only the feed can wake it in time.
    follower = SearchFollower(SearchIndexer(engine, tmp_path / "mail"), address,
                              interval=3600)
    account = make_account(engine)
    store.ensure_account(account)
    yield store, account
    follower.close()
    store.close()
    hub.close()


def _found(engine: Engine, account: Account, query: str, want: list[int]) -> bool:
    """True once the search answers `want` (AssertionError after 20 s)."""
    wait_until(lambda: [hit.uid for hit in search(engine, account.id, query)] == want, 20,
               f"{query!r} finds {want}")
    return True


def test_a_delivery_is_searchable_moments_after_its_commit(
    engine: Engine, rig: tuple[MailStore, Account]
) -> None:
    store, account = rig
    store.store([NewMessage(account, "INBOX", trace(), message("first", body="견적서 첨부\r\n"))])
    assert _found(engine, account, "견적", [1])
    store.store([NewMessage(account, "INBOX", trace(), message("second", body="견적 다시\r\n"))])
    assert _found(engine, account, "견적", [2, 1])
    store.expunge(account.id, "INBOX", [1])
    assert _found(engine, account, "견적", [2])


def test_another_account_and_folders_are_indexed_too(
    engine: Engine, rig: tuple[MailStore, Account]
) -> None:
    store, account = rig
    other = make_account(engine, "carol")
    store.ensure_account(other)
    store.store([NewMessage(other, "Sent", trace(), message("quarterly numbers"))])
    assert _found(engine, other, "quarterly", [1])
    assert _found(engine, account, "quarterly", [])


def test_steady_commits_are_indexed_within_the_longest_wait(
    engine: Engine, tmp_path: Path
) -> None:
    # A pause the commits never make (an hour): only `longest` ends the wait.
    address = f"\0nmail-feed-test-{secrets.token_hex(8)}"
    hub = FeedHub(address)
    store = MailStore(engine, tmp_path / "mail", HOST, on_commit=hub.publish)
    follower = SearchFollower(SearchIndexer(engine, tmp_path / "mail"), address,
                              interval=3600, quiet=3600, longest=0.5)
    try:
        account = make_account(engine)
        store.ensure_account(account)
        store.store([NewMessage(account, "INBOX", trace(), message("견적서 steady"))])
        assert _found(engine, account, "steady", [1])  # perhaps by the catch-up at start
        store.store([NewMessage(account, "INBOX", trace(), message("견적서 steady again"))])
        assert _found(engine, account, "steady", [2, 1])  # only by the event and the cap
    finally:
        follower.close()
        store.close()
        hub.close()

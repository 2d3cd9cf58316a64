"""Two nodes on one PostgreSQL database see each other's changes (LISTEN/NOTIFY)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from nmail.db.engine import make_engine
from nmail.mailstore import feed_postgres
from nmail.mailstore.feed import Resync, ThreadFeed
from nmail.mailstore.feed_hub import FeedHub
from nmail.mailstore.feed_node import open_hub, open_publisher
from nmail.mailstore.feed_postgres import PostgresRelay
from nmail.mailstore.feed_wire import Change
from support import wait_until


@pytest.fixture
def pg_url(db_url: str) -> str:
    if not db_url.startswith("postgresql"):
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    return db_url


class _Node:
    def __init__(self, tmp: Path, url: str) -> None:
        self.address = f"\0nmail-feed-test-{secrets.token_hex(8)}"
        hub = open_hub(tmp, url, address=self.address)
        assert hub is not None
        self.hub: FeedHub = hub
        self.feed = ThreadFeed(self.address)
        relay = hub._relay
        assert isinstance(relay, PostgresRelay)
        self.relay = relay
        wait_until(relay.listening.is_set, what="LISTEN")

    def close(self) -> None:
        self.feed.close()
        self.hub.close()


@pytest.fixture
def nodes(tmp_path: Path, pg_url: str) -> Iterator[tuple[_Node, _Node]]:
    a, b = _Node(tmp_path / "a", pg_url), _Node(tmp_path / "b", pg_url)
    # b announced itself when it reached the database; a, already listening, heard it.
    wait_until(lambda: a.relay.resyncs_heard >= 1, what="b's announcement")
    yield a, b
    a.close()
    b.close()


def _drain(sub: object, wait: float = 0.3) -> list[object]:
    got = []
    while (event := sub.get(wait)) is not None:  # type: ignore[attr-defined]
        got.append(event)
    return got


def test_each_node_sees_the_other_nodes_commits_once(nodes: tuple[_Node, _Node]) -> None:
    a, b = nodes
    on_a, on_b = a.feed.subscribe(1), b.feed.subscribe(1)
    _drain(on_a, 0.1)  # a Resync from LISTEN starting after the subscription, if any
    _drain(on_b, 0.1)
    a.hub.publish_changes([Change(1, 10, "INBOX", 5, "deliver")])
    b.hub.publish_changes([Change(1, 11, "보낸편지함", 3, "flags")])
    assert sorted(_drain(on_a), key=repr) == sorted(
        [Change(1, 10, "INBOX", 5, "deliver"), Change(1, 11, "보낸편지함", 3, "flags")], key=repr)
    assert sorted(_drain(on_b), key=repr) == sorted(
        [Change(1, 10, "INBOX", 5, "deliver"), Change(1, 11, "보낸편지함", 3, "flags")], key=repr)


def test_a_cli_commit_reaches_every_node(nodes: tuple[_Node, _Node], pg_url: str,
                                         tmp_path: Path) -> None:
    a, b = nodes
    on_a, on_b = a.feed.subscribe(2), b.feed.subscribe(2)
    _drain(on_a, 0.1)
    _drain(on_b, 0.1)

    class FolderChange:
        account_id, folder_id, folder, highest_modseq, kind = 2, 20, "Trash", 9, "expunge"

    publisher = open_publisher(tmp_path / "cli", pg_url)
    try:
        publisher.publish([FolderChange()])
    finally:
        publisher.close()
    assert _drain(on_a, 2) == [Change(2, 20, "Trash", 9, "expunge")]
    assert _drain(on_b, 2) == [Change(2, 20, "Trash", 9, "expunge")]


def test_a_broken_listen_connection_makes_everyone_resync(nodes: tuple[_Node, _Node],
                                                          pg_url: str) -> None:
    a, _ = nodes
    sub = a.feed.subscribe(3)
    _drain(sub, 0.1)
    engine = make_engine(pg_url)
    try:
        with engine.begin() as conn:
            killed = conn.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE query LIKE 'LISTEN nmail_feed%' AND datname = current_database()"
            )).scalar()
        assert killed == 2
    finally:
        engine.dispose()
    assert sub.get(10) == Resync(3, {}, "lost")


def test_a_hub_that_starts_makes_the_other_nodes_resync(nodes: tuple[_Node, _Node],
                                                        tmp_path: Path, pg_url: str) -> None:
    """A writer restarted after a crash is a new hub: what the dead one committed
    but never announced is not silently lost on the other nodes."""
    a, _ = nodes
    sub = a.feed.subscribe(4)
    _drain(sub, 0.1)
    restarted = _Node(tmp_path / "restarted", pg_url)
    try:
        assert sub.get(10) == Resync(4, {}, "lost")
        assert restarted.relay.announced.wait(10)
    finally:
        restarted.close()


def test_changes_the_database_refused_make_the_other_nodes_resync(
        nodes: tuple[_Node, _Node], tmp_path: Path, pg_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    a, _ = nodes
    sub = a.feed.subscribe(5)
    _drain(sub, 0.1)
    real_connect = feed_postgres._connect
    refused: list[str] = []

    def refusing(info: str) -> object:
        if not refused or refused[-1] != "open":
            refused.append("refused")
            raise OSError("the database refuses us")
        return real_connect(info)

    monkeypatch.setattr(feed_postgres, "_connect", refusing)
    monkeypatch.setattr(feed_postgres, "RETRY_FIRST", 0.01)
    monkeypatch.setattr(feed_postgres, "RETRY_MAX", 0.05)
    cli = PostgresRelay(pg_url)
    try:
        cli.send([Change(5, 50, "INBOX", 7, "deliver")])
        wait_until(lambda: cli._owe_resync, what="the sender to give up")
        assert _drain(sub, 0.2) == []  # the change is lost for now ...
        refused.append("open")
        # ... and the next send that gets through (a retry of its own here, no
        # change needed) tells every other node to resync.
        assert sub.get(10) == Resync(5, {}, "lost")
        assert cli.announced.wait(10)
    finally:
        cli.close()


def test_a_resync_notice_is_not_taken_for_a_change() -> None:
    from nmail.mailstore.feed_wire import WireError, parse_change

    with pytest.raises(WireError):
        parse_change(feed_postgres.RESYNC)

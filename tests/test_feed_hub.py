"""The change feed over real sockets: hub, thread and asyncio subscribers, losses, restarts."""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import Iterator

import pytest

from nmail.mailstore.feed import AsyncFeed, Resync, ThreadFeed
from nmail.mailstore.feed_fanout import QUEUE_LIMIT
from nmail.mailstore.feed_hub import MAX_PENDING, FeedHub, FeedPublisher
from nmail.mailstore.feed_wire import SECRET_NAME, Change, feed_address
from support import new_loop, wait_until


def _address() -> str:
    return f"\0nmail-feed-test-{secrets.token_hex(8)}"


def _change(account: int = 1, folder: int = 10, modseq: int = 2, kind: str = "deliver",
            name: str = "INBOX") -> Change:
    return Change(account, folder, name, modseq, kind)


@pytest.fixture
def address() -> str:
    return _address()


@pytest.fixture
def hub(address: str) -> Iterator[FeedHub]:
    hub = FeedHub(address)
    yield hub
    hub.close()


@pytest.fixture
def feed(address: str) -> Iterator[ThreadFeed]:
    feed = ThreadFeed(address)
    yield feed
    feed.close()


def test_a_subscriber_gets_the_changes_of_its_account_only(hub: FeedHub, feed: ThreadFeed) -> None:
    mine = feed.subscribe(1)
    folder = feed.subscribe(1, folder_id=11)
    other = feed.subscribe(2)
    hub.publish_changes([_change(1, 10, 5), _change(2, 20, 7), _change(1, 11, 3, "flags",
                                                                       "거래처/2026 x")])
    assert mine.get(5) == _change(1, 10, 5)
    assert mine.get(5) == _change(1, 11, 3, "flags", "거래처/2026 x")
    assert folder.get(5) == _change(1, 11, 3, "flags", "거래처/2026 x")
    assert other.get(5) == _change(2, 20, 7)
    assert mine.get(0.05) is None and folder.get(0.05) is None and other.get(0.05) is None


def test_the_commit_hook_form_takes_folder_changes(hub: FeedHub, feed: ThreadFeed) -> None:
    class FolderChange:  # the shape of commit_hook.FolderChange
        account_id = 4
        folder_id = 40
        folder = "Sent"
        highest_modseq = 9
        kind = "append"

    sub = feed.subscribe(4)
    hub.publish([FolderChange()])
    assert sub.get(5) == Change(4, 40, "Sent", 9, "append")


def test_a_slow_subscriber_gets_one_resync_instead_of_unbounded_memory(
    hub: FeedHub, feed: ThreadFeed
) -> None:
    sub = feed.subscribe(1)
    keeping_up = feed.subscribe(1, folder_id=99)
    hub.publish_changes([_change(modseq=2)])
    assert sub.get(5) == _change(modseq=2)
    for modseq in range(3, 3 + QUEUE_LIMIT * 3):
        hub.publish_changes([_change(modseq=modseq)])
    last = 2 + QUEUE_LIMIT * 3
    hub.publish_changes([_change(folder=99, modseq=1)])
    assert keeping_up.get(5) == _change(folder=99, modseq=1)
    assert len(sub._queue.events) <= QUEUE_LIMIT
    event = sub.get(5)
    assert event == Resync(1, {10: 2}, "slow")
    # Then the events that came after the loss, up to the newest.
    rest = []
    while (nxt := sub.get(0.2)) is not None:
        rest.append(nxt)
    assert rest and rest[-1] == _change(folder=99, modseq=1)
    assert len(rest) <= QUEUE_LIMIT
    # And then it is a subscriber like any other.
    hub.publish_changes([_change(modseq=last + 1)])
    assert sub.get(5) == _change(modseq=last + 1)


def test_a_process_that_stops_reading_is_dropped_not_buffered(hub: FeedHub, address: str,
                                                              feed: ThreadFeed) -> None:
    stuck = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.connect(address)
    stuck.sendall(b"S\n")
    healthy = feed.subscribe(1)
    wait_until(lambda: len(hub._subscribers) == 2, what="both subscribed")
    batch = [_change(modseq=modseq) for modseq in range(2, 502)]
    for _ in range(2000):  # up to ~20 MB: far past the hub's bound for one process
        hub.publish_changes(batch)
        if len(hub._subscribers) == 1:
            break
    assert len(hub._subscribers) == 1  # the stuck one went
    assert sum(len(p) for p in hub._pending.values()) <= MAX_PENDING
    stuck.close()
    hub.publish_changes([_change(modseq=50_000)])
    # The healthy one kept up, or was told to resync; it is still subscribed either way.
    seen = []
    while (event := healthy.get(5)) is not None:
        seen.append(event)
        if event == _change(modseq=50_000):
            break
    assert seen[-1] == _change(modseq=50_000)


def test_after_the_hub_restarts_every_subscription_resyncs(address: str,
                                                           feed: ThreadFeed) -> None:
    first = FeedHub(address)
    sub = feed.subscribe(1)
    first.publish_changes([_change(modseq=7)])
    assert sub.get(5) == _change(modseq=7)
    first.close()
    second = FeedHub(address)
    try:
        assert sub.get(10) == Resync(1, {10: 7}, "reconnected")
        second.publish_changes([_change(modseq=8)])
        assert sub.get(5) == _change(modseq=8)
    finally:
        second.close()


def test_subscribing_before_the_hub_is_up_starts_with_a_resync(address: str,
                                                               feed: ThreadFeed) -> None:
    sub = feed.subscribe(1, wait=0.05)
    hub = FeedHub(address)
    try:
        assert sub.get(10) == Resync(1, {}, "reconnected")
        hub.publish_changes([_change(modseq=3)])
        assert sub.get(5) == _change(modseq=3)
    finally:
        hub.close()


def test_a_hub_that_lost_events_tells_everyone_to_resync(hub: FeedHub,
                                                         feed: ThreadFeed) -> None:
    sub = feed.subscribe(3)
    hub.resync_all()
    assert sub.get(5) == Resync(3, {}, "lost")


def test_another_process_publishes_through_the_hub(hub: FeedHub, address: str,
                                                   feed: ThreadFeed) -> None:
    sub = feed.subscribe(1)
    publisher = FeedPublisher(address)
    try:
        publisher.publish([_commit(1, 10, 4, "expunge")])
        assert sub.get(5) == _change(modseq=4, kind="expunge")
    finally:
        publisher.close()


def test_publishing_with_no_hub_is_quiet(address: str) -> None:
    publisher = FeedPublisher(address)
    publisher.publish([_commit(1, 10, 4, "expunge")])  # nothing listens: no error
    publisher.close()


@pytest.mark.parametrize("garbage", [
    b"P 1 2\n",
    b"P x 2 3 deliver INBOX\n",
    b"Z\n",
    b"\xff\xfe\n",
    b"P 1 2 3 DELIVER INBOX\n",
    b"P 99999999999999999999 2 3 deliver INBOX\n",
    b"A" * 10_000,
])
def test_bad_lines_change_nothing_and_the_hub_keeps_serving(
    hub: FeedHub, address: str, feed: ThreadFeed, garbage: bytes
) -> None:
    sub = feed.subscribe(1)
    bad = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    bad.connect(address)
    bad.sendall(garbage)
    bad.close()
    hub.publish_changes([_change(modseq=12)])
    assert sub.get(5) == _change(modseq=12)
    assert sub.get(0.1) is None


def test_a_closed_subscription_returns_none(hub: FeedHub, feed: ThreadFeed) -> None:
    sub = feed.subscribe(1)
    sub.close()
    hub.publish_changes([_change()])
    assert sub.get(0.1) is None


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
def test_asyncio_subscribers(hub: FeedHub, address: str, loop_kind: str) -> None:
    async def scenario() -> list[object]:
        feed = AsyncFeed(address)
        try:
            async with await feed.subscribe(1) as sub:
                hub.publish_changes([_change(modseq=2), _change(2, 20, 3)])
                got: list[object] = [await sub.get(5)]
                hub.publish_changes([_change(modseq=4, kind="flags")])
                async for event in sub:
                    got.append(event)
                    break
                got.append(await sub.get(0.05))
                return got
        finally:
            await feed.close()

    loop = new_loop(loop_kind)
    try:
        got = loop.run_until_complete(scenario())
    finally:
        loop.close()
    assert got == [_change(modseq=2), _change(modseq=4, kind="flags"), None]


def test_asyncio_subscriber_resyncs_after_a_hub_restart(address: str) -> None:
    async def scenario() -> object:
        hub = FeedHub(address)
        feed = AsyncFeed(address)
        try:
            sub = await feed.subscribe(5)
            hub.publish_changes([_change(5, 50, 6)])
            assert await sub.get(5) == _change(5, 50, 6)
            hub.close()
            hub = FeedHub(address)
            return await sub.get(10)
        finally:
            await feed.close()
            hub.close()

    assert asyncio.run(scenario()) == Resync(5, {50: 6}, "reconnected")


def test_each_data_directory_has_its_own_address(tmp_path: object) -> None:
    from pathlib import Path

    base = Path(str(tmp_path))
    for name in ("a", "b", "x"):
        (base / name).mkdir(mode=0o700)
    first = feed_address(base / "a")
    assert first != feed_address(base / "b")
    assert first == feed_address(base / "x" / ".." / "a") == feed_address(base / "a")
    assert first.startswith("\0nmail-feed-")
    secret = base / "a" / SECRET_NAME
    assert secret.stat().st_mode & 0o777 == 0o600 and len(secret.read_bytes()) == 64
    # Knowing the path is not enough to compute the name: it depends on the secret.
    secret.write_bytes(b"0" * 64)
    assert feed_address(base / "a") != first
    # Without a data directory (not made yet) the path alone names it, the same each time.
    assert feed_address(base / "none") == feed_address(base / "none")
    assert not (base / "none").exists()


def _commit(account: int, folder: int, modseq: int, kind: str) -> object:
    class FolderChange:
        pass

    change = FolderChange()
    change.account_id = account  # type: ignore[attr-defined]
    change.folder_id = folder  # type: ignore[attr-defined]
    change.folder = "INBOX"  # type: ignore[attr-defined]
    change.highest_modseq = modseq  # type: ignore[attr-defined]
    change.kind = kind  # type: ignore[attr-defined]
    return change

"""Change feed latency: from a commit to a subscriber's event, p50/p99, against polling.

    python bench/feed.py [--messages 2000] [--senders 8] [--poll-ms 100]

A mail store commits deliveries from `--senders` threads (each message
alone, as SMTP sessions do; the writer groups what arrives together); its
commit hook stamps each change (CLOCK_MONOTONIC, shared by all processes)
and hands it to a feed hub. A subscriber in another process (asyncio with
uvloop, as IMAP IDLE and the web process run) stamps each event as it
arrives. The latency of a change is the difference.

The peer is what a webmail without a feed does: poll the folder's
HIGHESTMODSEQ every `--poll-ms` (the ratio is how much sooner the feed
tells). `run()` is importable, for bench/mailstore.py.

Prints figures only; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import secrets
import tempfile
import threading
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

from sqlalchemy import select

from benchlib import bench_account, percentiles_ms
from nmail.db.engine import make_engine
from nmail.db.migrate import upgrade
from nmail.db.tables import folders
from nmail.mailstore.feed import AsyncFeed, Change
from nmail.mailstore.feed_hub import FeedHub
from nmail.mailstore.store import MailStore, NewMessage

MESSAGE = (b"From: a@remote.example\r\nTo: bench@example.test\r\nSubject: feed\r\n\r\n"
           b"Hello.\r\n")


def _subscriber(address: str, account_id: int, ready: Any, out: Pipe, quiet: float) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    async def listen() -> list[tuple[int, int, float]]:
        feed = AsyncFeed(address)
        sub = await feed.subscribe(account_id)
        ready.set()
        got: list[tuple[int, int, float]] = []
        while (event := await sub.get(quiet)) is not None:
            if isinstance(event, Change):
                got.append((event.folder_id, event.modseq, time.monotonic()))
        await feed.close()
        return got

    out.send(asyncio.run(listen()))
    out.close()


def run(messages: int = 2000, senders: int = 8, poll_ms: float = 100.0) -> dict[str, float]:
    """Deliver `messages`; p50/p99 (ms) of commit -> feed event and commit -> poll."""
    root = Path(tempfile.mkdtemp(prefix="nmail-bench-feed-", dir="/var/tmp"))
    engine = make_engine(f"sqlite:///{root / 'index.sqlite3'}")
    upgrade(engine)
    address = f"\0nmail-bench-feed-{secrets.token_hex(8)}"
    hub = FeedHub(address)
    committed: dict[tuple[int, int], float] = {}

    def stamp(changes: Sequence[Any]) -> None:
        now = time.monotonic()
        for change in changes:
            committed[(change.folder_id, change.highest_modseq)] = now
        hub.publish(changes)

    store = MailStore(engine, root / "mail", "bench.example.test", on_commit=stamp)
    account = bench_account(engine)
    store.ensure_account(account)
    inbox = store.folder(account.id, "INBOX").id

    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_subscriber, args=(address, account.id, ready, send, 2.0))
    child.start()
    ready.wait(60)

    polled: dict[int, float] = {}
    done = threading.Event()

    def poll() -> None:
        with engine.connect() as conn:
            while not done.is_set():
                modseq = conn.execute(select(folders.c.highest_modseq)
                                      .where(folders.c.id == inbox)).scalar_one()
                conn.rollback()
                polled.setdefault(int(modseq), time.monotonic())
                time.sleep(poll_ms / 1000)

    def deliver(count: int) -> None:
        for _ in range(count):
            store.store([NewMessage(account, "INBOX", b"", MESSAGE)])

    poller = threading.Thread(target=poll)
    poller.start()
    threads = [threading.Thread(target=deliver, args=(messages // senders,))
               for _ in range(senders)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - start
    time.sleep(poll_ms / 1000 * 2)
    done.set()
    poller.join()
    events = receive.recv()
    child.join(30)
    store.close()
    hub.close()
    engine.dispose()

    feed = [at - committed[(folder, modseq)] for folder, modseq, at in events
            if (folder, modseq) in committed]
    # A poll sees a commit when it first reads a modseq at or above it.
    seen = sorted(polled.items())
    poll_latency = []
    for (folder, modseq), at in committed.items():
        if folder == inbox:
            first = next((t for m, t in seen if m >= modseq and t >= at), None)
            if first is not None:
                poll_latency.append(first - at)
    f50, f99 = percentiles_ms(feed)
    p50, p99 = percentiles_ms(poll_latency)
    return {"commits": len(committed), "events": len(feed), "rate": messages / elapsed,
            "feed_p50": f50, "feed_p99": f99, "poll_p50": p50, "poll_p99": p99}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--poll-ms", type=float, default=100.0)
    args = parser.parse_args()
    r = run(args.messages, args.senders, args.poll_ms)
    print(f"{r['commits']:.0f} commits ({r['rate']:.0f} msg/s from {args.senders} senders), "
          f"{r['events']:.0f} events received")
    print(f"commit -> feed event:  p50 {r['feed_p50']:7.2f} ms   p99 {r['feed_p99']:7.2f} ms"
          "   (target p99 <= 20 ms)")
    print(f"commit -> poll ({args.poll_ms:.0f} ms): p50 {r['poll_p50']:7.2f} ms   "
          f"p99 {r['poll_p99']:7.2f} ms")
    print(f"feed is {r['poll_p50'] / r['feed_p50']:.0f}x sooner than polling at p50")


if __name__ == "__main__":
    main()

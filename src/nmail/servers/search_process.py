"""The search process: the search index's follower in a process of its own, at a low priority.

Indexing a delivered message for full-text search (its text, the terms,
the FTS insert) costs about a third of what delivering it does. As a thread
of worker 0 it took that worker's GIL from its SMTP sessions and its CPU
from the delivery path: measured with bench/smtp_inbound.py (5,000
messages, two workers), worker 0 spent 0.54-0.65 ms of CPU per message on
the follower's thread, on top of the ~0.75 ms the SMTP workers and the
index writer spend, and inbound throughput fell from 2.16-2.47x Postfix to
1.43x.

So `nmail serve` with workers (or the web process) forks it into a
companion process the supervisor keeps like a worker, niced by NICENESS:
while the machine is busy with deliveries the kernel gives the delivery
path the CPU first, and the follower takes what is left. It also waits
for a pause in the commits (SearchFollower) and so indexes a burst after
it, in large (so cheaper) batches. Its work is never part of a `250`. The
cost is the search index's lag: a burst is searchable a moment after it
ends, steady traffic within seconds. A lower priority still would let a
machine saturated for long leave search far behind; niceness 10 (a tenth
of the share of a normal process, not Unix's idle 19) keeps that bounded.

With `--workers 1` and no web listener, `nmail serve` is one process and
the follower stays a thread in it (runtime.start_search_indexer).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Any

from nmail.config import Config
from nmail.servers import heap

NICENESS = 10


def serve_search(config: Config, worker: Any) -> int:
    """Keep the search index caught up until SIGTERM (the supervisor's stop)."""
    from nmail.db.engine import make_engine
    from nmail.mailstore.feed_wire import feed_address
    from nmail.mailstore.search_follower import SearchFollower
    from nmail.mailstore.search_indexer import SearchIndexer

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor stops it
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # nothing to reload
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    try:
        engine = make_engine(config.database_url)
        follower = SearchFollower(SearchIndexer(engine, config.mail_dir),
                                  feed_address(config.data_dir))
    except Exception as exc:
        worker.failed(f"search process: {exc}")
        return 1
    try:
        worker.ready()
        heap.settle()
        stop.wait()
    finally:
        follower.close()
        engine.dispose()
    return 0

"""What one node runs for the change feed, chosen by its database.

The process that commits for `nmail serve` opens the hub (`open_hub`);
any other process that commits (the CLI) opens a publisher
(`open_publisher`). With PostgreSQL both also talk to the other nodes
through LISTEN/NOTIFY (feed_postgres); with SQLite or MariaDB there is one
node, and the hub alone.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy.engine import make_url

from nmail.mailstore.feed_hub import FeedHub, FeedPublisher
from nmail.mailstore.feed_postgres import PostgresRelay
from nmail.mailstore.feed_wire import feed_address

log = logging.getLogger(__name__)


def _is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def open_hub(data_dir: Path, database_url: str, *, address: str | None = None) -> FeedHub | None:
    """This node's hub, or None (logged) if another process holds its address."""
    try:
        hub = FeedHub(address or feed_address(data_dir))
    except OSError as exc:
        log.error("change feed: cannot listen (%s); subscribers will not be told of changes",
                  exc)
        return None
    if _is_postgres(database_url):
        hub.set_relay(PostgresRelay(
            database_url,
            origin=hub.hub_id,
            on_remote=lambda changes: hub.publish_changes(changes, relay=False),
            on_lost=hub.resync_all,
        ))
    return hub


def open_publisher(data_dir: Path, database_url: str, *,
                   address: str | None = None) -> FeedPublisher:
    """The commit hook of a process that is not the hub's (the CLI)."""
    relay = PostgresRelay(database_url) if _is_postgres(database_url) else None
    return FeedPublisher(address or feed_address(data_dir), relay)

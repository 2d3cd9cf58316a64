"""The web app's own tables: sessions, preferences, image senders, address book.

Only web/ reads and writes them (web/sessions.py, prefs.py, image_senders.py,
contacts_store.py); no door of the mail engine and no core room looks at
them. Apart from tables.py (the mail engine's schema) so each schema keeps
its room; defined on the same `metadata`, which tables.py hands out only
after importing this module, so Alembic and the tests' truncation
always see every table.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Index, Integer, String, Table, Text

from nmail.db.metadata import metadata

# Webmail sessions (web/sessions.py). The cookie carries a random token; only
# its SHA-256 is stored, so a leaked table does not log anyone in. A row is
# the whole session: deleting it (logout, password change, admin) revokes it.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id", String(64), primary_key=True),  # sha256 hex of the cookie token
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=True),
    Column("csrf", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("last_seen", BigInteger, nullable=False),
    Column("client_ip", String(64), nullable=False, default=""),
    # The browser's IANA zone sent with the login form ("" if it sent none).
    Column("time_zone", String(64), nullable=False, server_default=""),
    Index("ix_web_sessions_account", "account_id"),
    Index("ix_web_sessions_last_seen", "last_seen"),
)

# Per-account webmail preferences that only the web app reads.
web_prefs = Table(
    "web_prefs",
    metadata,
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"),
           primary_key=True, autoincrement=False),
    Column("language", String(8), nullable=False, default=""),  # "" = from the browser
    Column("signature", Text, nullable=False, default=""),
    Column("page_size", Integer, nullable=False, default=50),
    Column("threads", Boolean, nullable=False, default=False),  # conversation view
    # IANA zone for every date shown; "" = the browser's (then the server's).
    Column("time_zone", String(64), nullable=False, server_default=""),
)

# Senders whose remote images a webmail user always wants shown ("always for this
# sender"); the address is stored lower case.
web_image_senders = Table(
    "web_image_senders",
    metadata,
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"),
           primary_key=True),
    Column("address", String(320), primary_key=True),
    Column("created_at", BigInteger, nullable=False),
)


# The webmail's address book; `groups` is a comma-separated list of group names.
contacts = Table(
    "contacts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False, default=""),
    Column("email", String(320), nullable=False),
    Column("phone", String(64), nullable=False, default=""),
    Column("company", String(200), nullable=False, default=""),
    Column("groups", String(400), nullable=False, default=""),
    Column("note", Text, nullable=False, default=""),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_contacts_account_email", "account_id", "email"),
)

"""The SQL schema, as SQLAlchemy Core tables.

Times are integer Unix seconds (portable and cheap to index on every
database). Text that is indexed has a bounded length so MariaDB can index it.

Domains, accounts and folders use AUTOINCREMENT on SQLite: without it SQLite
hands a deleted row's id to the next insert, and a session, cache or link
that still holds the old id would then act on the new owner's row.
PostgreSQL sequences and MariaDB AUTO_INCREMENT never go back (MariaDB
10.2.4+ keeps the counter across restarts).

The web app's own tables (sessions, preferences, the address book) are in
web_tables.py; both modules define their tables on the one `metadata`
(metadata.py).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.mysql import MEDIUMTEXT
from sqlalchemy.dialects.postgresql import TSVECTOR

# The whole schema's MetaData (Alembic's target, the tests' truncation):
# importing it from here also registers the web app's tables (web_tables.py).
import nmail.db.web_tables  # noqa: F401
from nmail.db.metadata import metadata as metadata

# The outbound queue's tables live in their own room (queue_tables.py); named here too.
from nmail.db.queue_tables import queue_messages as queue_messages
from nmail.db.queue_tables import queue_recipients as queue_recipients

domains = Table(
    "domains",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(253), nullable=False, unique=True),
    # Address (local or external) that receives mail for unknown local parts.
    Column("catchall", String(320), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    sqlite_autoincrement=True,
)

domain_aliases = Table(
    "domain_aliases",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(253), nullable=False, unique=True),
    Column("domain_id", Integer, ForeignKey("domains.id", ondelete="CASCADE"), nullable=False),
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("domain_id", Integer, ForeignKey("domains.id", ondelete="CASCADE"), nullable=False),
    Column("userid", String(64), nullable=False),
    Column("display_name", String(200), nullable=False, default=""),
    Column("password_hash", String(255), nullable=False),
    Column("quota_bytes", BigInteger, nullable=False, default=0),  # 0 = unlimited
    Column("is_admin", Boolean, nullable=False, default=False),  # domain administrator
    Column("is_server_admin", Boolean, nullable=False, default=False),  # postmaster
    Column("receive_enabled", Boolean, nullable=False, default=True),
    Column("login_enabled", Boolean, nullable=False, default=True),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("domain_id", "userid"),
    sqlite_autoincrement=True,
)

aliases = Table(
    "aliases",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("domain_id", Integer, ForeignKey("domains.id", ondelete="CASCADE"), nullable=False),
    Column("local_part", String(64), nullable=False),
    Column("target", String(320), nullable=False),
    UniqueConstraint("domain_id", "local_part", "target"),
)

relay_networks = Table(
    "relay_networks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("cidr", String(64), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
)

# A user's reject list: senders (address, or @domain) refused at RCPT.
reject_senders = Table(
    "reject_senders",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("pattern", String(320), nullable=False),
    UniqueConstraint("account_id", "pattern"),
)

# Addresses (or @domain) an admin lets an account use as sender, besides
# its own address and its aliases (directory/send_as.py).
send_as = Table(
    "send_as",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("address", String(320), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("account_id", "address"),
)

# One row (id 1): a number every directory change bumps in its own
# transaction, so caches of directory answers (per process, per node) know in
# one cheap read whether anything changed since they were filled.
directory_generation = Table(
    "directory_generation",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("generation", BigInteger, nullable=False),
)

# Failed logins per client IP or account ("ip:..." / "account:..."), shared by
# every process and node so a guesser meets one throttle (directory.throttle).
# Times in integer milliseconds; `failures` lists those inside the window.
login_failures = Table(
    "login_failures",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("failures", String(400), nullable=False),
    Column("last_failure", BigInteger, nullable=False),
    Column("locked_until", BigInteger, nullable=False),
)

folders = Table(
    "folders",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    # The API name: "/" between levels, Unicode ("INBOX", "거래처/2026"); on disk
    # Maildir++ ".거래처.2026" in IMAP modified UTF-7 (mailstore/folder_names.py).
    Column("name", String(255), nullable=False),
    Column("role", String(16), nullable=True),  # special use: \Sent \Drafts \Trash \Junk \Archive
    Column("uidvalidity", BigInteger, nullable=False),
    Column("next_uid", BigInteger, nullable=False, default=1),
    Column("highest_modseq", BigInteger, nullable=False, default=1),
    # Rows with modseq <= names_modseq have file names that carry their index
    # flags; above it a flag change's renames may still be pending (op_flags).
    Column("names_modseq", BigInteger, nullable=False, default=0, server_default="0"),
    # Counters kept by every write in its own transaction: a folder list never counts rows.
    Column("message_count", Integer, nullable=False, default=0),
    Column("unseen_count", Integer, nullable=False, default=0, server_default="0"),
    Column("total_size", BigInteger, nullable=False, default=0),
    Column("subscribed", Boolean, nullable=False, default=True),
    UniqueConstraint("account_id", "name"),
    sqlite_autoincrement=True,
)

messages = Table(
    "messages",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("folder_id", Integer, ForeignKey("folders.id", ondelete="CASCADE"), nullable=False),
    Column("uid", BigInteger, nullable=False),
    Column("modseq", BigInteger, nullable=False),
    # Maildir base name: everything before ':2,' (the flags are in `flags`).
    Column("filename", String(255), nullable=False),
    Column("in_new", Boolean, nullable=False, default=True),
    # IMAP flags as text (system flags and keywords, space separated, sorted) and
    # the system flags again as bits (names.SYSTEM_BITS) for indexes and counts.
    Column("flags", String(255), nullable=False, default=""),
    Column("sysflags", Integer, nullable=False, default=0, server_default="0"),
    # The MODSEQ the message got when it entered this folder ("new" in changes since).
    Column("created_modseq", BigInteger, nullable=False, default=0, server_default="0"),
    Column("size", BigInteger, nullable=False),
    Column("internal_date", BigInteger, nullable=False),
    Column("date", BigInteger, nullable=False),
    Column("from_name", String(255), nullable=False, default=""),
    Column("from_addr", String(320), nullable=False, default=""),
    Column("to_addrs", Text, nullable=False, default=""),
    Column("cc_addrs", Text, nullable=False, default=""),
    Column("subject", String(998), nullable=False, default=""),
    Column("message_id", String(255), nullable=False, default=""),
    Column("in_reply_to", String(255), nullable=False, default=""),
    Column("thread_id", String(64), nullable=False, default=""),
    Column("has_attachments", Boolean, nullable=False, default=False),
    Column("preview", String(255), nullable=False, default=""),
    # Sort keys short enough for an index on MariaDB (indexrow.sort_keys).
    Column("subject_sort", String(100), nullable=False, default="", server_default=""),
    Column("from_sort", String(100), nullable=False, default="", server_default=""),
    # Whether a line of the file starts with "." (POP3 must dot-stuff it when it
    # sends the file); NULL for rows from before (taken as true: stuffed).
    Column("dot_lines", Boolean, nullable=True),
    UniqueConstraint("folder_id", "uid"),
    Index("ix_messages_folder_date", "folder_id", "date"),
    # One index per sort of a folder page (id breaks ties) and changes since a
    # MODSEQ. No index on file names or flag bits: no query reads through them (0018).
    Index("ix_messages_folder_arrival", "folder_id", "internal_date", "id"),
    Index("ix_messages_folder_size", "folder_id", "size", "id"),
    Index("ix_messages_folder_from", "folder_id", "from_sort", "id"),
    Index("ix_messages_folder_subject", "folder_id", "subject_sort", "id"),
    Index("ix_messages_folder_modseq", "folder_id", "modseq"),
    # A conversation's messages in a folder, and its newest date (folder_threads).
    Index("ix_messages_thread", "folder_id", "thread_id", "date"),
)

# Conversations (mailstore/thread_index.py). A thread id is per account: every
# msg-id key a message of the account named (its own, In-Reply-To, References)
# points to the conversation it joined, so a reply and its parent meet in
# whichever order they arrive, and a message naming two conversations merges them.
thread_links = Table(
    "thread_links",
    metadata,
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"),
           primary_key=True, autoincrement=False),
    Column("link_key", String(16), primary_key=True),
    Column("thread_id", String(64), nullable=False),
    Index("ix_thread_links_thread", "account_id", "thread_id"),
    sqlite_with_rowid=False,  # one b-tree, not a rowid table and its key's index (0016)
)

# Accounts whose links predate thread_sweep.py and still want one sweep: filled
# once by migration 0019, emptied by the start-up sweep (thread_sweep.sweep_pending)
# or `nmail dbsync`, a row at a time as each account is done.
thread_link_sweeps = Table(
    "thread_link_sweeps",
    metadata,
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"),
           primary_key=True, autoincrement=False),
)

# One row per conversation with messages in a folder and its newest message's
# date: the conversation list is a walk of ix_folder_threads_latest, as the
# message list is one of ix_messages_folder_date. Kept by every write that adds
# or removes messages (thread_index.refresh), in the same transaction.
folder_threads = Table(
    "folder_threads",
    metadata,
    Column("folder_id", Integer, ForeignKey("folders.id", ondelete="CASCADE"),
           primary_key=True, autoincrement=False),
    Column("thread_id", String(64), primary_key=True),
    Column("latest_date", BigInteger, nullable=False),
    Index("ix_folder_threads_latest", "folder_id", "latest_date", "thread_id"),
    sqlite_with_rowid=False,  # (0016)
)

# Full-text search (mailstore/search*.py): a message's search terms, its row
# going with the message. SQLite searches it through the FTS5 table
# `message_fts` (external content, triggers), PostgreSQL through a GIN index
# on the tsvector, MariaDB through a FULLTEXT index: made by migration 0005.
# account_id and folder_id are the message's (a message row never changes
# folder); PostgreSQL and MariaDB index them with message_id (migration 0014)
# to walk an account's or folder's newest rows first.
message_search = Table(
    "message_search",
    metadata,
    Column(
        "message_id",
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("messages.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column(
        "terms",
        Text().with_variant(TSVECTOR(), "postgresql").with_variant(MEDIUMTEXT(), "mysql"),
        nullable=False,
    ),
    Column("account_id", Integer, nullable=False, server_default="0"),
    Column("folder_id", Integer, nullable=False, server_default="0"),
)

# How far the search indexer has read each folder (its HIGHESTMODSEQ then).
search_folders = Table(
    "search_folders",
    metadata,
    Column("folder_id", Integer, ForeignKey("folders.id", ondelete="CASCADE"),
           primary_key=True, autoincrement=False),
    Column("indexed_modseq", BigInteger, nullable=False),
)

# What an expunge leaves behind: the UID and the MODSEQ of its removal, so
# "changes since" can say which UIDs vanished (QRESYNC). Pruned after
# MailStore's tombstone_days.
message_tombstones = Table(
    "message_tombstones",
    metadata,
    Column("folder_id", Integer, ForeignKey("folders.id", ondelete="CASCADE"),
           primary_key=True),
    Column("uid", BigInteger, primary_key=True, autoincrement=False),
    Column("modseq", BigInteger, nullable=False),
    Column("expunged_at", BigInteger, nullable=False),
    Index("ix_message_tombstones_folder_modseq", "folder_id", "modseq"),
)

# Remote refusals the outbound queue met, classified (nmail.bounce.outbound_log).
# Kept apart from the queue rows, which are purged after [queue] keep_finished.
bounce_events = Table(
    "bounce_events",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("occurred_at", BigInteger, nullable=False),
    Column("queue_id", String(40), nullable=False),
    Column("recipient", String(320), nullable=False),
    Column("domain", String(253), nullable=False),
    Column("category", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("reply", String(1000), nullable=False),
    Column("remote_host", String(255), nullable=True),
    Column("permanent", Boolean, nullable=False),
    Index("ix_bounce_events_occurred_at", "occurred_at"),
)

dkim_keys = Table(
    "dkim_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("domain_id", Integer, ForeignKey("domains.id", ondelete="CASCADE"), nullable=False),
    Column("selector", String(63), nullable=False),
    Column("private_key", LargeBinary, nullable=False),  # PEM
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("domain_id", "selector"),
)

# A user's own delivery rules (directory/mail_rules.py), applied by delivery:
# forward to other addresses (keeping a copy or not) and a vacation reply.
mail_rules = Table(
    "mail_rules",
    metadata,
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"),
           primary_key=True, autoincrement=False),
    Column("forward_to", Text, nullable=False, default=""),  # addresses, one per line
    Column("forward_keep", Boolean, nullable=False, default=True),
    Column("vacation_on", Boolean, nullable=False, default=False),
    Column("vacation_subject", String(200), nullable=False, default=""),
    Column("vacation_body", Text, nullable=False, default=""),
    Column("vacation_days", Integer, nullable=False, default=7),
    Column("vacation_until", BigInteger, nullable=False, default=0),  # 0 = until turned off
)

# Who got a vacation reply when: one reply per sender per N days.
vacation_replies = Table(
    "vacation_replies",
    metadata,
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"),
           primary_key=True, autoincrement=False),
    Column("sender", String(320), primary_key=True),
    Column("sent_at", BigInteger, nullable=False),
)

"""From message bytes to the index columns of a `messages` row."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nmail.mime.summary import MessageSummary

log = logging.getLogger(__name__)

# Column limits of `messages` (tables.py); Text columns get a generous cap so
# one absurd header cannot blow MariaDB's 64 KB TEXT.
_LIMITS = {
    "from_name": 255,
    "from_addr": 320,
    "to_addrs": 8000,
    "cc_addrs": 8000,
    "subject": 998,
    "message_id": 255,
    "in_reply_to": 255,
    # Until the index writer resolves them (thread_index), the thread_id slot
    # carries the message's thread keys: at most MAX_KEYS keys of 16 hex digits.
    "thread_id": 255,
    "preview": 255,
}
_MAX_TIME = 2**62


def summarize(data: bytes) -> MessageSummary:
    """The mime room's summary; an empty one if the parser fails (storing comes first)."""
    from nmail.mime import summary as _summary

    try:
        return _summary.summarize(data)
    except Exception:
        log.warning("could not summarize a message of %d bytes", len(data), exc_info=True)
        return _summary.MessageSummary(
            date=0, from_name="", from_addr="", to_addrs="", cc_addrs="", subject="",
            message_id="", in_reply_to="", thread_keys="", has_attachments=False, preview="",
        )


def _text(value: str, limit: int) -> str:
    value = value[:limit]
    if not value.isascii():
        # PostgreSQL refuses NUL and every driver refuses lone surrogates.
        value = value.encode("utf-8", "replace").decode("utf-8")
    if "\x00" in value:
        value = value.replace("\x00", "")
    return value


# The keys summary_columns() returns, in a fixed order (the index writer's wire).
# "thread_id" holds the thread keys (mime.threads.thread_keys) until the writer
# turns them into the conversation's id (thread_index.ThreadResolver).
SUMMARY_KEYS = (
    "date",
    "from_name",
    "from_addr",
    "to_addrs",
    "cc_addrs",
    "subject",
    "message_id",
    "in_reply_to",
    "thread_id",
    "has_attachments",
    "preview",
    "subject_sort",
    "from_sort",
)
SORT_KEY_LENGTH = 100  # messages.subject_sort, from_sort
# Reply and forward prefixes that sorting by subject skips (RFC 5256's base
# subject, plus the ones Korean mail programs write).
_PREFIXES = ("re:", "fw:", "fwd:", "aw:", "sv:", "답장:", "회신:", "전달:")


def summary_columns(summary: MessageSummary, internal_date: int) -> dict[str, Any]:
    """The summary's columns, fitted to the schema; `date` falls back to arrival time."""
    return dict(zip(SUMMARY_KEYS, summary_values(summary, internal_date), strict=True))


def summary_values(summary: MessageSummary, internal_date: int) -> tuple[Any, ...]:
    """summary_columns' values in SUMMARY_KEYS order (what a delivery carries).

    Exactly int, str and bool: the index writer's wire takes nothing else.
    """
    date = summary.date if 0 < summary.date < _MAX_TIME else internal_date
    return (
        int(date),
        _text(summary.from_name, _LIMITS["from_name"]),
        _text(summary.from_addr, _LIMITS["from_addr"]),
        _text(summary.to_addrs, _LIMITS["to_addrs"]),
        _text(summary.cc_addrs, _LIMITS["cc_addrs"]),
        _text(summary.subject, _LIMITS["subject"]),
        _text(summary.message_id, _LIMITS["message_id"]),
        _text(summary.in_reply_to, _LIMITS["in_reply_to"]),
        _text(summary.thread_keys, _LIMITS["thread_id"]),
        bool(summary.has_attachments),
        _text(summary.preview, _LIMITS["preview"]),
        *sort_keys(summary.subject, summary.from_name, summary.from_addr),
    )


def sort_keys(subject: str, from_name: str, from_addr: str) -> tuple[str, str]:
    """(subject_sort, from_sort): case-folded, reply/forward prefixes and [tags] off."""
    base = subject.strip().casefold()
    while True:
        before = base
        for prefix in _PREFIXES:
            if base.startswith(prefix):
                base = base[len(prefix):].lstrip()
        if base.startswith("[") and "]" in base:
            base = base[base.index("]") + 1:].lstrip()
        if base == before:
            break
    sender = (from_name.strip() or from_addr.strip()).casefold()
    return _text(base, SORT_KEY_LENGTH), _text(sender, SORT_KEY_LENGTH)

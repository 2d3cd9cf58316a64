"""From message bytes to the index columns of a `messages` row."""

from __future__ import annotations

import logging
from typing import Any

from nmail.mime.summary import MessageSummary, summary_fields

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


def has_dot_line(data: bytes) -> bool:
    """Whether a line of `data` starts with "." (after LF, CRLF or not: what POP3 stuffs)."""
    return data[:1] == b"." or data.find(b"\n.") >= 0


def index_values(data: bytes, internal_date: int, dot_lines: bool = True) -> tuple[Any, ...]:
    """`summary_values(summarize(data), internal_date, dot_lines)`, without the
    MessageSummary (a frozen dataclass of 11 fields costs ~10k instructions to build)."""
    try:
        fields = summary_fields(data)
    except Exception:
        log.warning("could not summarize a message of %d bytes", len(data), exc_info=True)
        fields = (0, "", "", "", "", "", "", "", "", False, "")
    return _values(fields, internal_date, dot_lines)


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
    "dot_lines",
)
SORT_KEY_LENGTH = 100  # messages.subject_sort, from_sort
# Reply and forward prefixes that sorting by subject skips (RFC 5256's base
# subject, plus the ones Korean mail programs write).
_PREFIXES = ("re:", "fw:", "fwd:", "aw:", "sv:", "답장:", "회신:", "전달:")


def summary_columns(
    summary: MessageSummary, internal_date: int, dot_lines: bool = True
) -> dict[str, Any]:
    """The summary's columns, fitted to the schema; `date` falls back to arrival time."""
    return dict(zip(SUMMARY_KEYS, summary_values(summary, internal_date, dot_lines),
                    strict=True))


def summary_values(
    summary: MessageSummary, internal_date: int, dot_lines: bool = True
) -> tuple[Any, ...]:
    """summary_columns' values in SUMMARY_KEYS order (what a delivery carries).

    Exactly int, str and bool: the index writer's wire takes nothing else.
    dot_lines: whether a line of the file starts with "." (has_dot_line);
    True when not known, so POP3 stuffs it.
    """
    return _values((summary.date, summary.from_name, summary.from_addr, summary.to_addrs,
                    summary.cc_addrs, summary.subject, summary.message_id, summary.in_reply_to,
                    summary.thread_keys, summary.has_attachments, summary.preview),
                   internal_date, dot_lines)


# The limits of from_name .. thread_id (SUMMARY_KEYS[1:9]), then of preview.
_TEXT_LIMITS = (*(_LIMITS[key] for key in SUMMARY_KEYS[1:9]), _LIMITS["preview"])
(_FROM_NAME, _FROM_ADDR, _TO_ADDRS, _CC_ADDRS, _SUBJECT, _MESSAGE_ID, _IN_REPLY_TO, _THREAD_ID,
 _PREVIEW) = _TEXT_LIMITS


def _values(fields: tuple[Any, ...], internal_date: int, dot_lines: bool) -> tuple[Any, ...]:
    """summary_values of MessageSummary fields given as a tuple, in their order."""
    (date, from_name, from_addr, to_addrs, cc_addrs, subject, message_id, in_reply_to,
     keys, has_attachments, preview) = fields
    date = date if 0 < date < _MAX_TIME else internal_date
    texts = (from_name, from_addr, to_addrs, cc_addrs, subject, message_id, in_reply_to, keys,
             preview)
    joined = "".join(texts)
    if joined.isascii() and "\x00" not in joined:
        # Nothing for _text to mend (the usual case): cutting to the limits is all,
        # and ASCII casefolds to ASCII.
        return (int(date), from_name[:_FROM_NAME], from_addr[:_FROM_ADDR], to_addrs[:_TO_ADDRS],
                cc_addrs[:_CC_ADDRS], subject[:_SUBJECT], message_id[:_MESSAGE_ID],
                in_reply_to[:_IN_REPLY_TO], keys[:_THREAD_ID], bool(has_attachments),
                preview[:_PREVIEW], _base_subject(subject)[:SORT_KEY_LENGTH],
                (from_name.strip() or from_addr.strip()).casefold()[:SORT_KEY_LENGTH],
                bool(dot_lines))
    fitted = [_text(text, limit) for text, limit in zip(texts, _TEXT_LIMITS, strict=True)]
    return (int(date), *fitted[:8], bool(has_attachments), fitted[8],
            *sort_keys(subject, from_name, from_addr), bool(dot_lines))


def sort_keys(subject: str, from_name: str, from_addr: str) -> tuple[str, str]:
    """(subject_sort, from_sort): case-folded, reply/forward prefixes and [tags] off."""
    sender = (from_name.strip() or from_addr.strip()).casefold()
    return _text(_base_subject(subject), SORT_KEY_LENGTH), _text(sender, SORT_KEY_LENGTH)


def _base_subject(subject: str) -> str:
    """The subject case-folded, reply/forward prefixes and [tags] off."""
    base = subject.strip().casefold()
    while True:
        before = base
        if base.startswith(_PREFIXES):  # most subjects have none: one call, not eight
            for prefix in _PREFIXES:
                if base.startswith(prefix):
                    base = base[len(prefix):].lstrip()
        if base.startswith("[") and "]" in base:
            base = base[base.index("]") + 1:].lstrip()
        if base == before:
            return base

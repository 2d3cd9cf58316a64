"""Message-IDs and conversation threads: which message a reply hangs under."""

from __future__ import annotations

import hashlib
import re

from nmail.mime.raw_header import header_text

_BRACKETED = re.compile(r"<([^<>]*)>")
# "Re:", "RE[2]:", "Fwd:", "FW:", "AW:", "WG:", "회신:", "전달:", "답장:", "답변:",
# possibly several in a row, ASCII or full-width colon.
_REPLY_PREFIX = re.compile(
    r"^(?:\s*(?:re|fwd?|aw|wg|sv|vs|회신|전달|답장|답변)\s*(?:\[\d+\]|\(\d+\)|\^\d+)?\s*[:：])+\s*",
    re.IGNORECASE,
)


def message_ids(raw: bytes | str) -> list[str]:
    """The msg-ids in a Message-ID/In-Reply-To/References value, brackets removed.

    Without any `<...>`, the words that look like ids ("a@b") are taken.
    """
    text = header_text(raw)
    ids = ["".join(found.split()) for found in _BRACKETED.findall(text)]
    ids = [found for found in ids if found]
    if not ids:
        ids = [word.strip("<>") for word in text.split() if "@" in word]
    return ids


def first_message_id(raw: bytes | str | None) -> str:
    """The first msg-id of a header value, or ""."""
    if not raw:
        return ""
    # message_ids(raw)[0], without reading a long References list past its first id.
    text = header_text(raw)
    found = _BRACKETED.search(text)
    while found is not None:
        msg_id = "".join(found.group(1).split())
        if msg_id:
            return msg_id
        found = _BRACKETED.search(text, found.end())
    return next((word.strip("<>") for word in text.split() if "@" in word), "")


def base_subject(subject: str) -> str:
    """The subject without reply/forward prefixes, for grouping a conversation."""
    return _REPLY_PREFIX.sub("", subject).strip()


def thread_id(references: str, in_reply_to: str, message_id: str, subject: str,
              fallback: bytes) -> str:
    """16 hex digits naming the conversation root.

    The root is the first message of References, else In-Reply-To, else the
    message itself (so a reply and its parent agree), else the subject
    without Re:/Fwd:/회신: prefixes; `fallback` (e.g. the header block) is
    hashed when there is nothing else, so such messages stay apart.
    """
    if references or in_reply_to or message_id:
        key = "m:" + (references or in_reply_to or message_id)
    else:
        topic = " ".join(base_subject(subject).casefold().split())
        if not topic:
            return _digest(b"h:" + fallback)
        key = "s:" + topic
    return _digest(key.encode("utf-8", "surrogatepass"))


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=8).hexdigest()

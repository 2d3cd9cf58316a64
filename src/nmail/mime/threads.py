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


# References kept per message: its first (the conversation's root) and the
# last ones (the nearest ancestors). A References header of a long thread
# lists every ancestor (hundreds on mailing lists); the root and the nearest
# are what join it, and the rest only cost index rows.
MAX_REFERENCES = 10
MAX_KEYS = MAX_REFERENCES + 3  # + In-Reply-To, + the message's own id
KEY_LENGTH = 16  # hex digits of a key (and of a thread id)


def message_key(msg_id: str) -> str:
    """The 16-hex-digit key of a msg-id (what threads are linked by in the index)."""
    return _digest(("m:" + msg_id[:998]).encode("utf-8", "surrogatepass"))


def thread_keys(references: list[str], in_reply_to: str, message_id: str, subject: str,
                fallback: bytes) -> str:
    """The keys a message links its conversation by, space separated, oldest first.

    The first key names a new conversation: the root (first of References),
    else In-Reply-To, else the message itself, so a reply and its parent agree
    whichever arrives first. The rest are the nearest ancestors (at most
    MAX_REFERENCES, a long References is cut) and the message's own id; a
    message citing itself or the same id twice gives it once. The index
    (mailstore/thread_index) joins every message sharing a key into one
    conversation, merging two when a message links both. Without any msg-id
    the subject (Re:/Fwd:/회신: prefixes off) is the one key, else `fallback`
    (e.g. the header block) hashed, so such messages stay apart.
    """
    if not references and not in_reply_to and message_id:
        return message_key(message_id)  # a first message: the usual case, in one step
    ids = [i for i in references if i]
    chain = ids[:1] + ids[1:][-MAX_REFERENCES:] + [in_reply_to, message_id]
    keys: list[str] = []
    for msg_id in chain:
        if msg_id:
            key = message_key(msg_id)
            if key not in keys:
                keys.append(key)
    if keys:
        return " ".join(keys)
    topic = " ".join(base_subject(subject).casefold().split())
    if not topic:
        return _digest(b"h:" + fallback)
    return _digest(("s:" + topic).encode("utf-8", "surrogatepass"))


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=8).hexdigest()

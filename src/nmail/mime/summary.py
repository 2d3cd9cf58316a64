"""What the index keeps about a message: decoded headers, thread, preview."""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass
from typing import Any

from nmail.mime.dates import parse_date
from nmail.mime.fields import field_pattern, read_header_block, read_usual_block
from nmail.mime.headers import decode_header_value, format_addresses, parse_addresses
from nmail.mime.parts import PART_FIELDS, Part, iter_parts, transfer_encoding
from nmail.mime.preview import body_preview
from nmail.mime.threads import first_message_id, message_ids, thread_keys


@dataclass(frozen=True, slots=True)
class MessageSummary:
    """Index fields extracted from a raw message; every text already decoded to str."""

    date: int  # Unix seconds from Date:, or 0 when missing/unparseable
    from_name: str
    from_addr: str
    to_addrs: str  # "Name <a@b>, c@d" as display text, decoded
    cc_addrs: str
    subject: str
    message_id: str  # without angle brackets
    in_reply_to: str  # without angle brackets
    # Keys linking the message to its conversation (mime.threads.thread_keys):
    # 16-hex-digit keys, space separated, the first naming a new conversation.
    # The index writer turns them into the conversation's id (thread_index).
    thread_keys: str
    has_attachments: bool
    preview: str  # first ~200 characters of the text body, whitespace collapsed


# Index column sizes (see db/tables.py `messages`).
MAX_SUBJECT = 998
MAX_NAME = 255
MAX_ADDRESS = 320
MAX_MESSAGE_ID = 255
MAX_PREVIEW = 255
MAX_ADDRESS_LIST = 16000  # to_addrs/cc_addrs are TEXT: 16,000 characters stay under 64 KB
_MAX_RAW_FIELD = 24 * 1024  # bytes of one header value decoded at most (To, Cc: enough
# to fill MAX_ADDRESS_LIST). Fields whose useful part is short get a tighter cut,
# so junk costs little time.
_RAW_LIMITS = {b"from": 4096, b"subject": 16384, b"message-id": 4096, b"in-reply-to": 4096,
               b"references": 4096, b"date": 512}

_MESSAGE_FIELDS = frozenset({
    b"date", b"from", b"to", b"cc", b"subject", b"message-id", b"in-reply-to",
    b"references", *PART_FIELDS,
})
_MESSAGE_LINE = field_pattern(_MESSAGE_FIELDS)
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_log = logging.getLogger(__name__)


def summarize(raw: bytes) -> MessageSummary:
    """The index fields of a raw message (RFC 5322 bytes, CRLF or LF). Never raises.

    Reads only the header block, and for the preview the first few KB of the
    first text part; multipart bodies are scanned for boundaries, not parsed.
    """
    return MessageSummary(*summary_fields(raw))


def summary_fields(raw: bytes) -> tuple[Any, ...]:
    """`summarize(raw)`'s fields as a tuple, in MessageSummary's order. Never raises.

    The usual message takes `_quick`: the same steps as `_summarize`, on the
    fields two regex scans found (fields.read_usual_block).
    """
    try:
        quick = _quick(raw)
        if quick is not None:
            return quick
        summary = _summarize(raw)
        return tuple(getattr(summary, name) for name in MessageSummary.__match_args__)
    except Exception:  # the index must never cost a delivery; log and keep what is sure
        _log.exception("summarize failed on a %d-byte message", len(raw))
        return (0, "", "", "", "", "", "", "",
                thread_keys([], "", "", "", raw[:_MAX_RAW_FIELD]), False, "")


def _summarize(raw: bytes) -> MessageSummary:
    block = read_header_block(raw, _MESSAGE_FIELDS)
    fields = {name: value[:_RAW_LIMITS[name]] if name in _RAW_LIMITS else value
              for name, value in block.fields.items()}
    get = fields.get
    senders = parse_addresses(get(b"from", b""))
    from_name, from_addr = senders[0] if senders else ("", "")
    subject = decode_header_value(get(b"subject", b""))
    message_id = first_message_id(get(b"message-id"))
    in_reply_to = first_message_id(get(b"in-reply-to"))
    references = message_ids(_ends(block.fields.get(b"references", b"")))
    has_attachments, preview = _body(raw, fields, block.body_start)
    return MessageSummary(
        date=parse_date(get(b"date", b"")),
        from_name=_fit(from_name, MAX_NAME),
        from_addr=_fit(from_addr, MAX_ADDRESS),
        to_addrs=_address_list(get(b"to")),
        cc_addrs=_address_list(get(b"cc")),
        subject=_fit(subject, MAX_SUBJECT),
        message_id=_fit(message_id, MAX_MESSAGE_ID),
        in_reply_to=_fit(in_reply_to, MAX_MESSAGE_ID),
        thread_keys=thread_keys(
            references, in_reply_to, message_id, subject,
            b"" if references or in_reply_to or message_id else raw[:_MAX_RAW_FIELD]),
        has_attachments=has_attachments,
        preview=_fit(preview, MAX_PREVIEW),
    )


def _quick(raw: bytes) -> tuple[int, str, str, str, str, str, str, str, str, bool, str] | None:
    """`_summarize(raw)`'s fields, for the usual message (fields.read_usual_block); else None.

    The same steps, each skipped where its field is missing.
    """
    read = read_usual_block(raw, _MESSAGE_LINE)
    if read is None:
        return None
    fields, body_start = read
    get = fields.get
    raw_value = get(b"from")
    from_name, from_addr = _sender(raw_value[:4096]) if raw_value else ("", "")
    raw_value = get(b"subject")
    subject = decode_header_value(raw_value[:16384]) if raw_value else ""
    raw_value = get(b"message-id")
    message_id = _message_id(raw_value[:4096]) if raw_value else ""
    raw_value = get(b"in-reply-to")
    in_reply_to = _message_id(raw_value[:4096]) if raw_value else ""
    raw_value = get(b"references")
    references = message_ids(_ends(raw_value)) if raw_value else []
    if b"content-type" in fields or b"content-disposition" in fields:
        has_attachments, preview = _body(raw, fields, body_start)
    else:
        has_attachments = False
        preview = body_preview(raw, body_start, len(raw), is_html=False, charset="",
                               transfer_encoding=transfer_encoding(fields)
                               if b"content-transfer-encoding" in fields else "")
    raw_value = get(b"date")
    return (
        parse_date(raw_value) if raw_value else 0,
        from_name,
        from_addr,
        _addresses(get(b"to")),
        _addresses(get(b"cc")),
        _fit(subject, MAX_SUBJECT),
        _fit(message_id, MAX_MESSAGE_ID),
        _fit(in_reply_to, MAX_MESSAGE_ID),
        thread_keys(references, in_reply_to, message_id, subject,
                    b"" if references or in_reply_to or message_id else raw[:_MAX_RAW_FIELD]),
        has_attachments,
        _fit(preview, MAX_PREVIEW),
    )


def _message_id(raw: bytes) -> str:
    """`first_message_id(raw)`; "<id>" of printable ASCII without space or brackets in
    a few C calls (the regular expression and header_text's checks cost ~3 times more)."""
    if raw.startswith(b"<") and raw.endswith(b">"):
        inner = raw[1:-1]
        if inner and not inner.translate(None, _ID_BYTES):
            return inner.decode("ascii")
    return first_message_id(raw)


def _sender(raw: bytes) -> tuple[str, str]:
    """(name, address) of a From: value's first mailbox, fitted; short values cached."""
    return _short_sender(raw) if len(raw) <= _CACHED else _read_sender(raw)


def _read_sender(raw: bytes) -> tuple[str, str]:
    senders = parse_addresses(raw)
    from_name, from_addr = senders[0] if senders else ("", "")
    return _fit(from_name, MAX_NAME), _fit(from_addr, MAX_ADDRESS)


def _addresses(raw: bytes | None) -> str:
    """`_address_list(raw)`; short values cached."""
    if not raw:
        return ""
    return _short_address_list(raw) if len(raw) <= _CACHED else _address_list(raw)


# The same From: and To: values come again and again (a mailbox's own address,
# a regular sender): their reading, ~16k instructions, is kept for the next message.
_ID_BYTES = bytes(byte for byte in range(0x21, 0x7F) if byte not in b"<>")
_CACHED = 256  # bytes of a value at most, so that the caches stay small
_short_sender = functools.lru_cache(maxsize=1024)(_read_sender)


def _ends(value: bytes) -> bytes:
    """A long References cut to its start (the root) and its end (the nearest
    ancestors): what threading keeps (mime.threads.MAX_REFERENCES)."""
    limit = _RAW_LIMITS[b"references"]
    if len(value) <= limit:
        return value
    return value[:limit // 4] + b" " + value[-(limit - limit // 4):]


def _body(raw: bytes, fields: dict[bytes, bytes], body_start: int) -> tuple[bool, str]:
    """(has attachments, preview) from the first text part and every part's disposition."""
    if not fields.get(b"content-type") and not fields.get(b"content-disposition"):
        # No MIME headers (as in most system mail): one text/plain part that is no
        # attachment, as iter_parts would find, without walking the parts.
        return False, body_preview(raw, body_start, len(raw), is_html=False, charset="",
                                   transfer_encoding=transfer_encoding(fields))
    has_attachments = False
    plain: Part | None = None
    markup: Part | None = None
    for part in iter_parts(raw, fields, body_start, len(raw)):
        if part.is_attachment:
            has_attachments = True
        elif part.content_type == "text/plain" and plain is None:
            plain = part
        elif part.content_type == "text/html" and markup is None:
            markup = part
        if has_attachments and plain is not None:
            break  # nothing later can change the answer
    chosen = plain or markup
    if chosen is None:
        return has_attachments, ""
    preview = body_preview(raw, chosen.start, chosen.end, is_html=chosen is markup,
                           charset=chosen.charset, transfer_encoding=chosen.transfer_encoding)
    return has_attachments, preview


def _address_list(raw: bytes | None) -> str:
    """Decoded display text of an address list, cut at an address to fit MAX_ADDRESS_LIST."""
    if not raw:
        return ""
    if len(raw) > _MAX_RAW_FIELD:
        comma = raw.rfind(b",", 0, _MAX_RAW_FIELD)
        raw = raw[:comma if comma > 0 else _MAX_RAW_FIELD]  # whole addresses only
    shown = format_addresses(parse_addresses(raw))
    if len(shown) > MAX_ADDRESS_LIST:
        cut = shown.rfind(", ", 0, MAX_ADDRESS_LIST + 1)
        shown = shown[:cut] if cut > 0 else shown[:MAX_ADDRESS_LIST]
    return _fit(shown, MAX_ADDRESS_LIST)


_short_address_list = functools.lru_cache(maxsize=1024)(_address_list)


def _fit(text: str, limit: int) -> str:
    """Cut to `limit` characters; lone surrogates (unstorable) become "?"."""
    # Surrogates are neither ASCII nor printable: most texts skip the search.
    if not text.isascii() and not text.isprintable() and _SURROGATE.search(text):
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text[:limit].strip()

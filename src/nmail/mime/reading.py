"""One message read for display: decoded headers, the body to show, the attachments.

The webmail opens one message at a time, so this reads only that message's
bytes: the header block once, then the bounded boundary scanner of
`mime.parts` for the part offsets. Only the body part shown (and the inline
images it refers to) is decoded; an attachment's bytes are decoded when it is
downloaded (`part_content`). The result is plain data (no HTML): making it
safe to show is `web.message_html`'s and `web.plain_text`'s job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nmail.mime.charsets import decode_bytes
from nmail.mime.dates import parse_date
from nmail.mime.fields import read_header_block
from nmail.mime.headers import decode_header_value, parse_addresses
from nmail.mime.params import parse_params
from nmail.mime.parts import PART_FIELDS, Part, iter_parts
from nmail.mime.preview import transfer_decode
from nmail.mime.raw_header import clean_text
from nmail.mime.threads import first_message_id, message_ids

Address = tuple[str, str]  # (display name, address)

_VIEW_FIELDS = frozenset({
    b"date", b"from", b"sender", b"reply-to", b"to", b"cc", b"bcc", b"subject",
    b"message-id", b"in-reply-to", b"references", b"list-unsubscribe",
    b"disposition-notification-to", *PART_FIELDS,
})
MAX_ATTACHED_DEPTH = 8  # messages inside messages one URL may open
ATTACHED_TYPES = frozenset({"message/rfc822", "message/global"})
_ATTACHED_PATH = re.compile(rf"[0-9]{{1,3}}(?:\.[0-9]{{1,3}}){{0,{MAX_ATTACHED_DEPTH - 1}}}")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
MAX_BODY_BYTES = 8 * 1024 * 1024  # of a text body decoded for display; the rest is cut
_MIME_NAMES = {
    "message/rfc822": "message.eml", "text/calendar": "invite.ics", "text/html": "page.html",
    "text/plain": "text.txt", "application/pdf": "document.pdf",
}


@dataclass(frozen=True, slots=True)
class AttachmentInfo:
    """One part the user can download; `number` addresses it in `part_content`."""

    number: int
    filename: str  # decoded, for display; never trusted as a file name
    content_type: str
    size: int  # decoded size in bytes (estimated from base64 length when encoded so)
    content_id: str
    inline: bool  # an image the HTML body shows through cid:


@dataclass(frozen=True, slots=True)
class MessageView:
    """What the read screen shows of one message."""

    subject: str
    sender: list[Address]  # From (usually one)
    reply_to: list[Address]
    to: list[Address]
    cc: list[Address]
    bcc: list[Address]  # only present in our own Sent and Drafts copies
    date: int  # Unix seconds, 0 when missing or unreadable
    message_id: str
    in_reply_to: str
    references: list[str]
    text: str  # the text/plain body ("" when there is none)
    html: str  # the text/html body, unsanitized ("" when there is none)
    text_flowed: bool  # text/plain; format=flowed (soft line breaks may be joined)
    text_delsp: bool  # ...; delsp=yes (the space before a soft break is not text: CJK)
    truncated: bool  # a body was longer than MAX_BODY_BYTES and was cut
    attachments: list[AttachmentInfo]
    has_report: bool  # a delivery-status part: the bounce panel may have something to say
    list_unsubscribe: str


def read_view(raw: bytes) -> MessageView:
    """The read-screen view of a raw message (RFC 5322 bytes, CRLF or LF). Never raises."""
    block = read_header_block(raw, _VIEW_FIELDS)
    get = block.fields.get
    parts = list(_parts(raw, block.fields, block.body_start))
    text_parts = [p for p in parts if not p.is_attachment and p.content_type == "text/plain"]
    html_part = next((p for p in parts if not p.is_attachment and p.content_type == "text/html"),
                     None)
    truncated = False
    texts: list[str] = []
    for part in text_parts:
        body, cut = _decoded_text(raw, part)
        texts.append(body)
        truncated = truncated or cut
    html = ""
    if html_part is not None:
        html, cut = _decoded_text(raw, html_part)
        truncated = truncated or cut
    referenced = _cid_references(html) if html else set()
    shown = [*text_parts, html_part]
    attachments = [_attachment_info(number, part, referenced)
                   for number, part in enumerate(parts) if _listed(part, shown)]
    content_type = parse_params(get(b"content-type", b""))
    flowed, delsp = _flowed(raw, text_parts[0]) if text_parts else (False, False)
    return MessageView(
        subject=decode_header_value(get(b"subject", b"")),
        sender=parse_addresses(get(b"from", b"")) or parse_addresses(get(b"sender", b"")),
        reply_to=parse_addresses(get(b"reply-to", b"")),
        to=parse_addresses(get(b"to", b"")),
        cc=parse_addresses(get(b"cc", b"")),
        bcc=parse_addresses(get(b"bcc", b"")),
        date=parse_date(get(b"date", b"")),
        message_id=first_message_id(get(b"message-id")),
        in_reply_to=first_message_id(get(b"in-reply-to")),
        references=message_ids(get(b"references", b""))[-50:],
        text="\n\n".join(t for t in texts if t),
        html=html,
        text_flowed=flowed,
        text_delsp=delsp,
        truncated=truncated,
        attachments=attachments,
        has_report=content_type.value == "multipart/report"
        or any(p.content_type.endswith("delivery-status") for p in parts),
        list_unsubscribe=clean_text(decode_header_value(get(b"list-unsubscribe", b""))),
    )


def part_content(raw: bytes, number: int) -> tuple[AttachmentInfo, bytes] | None:
    """The decoded bytes of leaf part `number` (as `AttachmentInfo.number`), None if none."""
    return part_contents(raw, {number}).get(number)


def part_contents(raw: bytes, numbers: set[int]) -> dict[int, tuple[AttachmentInfo, bytes]]:
    """`part_content` of several parts in one pass over the message ("download all":
    a pass per part made 255 attachments of a 20 MB message cost 255 passes)."""
    block = read_header_block(raw, _VIEW_FIELDS)
    found: dict[int, tuple[AttachmentInfo, bytes]] = {}
    for index, part in enumerate(_parts(raw, block.fields, block.body_start)):
        if index in numbers:
            data = transfer_decode(raw[part.start:part.end], part.transfer_encoding)
            info = _attachment_info(index, part, set())
            found[index] = (AttachmentInfo(info.number, info.filename, info.content_type,
                                           len(data), info.content_id, info.inline), data)
    return found


def attached_message(raw: bytes, path: str) -> bytes | None:
    """The message attached at `path` ("3", or "3.1" inside that one), None if there is none.

    Each step must be a message/rfc822 (or message/global) part of the message
    before it; the path is bounded (MAX_ATTACHED_DEPTH steps of at most three
    digits), so a URL cannot make the server unwrap without end.
    """
    if not _ATTACHED_PATH.fullmatch(path):
        return None
    for step in path.split("."):
        found = part_content(raw, int(step))
        if found is None or found[0].content_type not in ATTACHED_TYPES:
            return None
        raw = found[1]
    return raw


def is_attached_path(path: str) -> bool:
    """Whether `path` is a path `attached_message` would follow (bounded, digits)."""
    return _ATTACHED_PATH.fullmatch(path) is not None


def inline_images(raw: bytes, wanted: set[str], budget: int) -> dict[str, tuple[str, bytes]]:
    """content-id -> (image type, bytes) for the `wanted` cid images, within `budget` bytes."""
    if not wanted:
        return {}
    block = read_header_block(raw, _VIEW_FIELDS)
    found: dict[str, tuple[str, bytes]] = {}
    for part in _parts(raw, block.fields, block.body_start):
        cid = part.content_id.lower()
        if cid in wanted and cid not in found and part.content_type.startswith("image/"):
            data = transfer_decode(raw[part.start:part.end], part.transfer_encoding)
            budget -= len(data)
            if budget < 0:
                break
            found[cid] = (part.content_type, data)
    return found


def body_text(raw: bytes, part: Part) -> str:
    """A text part's body decoded with its charset (and the usual fallbacks)."""
    return _decoded_text(raw, part)[0]


def _parts(raw: bytes, fields: dict[bytes, bytes], body_start: int) -> list[Part]:
    return list(iter_parts(raw, fields, body_start, len(raw)))


def _decoded_text(raw: bytes, part: Part) -> tuple[str, bool]:
    data = transfer_decode(raw[part.start:part.end], part.transfer_encoding)
    cut = len(data) > MAX_BODY_BYTES
    if cut:
        data = data[:MAX_BODY_BYTES]
    text = decode_bytes(data, part.charset or _meta_charset(data, part), partial=cut)
    return text.replace("\r\n", "\n"), cut


def _meta_charset(data: bytes, part: Part) -> str | None:
    """An HTML body's own <meta charset> when the MIME header declared none."""
    if part.content_type != "text/html":
        return None
    head = data[:4096].lower()
    at = head.find(b"charset=")
    if at < 0:
        return None
    value = head[at + 8:at + 48].lstrip(b"\"' ")
    end = next((i for i, ch in enumerate(value) if chr(ch) in "\"'; />"), len(value))
    return value[:end].decode("latin-1") or None


def _flowed(raw: bytes, part: Part) -> tuple[bool, bool]:
    """(format=flowed, delsp=yes) of a text part (RFC 3676).

    The part scanner keeps no parameter but the charset, so the part's own
    header (between the last boundary line and its body) is looked at again.
    """
    header = raw[max(0, part.start - 4096):part.start]
    boundary = header.rfind(b"\n--")
    if boundary >= 0:
        header = header[boundary:]
    header = header.lower().replace(b'"', b"").replace(b" ", b"")
    return b"format=flowed" in header, b"delsp=yes" in header


def _listed(part: Part, shown: list[Part | None]) -> bool:
    """Whether the part appears in the attachment list (or as an inline image)."""
    if part.is_attachment:
        return True
    if any(part is body for body in shown):
        return False
    if part.content_id and part.content_type.startswith("image/"):
        return True
    return not part.content_type.startswith(
        ("text/", "multipart/", "message/delivery-status", "message/global-delivery-status",
         "message/disposition-notification"))


def _cid_references(html: str) -> set[str]:
    """Content-IDs the HTML points at (lowercased)."""
    out: set[str] = set()
    lowered = html.lower()
    position = lowered.find("cid:")
    while position >= 0 and len(out) < 256:
        end = position + 4
        while end < len(lowered) and lowered[end] not in "\"' >)\t\r\n":
            end += 1
        out.add(lowered[position + 4:end])
        position = lowered.find("cid:", end)
    return out


def attachment_info(number: int, part: Part,
                    referenced: frozenset[str] | set[str] = frozenset()) -> AttachmentInfo:
    """The AttachmentInfo of leaf part `number` (`inline` when its Content-ID is in
    `referenced`)."""
    return _attachment_info(number, part, referenced)


def _attachment_info(number: int, part: Part,
                     referenced: frozenset[str] | set[str]) -> AttachmentInfo:
    # Controls go (not to spaces): "a\x00.html" is "a.html", as a file system would see it.
    filename = clean_text(_CONTROLS.sub("", part.filename))
    if not filename:
        extension = part.content_type.split("/", 1)[-1].split("+")[0][:10]
        filename = _MIME_NAMES.get(part.content_type, f"part{number + 1}.{extension}")
    size = part.end - part.start
    if part.transfer_encoding == "base64":
        size = size * 3 // 4 * 76 // 78  # line breaks every 76 characters
    inline = bool(part.content_id) and part.content_id.lower() in referenced
    return AttachmentInfo(number, filename, part.content_type, size, part.content_id, inline)

"""The read screen, its frame and its sender, from a message's file instead of its bytes.

The message is a `Span` of a file: a stored message's whole file, or the bytes
of an attached message inside the outer one (mime/file_parts.py).

The read screen read the stored message whole to show a few lines of text: a
message with a 20 MiB attachment grew the web process's peak RSS by 27 MiB
(its frame and its print view as much; the same message attached inside
another, 55 MiB each). Now 2 to 3 MiB each (tests/test_web_read_memory.py). A message
up to SMALL bytes is still read whole (one read, the same view as ever, and
the bounce panel sees all of it); a bigger one is read through its skeleton
(`file_view`, mime/file_parts.py: only the text parts' bytes, each capped as
`read_view` caps them), the bounce panel looks at its first SMALL bytes (a
report's delivery-status part comes before the returned message), and the
frame embeds the cid images it names decoded from the file, within the same
budget as before.
"""

from __future__ import annotations

import io
import os

from nmail.mime.file_parts import Span, file_view, iter_decoded
from nmail.web.message_html import inline_budget
from nmail.web.message_page import (
    ReadPage,
    cid_references,
    frame_content,
    framed,
    page_of_view,
    read_page,
    sender_address,
)

SMALL = 1 << 20  # a message up to this size is read whole


def _head(span: Span, size: int) -> bytes:
    return os.pread(span.file.fileno(), min(size, span.end - span.start), span.start)


def read_page_file(span: Span, lang: str, compose_url: str = "/compose") -> ReadPage:
    """`read_page` of the message in `span`."""
    if span.end - span.start <= SMALL:
        return read_page(_head(span, SMALL), lang, compose_url)
    view, _parts = file_view(span.file, span.start, span.end)
    return page_of_view(view, _head(span, SMALL), lang, compose_url)


def frame_content_file(span: Span, *, allow_remote: bool, lang: str) -> tuple[str, int]:
    """`frame_content` of the message in `span`."""
    if span.end - span.start <= SMALL:
        return frame_content(_head(span, SMALL), allow_remote=allow_remote, lang=lang)
    view, parts = file_view(span.file, span.start, span.end)
    wanted = cid_references(view.html)
    images: dict[str, tuple[str, bytes]] = {}
    budget = inline_budget()
    for part in parts if wanted else ():
        cid = part.content_id.lower()
        if cid in wanted and cid not in images and part.content_type.startswith("image/"):
            data = io.BytesIO()
            for piece in iter_decoded(span.file, part):
                budget -= len(piece)
                if budget < 0:
                    break
                data.write(piece)
            if budget < 0:
                break
            images[cid] = (part.content_type, data.getvalue())
    return framed(view.html, images, allow_remote=allow_remote, lang=lang)


def sender_address_file(span: Span) -> str:
    """`sender_address` of the message in `span` (its header is in the first SMALL
    bytes)."""
    return sender_address(_head(span, SMALL))

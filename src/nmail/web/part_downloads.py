"""Downloads of a message's parts streamed from its file: one attachment, all as a ZIP, the source.

The routes read the stored message whole (or, for a message attached inside
another, decoded it into bytes) and answered with one `Response` body: with
a 20 MiB attachment (27 MiB of base64) the web process's peak RSS grew by
108 MiB for the attachment, 108 MiB for "download all" (the ZIP built in a
BytesIO), 27 MiB for the source; through a message that carries it attached,
108 and 128 MiB. Now 1.9, 2.0, 0.4; 1.9 and 2.1 MiB (tests/
test_web_read_memory.py, each step measured first in a fresh server for the
"before"). Here the file's skeleton (mime/file_parts.py) gives the part's
offsets, and the part is decoded a piece at a time into the response: a
`StreamingResponse` whose iterator runs in the thread pool, with a
Content-Length when the part is not transfer-encoded (its size is then known)
and chunked otherwise. The ZIP is written by `zipfile` into a pipe that the
response empties after each piece (entries with data descriptors, since the
pipe cannot seek back). Each iterator closes the file when it ends, or when
the response is dropped (a client that went away).
"""

from __future__ import annotations

import re
import time
import zipfile
from collections.abc import Iterator
from typing import IO

from fastapi import HTTPException
from starlette.responses import StreamingResponse

from nmail.mime.file_parts import (
    Span,
    file_parts,
    file_view,
    iter_decoded,
    read_range,
    skeleton,
)
from nmail.mime.parts import Part
from nmail.mime.reading import attachment_info
from nmail.web.download_names import download_headers, safe_filename
from nmail.web.message_page import PREVIEW_TYPES

_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}$")
MAX_PART = 1000
PIECE = 256 * 1024  # of the file read at once (1 MiB pieces: "download all" grew 8 MiB)


def part_of(span: Span, number: int) -> Part | None:
    """Leaf part `number` of the message in `span` (numbered as `part_content` numbers
    them), None when there is none."""
    if not 0 <= number < MAX_PART:
        return None
    parts = file_parts(skeleton(span.file, span.start, span.end))
    return parts[number] if number < len(parts) else None


def _closing(file: IO[bytes], pieces: Iterator[bytes]) -> Iterator[bytes]:
    try:
        yield from pieces
    finally:
        file.close()


def part_stream(file: IO[bytes], number: int, part: Part | None, *,
                preview: bool) -> StreamingResponse:
    """Part `number` of `file` decoded into the response (a raster image shown inline
    when `preview`); 404 (the file closed) when there is none. Takes `file` over."""
    if part is None:
        file.close()
        raise HTTPException(404)
    info = attachment_info(number, part)
    inline = preview and info.content_type in PREVIEW_TYPES
    kind = info.content_type if inline or _TYPE.match(info.content_type) else (
        "application/octet-stream")
    if not inline and (kind.startswith(("text/html", "image/svg", "application/xhtml",
                                        "text/xml", "application/xml"))
                       or "script" in kind):
        kind = "application/octet-stream"  # a download, never something a page can load
    headers = download_headers(info.filename, inline=inline)
    if part.transfer_encoding not in ("base64", "quoted-printable"):
        headers["Content-Length"] = str(max(0, part.end - part.start))
    return StreamingResponse(_closing(file, iter_decoded(file, part, PIECE)), media_type=kind,
                             headers=headers)


class _Pipe:
    """What `zipfile` writes, kept until the response takes it (never seekable)."""

    def __init__(self) -> None:
        self.pieces: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.pieces.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        return None

    def take(self) -> bytes:
        out = b"".join(self.pieces)
        self.pieces.clear()
        return out


def zip_pieces(file: IO[bytes], chosen: list[tuple[str, Part]]) -> Iterator[bytes]:
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, "w", zipfile.ZIP_DEFLATED) as archive:  # type: ignore[call-overload]
        for name, part in chosen:
            entry = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o600 << 16
            with archive.open(entry, "w") as member:
                for piece in iter_decoded(file, part, PIECE):
                    member.write(piece)
                    if (out := pipe.take()):
                        yield out
            if (out := pipe.take()):
                yield out
    if (out := pipe.take()):
        yield out


def zip_plan(span: Span) -> tuple[str, list[tuple[str, Part]]]:
    """The ZIP's name (from the subject) and its entries: each listed attachment's
    unique safe name and part."""
    view, parts = file_view(span.file, span.start, span.end)
    used: set[str] = set()
    chosen: list[tuple[str, Part]] = []
    for attachment in view.attachments:
        if attachment.inline or attachment.number >= len(parts):
            continue
        name = safe_filename(attachment.filename)
        stem, dot, ext = name.rpartition(".")
        candidate, n = name, 2
        while candidate.lower() in used:
            candidate = f"{stem} ({n}).{ext}" if dot else f"{name} ({n})"
            n += 1
        used.add(candidate.lower())
        chosen.append((candidate, parts[attachment.number]))
    return safe_filename((view.subject or "attachments")[:60]) + ".zip", chosen


def zip_stream(file: IO[bytes], plan: tuple[str, list[tuple[str, Part]]]) -> StreamingResponse:
    """Every attachment of `file` in one ZIP written as it is sent. Takes `file` over."""
    name, chosen = plan
    return StreamingResponse(_closing(file, zip_pieces(file, chosen)),
                             media_type="application/zip", headers=download_headers(name))


def source_stream(span: Span, name: str) -> StreamingResponse:
    """The message's bytes as an .eml download. Takes `span.file` over."""
    headers = download_headers(name)
    headers["Content-Length"] = str(span.end - span.start)
    return StreamingResponse(_closing(span.file, read_range(span.file, span.start, span.end,
                                                            PIECE)),
                             media_type="message/rfc822", headers=headers)

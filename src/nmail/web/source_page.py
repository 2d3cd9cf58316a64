"""A message's source shown in the browser: all of it, or its head and the start of its body.

"View source" read the whole message into memory and decoded it into one
text/plain answer: with a 20 MiB attachment (a 27 MiB file) the web
process's peak RSS grew by 109 MiB (tests/test_web_read_memory.py, measured
on the code before this), and the browser was then handed 27 MiB of base64
to lay out in a tab. Gmail's "Show original" stops at a limit and offers the
download; Roundcube streams all of it. Here the first SHOWN bytes are read
(one `pread`), cut at the last line end so that no character is split, and
shown on a page of our own with the message's size, a note when it is cut,
and the link to the whole file (the .eml download, streamed from the file by
part_downloads.source_stream). A message under the limit is shown whole, as
before. The peak now grows by about 2 MiB, whatever the message's size.

The bytes are decoded as the read screen decodes a body without a label
(`decode_bytes`: UTF-8, CP949, a reading with a few damaged characters,
Windows-1252): raw 8-bit Korean headers read as Korean, and bytes no codec
fits never fail the page. Control characters other than tab and line ends
are shown as U+FFFD, and Jinja escapes the rest: the sender's bytes never
become markup. The page is sandboxed (no script, no plugin, no form) but may
start the download.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from nmail.mime.charsets import decode_bytes
from nmail.mime.file_parts import Span

SHOWN = 512 * 1024  # bytes of the source shown at most (the rest: the download)
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
SOURCE_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; "
              "base-uri 'none'; form-action 'none'; frame-ancestors 'self'; "
              "sandbox allow-downloads allow-popups allow-popups-to-escape-sandbox")


@dataclass(frozen=True, slots=True)
class SourceHead:
    """What the source page shows: `text` (the first `shown` of `total` bytes)."""

    text: str
    shown: int
    total: int

    @property
    def cut(self) -> bool:
        return self.shown < self.total


def source_head(span: Span, limit: int = SHOWN) -> SourceHead:
    """The first `limit` bytes of the message in `span` (all of it when it is no
    longer), ended at a line end when cut, decoded for reading."""
    total = max(0, span.end - span.start)
    raw = os.pread(span.file.fileno(), min(total, limit), span.start) if total else b""
    if len(raw) < total:
        line_end = raw.rfind(b"\n")
        if line_end >= len(raw) // 2:  # else one huge line: cut in it (decoded partially)
            raw = raw[:line_end + 1]
    text = decode_bytes(raw, None, partial=len(raw) < total)
    return SourceHead(_CONTROLS.sub("\ufffd", text), len(raw), total)

"""What the read screen and the message frame show, built from one message's bytes.

CPU work only (the caller reads the bytes and runs this in the thread pool):
one `read_view`, then either the escaped text (shown in the page itself,
since nothing in it can be markup) or, for HTML mail, only a note that a
frame will show it. The frame's document is built by `frame_html` on its
own request, with the inline images embedded and the remote ones kept
only when the user allowed them. A returned mail also gets the bounce
room's analysis for the panel above the body.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nmail.bounce.analysis import analyze
from nmail.bounce.catalogue import category
from nmail.mime.fields import read_header_block
from nmail.mime.headers import parse_addresses
from nmail.mime.reading import ATTACHED_TYPES, MessageView, inline_images, read_view
from nmail.web.download_names import safe_filename
from nmail.web.message_html import frame_document, inline_budget, is_clipped, sanitize_html
from nmail.web.plain_text import text_to_html

# A remote load in HTML: src/background/srcset/poster attributes or CSS url()
# pointing at http(s) or a scheme-relative URL. Only decides whether to offer
# "show images"; the sanitizer decides what loads.
_REMOTE_HINT = re.compile(
    r"""(?:\b(?:src|background|srcset|poster)\s*=\s*["']?\s*|url\(\s*["']?\s*)(?:https?:)?//""",
    re.IGNORECASE,
)
_CID = re.compile(r"cid:([^\"'\s>)]+)", re.IGNORECASE)
_FROM = frozenset({b"from"})
PREVIEW_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


@dataclass(frozen=True, slots=True)
class AttachmentRow:
    number: int
    name: str
    content_type: str
    size: int
    previewable: bool
    openable: bool = False  # an attached message: it can be read in place

    @property
    def type_label(self) -> str:
        """What the list shows as the type: "PDF", "XLSX" (the full MIME type is a tooltip)."""
        stem, dot, extension = self.name.rpartition(".")
        if dot and stem and 0 < len(extension) <= 5 and extension.isascii() \
                and extension.isalnum():
            return extension.upper()
        return self.content_type


@dataclass(frozen=True, slots=True)
class BounceRow:
    address: str
    title: str
    explanation: str
    remedy: str
    diagnostic: str
    status: str
    remote_host: str
    delayed: bool
    guide: str = ""  # the reason's section of the returned-mail guide (/help/returnmail#…)


@dataclass(frozen=True, slots=True)
class BouncePanel:
    rows: tuple[BounceRow, ...]
    original_subject: str
    text: str  # the bounce's own words when no recipient could be read
    delayed: bool


@dataclass(frozen=True, slots=True)
class ReadPage:
    view: MessageView
    text_html: str  # escaped text body with links ("" for HTML mail)
    has_html: bool
    remote_content: bool
    attachments: tuple[AttachmentRow, ...]
    bounce: BouncePanel | None
    clipped: bool = False  # the HTML body is too long: the frame shows only its beginning


def read_page(raw: bytes, lang: str, compose_url: str = "/compose") -> ReadPage:
    """The read screen's data for one message."""
    return page_of_view(read_view(raw), raw, lang, compose_url)


def page_of_view(view: MessageView, raw: bytes, lang: str,
                 compose_url: str = "/compose") -> ReadPage:
    """The read screen's data from a message's view (`raw`: its bytes, or their first
    part for a big message, for the bounce panel)."""
    has_html = bool(view.html.strip())
    text_html = "" if has_html else text_to_html(view.text, flowed=view.text_flowed,
                                                 delsp=view.text_delsp,
                                                 compose_url=compose_url)
    rows = tuple(
        AttachmentRow(a.number, safe_filename(a.filename), a.content_type, a.size,
                      a.content_type in PREVIEW_TYPES, a.content_type in ATTACHED_TYPES)
        for a in view.attachments if not a.inline
    )
    return ReadPage(
        view=view, text_html=text_html, has_html=has_html,
        remote_content=has_html and _REMOTE_HINT.search(view.html) is not None,
        attachments=rows, bounce=bounce_panel(raw, lang),
        clipped=has_html and is_clipped(view.html),
    )


def sender_address(raw: bytes) -> str:
    """The From address (lower case), "" when there is none."""
    block = read_header_block(raw, _FROM)
    found = parse_addresses(block.fields.get(b"from", b""))
    return found[0][1].lower() if found else ""


def frame_html(raw: bytes, *, allow_remote: bool, lang: str) -> str:
    """The sandboxed frame's whole document for an HTML message."""
    return frame_content(raw, allow_remote=allow_remote, lang=lang)[0]


def frame_content(raw: bytes, *, allow_remote: bool, lang: str) -> tuple[str, int]:
    """(the frame's document, how many remote loads were blocked)."""
    view = read_view(raw)
    wanted = {cid.lower() for cid in _CID.findall(view.html)}
    images = inline_images(raw, wanted, inline_budget()) if wanted else {}
    return framed(view.html, images, allow_remote=allow_remote, lang=lang)


def cid_references(html: str) -> set[str]:
    """The content ids (lower case) an HTML body's cid: URLs name."""
    return {cid.lower() for cid in _CID.findall(html)}


def framed(html: str, images: dict[str, tuple[str, bytes]], *, allow_remote: bool,
           lang: str) -> tuple[str, int]:
    """`frame_content` of an HTML body and its inline images."""
    safe = sanitize_html(html, allow_remote=allow_remote, inline=images)
    return frame_document(safe.html, lang=lang), safe.blocked_remote


def bounce_panel(raw: bytes, lang: str) -> BouncePanel | None:
    """The return-mail panel, or None for ordinary mail."""
    try:
        result = analyze(raw)
    except Exception:  # the panel is a help, never a reason the message cannot be read
        return None
    if result is None:
        return None
    rows = []
    for rcpt in result.recipients:
        entry = category(rcpt.category)
        rows.append(BounceRow(
            address=rcpt.address, title=entry.title(lang), explanation=entry.explanation(lang),
            remedy=entry.remedy(lang), diagnostic=rcpt.diagnostic,
            status=" ".join(x for x in (str(rcpt.code or ""), rcpt.status) if x),
            remote_host=rcpt.remote_host, delayed=rcpt.action == "delayed", guide=entry.id,
        ))
    return BouncePanel(tuple(rows), result.original_subject,
                       result.text if not rows else "", result.delayed)

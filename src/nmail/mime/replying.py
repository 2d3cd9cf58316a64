"""What a reply or a forward starts from: recipients, subject, quoted text, references.

Pure functions over a `MessageView`; the words a user reads ("wrote:",
"Forwarded message") come from the caller, already translated.
"""

from __future__ import annotations

import html
import re

from nmail.mime.reading import Address, MessageView

# "Re:", "RE[2]:", "회신:", "답장:" ... as threads.py reads them; several in a row.
_REPLY_PREFIX = re.compile(r"^\s*(?:re|회신|답장|답변)\s*(?:\[\d+\]|\(\d+\))?\s*[:：]", re.I)
_FORWARD_PREFIX = re.compile(r"^\s*(?:fwd?|전달)\s*(?:\[\d+\]|\(\d+\))?\s*[:：]", re.I)
_BLOCK_END = re.compile(r"<\s*(?:br\s*/?|/\s*(?:p|div|tr|li|h[1-6]|table|blockquote|pre))\s*>",
                        re.I)
_CELL_END = re.compile(r"<\s*/\s*t[dh]\s*>", re.I)  # cells of a row: words apart, one line
_DROPPED = re.compile(r"<\s*(script|style|head|title)\b.*?<\s*/\s*\1\s*>", re.I | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")
_BLANK_LINES = re.compile(r"\n{3,}")
MAX_QUOTED = 200_000  # characters of the original quoted into a reply


def reply_subject(subject: str) -> str:
    """"Re: " added unless the subject already starts with a reply prefix."""
    return subject if _REPLY_PREFIX.match(subject) else f"Re: {subject}".rstrip()


def forward_subject(subject: str) -> str:
    """"Fwd: " added unless already there."""
    return subject if _FORWARD_PREFIX.match(subject) else f"Fwd: {subject}".rstrip()


def thread_references(view: MessageView) -> tuple[str, ...]:
    """The References of an answer: the original's, then its Message-ID (RFC 5322 3.6.4)."""
    chain = list(view.references) or ([view.in_reply_to] if view.in_reply_to else [])
    if view.message_id:
        chain.append(view.message_id)
    return tuple(dict.fromkeys(chain))[-20:]


def reply_recipients(
    view: MessageView, own: set[str], *, to_all: bool
) -> tuple[tuple[Address, ...], tuple[Address, ...]]:
    """(To, Cc) of a reply: Reply-To or From; with `to_all` also the others, never us."""
    own = {address.lower() for address in own}
    first = view.reply_to or view.sender
    if all(address.lower() in own for _, address in first) and view.to:
        first = view.to  # replying to a message we sent: to its recipients
    to = _unique(first, own, set())
    if not to_all:
        return to, ()
    seen = {address.lower() for _, address in to}
    more_to = _unique([*view.to], own, seen) if first is not view.to else ()
    seen |= {address.lower() for _, address in more_to}
    cc = _unique(view.cc, own, seen)
    return (*to, *more_to), cc


def quoted_text(view: MessageView, attribution: str) -> str:
    """The original's text, each line behind "> ", after an attribution line."""
    body = (view.text or html_to_plain(view.html))[:MAX_QUOTED].rstrip()
    quoted = "\n".join(">" + (" " + line if line and not line.startswith(">") else line)
                       for line in body.split("\n"))
    return f"\n\n{attribution}\n{quoted}\n"


def forwarded_text(view: MessageView, banner: str, labels: dict[str, str]) -> str:
    """The original inline after a banner and its main headers (labels already translated)."""
    rows = [
        (labels["from"], _shown(view.sender)),
        (labels["date"], labels.get("date_value", "")),
        (labels["subject"], view.subject),
        (labels["to"], _shown(view.to)),
    ]
    if view.cc:
        rows.append((labels["cc"], _shown(view.cc)))
    header = "\n".join(f"{label}: {value}" for label, value in rows if value)
    body = (view.text or html_to_plain(view.html))[:MAX_QUOTED].rstrip()
    return f"\n\n---------- {banner} ----------\n{header}\n\n{body}\n"


def html_to_plain(markup: str) -> str:
    """Readable text of an HTML body, for quoting: line breaks kept, tags dropped."""
    text = _DROPPED.sub("", markup)
    text = _BLOCK_END.sub("\n", text)
    text = _CELL_END.sub(" ", text)
    text = html.unescape(_TAG.sub("", text))
    lines = [" ".join(line.split()) for line in text.replace("\r", "").split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _shown(pairs: list[Address] | tuple[Address, ...]) -> str:
    return ", ".join(f"{name} <{address}>" if name else address for name, address in pairs)


def _unique(pairs: list[Address] | tuple[Address, ...], own: set[str],
            seen: set[str]) -> tuple[Address, ...]:
    out: list[Address] = []
    for name, address in pairs:
        key = address.lower()
        if not address or key in own or key in seen:
            continue
        seen.add(key)
        out.append((name, address))
    return tuple(out)

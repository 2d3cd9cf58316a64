"""A text/plain body as HTML: everything escaped, links made clickable, quotes marked.

The text is escaped first and links are found in the escaped text, so no
character of the message ever reaches the page unescaped; a link's href is
built only from http(s) URLs, `www.` hosts and mail addresses the pattern
accepts (no quote, no angle bracket, no space can be in them).
Quoted lines ("> ...") get a class so the page can colour them, and
format=flowed soft line breaks (RFC 3676) are joined when asked.
"""

from __future__ import annotations

import html
import re
from urllib.parse import quote

# Explicit bidi embeddings, overrides and isolates (RTL letters and the
# marks are not among them): where text cannot be isolated (a field, a
# title) "\u202eevil" prints what follows reversed, so they are dropped.
BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")
# Never part of a URL (RFC 3987 4.1: an IRI has no bidi formatting
# characters): "https://x.example/\u202egpj.exe" would show as a picture's
# address and fetch a program; the link ends before the first of them.
_NOT_IN_URL = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"

# In escaped text: "&amp;" stays part of a URL, "&lt;"/"&gt;"/"&quot;" end it.
# An address is looked for only from the start of a run of local-part
# characters (the lookbehind), never from inside one: from every position
# of "a.a.a.a..." the engine would read 64 characters before failing (8 MB
# of such text held the web process for seconds); leading punctuation of the
# run is given back by `anchor`.
_LOCAL = "A-Za-z0-9._%+\\-"
_LINK = re.compile(
    r"""(?P<url>\b(?:https?://|www\.)(?:[^\s<>"'&\x00-\x1f""" + _NOT_IN_URL + r"""]|&amp;)+)
      |(?P<mail>(?<![""" + _LOCAL + r"""])[""" + _LOCAL + r"""]{1,64}
        @[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63})+\b)""",
    re.VERBOSE | re.IGNORECASE,
)
_TRAILING = ".,;:!?)]}'"
_MAX_LINKS = 2000  # per message; past that the rest stays text


def text_to_html(text: str, *, flowed: bool = False, delsp: bool = False,
                 compose_url: str = "") -> str:
    """Escaped HTML of a text body (to go inside an element with white-space: pre-wrap).

    `compose_url`: where a click on a mail address goes (`?to=` is appended);
    without it, a `mailto:` link.
    """
    if flowed:
        text = unflow(text, delsp=delsp)
    out: list[str] = []
    block: list[str] = []
    quoted = False
    for line in text.split("\n"):
        is_quote = line.startswith(">")
        if block and is_quote != quoted:
            out.append(_block(block, quoted, compose_url))
            block = []
        quoted = is_quote
        block.append(line)
    if block:
        out.append(_block(block, quoted, compose_url))
    return "".join(out)


def unflow(text: str, *, delsp: bool = False) -> str:
    """Join format=flowed soft line breaks (a line ending in a space continues).

    With delsp=yes the space that marked the soft break is dropped (text in
    languages written without spaces, where it is no part of the text).
    """
    lines = text.split("\n")
    out: list[str] = []
    for line in lines:
        if out and out[-1].endswith(" ") and out[-1] != "-- " and _depth(out[-1]) == _depth(line):
            previous = out.pop()
            if delsp:
                previous = previous[:-1]
            depth = _depth(line)
            out.append(previous + line[depth:].removeprefix(" ") if depth else previous + line)
        else:
            out.append(line[1:] if line.startswith(" ") else line)  # space-stuffing
    return "\n".join(out)


def _depth(line: str) -> int:
    return len(line) - len(line.lstrip(">"))


def _block(lines: list[str], quoted: bool, compose_url: str) -> str:
    body = linkify(html.escape("\n".join(lines), quote=True), compose_url)
    if quoted:
        return f'<span class="quote">{body}</span>\n'
    return body + "\n"


def linkify(escaped: str, compose_url: str = "") -> str:
    """Links in already escaped text made into anchors."""
    count = 0

    def anchor(found: re.Match[str]) -> str:
        nonlocal count
        count += 1
        if count > _MAX_LINKS:
            return found.group(0)
        shown = found.group(0)
        trail = ""
        while shown and shown[-1] in _TRAILING:
            trail = shown[-1] + trail
            shown = shown[:-1]
        if found.group("mail"):
            address = shown.lstrip("._%+-")
            lead = shown[: len(shown) - len(address)]
            if not address or address.startswith("@"):
                return found.group(0)
            href = (f"{compose_url}?to={quote(address, safe='@')}" if compose_url
                    else f"mailto:{quote(address, safe='@')}")
            return f'{lead}<a href="{html.escape(href)}">{address}</a>{trail}'
        url = html.unescape(shown)
        if url.lower().startswith("www."):
            url = "http://" + url
        href = html.escape(quote(url, safe=":/?#[]@!$&'()*+,;=%~-._"), quote=True)
        return (f'<a href="{href}" target="_blank" rel="noopener noreferrer">'
                f"{shown}</a>{trail}")

    return _LINK.sub(anchor, escaped)

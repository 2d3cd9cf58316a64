"""HTML mail made safe to show: nh3 (ammonia) with an allow-list, then the frame's CSP.

Three walls, each enough alone for scripts:
1. nh3 parses the HTML as a browser does (html5ever) and keeps only the
   tags and attributes below: no script, no event handler, no form, no
   `<base>`, `<meta>`, `<link>`, SVG or MathML, no frame or object.
   URLs: links only http(s) and mailto, images only our inline images
   (cid:, rewritten to data: URLs we built), `data:image/...` and, once the
   user allowed it, http(s). Relative URLs are dropped.
2. CSS (`<style>` and style attributes) goes through `css_scrub`.
3. The result is shown in `<iframe sandbox>` without allow-scripts or
   allow-same-origin, served under `frame_csp()`: `default-src 'none'`,
   inline styles, images only `data:` (plus http(s) when allowed). So even a
   sanitizer bug runs nothing and loads nothing remote.

Before nh3 sees it, the HTML is clipped after MAX_START_TAGS start tags
(as Gmail clips long messages): html5ever walks its stack of open elements
for many start tags (`<div>`, `<ul><li>`, `<b><div>`...), so deeply nested
markup costs time in the square of its depth: 200,000 `<div>` (1 MB) kept a
CPU busy for many minutes per view. `SafeHtml.clipped` says it happened.

Inline (cid:) images are embedded as data: URLs rather than fetched from
an endpoint: a sandboxed frame has an opaque origin, so SameSite cookies
would not go with its requests, and the CSP stays free of our own URLs.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Mapping
from dataclasses import dataclass

import nh3

from nmail.web.css_scrub import UrlPolicy, scrub_css

_TAGS = frozenset({
    "a", "abbr", "address", "article", "aside", "b", "bdi", "big", "blockquote", "br",
    "caption", "center", "cite", "code", "col", "colgroup", "dd", "del", "details", "dfn",
    "div", "dl", "dt", "em", "figcaption", "figure", "font", "footer", "h1", "h2", "h3", "h4",
    "h5", "h6", "header", "hr", "i", "img", "ins", "kbd", "li", "main", "mark", "nav", "ol",
    "p", "pre", "q", "rp", "rt", "ruby", "s", "samp", "section", "small", "span", "strike",
    "strong", "style", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th",
    "thead", "time", "tr", "tt", "u", "ul", "var", "wbr",
})
_GENERIC = frozenset({"style", "class", "dir", "lang", "title", "align", "valign", "id",
                      "width", "height", "bgcolor"})
_ATTRIBUTES = {
    "*": set(_GENERIC),
    "a": {"href"},
    "img": {"src", "alt", "border", "hspace", "vspace"},
    "font": {"color", "face", "size"},
    "table": {"border", "cellpadding", "cellspacing", "summary"},
    "td": {"colspan", "rowspan", "nowrap", "headers", "scope"},
    "th": {"colspan", "rowspan", "nowrap", "headers", "scope", "abbr"},
    "col": {"span"}, "colgroup": {"span"},
    "ol": {"start", "type", "reversed"}, "ul": {"type"}, "li": {"value"},
    "hr": {"size", "noshade", "color"},
    "blockquote": {"cite"}, "q": {"cite"}, "del": {"datetime"}, "ins": {"datetime"},
    "time": {"datetime"},
}
# Removed with everything inside them (the rest only lose the tag).
_CLEAN_CONTENT = frozenset({"script", "noscript", "title", "template", "iframe", "object",
                            "embed", "applet", "frameset", "noframes", "textarea", "select",
                            "svg", "math", "xml", "head"})
_SCHEMES = frozenset({"http", "https", "mailto", "cid", "data"})
# With its attributes (class, title... are allowed on every tag): `<style title=x>`
# must not slip past the CSS scrubber.
_STYLE_ELEMENT = re.compile(r"(<style\b[^>]*>)(.*?)(</style>)", re.DOTALL)
_DATA_LIMIT = 25 * 1024 * 1024  # bytes of inline images embedded into one message
MAX_START_TAGS = 10_000  # of one body shown; a long newsletter has a few thousand
_START_TAG = re.compile(r"<[A-Za-z]")  # every start tag (and some text that only looks so)


@dataclass(frozen=True, slots=True)
class SafeHtml:
    """Sanitized HTML and how many remote loads were blocked (for "show images")."""

    html: str
    blocked_remote: int
    clipped: bool = False  # the body had more than MAX_START_TAGS tags; the rest is not shown


def sanitize_html(
    markup: str, *, allow_remote: bool, inline: Mapping[str, tuple[str, bytes]] | None = None,
) -> SafeHtml:
    """Sanitize a message's HTML body; `inline`: content-id (lowercase) -> (type, bytes)."""
    images = dict(inline or {})
    cache: dict[str, str] = {}

    def inline_url(cid: str) -> str | None:
        key = cid.strip().strip("<>").lower()
        if key not in cache:
            found = images.get(key)
            if found is None or not found[0].startswith("image/") or "svg" in found[0]:
                return None
            cache[key] = f"data:{found[0]};base64," + base64.b64encode(found[1]).decode("ascii")
        return cache[key]

    policy = UrlPolicy(allow_remote=allow_remote, inline=inline_url)

    def attribute(tag: str, name: str, value: str) -> str | None:
        if name == "style":
            return scrub_css(value, policy) or None
        if name == "href":
            return _link(value)
        if name == "src":
            return policy.image_url(value)
        if name == "id":
            return "m-" + value[:64]
        return value

    cleaner = nh3.Cleaner(
        tags=set(_TAGS),
        clean_content_tags=set(_CLEAN_CONTENT),
        attributes={tag: set(names) for tag, names in _ATTRIBUTES.items()},
        attribute_filter=attribute,
        url_schemes=set(_SCHEMES),
        url_relative="deny",
        link_rel="noopener noreferrer",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        strip_comments=True,
    )
    markup, clipped = _clip(markup)
    cleaned = cleaner.clean(markup)
    cleaned = _STYLE_ELEMENT.sub(
        lambda m: m.group(1) + scrub_css(m.group(2), policy) + m.group(3),
        cleaned,
    )
    return SafeHtml(cleaned, policy.blocked, clipped)


def _clip(markup: str) -> tuple[str, bool]:
    """`markup` up to its MAX_START_TAGS-th start tag, and whether anything was cut."""
    for count, found in enumerate(_START_TAG.finditer(markup), start=1):
        if count > MAX_START_TAGS:
            return markup[:found.start()], True
    return markup, False


def is_clipped(markup: str) -> bool:
    """Whether `sanitize_html` would show only the beginning of this body (cheap: one scan)."""
    return _clip(markup)[1]


def inline_budget() -> int:
    """Bytes of cid images one message may embed."""
    return _DATA_LIMIT


def _link(url: str) -> str | None:
    """Links keep http(s) and mailto only (nh3 already dropped other schemes)."""
    lowered = url.strip().lower()
    if lowered.startswith(("http://", "https://", "mailto:")):
        return url.strip()
    return None


def frame_document(body: str, *, lang: str = "", dark: bool = False) -> str:
    """The whole document the sandboxed frame shows: the sanitized body in a bare page."""
    del dark
    lang_attr = f' lang="{html.escape(lang)}"' if lang else ""
    return (
        f'<!DOCTYPE html><html{lang_attr}><head><meta charset="utf-8">'
        '<meta name="referrer" content="no-referrer">'
        '<style>html,body{margin:0;padding:0;background:#fff;color:#202124}'
        'body{padding:12px 16px;font:15px/1.6 system-ui,-apple-system,"Apple SD Gothic Neo",'
        '"Noto Sans KR","Malgun Gothic",sans-serif;overflow-wrap:anywhere;word-break:keep-all}'
        'img{max-width:100%;height:auto}table{max-width:100%}pre{white-space:pre-wrap}'
        # In a cell `anywhere` lets the table shrink to one letter a line ("수/량",
        # "1,500,0/00원" on a phone): a cell keeps its words; a wide table scrolls.
        'td,th{overflow-wrap:break-word}'
        'blockquote{margin:0 0 0 .8em;padding-left:.8em;border-left:3px solid #ccc}'
        "</style></head><body>" + body + "</body></html>"
    )


def frame_csp(*, allow_remote: bool) -> str:
    """The Content-Security-Policy of the frame document."""
    images = "data: http: https:" if allow_remote else "data:"
    return (
        f"default-src 'none'; style-src 'unsafe-inline'; img-src {images}; "
        "font-src 'none'; media-src 'none'; frame-src 'none'; form-action 'none'; "
        "base-uri 'none'; frame-ancestors 'self'; sandbox allow-popups "
        "allow-popups-to-escape-sandbox"
    )

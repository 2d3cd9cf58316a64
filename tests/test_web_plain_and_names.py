"""web.plain_text (escaped text with links) and web.download_names (safe file names)."""

from __future__ import annotations

import re
import unicodedata
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nmail.web.download_names import content_disposition, download_headers, safe_filename
from nmail.web.plain_text import text_to_html, unflow


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(markup: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(markup)
    return parser.tags


def test_links_become_anchors_and_the_rest_stays_text() -> None:
    out = text_to_html('See https://example.com/a?b=1&c=2, www.example.kr and kim@example.kr.'
                       '\n<script>alert(1)</script> "quoted"')
    tags = _tags(out)
    assert [t for t, _ in tags] == ["a", "a", "a"]
    assert tags[0][1]["href"] == "https://example.com/a?b=1&c=2"
    assert tags[1][1]["href"] == "http://www.example.kr"
    assert tags[2][1]["href"] == "mailto:kim@example.kr"
    assert "&lt;script&gt;" in out and "&quot;quoted&quot;" in out
    assert out.count("</a>,") == 1 and "</a>." in out  # punctuation is not part of a link


def test_mail_addresses_go_to_compose_when_asked() -> None:
    out = text_to_html("write to lee@example.kr", compose_url="/compose")
    assert _tags(out)[0][1]["href"] == "/compose?to=lee@example.kr"


def test_quotes_are_marked_and_flowed_text_joined() -> None:
    out = text_to_html("reply\n> quoted one\n> quoted two\nafter")
    assert out.count('<span class="quote">') == 1
    assert unflow("a long \nline\n> q1 \n> q2\n-- \nsig") == "a long line\n> q1 q2\n-- \nsig"
    assert unflow("한국어는 띄어 \n쓰기", delsp=True) == "한국어는 띄어쓰기"
    assert unflow("한국어는 띄어 \n쓰기") == "한국어는 띄어 쓰기"


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(alphabet=st.sampled_from(list("<>\"'&;:/.@ ahjtvsw()[]\n#=?%")),
                        max_size=200), st.text(max_size=200)))
def test_no_text_ever_becomes_markup(text: str) -> None:
    out = text_to_html(text)
    for tag, attrs in _tags(out):
        assert tag in ("a", "span")
        if tag == "a":
            assert set(attrs) <= {"href", "target", "rel"}
            assert re.match(r"(https?://|mailto:)", attrs["href"] or "")
        else:
            assert attrs == {"class": "quote"}


@pytest.mark.parametrize("name,expected", [
    ("../../x", "x"),
    ("..\\..\\windows\\system32\\evil.dll", "evil.dll"),
    ("a\x00.html", "a.html"),
    ("invoice\u202egpj.exe", "invoicegpj.exe"),
    ("\u2066report\u2069.pdf", "report.pdf"),
    ("zero\u200bwidth.txt", "zerowidth.txt"),
    ("line\r\nbreak.txt", "line break.txt"),
    (".bashrc", "bashrc"),
    ("...", "attachment"),
    ("", "attachment"),
    ("CON", "_CON"),
    ("nul.txt", "_nul.txt"),
    ('what?<is>:"this"|*.txt', "what__is___this___.txt"),
    ("보고서 (최종).hwp", "보고서 (최종).hwp"),
    ("trailing. ", "trailing"),
])
def test_safe_filename(name: str, expected: str) -> None:
    assert safe_filename(name) == expected


def test_long_names_keep_their_extension() -> None:
    name = safe_filename("가" * 500 + ".pdf")
    assert name.endswith(".pdf") and len(name) <= 120


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_safe_filename_never_returns_a_dangerous_name(name: str) -> None:
    out = safe_filename(name)
    assert out and "/" not in out and "\\" not in out and not out.startswith(".")
    assert out == out.strip()
    assert all(unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in out)
    assert len(out) <= 120
    header = content_disposition(out)
    assert header.isascii() and "\r" not in header and "\n" not in header
    assert header.count('"') == 2


def test_download_headers() -> None:
    headers = download_headers("../../보고서\u202e.pdf")
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Disposition"] == (
        "attachment; filename=\"___.pdf\"; filename*=UTF-8''%EB%B3%B4%EA%B3%A0%EC%84%9C.pdf")
    assert "sandbox" in headers["Content-Security-Policy"]


@pytest.mark.parametrize("control", ["\u202e", "\u202d", "\u2067", "\u200f", "\u061c"])
def test_a_link_ends_at_a_bidi_control(control: str) -> None:
    # "https://x.example/<RLO>gpj.exe" shows as ".../exe.jpg": the link must not
    # take the reversed tail (RFC 3987 4.1: no bidi formatting in an IRI).
    out = text_to_html(f"photo: https://x.example/a{control}gpj.exe and www.y.example{control}q")
    hrefs = [attrs["href"] for tag, attrs in _tags(out) if tag == "a"]
    assert hrefs == ["https://x.example/a", "http://www.y.example"]
    assert control in out  # the text itself stays as it was written


def test_right_to_left_text_still_links() -> None:
    out = text_to_html("\u05e9\u05dc\u05d5\u05dd https://x.example/\u05e9 "
                       "\u0645\u0631\u062d\u0628\u0627")
    hrefs = [attrs["href"] for tag, attrs in _tags(out) if tag == "a"]
    assert hrefs == ["https://x.example/%D7%A9"]

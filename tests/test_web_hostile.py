"""The webmail from an attacker's side: what the other tests did not try (red team).

A hostile sender, a curious user, a shared cache: each test is a hole that
was found open, kept closed here.
"""

from __future__ import annotations

import re
import smtplib
from collections.abc import Iterator
from pathlib import Path

import pytest

from nmail.web.message_html import MAX_START_TAGS, sanitize_html
from nmail.web.plain_text import text_to_html
from server_rig import RunningServer
from web_rig import Browser, web_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with web_server(tmp_path) as srv:
        srv.add_user("bob@example.com")
        yield srv


@pytest.fixture
def browser(server: RunningServer) -> Iterator[Browser]:
    b = Browser(server)
    yield b
    b.close()


def _send_raw(server: RunningServer, raw: bytes, to: str = "bob@example.com") -> None:
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=10) as smtp:
        smtp.sendmail("mallory@remote.example", [to], raw)


def _first_message(browser: Browser) -> str:
    inbox = browser.get("/").headers["location"]
    links = re.findall(r'href="(/mail/\d+/\d+)"', browser.get(inbox).text)
    assert links, "the message did not arrive"
    return links[0]


def test_private_pages_are_never_stored_by_a_cache(server: RunningServer,
                                                   browser: Browser) -> None:
    _send_raw(server, b"From: a@remote.example\r\nTo: bob@example.com\r\nSubject: payroll\r\n"
                      b"\r\nsecret\r\n")
    assert browser.login("bob").status_code == 303
    message = _first_message(browser)
    inbox = browser.get("/").headers["location"]
    for path in (inbox, message, message + "?pane=1", "/compose", "/login", "/"):
        answer = browser.get(path)
        assert "no-store" in answer.headers.get("cache-control", ""), path
    # The static files may be cached (they are versioned in the pages' links).
    assert "no-store" not in browser.get("/static/nmail.css").headers.get("cache-control", "")


def test_style_element_with_attributes_is_scrubbed_too() -> None:
    for markup in ('<style title="a">body{background:url(http://track.example/p)}</style>',
                   '<style class=x dir=rtl>p{background:url(//track.example/p)}</style>'):
        safe = sanitize_html(markup, allow_remote=False)
        assert "track.example" not in safe.html, markup
        assert safe.blocked_remote == 1  # and "show images" is offered


def test_deeply_nested_html_is_clipped_before_the_sanitizer() -> None:
    # html5ever pays the depth of its open elements for each such tag: 200,000
    # nested <div> (1 MB) took minutes of CPU per view before the clip.
    for piece in ("<div>", "<ul><li>", "<b><div>"):
        count = (MAX_START_TAGS + 500) // piece.count("<") + 1
        safe = sanitize_html(piece * count + "<p>end</p>", allow_remote=False)
        assert safe.clipped, piece
        assert "end" not in safe.html
        assert safe.html.count("<") <= 2 * MAX_START_TAGS  # start and end tags kept
    ordinary = "<table>" + "<tr><td>cell</td></tr>" * 3000 + "</table><p>end</p>"
    safe = sanitize_html(ordinary, allow_remote=False)
    assert not safe.clipped and "end" in safe.html


def test_nested_html_mail_opens_on_the_real_server(server: RunningServer,
                                                   browser: Browser) -> None:
    html = ("<ul><li>" * 100 + "\r\n") * 1000 + "deep"  # lines under SMTP's 1000
    _send_raw(server, b"From: a@remote.example\r\nTo: bob@example.com\r\nSubject: deep\r\n"
                      b"MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
                      + html.encode() + b"\r\n")
    assert browser.login("bob").status_code == 303
    message = _first_message(browser)
    # Each answers within the client's timeout (20 s) instead of minutes.
    assert browser.get(message).status_code == 200
    assert browser.get(message + "/body").status_code == 200


def test_an_address_is_looked_for_only_from_the_start_of_a_run() -> None:
    # The engine no longer tries every position inside "a.a.a...": a run longer
    # than an address's local part is not an address, and leading dots stay text.
    assert "<a " not in text_to_html("x" * 70 + "@example.com")
    assert "<a " not in text_to_html("a." * 40 + "b@example.com")  # not its last 64
    assert text_to_html("..kim.lee@example.com.") == (
        '..<a href="mailto:kim.lee@example.com">kim.lee@example.com</a>.\n')
    assert 'href="mailto:bob@example.com"' in text_to_html("(bob@example.com)")

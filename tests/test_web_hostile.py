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

from nmail.web.message_html import sanitize_html
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

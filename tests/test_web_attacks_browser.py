"""Hostile mail in a real browser (Debian's Chromium): what only a browser's parser shows.

The sanitizer's output is checked as text in test_web_attacks.py; here the same
kitchen sink of payloads (mutation XSS through <math>/<svg>/<noscript>/<style>,
event handlers, javascript: links, <base>, <meta refresh>, forms, srcset, CSS
url()) is opened in the read screen, the print view and an attached message, and
each text/html or SVG attachment is navigated to directly: nothing may run (no
dialog, no marker), no request may leave for another host, and no attachment may
render as a document of our origin.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chromium_rig import chromium, login
from server_rig import PASSWORD, RunningServer
from test_web_attacks import HOSTILE_HTML
from test_web_browser_reading import base_url, message_frame, put
from web_rig import web_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MARK = "document.documentElement.setAttribute('data-pwned','%s')"
PAYLOADS = HOSTILE_HTML.replace("alert(", "top.document.documentElement.setAttribute('data-pwned',")
ATTACHED_HTML = ("<html><body><p>attached page</p><script>" + MARK % "attachment"
                 + ";top.document.title='PWNED'</script></body></html>")
SVG = ("<svg xmlns='http://www.w3.org/2000/svg'><script>" + MARK % "svg"
       + "</script><circle r='5'/></svg>")


def _mail() -> bytes:
    html = PAYLOADS.replace("\n", "\r\n")
    return (
        "From: m@remote.example\r\nSubject: browser-attack\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=B\r\n\r\n"
        "--B\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + html + "\r\n"
        "--B\r\nContent-Type: text/html\r\nContent-Disposition: inline; filename=page.html\r\n\r\n"
        + ATTACHED_HTML + "\r\n"
        "--B\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename=lie.png\r\n"
        "\r\n" + ATTACHED_HTML + "\r\n"
        "--B\r\nContent-Type: image/svg+xml\r\nContent-Disposition: inline; filename=x.svg\r\n\r\n"
        + SVG + "\r\n"
        "--B\r\nContent-Type: message/rfc822\r\n\r\n"
        "From: n@remote.example\r\nSubject: inner\r\nContent-Type: text/html\r\n\r\n"
        + html + "\r\n"
        "--B--\r\n").encode()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, RunningServer, str]]:
    with chromium() as browser, web_server(Path(tmp_path_factory.mktemp("b"))) as server:
        bob = server.add_user("bob@example.com")
        yield browser, server, put(server, bob, _mail())


def _page(browser: Any, server: RunningServer) -> tuple[Any, list[str], list[str]]:
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    dialogs: list[str] = []
    foreign: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    own = base_url(server)
    context.on("request", lambda r: None if r.url.startswith((own, "data:", "about:"))
               else foreign.append(r.url))
    login(page, own, "bob@example.com", PASSWORD)
    return page, dialogs, foreign


def _untouched(page: Any) -> None:
    for frame in page.frames:
        try:
            marked = frame.evaluate("document.documentElement.getAttribute('data-pwned')")
        except Exception:  # a frame without a document (blocked, gone)
            continue
        assert marked is None, (frame.url, marked)
    assert page.title() != "PWNED"


def test_the_read_screen_print_view_and_attached_message_run_nothing(
        setup: tuple[Any, RunningServer, str]) -> None:
    browser, server, url = setup
    page, dialogs, foreign = _page(browser, server)
    try:
        page.goto(base_url(server) + url)
        inner = page.eval_on_selector_all(
            "a[href*='/msg/']", "links => links.map(a => a.getAttribute('href'))")
        assert inner, "the attached message's link"
        inner_url = inner[0].split("?")[0]
        for path in (url, url + "/print", inner_url, inner_url + "/print", url + "?pane=1"):
            answer = page.goto(base_url(server) + path)
            assert answer is not None and answer.status == 200, path
            if path in (url, inner_url):
                frame = message_frame(page)
                assert "good link" in frame.inner_text("body")
            page.wait_for_load_state("load")
            _untouched(page)
        assert not dialogs and not foreign, (dialogs, foreign)
        assert page.evaluate("document.documentElement.getAttribute('data-pwned')") is None
    finally:
        page.context.close()


def test_attachments_never_render_as_pages_of_our_origin(
        setup: tuple[Any, RunningServer, str]) -> None:
    browser, server, url = setup
    page, dialogs, foreign = _page(browser, server)
    try:
        page.goto(base_url(server) + url)
        numbers = page.eval_on_selector_all(
            "a.attachment-link", "links => links.map(a => a.getAttribute('href'))")
        assert len(numbers) >= 3, numbers
        downloads = 0
        for href in numbers + [h + "?preview=1" for h in numbers]:
            tab = page.context.new_page()
            tab.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            try:
                tab.goto(base_url(server) + href, timeout=10_000)
            except Exception as error:  # Playwright: the navigation became a download
                assert "Download is starting" in str(error), (href, error)
                downloads += 1
            else:  # shown (a raster preview): as an image, never a document that runs
                assert tab.evaluate("document.contentType").startswith("image/"), href
                assert tab.evaluate(
                    "document.documentElement.getAttribute('data-pwned')") is None
            finally:
                tab.close()
        assert downloads >= len(numbers)  # every one without ?preview=1 is a file
        _untouched(page)
        assert not dialogs and not foreign, (dialogs, foreign)
    finally:
        page.context.close()

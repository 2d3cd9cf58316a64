"""A link on another site, followed in a real browser (Debian's Chromium), marks nothing.

What the browser sends decides (web/guard.from_own_pages), so Chromium is asked,
not told: the webmail is opened at 127.0.0.1 (a secure origin to Chromium: it
sends Sec-Fetch-Site) and at mail.example.com over plain HTTP (it sends no Fetch
Metadata there: the Referer decides); the other site is evil.example on a server
of its own, once with its default referrer policy and once with `no-referrer`.
Followed from there the message opens and stays unread; opened from the list it
is marked read.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from chromium_rig import chromium, login
from nmail.directory.model import Account
from nmail.mailstore.store import NewMessage
from server_rig import PASSWORD, RunningServer
from support import wait_until
from web_rig import web_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]
EVIL = "evil.example"
HOST = "mail.example.com"


class ForeignSite:
    """Another site: `/?to=URL` is a page with one link to URL (`&noref=1`: sent with
    no Referer, as a page hiding where it is would)."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                target = query.get("to", ["/"])[0].replace('"', "")
                meta = ('<meta name="referrer" content="no-referrer">'
                        if query.get("noref") else "")
                body = (f'<!doctype html><html><head>{meta}<title>elsewhere</title></head>'
                        f'<body><a id="go" href="{target}">a link</a></body></html>').encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def page_linking(self, target: str, *, referer: bool) -> str:
        return f"http://{EVIL}:{self.port}/?to={target}" + ("" if referer else "&noref=1")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[Any, RunningServer, Account, ForeignSite]]:
    rules = f"--host-resolver-rules=MAP {HOST} 127.0.0.1, MAP {EVIL} 127.0.0.1"
    site = ForeignSite()
    try:
        with chromium((rules,)) as browser, \
                web_server(Path(tmp_path_factory.mktemp("xs"))) as server:
            bob = server.add_user("bob@example.com")
            yield browser, server, bob, site
    finally:
        site.close()


def _put(server: RunningServer, bob: Account, subject: str) -> tuple[int, str]:
    raw = (f"From: Mallory <m@remote.example>\r\nTo: bob@example.com\r\nSubject: {subject}\r\n"
           f"\r\nbody of {subject}\r\n").encode()
    [stored] = server.runtime.store.store([NewMessage(bob, "INBOX", b"", raw)])
    folder = server.runtime.store.folder(bob.id, "INBOX").id
    return stored.uid, f"/mail/{folder}/{stored.uid}"


def _seen(server: RunningServer, bob: Account, uid: int) -> bool:
    rows = server.runtime.store.list_messages(bob.id, "INBOX", limit=500)
    return "\\Seen" in next(r.flags for r in rows if r.uid == uid)


def _no_mark_on_its_way() -> bool:
    from nmail.web.routes.message import _marking

    return not _marking


@pytest.mark.parametrize("host", ["127.0.0.1", HOST])
def test_a_link_from_another_site_opens_the_message_unread(
        setup: tuple[Any, RunningServer, Account, ForeignSite], host: str) -> None:
    browser, server, bob, site = setup
    base = f"http://{host}:{server.port('http')}"
    context = browser.new_context()
    page = context.new_page()
    sent: list[Any] = []
    context.on("request", lambda r: sent.append(r) if r.url.startswith(base + "/mail/")
               else None)
    try:
        login(page, base, "bob@example.com", PASSWORD)
        uid, url = _put(server, bob, f"followed-{host}")
        for referer in (True, False):
            page.goto(site.page_linking(base + url, referer=referer))
            with page.expect_navigation():
                page.click("#go")
            assert page.url == base + url
            assert f"body of followed-{host}" in page.inner_text("main")  # it opens
        wait_until(_no_mark_on_its_way, 10, "no mark on its way")
        assert not _seen(server, bob, uid)
        # What Chromium said: Fetch Metadata only to the secure origin.
        said = [(r.all_headers().get("sec-fetch-site"), r.all_headers().get("referer"))
                for r in sent if r.is_navigation_request()]
        if host == "127.0.0.1":
            assert [site for site, _ in said[-2:]] == ["cross-site", "cross-site"], said
        else:
            assert [site for site, _ in said[-2:]] == [None, None], said
            assert [(referer or "").startswith(f"http://{EVIL}:") for _, referer in said[-2:]
                    ] == [True, False], said
        # From the list, in the reading pane: read.
        own_uid, own_url = _put(server, bob, f"own-{host}")
        page.goto(base + own_url.rsplit("/", 1)[0])
        page.click(f'.msg[data-uid="{own_uid}"] .msg-link')
        page.frame_locator("iframe[name=reader]").locator(".reader-subject").wait_for()
        wait_until(lambda: _seen(server, bob, own_uid), 10, "opened from the list: read")
        assert not _seen(server, bob, uid)
    finally:
        context.close()


@pytest.mark.parametrize("host", ["127.0.0.1", HOST])
def test_remote_images_load_only_after_show_images_on_our_page(
        setup: tuple[Any, RunningServer, Account, ForeignSite], host: str) -> None:
    """Another site's link with ?images=1 (to the read screen or straight to its frame)
    loads no remote image (web/image_grant.py); "Show images" clicked on our page does,
    though the frame's request carries no Referer and, over plain HTTP, no Fetch
    Metadata: its token lets the images in."""
    from test_web_browser_reading import HitCounter, message_frame

    browser, server, bob, site = setup
    base = f"http://{host}:{server.port('http')}"
    tracker = HitCounter()
    context = browser.new_context()
    page = context.new_page()
    frames: list[Any] = []
    context.on("request", lambda r: frames.append(r) if "/body" in r.url else None)
    try:
        login(page, base, "bob@example.com", PASSWORD)
        raw = (f"From: news@remote.example\r\nTo: bob@example.com\r\nSubject: pixel-{host}\r\n"
               f"Content-Type: text/html\r\n\r\n<p>newsletter {host}</p>"
               f"<img src=\"http://127.0.0.1:{tracker.port}/pixel.png\" alt=pixel>\r\n").encode()
        [stored] = server.runtime.store.store([NewMessage(bob, "INBOX", b"", raw)])
        url = f"/mail/{server.runtime.store.folder(bob.id, 'INBOX').id}/{stored.uid}"
        for target in (url + "?images=1", url + "/body?images=1"):
            for referer in (True, False):
                page.goto(site.page_linking(base + target, referer=referer))
                with page.expect_navigation():
                    page.click("#go")
                assert page.url == base + target
                if "/body" not in target:
                    assert "newsletter" in message_frame(page).inner_text("body")
                    assert page.locator("text=Show images").count() == 1
                page.wait_for_load_state("networkidle")
                assert sum(tracker.hits.values()) == 0, (target, referer, tracker.hits)
        # Our own page: the click loads them.
        page.goto(base + url)
        assert "newsletter" in message_frame(page).inner_text("body")
        with page.expect_navigation():
            page.click("text=Show images")
        message_frame(page)
        wait_until(lambda: tracker.hits["/pixel.png"] >= 1, 10, "the pixel loaded once asked")
        frame_request = frames[-1]
        assert "/body?show=" in frame_request.url
        said = frame_request.all_headers()
        assert "referer" not in said  # the frame is asked for with no-referrer
        if host == HOST:
            assert "sec-fetch-site" not in said  # and, over plain HTTP, no Fetch Metadata
    finally:
        context.close()
        tracker.close()

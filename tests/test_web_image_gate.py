"""Remote images load only when the user asked on our own pages (web/image_grant.py).

`?images=1` on a read screen used to show the sender's remote images for that
request whoever made it: another site's link to /mail/F/U?images=1, or straight to
its /body or /print with ?images=1, made the browser fetch the tracking images (a
web beacon: the read confirmed, the address given away). Now a read screen takes
?images=1 only from our own pages (guard.from_own_pages), and the frame and print
URLs it writes carry `?show=`, an HMAC of the session, folder, uid and attached
path that only our page could make; ?images=1 there does nothing.

One server a database kind; real sockets, httpx sending the headers a browser
sends (test_web_cross_site_browser.py clicks "Show images" in Chromium).
"""

from __future__ import annotations

import html
import re
import smtplib
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import BACKENDS
from databases import ServerDatabase
from server_rig import RunningServer
from test_web_cross_site import (
    FOREIGN,
    HOST,
    NOTHING,
    OWN_REFERER,
    SAME_ORIGIN,
    TYPED,
)
from web_rig import Browser, web_server

TRACKER = "tracker.example"


@pytest.fixture(scope="module", params=BACKENDS)
def server(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    tmp = Path(tmp_path_factory.mktemp("imagegate"))
    database = None if request.param == "sqlite" else ServerDatabase(request.param)
    try:
        with web_server(tmp, database.url if database else None) as srv:
            srv.add_user("alice@a.example")
            yield srv
    finally:
        if database is not None:
            database.drop()


def _login(server: RunningServer) -> Browser:
    b = Browser(server, host=HOST)
    assert b.login("alice").status_code == 303
    return b


@pytest.fixture
def alice(server: RunningServer) -> Iterator[Browser]:
    b = _login(server)
    yield b
    b.close()


def _html(subject: str) -> bytes:
    return (f"From: news@remote.example\r\nTo: alice@a.example\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject}@remote.example>\r\nContent-Type: text/html\r\n\r\n"
            f"<p>body of {subject}</p><img src=\"http://{TRACKER}/{subject}.gif\">\r\n"
            ).encode()


def _forwarded(subject: str) -> bytes:
    inner = _html(subject + "-inner")
    return (f"From: dave@remote.example\r\nTo: alice@a.example\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject}@remote.example>\r\n"
            "Content-Type: multipart/mixed; boundary=out\r\n\r\n"
            "--out\r\nContent-Type: text/html\r\n\r\n<p>see the attached message</p>"
            f"<img src=\"http://{TRACKER}/{subject}.gif\">\r\n"
            "--out\r\nContent-Type: message/rfc822\r\n\r\n").encode() + inner + b"\r\n--out--\r\n"


def _put(server: RunningServer, b: Browser, subject: str, raw: bytes) -> str:
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=10) as smtp:
        smtp.sendmail("news@remote.example", ["alice@a.example"], raw)  # stored at 250
    account = server.directory.get_account("alice@a.example")
    assert account is not None
    rows = server.runtime.store.list_messages(account.id, "INBOX", limit=500)
    uid = next(r.uid for r in rows if r.subject == subject)
    inbox = str(b.get("/").headers["location"]).split("?")[0]
    return f"{inbox}/{uid}"


def _frame_src(page: str) -> str:
    found = re.search(r'<iframe class="message-frame" src="([^"]+)"', page)
    assert found, page
    return html.unescape(found.group(1))


def _print_href(page: str) -> str:
    found = re.search(r'<a href="([^"]+/print[^"]*)"', page)
    assert found, page
    return html.unescape(found.group(1))


def _blocked(answer_csp: str) -> bool:
    from nmail.web.message_html import frame_csp

    return answer_csp == frame_csp(allow_remote=False)


def test_a_foreign_images_link_shows_no_remote_images(server: RunningServer,
                                                      alice: Browser) -> None:
    link = _put(server, alice, "gate-foreign", _html("gate-foreign"))
    for headers in FOREIGN:
        for screen in (link + "?images=1", link + "?pane=1&images=1"):
            page = alice.client.get(screen, headers=headers)
            assert page.status_code == 200 and "Show images" in page.text, (headers, screen)
            assert _frame_src(page.text) == link + "/body", headers
            assert "show=" not in page.text
        for direct in ("/body?images=1", "/body?images=2", "/body?show=", "/body?show=x"):
            frame = alice.client.get(link + direct, headers=headers)
            assert frame.status_code == 200 and "body of gate-foreign" in frame.text
            assert TRACKER not in frame.text, (headers, direct)
            assert _blocked(frame.headers["content-security-policy"]), (headers, direct)
        printed = alice.client.get(link + "/print?images=1", headers=headers)
        assert printed.status_code == 200 and TRACKER not in printed.text, headers
        assert "img-src data:;" in printed.headers["content-security-policy"]
    # Not even from our own pages: the frame and print take the token alone.
    for headers in (SAME_ORIGIN, OWN_REFERER):
        frame = alice.client.get(link + "/body?images=1", headers=headers)
        assert TRACKER not in frame.text and _blocked(frame.headers["content-security-policy"])
        assert TRACKER not in alice.client.get(link + "/print?images=1", headers=headers).text


def test_show_images_on_our_own_page_shows_them(server: RunningServer,
                                                alice: Browser) -> None:
    from nmail.web.message_html import frame_csp

    link = _put(server, alice, "gate-own", _html("gate-own"))
    plain = alice.client.get(link, headers=SAME_ORIGIN).text
    assert f'href="{link}?images=1"' in plain  # the "Show images" button
    for headers in (SAME_ORIGIN, TYPED, OWN_REFERER):
        for screen in (link + "?images=1", link + "?pane=1&images=1"):
            page = alice.client.get(screen, headers=headers)
            assert "Show images" not in page.text, headers
            src = _frame_src(page.text)
            assert src.startswith(link + "/body?show="), src
            # The frame's request carries nothing to judge it by (no-referrer, and no
            # Fetch Metadata over plain HTTP): the token alone lets the images in.
            frame = alice.client.get(src, headers=NOTHING)
            assert f"http://{TRACKER}/gate-own.gif" in frame.text
            assert frame.headers["content-security-policy"] == frame_csp(allow_remote=True)
            printed = alice.client.get(_print_href(page.text), headers=NOTHING)
            assert f"http://{TRACKER}/gate-own.gif" in printed.text


def test_a_token_works_for_its_own_message_and_session_only(server: RunningServer,
                                                            alice: Browser) -> None:
    first = _put(server, alice, "gate-first", _html("gate-first"))
    second = _put(server, alice, "gate-second", _html("gate-second"))
    token = _frame_src(alice.client.get(first + "?images=1", headers=SAME_ORIGIN).text
                       ).split("?", 1)[1]
    assert TRACKER in alice.client.get(f"{first}/body?{token}", headers=NOTHING).text
    # Another message's frame and print: blocked.
    other = alice.client.get(f"{second}/body?{token}", headers=NOTHING)
    assert "body of gate-second" in other.text and TRACKER not in other.text
    assert _blocked(other.headers["content-security-policy"])
    assert TRACKER not in alice.client.get(f"{second}/print?{token}", headers=NOTHING).text
    # The same message in another session of the same user: blocked.
    again = _login(server)
    try:
        theirs = again.client.get(f"{first}/body?{token}", headers=NOTHING)
        assert "body of gate-first" in theirs.text and TRACKER not in theirs.text
        assert _blocked(theirs.headers["content-security-policy"])
        own = _frame_src(again.client.get(first + "?images=1", headers=SAME_ORIGIN).text)
        assert own.split("?", 1)[1] != token
        assert TRACKER in again.client.get(own, headers=NOTHING).text
    finally:
        again.close()
    # Logged out, the token opens nothing at all.
    anonymous = Browser(server, host=HOST)
    try:
        assert anonymous.client.get(f"{first}/body?{token}").status_code in (303, 401)
    finally:
        anonymous.close()


def test_an_attached_message_takes_its_own_token(server: RunningServer,
                                                 alice: Browser) -> None:
    outer = _put(server, alice, "gate-fwd", _forwarded("gate-fwd"))
    inner = outer + "/msg/1"
    for headers in FOREIGN:
        page = alice.client.get(inner + "?images=1", headers=headers)
        assert page.status_code == 200 and "Show images" in page.text, headers
        assert _frame_src(page.text) == inner + "/body"
        for direct in ("/body?images=1", "/print?images=1"):
            answer = alice.client.get(inner + direct, headers=headers)
            assert "body of gate-fwd-inner" in answer.text and TRACKER not in answer.text
    page = alice.client.get(inner + "?images=1", headers=SAME_ORIGIN).text
    src = _frame_src(page)
    assert src.startswith(inner + "/body?show=")
    token = src.split("?", 1)[1]
    assert TRACKER in alice.client.get(src, headers=NOTHING).text
    assert TRACKER in alice.client.get(_print_href(page), headers=NOTHING).text
    # The outer message's token is not the attached one's, nor the other way round.
    outer_src = _frame_src(alice.client.get(outer + "?images=1", headers=SAME_ORIGIN).text)
    assert outer_src.startswith(outer + "/body?show=")
    outer_token = outer_src.split("?", 1)[1]
    assert outer_token != token
    assert TRACKER in alice.client.get(outer_src, headers=NOTHING).text
    for crossed in (f"{inner}/body?{outer_token}", f"{outer}/body?{token}",
                    f"{inner}/print?{outer_token}"):
        answer = alice.client.get(crossed, headers=NOTHING)
        assert answer.status_code == 200 and TRACKER not in answer.text, crossed

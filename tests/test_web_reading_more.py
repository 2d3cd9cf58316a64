"""Issue 11, reading over HTTP: clipped HTML bodies, isolated names, attached messages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nmail.directory.model import Account
from nmail.web.message_html import MAX_START_TAGS
from server_rig import RunningServer
from test_web_read_compose import folder_id, store
from web_rig import Browser, web_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with web_server(tmp_path) as srv:
        yield srv


@pytest.fixture
def bob(server: RunningServer) -> Account:
    return server.add_user("bob@example.com")


@pytest.fixture
def browser(server: RunningServer, bob: Account) -> Iterator[Browser]:
    b = Browser(server)
    assert b.login("bob").status_code == 303
    yield b
    b.close()


def html_mail(body: str) -> bytes:
    return (b"From: a@remote.example\r\nSubject: long\r\n"
            b"Content-Type: text/html; charset=utf-8\r\n\r\n" + body.encode())


def test_a_clipped_html_body_says_so_in_the_users_language(server: RunningServer, bob: Account,
                                                           browser: Browser) -> None:
    line = "<div>" * 100 + "\r\n"
    long_uid = store(server, bob, html_mail(line * 150 + "END"))
    base = f"/mail/{folder_id(server, bob)}/{long_uid}"
    page = browser.get(base)
    assert page.status_code == 200
    assert "This message is long; only its beginning is shown." in page.text
    assert f'href="{base}/source"' in page.text and f'href="{base}/source?download=1"' in page.text
    # The note stands above the frame, which indeed stops before the end.
    assert page.text.index("only its beginning") < page.text.index('class="message-frame"')
    assert "END" not in browser.get(base + "/body").text
    korean = Browser(server, language="ko")
    korean.login("bob")
    assert "메일이 길어 앞부분만 보여 드립니다." in korean.get(base + "?pane=1").text
    korean.close()
    # Exactly at the limit nothing is cut and nothing is said.
    whole = store(server, bob, html_mail("<p>x</p>" * MAX_START_TAGS + "END"))
    shown = f"/mail/{folder_id(server, bob)}/{whole}"
    assert "only its beginning" not in browser.get(shown).text
    assert "END" in browser.get(shown + "/body").text


def test_names_subjects_and_bounce_rows_are_isolated(server: RunningServer, bob: Account,
                                                     browser: Browser) -> None:
    raw = (b"From: =?utf-8?b?4oCuZXZpbA==?= <bad@x.example>\r\nSubject: =?utf-8?b?4oCuYWJj?=\r\n"
           b"Content-Type: text/plain\r\n\r\nhi\r\n")
    base = f"/mail/{folder_id(server, bob)}/{store(server, bob, raw)}"
    page = browser.get(base).text
    assert "<strong><bdi>\u202eevil</bdi></strong>" in page
    assert "&lt;<bdi>bad@x.example</bdi>&gt;" in page
    assert '<h1 id="msg-subject" class="reader-subject"><bdi>\u202eabc</bdi></h1>' in page
    printed = browser.get(base + "/print").text
    assert "<bdi>\u202eevil</bdi> &lt;<bdi>bad@x.example</bdi>&gt;" in printed
    data = Path(__file__).parent / "data" / "bounces" / "disabled" / "17_postfix.eml"
    bounce = store(server, bob, data.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    panel = browser.get(f"/mail/{folder_id(server, bob)}/{bounce}").text
    assert '<p class="bounce-address"><strong><bdi>' in panel

"""Bidi spoofing on the read screen, in Debian's Chromium (redteam's finding, BROKEN.md 19:37).

A sender's display name ending in U+202E (RIGHT-TO-LEFT OVERRIDE) must not
reverse what is printed after it: the address next to the name on the read
screen, the next recipient, the print view. Names and subjects are isolated
(`<bdi>`, `unicode-bidi: isolate`), so the address stays to the right of the
name in an LTR page; Hebrew and Korean names are kept as written.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chromium_rig import chromium, login
from nmail.directory.model import Account
from nmail.mailstore.store import NewMessage
from server_rig import PASSWORD, RunningServer
from web_rig import web_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SPOOF = (b"From: =?utf-8?b?4oCuZXZpbA==?= <bad@x.example>\r\n"  # "\u202eevil"
         b"To: =?utf-8?b?4oCudG8x?= <one@example.com>, Two <two@example.com>\r\n"
         b"Subject: =?utf-8?b?4oCu7ZqM7J2YIOyekOujjA==?=\r\n"  # "\u202e회의 자료"
         b"Content-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n")
HEBREW = (b"From: =?utf-8?b?15PXldeT?= <david@x.example>\r\nSubject: =?utf-8?b?16nXnNeV150=?=\r\n"
          b"Content-Type: text/plain; charset=utf-8\r\n\r\nshalom\r\n")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with web_server(tmp_path) as srv:
        yield srv


def put(server: RunningServer, account: Account, raw: bytes) -> str:
    [stored] = server.runtime.store.store([NewMessage(account, "INBOX", b"", raw)])
    return f"/mail/{server.runtime.store.folder(account.id, 'INBOX').id}/{stored.uid}"


def box(page: Any, selector: str, index: int = 0) -> dict[str, float]:
    found: dict[str, float] = page.eval_on_selector_all(
        selector, "(els, i) => { const r = els[i].getBoundingClientRect();"
                  " return {left: r.left, right: r.right}; }", index)
    return found


def test_an_override_in_a_name_does_not_reverse_the_address(browser: Any,
                                                            server: RunningServer) -> None:
    bob = server.add_user("bob@example.com")
    url = put(server, bob, SPOOF)
    hebrew = put(server, bob, HEBREW)
    base = f"http://127.0.0.1:{server.port('http')}"
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    login(page, base, "bob@example.com", PASSWORD)
    try:
        page.goto(base + url)
        name, address = box(page, ".reader-from strong"), box(page, ".reader-from .muted")
        assert address["left"] >= name["right"] - 1, (name, address)
        # The next recipient stays after the first one.
        first, second = box(page, ".reader-meta dd bdi", 0), box(page, ".reader-meta dd bdi", 1)
        assert second["left"] >= first["right"] - 1, (first, second)
        assert "\u202e회의 자료" in page.inner_text(".reader-subject")  # kept, only isolated

        page.goto(base + url + "/print")
        name, address = box(page, "dd bdi", 0), box(page, "dd bdi", 1)
        assert address["left"] >= name["right"] - 1, (name, address)

        # The list: sender and subject isolated (webui's rows).
        page.goto(base + url.rsplit("/", 1)[0])
        for selector in (".msg-from", ".msg-subject"):
            style = page.eval_on_selector(selector, "el => getComputedStyle(el).unicodeBidi")
            assert style == "isolate", (selector, style)

        # A reply's To field is plain text: the override is dropped, the name kept.
        page.goto(base + "/compose/reply" + url.removeprefix("/mail"))
        value = page.input_value("#compose-to")
        assert value == "evil <bad@x.example>"

        # Right-to-left and Korean text stay as written.
        page.goto(base + hebrew)
        assert page.inner_text(".reader-from strong") == "דוד"
        assert page.inner_text(".reader-subject") == "שלום"
    finally:
        context.close()

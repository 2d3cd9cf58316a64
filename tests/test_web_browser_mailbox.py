"""Issue 11 in a real browser (Debian's Chromium): the mailbox screens.

Log in by the host's domain (Chromium maps mail.example.com to 127.0.0.1),
list, move, delete, search a Korean word, switch language, new mail
without a reload, the phone layout; axe on login, list and settings; and
screenshots of every main screen (desktop and phone, Korean and English,
light and dark) under artifacts/screenshots/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chromium_rig import chromium, screenshot
from nmail.mailstore.search_indexer import SearchIndexer
from server_rig import PASSWORD, RunningServer
from support import wait_until
from web_rig import deliver, web_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]
HOST = "mail.example.com"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with web_server(tmp_path_factory.mktemp("webmail")) as srv:
        srv.add_user("bob@example.com")
        srv.add_user("carol@example.com")
        subjects = [("김과장 <kim@corp.example>", "3분기 회의록을 보냅니다", "회의록 첨부합니다."),
                    ("Amazon <ship@amazon.example>", "Your order has shipped", "Track it."),
                    ("이대리 <lee@corp.example>", "견적서 검토 부탁드립니다",
                     "견적서 확인 바랍니다."),
                    ("GitHub <noreply@github.example>", "[nmail] Pull request #42", "Merged."),
                    ("박부장 <park@corp.example>", "주간 보고", "이번 주 보고입니다."),
                    ("Newsletter <news@letters.example>", "This week in Python", "Links.")]
        dates = [None, None, "Thu, 03 Dec 2026 10:00:00 +0900", "Mon, 02 Nov 2026 08:30:00 +0900",
                 "Fri, 14 Mar 2025 17:20:00 +0900", "Tue, 10 Dec 2024 11:00:00 +0900"]
        for (who, subject, body), date in zip(subjects, dates, strict=True):
            name, _, addr = who.partition(" <")
            deliver(srv, "bob@example.com", subject, body, sender=addr.rstrip(">"), name=name,
                    date=date)
        SearchIndexer(srv.runtime.engine, srv.config.mail_dir).catch_up()
        yield srv


@pytest.fixture(scope="module")
def browser(server: RunningServer) -> Iterator[Any]:
    with chromium((f"--host-resolver-rules=MAP {HOST} 127.0.0.1",)) as b:
        yield b


def base(server: RunningServer) -> str:
    return f"http://{HOST}:{server.port('http')}"


def new_page(browser: Any, *, viewport: dict[str, int] = DESKTOP, locale: str = "en-US",
             scheme: str = "light") -> Any:
    context = browser.new_context(viewport=viewport, locale=locale, color_scheme=scheme)
    return context.new_page()


def log_in(page: Any, server: RunningServer, userid: str = "bob") -> None:
    page.goto(f"{base(server)}/login")
    assert "@example.com" in page.inner_text(".suffix")  # the host named the domain
    page.fill("#userid", userid)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")


def test_login_by_host_and_list(browser: Any, server: RunningServer) -> None:
    page = new_page(browser)
    log_in(page, server)
    assert "/mail/" in page.url
    rows = page.locator(".message-list .msg")
    assert rows.count() == 6
    assert "3분기 회의록을 보냅니다" in page.inner_text(".message-list")
    assert page.locator(".msg.unseen").count() == 6
    assert page.title().startswith("(6)")
    page.context.close()


def test_move_delete_and_search(browser: Any, server: RunningServer) -> None:
    page = new_page(browser)
    log_in(page, server, "bob")
    row = page.locator(".msg", has_text="This week in Python")
    row.locator("input[name=uid]").check()
    page.select_option("#move-target", label="Spam")
    with page.expect_navigation():
        page.click("button[name=action][value=move]")
    assert "This week in Python" not in page.inner_text(".message-list")
    page.click(".folder[data-folder-name=Spam]")
    page.wait_for_selector(".msg", state="attached")
    assert "This week in Python" in page.inner_text(".message-list")
    # Delete from the inbox goes to Trash.
    page.click(".folder[data-folder-name=INBOX]")
    page.locator(".msg", has_text="Pull request #42").locator("input[name=uid]").check()
    with page.expect_navigation():
        page.click("button[name=action][value=delete]")
    assert "Pull request #42" not in page.inner_text(".message-list")
    page.click(".folder[data-folder-name=Trash]")
    assert "Pull request #42" in page.inner_text(".message-list")
    # Search a Korean word that is only part of a word in the subject.
    SearchIndexer(server.runtime.engine, server.config.mail_dir).catch_up()
    page.fill("#search-q", "회의")
    with page.expect_navigation():
        page.press("#search-q", "Enter")
    results = page.inner_text(".message-list")
    assert "3분기 회의록을 보냅니다" in results and "주간 보고" not in results
    page.context.close()


def test_keyboard_and_drag_to_folder(browser: Any, server: RunningServer) -> None:
    page = new_page(browser)
    log_in(page, server, "bob")
    page.keyboard.press("j")
    page.keyboard.press("j")
    assert page.locator(".msg.cursor").count() == 1
    first = page.locator(".msg").nth(0)
    subject = first.locator(".msg-subject").inner_text()
    first.drag_to(page.locator(".folder[data-folder-name=Drafts]"))
    wait_until(lambda: subject not in page.inner_text(".message-list"), 15.0)
    page.context.close()


def test_new_mail_appears_without_reload(browser: Any, server: RunningServer) -> None:
    page = new_page(browser)
    log_in(page, server, "carol")
    assert page.locator(".msg").count() == 0
    page.evaluate("window.__same_page = true")
    deliver(server, "carol@example.com", "실시간 도착 메일", "안녕하세요")
    page.wait_for_selector(".msg", timeout=15000)
    assert "실시간 도착 메일" in page.inner_text(".message-list")
    assert page.evaluate("window.__same_page") is True  # no reload happened
    wait_until(lambda: page.title().startswith("(1)"), 15.0)
    page.context.close()


def test_switch_language(browser: Any, server: RunningServer) -> None:
    page = new_page(browser, locale="en-US")
    log_in(page, server, "carol")
    assert "Inbox" in page.inner_text(".folder-tree")
    page.goto(f"{base(server)}/settings/preferences")
    page.select_option("#language", "ko")
    with page.expect_navigation():
        page.click("main button[type=submit]")
    assert "저장했습니다" in page.inner_text("main")
    page.goto(f"{base(server)}/")
    tree = page.inner_text(".folder-tree")
    assert "받은편지함" in tree and "보낸편지함" in tree and "휴지통" in tree
    page.goto(f"{base(server)}/settings/preferences")
    page.select_option("#language", "")
    with page.expect_navigation():
        page.click("main button[type=submit]")
    page.context.close()


def test_phone_layout(browser: Any, server: RunningServer) -> None:
    page = new_page(browser, viewport=PHONE)
    log_in(page, server, "bob")
    assert not page.locator(".folders-pane").is_visible() or page.locator(
        ".folders-pane").bounding_box()["x"] < 0
    assert page.locator(".reading-pane").is_hidden()
    list_box = page.locator(".list-pane").bounding_box()
    assert list_box["width"] <= 390
    # No sideways scrolling on a phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.click("[data-toggle-nav]")
    wait_until(lambda: page.locator(".folders-pane").bounding_box()["x"] >= 0, 15.0)
    # The list behind the drawer is dimmed, and a tap there lands on the dimming (the
    # body), not on a message: it closes the drawer and opens nothing.
    assert page.evaluate("getComputedStyle(document.body, '::after').backgroundColor"
                         ) == "rgba(0, 0, 0, 0.4)"
    assert page.evaluate("document.elementFromPoint(360, 400) === document.body")
    url = page.url
    page.mouse.click(360, 400)
    wait_until(lambda: page.locator(".folders-pane").bounding_box()["x"] < 0, 15.0)
    assert page.url == url
    page.context.close()


def test_accessibility(browser: Any, server: RunningServer) -> None:
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    page = new_page(browser)
    page.goto(f"{base(server)}/login")
    problems = []
    for name in ("login", "list", "settings", "search", "contacts"):
        if name == "list":
            log_in(page, server, "bob")
        elif name == "settings":
            page.goto(f"{base(server)}/settings/account")
        elif name == "search":
            page.goto(f"{base(server)}/search?q=%ED%9A%8C%EC%9D%98")
        elif name == "contacts":
            page.goto(f"{base(server)}/contacts")
        results = axe.run(page)
        for violation in results.response["violations"]:
            if violation["impact"] in ("serious", "critical"):
                problems.append((name, violation["id"], violation["help"],
                                 [n["target"] for n in violation["nodes"]][:3]))
    assert not problems, problems
    page.context.close()


SCREENS = {
    "login": "/login",
    "list": "/",
    "search": "/search?q=%ED%9A%8C%EC%9D%98",
    "settings": "/settings/account",
    "vacation": "/settings/vacation",
    "contacts": "/contacts",
    "folders": "/folders",
    "preferences": "/settings/preferences",
    "help-clients": "/help/clients",
    "help-returnmail": "/help/returnmail",
}


@pytest.mark.parametrize("lang", ["ko", "en"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_screenshots(browser: Any, server: RunningServer, lang: str, scheme: str,
                     device: str) -> None:
    page = new_page(browser, viewport=DESKTOP if device == "desktop" else PHONE,
                    locale="ko-KR" if lang == "ko" else "en-US", scheme=scheme)
    page.goto(f"{base(server)}/login")
    path = screenshot(page, f"mailbox-login-{device}-{lang}-{scheme}")
    assert path.stat().st_size > 1000
    log_in(page, server, "bob")
    for name, url in SCREENS.items():
        if name == "login":
            continue
        page.goto(f"{base(server)}{url}")
        if name == "list" and device == "desktop":
            page.click(".msg-link >> nth=0")
            page.frame_locator("iframe[name=reader]").locator(".reader-subject").wait_for()
        shot: Path = screenshot(page, f"mailbox-{name}-{device}-{lang}-{scheme}")
        assert shot.stat().st_size > 1000
    page.context.close()


def test_keys_reach_compose_screens(browser: Any, server: RunningServer) -> None:
    page = new_page(browser)
    log_in(page, server, "bob")
    page.keyboard.press("j")
    uid = page.locator(".msg.cursor").get_attribute("data-uid")
    folder = page.locator("[data-folder]").get_attribute("data-folder")
    for key, path in (("r", "reply"), ("a", "reply-all"), ("f", "forward")):
        with page.expect_navigation():
            page.keyboard.press(key)
        assert page.url.endswith(f"/compose/{path}/{folder}/{uid}"), page.url
        page.go_back()
        page.keyboard.press("j")
    with page.expect_navigation():
        page.keyboard.press("c")
    assert page.url.endswith("/compose")
    page.context.close()

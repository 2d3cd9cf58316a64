"""Issue 11 in a real browser (Debian's Chromium): conversations.

A thread whose first message is on page 2 of the message list (its answers,
one of them carrying only In-Reply-To, arrived weeks later) is one row of
the conversation list; the row opens the conversation in the reading pane
with the unread messages open; keyboard actions on the row reach every
message of it. Screenshots of the list and the conversation screen
(desktop and phone, Korean and English, light and dark) go under
artifacts/screenshots/.
"""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chromium_rig import chromium, screenshot
from server_rig import PASSWORD, RunningServer
from support import wait_until
from web_rig import Browser, deliver, web_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]
HOST = "mail.example.com"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SUBJECT = "2027년 예산 회의 일정"


def send(server: RunningServer, subject: str, message_id: str, date: str, sender: str,
         name: str, body: str, extra: str = "") -> None:
    raw = (f"From: {name} <{sender}>\r\nTo: bob@example.com\r\nSubject: {subject}\r\n"
           f"Date: {date}\r\nMessage-ID: {message_id}\r\nMIME-Version: 1.0\r\n"
           f"Content-Type: text/plain; charset=utf-8\r\n{extra}\r\n{body}\r\n")
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=10) as smtp:
        smtp.sendmail(sender, ["bob@example.com"], raw.encode())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with web_server(tmp_path_factory.mktemp("conversations")) as srv:
        srv.add_user("bob@example.com")
        send(srv, SUBJECT, "<budget@corp.example>", "Mon, 02 Nov 2026 09:00:00 +0900",
             "kim@corp.example", "김과장", "다음 주 화요일 10시에 예산 회의를 하려 합니다.")
        for i in range(27):
            deliver(srv, "bob@example.com", f"주간 소식 {i + 1:02d}", "소식입니다.",
                    sender="news@letters.example", name="Newsletter",
                    date=f"{3 + i % 25:02d} Nov 2026 08:00:00 +0900")
        send(srv, f"Re: {SUBJECT}", "<budget-2@corp.example>",
             "Tue, 01 Dec 2026 10:00:00 +0900", "lee@corp.example", "이대리",
             "화요일 10시 좋습니다. 회의실은 제가 잡겠습니다.",
             "In-Reply-To: <budget@corp.example>\r\nReferences: <budget@corp.example>\r\n")
        send(srv, f"RE: Re: {SUBJECT}", "<budget-3@corp.example>",
             "Wed, 02 Dec 2026 11:30:00 +0900", "park@corp.example", "박부장",
             "저도 참석하겠습니다. 자료는 미리 보내 주세요.",
             "In-Reply-To: <budget-2@corp.example>\r\n")  # no References (Outlook)
        # Bob's own answer, in Sent (as the webmail or an IMAP client keeps it).
        bob = srv.directory.get_account("bob@example.com")
        assert bob is not None
        srv.runtime.store.append(bob, "Sent", (
            f"From: Bob <bob@example.com>\r\nTo: kim@corp.example\r\nSubject: Re: {SUBJECT}\r\n"
            "Date: Tue, 03 Nov 2026 08:10:00 +0900\r\nMessage-ID: <bob-1@example.com>\r\n"
            "In-Reply-To: <budget@corp.example>\r\nReferences: <budget@corp.example>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            "네, 참석하겠습니다.\r\n").encode(), flags=["\\Seen"])
        setup = Browser(srv)
        setup.login("bob")
        setup.post("/settings/preferences", {"language": "", "page_size": "25"})
        setup.close()
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


def log_in(page: Any, server: RunningServer) -> None:
    page.goto(f"{base(server)}/login")
    page.fill("#userid", "bob")
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")


def choose(page: Any, view: str) -> None:
    """Click the list's switch (a plain form post) unless that view is shown."""
    button = page.locator(f".view-switch button[value={view}]")
    if button.get_attribute("aria-pressed") != "true":
        with page.expect_navigation():
            button.click()


def test_a_thread_spread_over_pages_is_one_conversation(browser: Any,
                                                        server: RunningServer) -> None:
    page = new_page(browser)
    log_in(page, server)
    choose(page, "messages")
    subjects = page.locator(".msg-subject").all_inner_texts()
    assert f"RE: Re: {SUBJECT}" in subjects and SUBJECT not in subjects
    with page.expect_navigation():
        page.click("a[rel=next]")
    assert SUBJECT in page.locator(".msg-subject").all_inner_texts()  # its start: page 2
    choose(page, "conversations")
    assert "/mail/" in page.url and "page=" not in page.url
    rows = page.locator(".message-list .msg")
    first = rows.nth(0)
    assert first.locator(".thread-count").inner_text() == "3"
    assert "김과장, 이대리, 박부장" in first.inner_text()
    assert page.locator(".msg", has_text="예산 회의").count() == 1
    assert "28 conversations" in page.inner_text(".list-head")
    # The row opens the whole conversation in the reading pane, unread ones open.
    first.locator(".msg-link").click()
    pane = page.frame_locator("iframe[name=reader]")
    pane.locator("#thread-subject").wait_for()
    # Bob's answer from Sent sits in its place, folded (read), marked with its folder.
    assert pane.locator("details[data-thread-msg]").count() == 4
    assert pane.locator("details[data-thread-msg][open]").count() == 3
    assert pane.locator("details[data-thread-msg] >> nth=1").locator(".folder-chip"
                                                                     ).inner_text() == "Sent"
    last = pane.frame_locator("iframe.thread-frame >> nth=3")
    last.locator(".reader-subject").wait_for()
    assert "자료는 미리" in last.locator(".reader").inner_text()
    # The frame was fitted to its message (thread.js), not left at its fixed height.
    wait_until(lambda: pane.locator("iframe.thread-frame >> nth=3").evaluate(
        "f => f.style.height !== ''"), what="the last frame fitted")
    # ... down to it: a one-line message's frame is far shorter than the 70vh it starts at
    # (the document's scrollHeight, measured before, never went below the frame's height).
    wait_until(lambda: pane.locator("iframe.thread-frame >> nth=3").evaluate(
        "f => f.getBoundingClientRect().height < 0.5 * f.ownerDocument.defaultView.innerHeight"),
        what="the last frame as short as its message")
    page.context.close()


def test_keyboard_on_a_conversation_row(browser: Any, server: RunningServer) -> None:
    page = new_page(browser)
    log_in(page, server)
    choose(page, "conversations")
    page.keyboard.press("j")
    row = page.locator(".msg.cursor")
    assert "예산 회의" in row.inner_text()
    page.keyboard.press("s")  # the star: every message of the conversation
    wait_until(lambda: page.locator(".msg.cursor.flagged").count() == 1, what="starred")
    choose(page, "messages")
    wait_until(lambda: page.locator(".msg.flagged").count() == 2, what="2 on page 1")
    with page.expect_navigation():
        page.click("a[rel=next]")
    assert page.locator(".msg.flagged", has_text=SUBJECT).count() == 1
    choose(page, "conversations")
    page.keyboard.press("j")
    page.keyboard.press("s")
    wait_until(lambda: page.locator(".msg.flagged").count() == 0, what="unstarred")
    page.context.close()


LAYOUT = """() => {
  const box = s => { const e = document.querySelector(s); return e && e.getBoundingClientRect(); };
  const mid = b => b.top + b.height / 2;
  const buttons = [...document.querySelectorAll('.view-switch .button')].map(
      b => b.getBoundingClientRect());
  const order = box('.list-options .sort') || box('.sort-current');
  const sw = box('.view-switch'), h1 = box('.list-head h1'), count = box('.list-count');
  return {
    buttons: buttons.map(b => Math.round(b.height)),
    buttonsLevel: Math.abs(mid(buttons[0]) - mid(buttons[1])),
    orderLevel: Math.abs(mid(order) - mid(sw)),
    orderRight: Math.round(order.left - sw.right),
    headLevel: Math.abs(h1.bottom - count.bottom),
    head: Math.round(box('.list-head').height),
    options: Math.round(box('.list-options').height),
    wide: document.documentElement.scrollWidth,
  };
}"""


@pytest.mark.parametrize("lang", ["ko", "en"])
@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_the_view_switch_and_order_fit_one_line(browser: Any, server: RunningServer, lang: str,
                                                device: str) -> None:
    """The switch, in the head, wrapped onto two lines in the English desktop list pane;
    in a row of its own with the order as a menu, head and row are one line each."""
    viewport = DESKTOP if device == "desktop" else PHONE
    page = new_page(browser, viewport=viewport, locale="ko-KR" if lang == "ko" else "en-US")
    log_in(page, server)
    for view in ("messages", "conversations"):
        choose(page, view)
        found = page.evaluate(LAYOUT)
        assert found["buttons"] == [30, 30], found  # no label on two lines
        assert found["buttonsLevel"] < 1 and found["orderLevel"] < 2, found  # one line
        assert found["orderRight"] >= 24, found  # with room between, nothing cramped
        assert found["headLevel"] < 4 and found["head"] < 60, found
        assert found["options"] < 50 and found["wide"] <= viewport["width"], found
    # Every order's words fit the row too ("Sort: Smallest first" is the widest).
    choose(page, "messages")
    for key in ("date", "from", "subject", "size"):
        for order in ("asc", "desc"):
            page.goto(page.url.split("?")[0] + f"?sort={key}&order={order}")
            found = page.evaluate(LAYOUT)
            assert found["orderLevel"] < 2 and found["orderRight"] >= 24, (key, order, found)
            assert found["options"] < 50 and found["wide"] <= viewport["width"], found
    # The order menu works without script: a <details> of links.
    choose(page, "messages")
    page.click(".sort-current")
    with page.expect_navigation():
        page.click(".sort-panel a[href*='sort=subject']")
    assert "sort=subject" in page.url
    shown = " ".join(page.locator(".sort-current").inner_text().split())
    assert shown.startswith("정렬: 제목" if lang == "ko" else "Sort: Subject"), shown
    page.context.close()


@pytest.mark.parametrize("lang", ["ko", "en"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_sort_menu_says_each_direction(browser: Any, server: RunningServer, lang: str,
                                       scheme: str, device: str) -> None:
    """From sorted A→Z (ㄱ→ㅎ) with the menu open: its links say what they show, the
    current key reversed; screenshot; axe has nothing serious with the menu open."""
    from axe_playwright_python.sync_playwright import Axe

    page = new_page(browser, viewport=DESKTOP if device == "desktop" else PHONE,
                    locale="ko-KR" if lang == "ko" else "en-US", scheme=scheme)
    log_in(page, server)
    choose(page, "messages")
    page.click(".sort-current")
    with page.expect_navigation():
        page.click(".sort-panel a[href*='sort=from']")
    assert "order=asc" in page.url
    names = [" ".join(t.split()) for t in page.locator(".msg-from bdi").all_inner_texts()]
    assert names[0] == "Newsletter" and names == sorted(names, key=str.casefold), names
    page.click(".sort-current")
    with page.expect_navigation():
        page.click(".sort-panel a[href*='sort=from']")  # the toggle: Z→A
    names = [" ".join(t.split()) for t in page.locator(".msg-from bdi").all_inner_texts()]
    assert names[:3] == ["이대리", "박부장", "김과장"], names  # ㅎ→ㄱ, Hangul after Latin
    page.go_back()
    page.click(".sort-current")
    links = [" ".join(t.split()) for t in page.locator(".sort-panel a").all_inner_texts()]
    assert links == (["최신순", "보낸사람 ㅎ→ㄱ", "제목 ㄱ→ㅎ", "큰 메일부터"] if lang == "ko"
                     else ["Newest first", "From Z→A", "Subject A→Z", "Largest first"]), links
    assert screenshot(page, f"sort-menu-{device}-{lang}-{scheme}").stat().st_size > 1000
    serious = [(v["id"], [n["target"] for n in v["nodes"]][:3])
               for v in Axe().run(page).response["violations"]
               if v["impact"] in ("serious", "critical")]
    assert not serious, serious
    page.context.close()


SCREENS = ("list", "thread")
SCREENS = ("list", "thread")


@pytest.mark.parametrize("lang", ["ko", "en"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_screenshots(browser: Any, server: RunningServer, lang: str, scheme: str,
                     device: str) -> None:
    page = new_page(browser, viewport=DESKTOP if device == "desktop" else PHONE,
                    locale="ko-KR" if lang == "ko" else "en-US", scheme=scheme)
    log_in(page, server)
    choose(page, "conversations")
    href = page.locator(".msg-link >> nth=0").get_attribute("href")
    if device == "desktop":
        page.click(".msg-link >> nth=0")
        pane = page.frame_locator("iframe[name=reader]")
        pane.frame_locator("iframe.thread-frame >> nth=3").locator(".reader-subject").wait_for()
    shot: Path = screenshot(page, f"conversations-list-{device}-{lang}-{scheme}")
    assert shot.stat().st_size > 1000
    page.goto(f"{base(server)}{href}")
    page.frame_locator("iframe.thread-frame >> nth=3").locator(".reader-subject").wait_for()
    shot = screenshot(page, f"conversations-thread-{device}-{lang}-{scheme}")
    assert shot.stat().st_size > 1000
    page.context.close()


def test_accessibility_of_the_list_and_the_conversation(browser: Any,
                                                        server: RunningServer) -> None:
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    page = new_page(browser)
    log_in(page, server)
    choose(page, "conversations")
    href = page.locator(".msg-link >> nth=0").get_attribute("href")
    problems = []
    for name in ("list", "thread"):
        if name == "thread":
            page.goto(f"{base(server)}{href}")
        for violation in axe.run(page).response["violations"]:
            if violation["impact"] in ("serious", "critical"):
                problems.append((name, violation["id"], violation["help"],
                                 [n["target"] for n in violation["nodes"]][:3]))
    assert not problems, problems
    page.context.close()


def test_delete_a_conversation_from_its_row(browser: Any, server: RunningServer) -> None:
    page = new_page(browser)
    log_in(page, server)
    choose(page, "conversations")
    page.locator(".msg", has_text="예산 회의").locator("input[name=uid]").check()
    with page.expect_navigation():
        page.click("button[name=action][value=delete]")
    assert "예산 회의" not in page.inner_text(".message-list")
    assert "3 messages deleted" in page.inner_text("[role=status]")
    page.click(".folder[data-folder-name=Trash]")
    page.wait_for_selector(".msg", state="attached")
    trash = page.locator(".msg", has_text="예산 회의")
    assert trash.count() == 1 and trash.locator(".thread-count").inner_text() == "3"
    page.context.close()

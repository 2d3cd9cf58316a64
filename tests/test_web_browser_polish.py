"""The webmail's later screens in Debian's Chromium: groups, subscriptions, time zone, admin.

Also screenshots of every main screen (login, list, read, compose, reply, forward, settings,
search results, admin overview) on a desktop (1280x800) and a phone
(390x844), Korean and English, light and dark, under artifacts/screenshots/
(polish-*.png), and axe-core on the screens added since the first checks.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chromium_rig import chromium, screenshot
from nmail.mailstore.model import NewMessage
from nmail.mailstore.search_indexer import SearchIndexer
from server_rig import PASSWORD, RunningServer
from support import wait_until
from web_rig import deliver, web_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SEEDED: dict[str, int] = {}
FORWARDED = (
    "From: Dave <dave@example.com>\r\nSubject: Fwd: 견적서 송부\r\n"
    "Date: Fri, 04 Dec 2026 09:00:00 +0900\r\nMIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=out\r\n\r\n"
    "--out\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n아래 메일 참고하세요.\r\n"
    "--out\r\nContent-Type: message/rfc822\r\n"
    "Content-Disposition: attachment; filename=quote.eml\r\n\r\n"
    "From: 김철수 <kim@remote.example>\r\nTo: dave@example.com\r\n"
    "Subject: 견적서 송부\r\nDate: Thu, 03 Dec 2026 15:30:00 +0900\r\n"
    "Content-Type: multipart/mixed; boundary=in\r\n\r\n"
    "--in\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    "견적서를 보내 드립니다. 확인 부탁드립니다.\r\n"
    "--in\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
    "Content-Disposition: attachment; filename*=UTF-8''%EA%B2%AC%EC%A0%81%EC%84%9C_2026.pdf"
    "\r\n\r\nJVBERi0xLjQKJSVFT0YK\r\n--in--\r\n\r\n--out--\r\n").encode()
HOST = "mail.example.com"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with web_server(tmp_path_factory.mktemp("polish")) as srv:
        bob = srv.add_user("bob@example.com", admin=True, quota=50_000_000)
        srv.add_user("carol@example.com", quota=10_000)
        srv.add_user("dave@example.com")
        srv.add_user("eve@other.org")
        mail = [("김과장 <kim@corp.example>", "3분기 회의록을 보냅니다",
                 "안녕하세요.\n\n3분기 회의록을 첨부합니다. 검토 부탁드립니다.\n\n김과장 드림"),
                ("Amazon <ship@amazon.example>", "Your order has shipped", "Track it."),
                ("이대리 <lee@corp.example>", "견적서 검토 부탁드립니다", "견적서 확인 바랍니다."),
                ("GitHub <noreply@github.example>", "[nmail] Pull request #42 merged into main",
                 "Merged."),
                ("박부장 <park@corp.example>", "주간 보고", "이번 주 보고입니다.")]
        dates = [None, "Thu, 03 Dec 2026 10:00:00 +0900", "Mon, 02 Nov 2026 08:30:00 +0900",
                 "Fri, 14 Mar 2025 17:20:00 +0900", None]
        for (who, subject, body), date in zip(mail, dates, strict=True):
            name, _, addr = who.partition(" <")
            deliver(srv, "bob@example.com", subject, body, sender=addr.rstrip(">"), name=name,
                    date=date)
        deliver(srv, "carol@example.com", "big", "x" * 9000)  # carol nearly full
        srv.runtime.store.create_folder(bob.id, "거래처")
        srv.runtime.store.create_folder(bob.id, "Old projects")
        srv.runtime.store.subscribe(bob.id, "Old projects", False)
        [stored] = srv.runtime.store.store([NewMessage(bob, "INBOX", b"", FORWARDED)])
        SEEDED["forwarded"] = stored.uid
        SearchIndexer(srv.runtime.engine, srv.config.mail_dir).catch_up()
        yield srv


@pytest.fixture(scope="module")
def browser(server: RunningServer) -> Iterator[Any]:
    with chromium((f"--host-resolver-rules=MAP {HOST} 127.0.0.1",)) as b:
        yield b


def base(server: RunningServer) -> str:
    return f"http://{HOST}:{server.port('http')}"


def new_page(browser: Any, *, viewport: dict[str, int] = DESKTOP, locale: str = "en-US",
             scheme: str = "light", zone: str = "Asia/Seoul") -> Any:
    context = browser.new_context(viewport=viewport, locale=locale, color_scheme=scheme,
                                  timezone_id=zone)
    return context.new_page()


def log_in(page: Any, server: RunningServer, userid: str = "bob") -> None:
    page.goto(f"{base(server)}/login")
    page.fill("#userid", userid)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")


def first_message(page: Any) -> str:
    """The read URL of the list's first message."""
    link = page.locator(".msg-link").first.get_attribute("href")
    assert link
    return str(link).split("?")[0]


def test_browser_time_zone_reaches_the_page(browser: Any, server: RunningServer) -> None:
    page = new_page(browser, zone="America/New_York")
    log_in(page, server)
    page.goto(base(server) + first_message(page).rsplit("/", 1)[0])
    titles = page.eval_on_selector_all(".message-list time", "els => els.map(e => e.title)")
    assert "2026-12-02 20:00" in titles  # 10:00 in Seoul is 20:00 the day before there
    page.goto(f"{base(server)}/settings/preferences")
    assert "America/New_York" in page.inner_text("#time_zone option >> nth=0")
    page.context.close()


def test_group_completion_and_send(browser: Any, server: RunningServer) -> None:
    page = new_page(browser)
    log_in(page, server)
    for name, email in (("이브", "eve@other.org"), ("Dave", "dave@example.com")):
        page.goto(f"{base(server)}/contacts/new")
        page.fill("#c-name", name)
        page.fill("#c-email", email)
        page.fill("#c-groups", "개발팀")
        with page.expect_navigation():
            page.click("main button[type=submit]")
    page.goto(f"{base(server)}/compose")
    page.fill("#compose-to", "개발")
    wait_until(lambda: page.locator("#recipient-suggestions option").count() > 0, 15.0)
    option = page.locator("#recipient-suggestions option").first
    assert option.get_attribute("value") == "개발팀, "
    assert "2" in (option.get_attribute("label") or "")
    page.fill("#compose-to", "개발팀, ")
    page.fill("#compose-subject", "팀 공지")
    page.fill("#compose-body", "모두 보세요")
    with page.expect_navigation():
        page.click('button[value="send"]')
    assert "/mail/" in page.url, page.inner_text("main")
    for address in ("eve@other.org", "dave@example.com"):
        account = server.directory.get_account(address)
        assert account is not None
        subjects = [r.subject for r in server.runtime.store.list_messages(account.id, "INBOX")]
        assert "팀 공지" in subjects
    # A group that does not exist: the form comes back with the reason, nothing sent.
    page.goto(f"{base(server)}/compose")
    page.fill("#compose-to", "없는그룹")
    page.fill("#compose-subject", "x")
    with page.expect_navigation():
        page.click('button[value="send"]')
    assert "없는그룹" in page.inner_text("#compose-error")
    page.context.close()


def test_unsubscribed_folders_fold_away(browser: Any, server: RunningServer) -> None:
    page = new_page(browser)
    log_in(page, server)
    tree = page.locator("[data-folder-tree]")
    assert tree.locator("[data-folder-name='거래처']").count() == 1
    assert tree.locator("[data-folder-name='Old projects']").count() == 0
    hidden = page.locator(".more-folders [data-folder-name='Old projects']")
    assert not hidden.is_visible()
    page.click(".more-folders > summary")
    assert hidden.is_visible()
    page.context.close()


def test_admin_entry_and_overview(browser: Any, server: RunningServer) -> None:
    page = new_page(browser)
    log_in(page, server)
    with page.expect_navigation():
        page.click(".topnav a[href='/admin']")
    assert page.locator("main h1").inner_text() == "Administration"
    assert "example.com" in page.inner_text("main") and "other.org" not in page.inner_text("main")
    with page.expect_navigation():
        page.click("main a[href='/admin/domains/example.com']")
    assert "carol@example.com" in page.inner_text("main")
    assert page.evaluate("document.documentElement.scrollWidth") <= DESKTOP["width"]
    page.context.close()


def test_forward_an_attached_message(browser: Any, server: RunningServer) -> None:
    """The attached message's toolbar forwards it (button and f key) with its attachment
    carried, and its More menu forwards it as an attachment, as for a stored message."""
    page = new_page(browser)
    log_in(page, server)
    attached = first_message(page).rsplit("/", 1)[0] + f"/{SEEDED['forwarded']}/msg/1"
    page.goto(base(server) + attached)
    toolbar = page.locator(".reader-toolbar")
    with page.expect_navigation():
        toolbar.get_by_role("link", name="Forward", exact=True).click()
    assert page.input_value("#compose-subject") == "Fwd: 견적서 송부"
    assert "견적서를 보내 드립니다" in page.input_value("textarea[name=body]")
    chip = page.locator("input[name=carry_part]")
    assert chip.count() == 1 and chip.is_checked()
    assert "견적서_2026.pdf" in page.inner_text(".attachment-chips")
    page.goto(base(server) + attached)
    page.locator(".reader").wait_for()
    with page.expect_navigation():
        page.keyboard.press("f")
    assert page.input_value("#compose-subject") == "Fwd: 견적서 송부"
    page.goto(base(server) + attached)
    page.click(".more-menu summary")
    with page.expect_navigation():
        page.click("text=Forward as attachment")
    assert page.input_value("input[name=attach_message]").endswith("/msg/1")
    assert page.locator("text=The original message is attached.").count() == 1
    page.fill("#compose-to", "dave@example.com")
    with page.expect_navigation():
        page.click("button[name=action][value=send]")
    dave = server.directory.get_account("dave@example.com")
    assert dave is not None
    wait_until(lambda: any(r.subject == "Fwd: 견적서 송부"
                           for r in server.runtime.store.list_messages(dave.id, "INBOX")),
               what="the forward delivered")
    page.context.close()


def test_accessibility_light_and_dark(browser: Any, server: RunningServer) -> None:
    """axe on every main screen, in both colour schemes (the first checks ran light only)."""
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    problems: list[tuple[object, ...]] = []
    for scheme in ("light", "dark"):
        page = new_page(browser, scheme=scheme)
        page.goto(f"{base(server)}/login")
        problems.extend(_axe(axe, page, scheme, "login"))
        log_in(page, server)
        problems.extend(_axe(axe, page, scheme, "list"))
        read = first_message(page)
        attached = read.rsplit("/", 1)[0] + f"/{SEEDED['forwarded']}/msg/1"
        forward = "/compose/forward/" + attached[len("/mail/"):]
        for name, path in (("read", read), ("attached", attached), ("compose", "/compose"),
                           ("attached-forward", forward),
                           ("attached-forward-attached", forward.replace("/forward/",
                                                                         "/forward-attached/")),
                           ("search", "/search?q=%EA%B2%AC%EC%A0%81"),
                           ("contacts", "/contacts"), ("settings", "/settings/account"),
                           ("folders", "/folders"), ("preferences", "/settings/preferences"),
                           ("admin", "/admin"), ("admin-domain", "/admin/domains/example.com")):
            page.goto(base(server) + path)
            problems.extend(_axe(axe, page, scheme, name))
        page.context.close()
    assert not problems, problems


def _axe(axe: Any, page: Any, scheme: str, name: str) -> list[tuple[object, ...]]:
    """The serious and critical violations axe finds on the page as it is."""
    results = axe.run(page)
    return [(scheme, name, v["id"], v["help"], [n["target"] for n in v["nodes"]][:3])
            for v in results.response["violations"] if v["impact"] in ("serious", "critical")]


def compose_columns(page: Any, viewport: dict[str, int]) -> None:
    """From, To and Subject start in one column whatever the language's longest label
    ("받는 사람" and "Subject" were wider than the phone's column), and the To field
    keeps most of the width (on a phone Cc/Bcc beside it left an address half shown)."""
    lefts = page.evaluate("""() => ['.compose-from', '#compose-to', '#compose-subject']
        .map(s => Math.round(document.querySelector(s).getBoundingClientRect().left))""")
    assert max(lefts) - min(lefts) <= 1, lefts
    to, fields = page.evaluate("""() => ['#compose-to', '.compose-fields']
        .map(s => document.querySelector(s).offsetWidth)""")
    assert to >= fields * 0.6 and fields <= viewport["width"], (to, fields)


SCREENS = ("login", "list", "read", "compose", "reply", "forward", "settings", "search",
           "admin", "admin-domain", "folders", "attached", "attached-forward")


@pytest.mark.parametrize("lang", ["ko", "en"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_screenshots(browser: Any, server: RunningServer, lang: str, scheme: str,
                     device: str) -> None:
    viewport = DESKTOP if device == "desktop" else PHONE
    page = new_page(browser, viewport=viewport, locale="ko-KR" if lang == "ko" else "en-US",
                    scheme=scheme)
    shots: list[Path] = []
    page.goto(f"{base(server)}/login")
    shots.append(screenshot(page, f"polish-login-{device}-{lang}-{scheme}"))
    log_in(page, server)
    read = first_message(page)
    attached = read.rsplit("/", 1)[0] + f"/{SEEDED['forwarded']}/msg/1"
    paths = {"list": page.url, "read": base(server) + read,
             "compose": f"{base(server)}/compose",
             "reply": f"{base(server)}/compose/reply/{read[len('/mail/'):]}",
             "forward": f"{base(server)}/compose/forward/{read[len('/mail/'):]}",
             "settings": f"{base(server)}/settings/preferences",
             "search": f"{base(server)}/search?q=%EA%B2%AC%EC%A0%81",
             "admin": f"{base(server)}/admin",
             "admin-domain": f"{base(server)}/admin/domains/example.com",
             "folders": f"{base(server)}/folders",
             "attached": base(server) + attached,
             "attached-forward": base(server) + "/compose/forward/" + attached[len("/mail/"):]}
    for name in SCREENS[1:]:
        page.goto(paths[name])
        if name == "list" and device == "desktop":
            page.click(".msg-link >> nth=0")
            page.frame_locator("iframe[name=reader]").locator(".reader-subject").wait_for()
        # Nothing sideways on any screen.
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= viewport["width"], (name, width)
        if name in ("reply", "forward"):
            compose_columns(page, viewport)
        shots.append(screenshot(page, f"polish-{name}-{device}-{lang}-{scheme}"))
    assert all(p.stat().st_size > 1000 for p in shots)
    page.context.close()

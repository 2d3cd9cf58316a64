"""Issue 11 in a real browser (Debian's Chromium): reading and writing mail.

Korean legacy-charset mail renders; hostile HTML runs nothing; remote
content is not fetched until the user allows it (a loopback HTTP server
counts the hits); compose with an attachment, reply and forward reach
another local user with the same bytes; hostile attachment names download
under safe names; axe finds no serious or critical violation; screenshots of
the read and compose screens on a desktop and a phone, in Korean and English,
light and dark.
"""

from __future__ import annotations

import base64
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from chromium_rig import chromium, login, screenshot
from nmail.directory.model import Account
from nmail.mailstore.store import NewMessage
from nmail.mime.reading import part_content, read_view
from server_rig import PASSWORD, RunningServer
from support import wait_until
from test_web_read_compose import korean_message, with_attachments
from web_rig import web_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==")


class HitCounter:
    """A loopback HTTP server that answers every GET with a tiny PNG and counts paths."""

    def __init__(self) -> None:
        hits: Counter[str] = Counter()
        self.hits = hits

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits[self.path] += 1
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(PNG)))
                self.end_headers()
                self.wfile.write(PNG)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with web_server(tmp_path) as srv:
        yield srv


@pytest.fixture
def bob(server: RunningServer) -> Account:
    return server.add_user("bob@example.com")


def put(server: RunningServer, account: Account, raw: bytes, folder: str = "INBOX") -> str:
    [stored] = server.runtime.store.store([NewMessage(account, folder, b"", raw)])
    fid = server.runtime.store.folder(account.id, folder).id
    return f"/mail/{fid}/{stored.uid}"


def base_url(server: RunningServer) -> str:
    return f"http://127.0.0.1:{server.port('http')}"


def new_page(browser: Any, server: RunningServer, *, lang: str = "en", dark: bool = False,
             phone: bool = False, bypass_csp: bool = False) -> Any:
    context = browser.new_context(
        bypass_csp=bypass_csp,
        viewport={"width": 390, "height": 844} if phone else {"width": 1280, "height": 800},
        locale="ko-KR" if lang == "ko" else "en-US",
        extra_http_headers={"Accept-Language": "ko" if lang == "ko" else "en"},
        color_scheme="dark" if dark else "light",
        accept_downloads=True, is_mobile=phone, has_touch=phone,
    )
    page = context.new_page()
    login(page, base_url(server), "bob@example.com", PASSWORD)
    return page


def message_frame(page: Any) -> Any:
    page.wait_for_selector("iframe.message-frame")
    handle = page.query_selector("iframe.message-frame")
    frame = handle.content_frame()
    frame.wait_for_load_state()
    return frame


def test_korean_message_reads_correctly(browser: Any, server: RunningServer,
                                        bob: Account) -> None:
    url = put(server, bob, korean_message())
    page = new_page(browser, server)
    page.goto(base_url(server) + url)
    assert page.inner_text("#msg-subject") == "견적서 송부의 건"
    assert "김철수" in page.inner_text(".reader-from")
    text = page.inner_text(".message-text")
    assert "똠방각하 견적서를 보내드립니다" in text
    assert page.get_attribute(".message-text a", "href") == "https://example.kr/q?a=1&b=2"
    page.context.close()


def test_hostile_html_runs_nothing(browser: Any, server: RunningServer, bob: Account) -> None:
    hostile = (
        b"From: x@remote.example\r\nSubject: hostile\r\nContent-Type: text/html\r\n\r\n"
        b"<p id=a>visible text</p>"
        b"<script>document.body.setAttribute('data-pwned','script');"
        b"try{parent.document.title='PWNED'}catch(e){}</script>"
        b"<img src=x onerror=\"document.body.setAttribute('data-pwned','onerror')\">"
        b"<svg onload=\"document.body.setAttribute('data-pwned','svg')\"></svg>"
        b"<a href=\"javascript:document.body.setAttribute('data-pwned','link')\" id=j>j</a>"
        b"<iframe srcdoc=\"<script>parent.parent.document.title='PWNED'</script>\"></iframe>"
        b"<meta http-equiv=refresh content=\"0;url=javascript:alert(1)\">"
        b"<form action=\"http://127.0.0.1:9/\"><button id=f>go</button></form>"
        b"<details open ontoggle=\"document.body.setAttribute('data-pwned','toggle')\">d</details>"
    )
    url = put(server, bob, hostile)
    page = new_page(browser, server)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(base_url(server) + url)
    frame = message_frame(page)
    assert "visible text" in frame.inner_text("body")
    assert frame.evaluate("document.body.getAttribute('data-pwned')") is None
    assert frame.query_selector("script, iframe, form, svg, body meta") is None
    assert page.title() != "PWNED" and not dialogs
    assert page.evaluate("typeof window.nmail") == "object"  # our own page still works
    page.context.close()


def test_remote_content_loads_only_after_the_user_allows_it(browser: Any, server: RunningServer,
                                                           bob: Account) -> None:
    remote = HitCounter()
    try:
        host = f"http://127.0.0.1:{remote.port}"
        html = (f"<p>newsletter</p><img src=\"{host}/img.png\" alt=pixel>"
                f"<div style=\"background:url({host}/bg.png);width:10px;height:10px\"></div>"
                f"<style>@import url({host}/import.css); p{{background:url({host}/css.png)}}"
                f"@font-face{{font-family:x;src:url({host}/font.woff)}} p{{font-family:x}}</style>"
                f"<link rel=stylesheet href=\"{host}/link.css\">"
                f"<video poster=\"{host}/poster.png\"></video>"
                f"<img srcset=\"{host}/srcset.png 1x\">")
        raw = (b"From: news@remote.example\r\nSubject: remote\r\n"
               b"Content-Type: text/html; charset=utf-8\r\n\r\n" + html.encode())
        url = put(server, bob, raw)
        page = new_page(browser, server)
        page.goto(base_url(server) + url)
        frame = message_frame(page)
        assert "newsletter" in frame.inner_text("body")
        page.wait_for_load_state("networkidle")
        assert sum(remote.hits.values()) == 0, remote.hits
        with page.expect_navigation():
            page.click("text=Show images")
        frame = message_frame(page)
        wait_until(lambda: remote.hits["/img.png"] >= 1, what="the image loaded once allowed")
        assert remote.hits["/import.css"] == 0 and remote.hits["/link.css"] == 0
        assert remote.hits["/font.woff"] == 0
        page.context.close()
    finally:
        remote.close()


def test_compose_with_attachment_reaches_a_local_user(browser: Any, server: RunningServer,
                                                      bob: Account, tmp_path: Path) -> None:
    carol = server.add_user("carol@example.com")
    data = bytes(range(256)) * 512 + b"end"
    upload = tmp_path / "분기 보고서.bin"
    upload.write_bytes(data)
    page = new_page(browser, server)
    page.goto(base_url(server) + "/compose")
    page.fill("#compose-to", "carol@example.com")
    page.fill("#compose-subject", "분기 보고서")
    page.fill("#compose-body", "첨부 파일 확인 부탁드립니다.")
    page.set_input_files("[data-file-input]", str(upload))
    page.wait_for_selector("li[data-upload-id]")
    with page.expect_navigation():
        page.click("button[value=send]")
    [row] = server.runtime.store.list_messages(carol.id, "INBOX")
    raw = server.runtime.store.read_message(carol.id, "INBOX", row.uid)
    assert raw is not None
    view = read_view(raw)
    assert view.subject == "분기 보고서"
    [attachment] = view.attachments
    found = part_content(raw, attachment.number)
    assert found is not None and found[1] == data and attachment.filename == "분기 보고서.bin"
    page.context.close()


def test_reply_and_forward_from_the_read_screen(browser: Any, server: RunningServer,
                                                bob: Account) -> None:
    carol = server.add_user("carol@example.com")
    url = put(server, bob, b"From: Carol <carol@example.com>\r\nTo: bob@example.com\r\n"
                           b"Subject: lunch\r\nMessage-ID: <l1@example.com>\r\n\r\nnoon?\r\n")
    page = new_page(browser, server)
    page.goto(base_url(server) + url)
    with page.expect_navigation():
        page.keyboard.press("r")
    assert page.input_value("#compose-to") == "Carol <carol@example.com>"
    assert page.input_value("#compose-subject") == "Re: lunch"
    page.fill("#compose-body", "yes\n" + page.input_value("#compose-body"))
    with page.expect_navigation():
        page.click("button[value=send]")
    store = server.runtime.store
    assert "\\Answered" in store.list_messages(bob.id, "INBOX")[0].flags
    reply = read_view(store.read_message(carol.id, "INBOX",
                                         store.list_messages(carol.id, "INBOX")[0].uid) or b"")
    assert reply.in_reply_to == "l1@example.com" and "> noon?" in reply.text
    page.goto(base_url(server) + url)
    with page.expect_navigation():
        page.click("a[title^='Forward']")
    page.fill("#compose-to", "carol@example.com")
    with page.expect_navigation():
        page.click("button[value=send]")
    assert "$Forwarded" in store.list_messages(bob.id, "INBOX")[0].flags
    assert len(store.list_messages(carol.id, "INBOX")) == 2
    page.context.close()


def test_hostile_attachment_names_download_safely(browser: Any, server: RunningServer,
                                                  bob: Account) -> None:
    url = put(server, bob, with_attachments())
    page = new_page(browser, server)
    page.goto(base_url(server) + url)
    names = []
    for link in page.query_selector_all(".attachment-link"):
        with page.expect_download() as info:
            link.click()
        names.append(info.value.suggested_filename)
    assert names == ["x", "a.html", "invoicegpj.exe", "boot.ini"]
    page.context.close()


def test_accessibility_and_screenshots(browser: Any, server: RunningServer,
                                       bob: Account) -> None:
    from axe_playwright_python.sync_playwright import Axe

    url = put(server, bob, korean_message())
    html_url = put(server, bob, b"From: Newsletter <news@remote.example>\r\nSubject: "
                                b"=?utf-8?b?7J2064ukIOuJtOyKpOugiO2EsA==?=\r\n"
                                b"Content-Type: text/html; charset=utf-8\r\n\r\n"
                                + "<h2>12월 소식</h2><p>안녕하세요, 이번 달 소식입니다.</p>"
                                  "<img src='http://127.0.0.1:9/x.png'>".encode())
    axe = Axe()
    problems: list[str] = []
    for lang in ("en", "ko"):
        for dark in (False, True):
            for phone in (False, True):
                page = new_page(browser, server, lang=lang, dark=dark, phone=phone)
                tag = f"{lang}-{'phone' if phone else 'desktop'}-{'dark' if dark else 'light'}"
                for screen, path in (("read", url), ("read-html", html_url),
                                     ("compose", "/compose/reply" + url.removeprefix("/mail"))):
                    page.goto(base_url(server) + path)
                    page.wait_for_load_state("networkidle")
                    screenshot(page, f"webmsg-{screen}-{tag}")
                    if not dark:
                        result = axe.run(page)
                        for violation in result.response["violations"]:
                            if violation["impact"] in ("serious", "critical"):
                                problems.append(f"{screen} {tag}: {violation['id']} "
                                                f"{[n['target'] for n in violation['nodes']]}")
                page.context.close()
    assert problems == [], "\n".join(problems)


def test_attachment_limit_is_said_before_any_upload(browser: Any, tmp_path: Path) -> None:
    from server_rig import make_data_dir

    data = make_data_dir(tmp_path)
    config = data / "nmail.toml"
    text = config.read_text(encoding="utf-8")
    assert "max_attachment_size" not in text
    if "[web]" in text:
        text = text.replace("[web]", '[web]\nmax_attachment_size = "2K"', 1)
    else:
        text += '\n[web]\nmax_attachment_size = "2K"\n'
    config.write_text(text, encoding="utf-8")
    with RunningServer(data, listeners=("smtp", "http")) as server:
        server.add_user("bob@example.com")
        big = tmp_path / "big.bin"
        big.write_bytes(b"x" * 5000)
        small = tmp_path / "small.txt"
        small.write_bytes(b"fits")
        page = new_page(browser, server)
        uploads: list[str] = []
        page.on("request", lambda r: uploads.append(r.url) if "/compose/upload" in r.url else None)
        page.goto(base_url(server) + "/compose")
        assert "2 KB" in page.inner_text(".attach-row")
        page.set_input_files("[data-file-input]", str(big))
        page.wait_for_selector("li.chip.failed")
        assert "limit" in page.inner_text("[data-compose-status]")
        assert uploads == []
        page.set_input_files("[data-file-input]", str(small))
        page.wait_for_selector("li[data-upload-id]")
        assert len(uploads) == 1
        page.context.close()


def test_drop_files_autosave_and_forward_as_attachment(browser: Any, server: RunningServer,
                                                       bob: Account) -> None:
    carol = server.add_user("carol@example.com")
    url = put(server, bob, b"From: Carol <carol@example.com>\r\nTo: bob@example.com\r\n"
                           b"Subject: minutes\r\nMessage-ID: <m9@example.com>\r\n\r\nnotes\r\n")
    page = new_page(browser, server)
    page.clock.install()
    page.goto(base_url(server) + "/compose/forward-attached" + url.removeprefix("/mail"))
    assert "The original message is attached." in page.inner_text(".compose-attachments")
    page.fill("#compose-to", "carol@example.com")
    # A file dropped onto the form is uploaded like a chosen one.
    page.evaluate("""() => {
        const data = new DataTransfer();
        data.items.add(new File(["dropped bytes"], "드롭.txt", {type: "text/plain"}));
        const zone = document.querySelector("[data-dropzone]").parentElement;
        zone.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true,
                                                  cancelable: true}));
    }""")
    page.wait_for_selector("li[data-upload-id]")
    # Thirty seconds later the draft is saved by itself.
    page.fill("#compose-body", "see the minutes")
    page.clock.run_for(31_000)
    wait_until(lambda: page.input_value("[data-draft-uid]") != "", what="draft saved")
    store = server.runtime.store
    wait_until(lambda: len(store.list_messages(bob.id, "Drafts")) == 1, what="one draft")
    with page.expect_navigation():
        page.click("button[value=send]")
    assert store.list_messages(bob.id, "Drafts") == []  # sending removed the draft
    assert "$Forwarded" in store.list_messages(bob.id, "INBOX")[0].flags
    raw = store.read_message(carol.id, "INBOX", store.list_messages(carol.id, "INBOX")[0].uid)
    view = read_view(raw or b"")
    kinds = sorted((a.filename, a.content_type) for a in view.attachments)
    assert kinds == [("message.eml", "message/rfc822"), ("드롭.txt", "text/plain")]
    page.context.close()


def test_rich_text_mode_sends_formatted_mail(browser: Any, server: RunningServer,
                                             bob: Account) -> None:
    carol = server.add_user("carol@example.com")
    page = new_page(browser, server)
    page.goto(base_url(server) + "/compose")
    page.fill("#compose-to", "carol@example.com")
    page.fill("#compose-subject", "서식")
    page.check("[data-rich-toggle]")
    editor = page.locator("[data-rich-editor]")
    assert editor.is_visible() and not page.locator("#compose-body").is_visible()
    editor.click()
    page.keyboard.type("plain ")
    page.click("[data-cmd=bold]")
    page.keyboard.type("굵게")
    with page.expect_navigation():
        page.click("button[value=send]")
    store = server.runtime.store
    raw = store.read_message(carol.id, "INBOX", store.list_messages(carol.id, "INBOX")[0].uid)
    view = read_view(raw or b"")
    assert "<b>굵게</b>" in view.html
    assert view.text.replace("\n", "").strip() == "plain 굵게"
    page.context.close()


def faces_of(page: Any, selector: str) -> list[str]:
    """The font faces Chromium drew an element's text with (PostScript names)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument")["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    cdp.detach()
    return [f["postScriptName"] for f in fonts]


def test_hangul_in_a_bold_attachment_name_is_bold(browser: Any, server: RunningServer,
                                                  bob: Account) -> None:
    """"견적서_2026.pdf" at weight 550 drew its Latin part in DejaVuSans-Bold and its
    Hangul in NanumGothic Regular (fontconfig's nearest face to 550); the stylesheet's
    "nmail Hangul" faces make both bold. Screenshots in both languages and schemes,
    desktop and phone; axe on each."""
    from axe_playwright_python.sync_playwright import Axe

    name = "견적서_2026.pdf"
    raw = (b"From: =?utf-8?b?" + base64.b64encode("김과장".encode()) + b"?= <kim@remote.example>"
           b"\r\nSubject: =?utf-8?b?" + base64.b64encode("견적서 보내 드립니다".encode()) + b"?="
           b"\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
           b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
           + "첨부한 견적서를 확인해 주세요.".encode() + b"\r\n"
           b"--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
           b"Content-Disposition: attachment; filename*=UTF-8''"
           + "".join(f"%{b:02X}" for b in name.encode()).encode() + b"\r\n\r\n"
           + base64.b64encode(b"%PDF-1.4\n%%EOF\n") + b"\r\n--b--\r\n")
    url = put(server, bob, raw)
    axe = Axe()
    problems: list[str] = []
    for lang in ("ko", "en"):
        for dark in (False, True):
            for phone in (False, True):
                page = new_page(browser, server, lang=lang, dark=dark, phone=phone)
                page.goto(base_url(server) + url)
                page.wait_for_selector(".attachment-name")
                assert page.inner_text(".attachment-name").strip() == name
                faces = faces_of(page, ".attachment-name")
                assert faces and all("bold" in f.lower() for f in faces), faces
                tag = f"{lang}-{'phone' if phone else 'desktop'}-{'dark' if dark else 'light'}"
                screenshot(page, f"attachment-name-{tag}")
                for violation in axe.run(page).response["violations"]:
                    if violation["impact"] in ("serious", "critical"):
                        problems.append(f"{tag}: {violation['id']} "
                                        f"{[n['target'] for n in violation['nodes']]}")
                page.context.close()
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_autosave_after_the_forwarded_message_went(browser: Any, server: RunningServer,
                                                   bob: Account, lang: str) -> None:
    """The original of an inline forward is deleted while the form is open: the first
    autosave drops it (its attachments' checkboxes too), says so once in the user's
    language and saves the draft at once; later autosaves go through normally."""
    url = put(server, bob, b"From: kim@remote.example\r\nSubject: quote\r\n"
                           b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
                           b"Content-Type: text/plain\r\n\r\nsee\r\n--b\r\n"
                           b"Content-Type: application/pdf\r\nContent-Disposition: attachment;"
                           b" filename=q.pdf\r\n\r\n%PDF\r\n--b--\r\n")
    page = new_page(browser, server, lang=lang)
    answers: list[int] = []
    page.on("response", lambda r: answers.append(r.status) if "/compose/send" in r.url else None)
    page.clock.install()
    page.goto(base_url(server) + "/compose/forward" + url.removeprefix("/mail"))
    assert page.locator('input[name="carry_part"]').count() == 1
    page.fill("#compose-to", "carol@example.com")
    page.fill("#compose-body", "first words")
    store = server.runtime.store
    uid = int(url.rsplit("/", 1)[1])
    store.set_flags(bob.id, "INBOX", [uid], add=frozenset({"\\Deleted"}))
    assert store.expunge(bob.id, "INBOX", [uid]) == 1
    page.clock.run_for(31_000)
    wait_until(lambda: page.input_value("[data-draft-uid]") != "", what="draft saved")
    reason = "빼고 임시 저장합니다" if lang == "ko" else "left out of the draft"
    assert reason in page.inner_text("#compose-error")
    assert page.input_value('input[name="carry_from"]') != f"{url.split('/')[2]}/{uid}"
    assert page.locator('input[name="carry_part"]').count() == 0
    assert answers == [400, 200], answers
    from axe_playwright_python.sync_playwright import Axe

    serious = [(v["id"], [n["target"] for n in v["nodes"]][:3])
               for v in Axe().run(page).response["violations"]
               if v["impact"] in ("serious", "critical")]
    assert not serious, serious
    screenshot(page, f"autosave-dropped-{lang}")
    first = page.input_value("[data-draft-uid]")
    page.fill("#compose-body", "second words")
    page.clock.run_for(31_000)
    wait_until(lambda: page.input_value("[data-draft-uid]") != first, what="saved again")
    assert answers == [400, 200, 200], answers
    assert page.locator("#compose-error").count() == 1
    [draft] = store.list_messages(bob.id, "Drafts")
    assert "second words" in read_view(store.read_message(bob.id, "Drafts", draft.uid) or b"").text
    page.context.close()


def test_source_page_in_both_languages_on_a_desktop_and_a_phone(
        browser: Any, server: RunningServer, bob: Account) -> None:
    """The source of a message past the limit (web/source_page.py): its head, the note
    and the download link in view at 1280x800 and 390x844, nothing wider than the
    screen, the link giving the whole file; axe finds nothing serious."""
    from axe_playwright_python.sync_playwright import Axe

    from nmail.web.source_page import SHOWN

    body = b"".join(b"%05d " % i + "한 줄의 본문입니다. Line of the body. ".encode() * 3 + b"\r\n"
                    for i in range(8000))
    raw = (korean_message().split(b"\r\n\r\n")[0] + b"\r\n\r\n" + body)
    assert len(raw) > SHOWN
    url = put(server, bob, raw)
    axe = Axe()
    problems: list[str] = []
    for lang in ("en", "ko"):
        for phone in (False, True):
            for dark in (False, True):
                # axe waits on timers, which a page sandboxed without scripts never
                # runs: its pass sees the page with the CSP (sandbox) not applied.
                page = new_page(browser, server, lang=lang, phone=phone, dark=dark,
                                bypass_csp=not dark)
                tag = f"{lang}-{'phone' if phone else 'desktop'}-{'dark' if dark else 'light'}"
                page.goto(base_url(server) + url + "/source")
                assert page.locator(".note").is_visible() and page.locator(
                    "header .download").is_visible(), tag
                assert ("메일 원본" if lang == "ko" else "Message source") in page.title()
                text = page.inner_text("pre")
                assert "Subject: =?ks_c_5601-1987?B?" in text and "00100 한 줄의 본문" in text
                wide = page.evaluate("document.scrollingElement.scrollWidth - innerWidth")
                assert wide <= 0, (tag, wide)
                screenshot(page, f"websource-{tag}")
                if not dark:
                    for violation in axe.run(page).response["violations"]:
                        if violation["impact"] in ("serious", "critical"):
                            problems.append(f"{tag}: {violation['id']}")
                if not phone and dark:  # under the page's own CSP: the sandbox allows it
                    with page.expect_download() as info:
                        page.click("header .download")
                    saved = info.value.path()
                    assert Path(saved).read_bytes() == raw_file(server, bob, url), tag
                page.context.close()
    assert problems == [], "\n".join(problems)


def raw_file(server: RunningServer, bob: Account, url: str) -> bytes:
    uid = int(url.rsplit("/", 1)[1])
    path = server.runtime.store.open_folder(bob.id, "INBOX").message_path(uid)
    assert path is not None
    return Path(path).read_bytes()

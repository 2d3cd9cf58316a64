"""Issue 11, reading and writing over HTTP: the read screen, the frame, downloads, sending."""

from __future__ import annotations

import base64
import io
import re
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from nmail.directory.model import Account
from nmail.mailstore.store import NewMessage
from nmail.mime.reading import part_content, read_view
from server_rig import RunningServer
from support import wait_until
from web_rig import Browser, web_server

HOSTILE_NAMES = ["../../x", "a\x00.html", "invoice\u202egpj.exe", "..\\..\\boot.ini"]


def store(server: RunningServer, account: Account, raw: bytes, folder: str = "INBOX") -> int:
    [stored] = server.runtime.store.store([NewMessage(account, folder, b"", raw)])
    return stored.uid


def folder_id(server: RunningServer, account: Account, name: str = "INBOX") -> int:
    return server.runtime.store.folder(account.id, name).id


def korean_message() -> bytes:
    subject = base64.b64encode("견적서 송부의 건".encode("cp949")).decode()
    return (b"From: =?euc-kr?B?" + base64.b64encode("김철수".encode("cp949"))
            + b"?= <kim@remote.example>\r\nTo: bob@example.com\r\n"
            b"Subject: =?ks_c_5601-1987?B?" + subject.encode() + b"?=\r\n"
            b"Message-ID: <k1@remote.example>\r\nDate: Mon, 7 Dec 2026 09:00:00 +0900\r\n"
            b"Content-Type: text/plain; charset=euc-kr\r\n\r\n"
            + "안녕하세요. 똠방각하 견적서를 보내드립니다. https://example.kr/q?a=1&b=2\r\n"
            .encode("cp949"))


def with_attachments() -> bytes:
    parts = [b"--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"]
    for index, name in enumerate(HOSTILE_NAMES):
        encoded = name.encode("utf-8")
        parts.append(
            b"--b\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n"
            b"Content-Disposition: attachment; filename*=UTF-8''"
            + "".join(f"%{b:02X}" for b in encoded).encode() + b"\r\n\r\n"
            + base64.b64encode(f"<script>alert({index})</script>".encode()) + b"\r\n")
    return (b"From: a@remote.example\r\nSubject: files\r\n"
            b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + b"".join(parts) + b"--b--\r\n")


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


def test_korean_message_reads_and_is_marked_seen(server: RunningServer, bob: Account,
                                                 browser: Browser) -> None:
    uid = store(server, bob, korean_message())
    # Opened from the list (our own page: a browser says so, web/guard.from_own_pages).
    page = browser.get(f"/mail/{folder_id(server, bob)}/{uid}",
                       headers={"Sec-Fetch-Site": "same-origin"})
    assert page.status_code == 200
    assert "견적서 송부의 건" in page.text and "김철수" in page.text
    assert "똠방각하" in page.text
    assert 'href="https://example.kr/q?a=1&amp;b=2"' in page.text
    # Marked read right after the page went out (the reader does not wait for it).
    wait_until(lambda: "\\Seen" in server.runtime.store.list_messages(bob.id, "INBOX")[0].flags,
               10, "the message marked \\Seen")
    pane = browser.get(f"/mail/{folder_id(server, bob)}/{uid}?pane=1")
    assert pane.status_code == 200 and "folders-pane" not in pane.text


def test_html_frame_is_sandboxed_sanitized_and_blocks_remote(server: RunningServer,
                                                              bob: Account,
                                                              browser: Browser) -> None:
    raw = (b"From: a@remote.example\r\nSubject: h\r\nContent-Type: text/html\r\n\r\n"
           b"<p onclick=x()>hi</p><script>parent.x=1</script>"
           b"<img src=\"http://tracker.example/p.gif\">")
    uid = store(server, bob, raw)
    base = f"/mail/{folder_id(server, bob)}/{uid}"
    page = browser.get(base)
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in page.text
    assert "Show images" in page.text
    frame = browser.get(base + "/body")
    csp = frame.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "img-src data:;" in csp and "allow-scripts" not in csp
    assert "<script" not in frame.text and "onclick" not in frame.text
    assert "tracker.example" not in frame.text
    shown = browser.shown(base)
    assert "tracker.example" in shown.text and "http:" in shown.headers["content-security-policy"]
    # "Always for this sender" is kept server-side.
    assert browser.post(base + "/trust-sender").status_code == 303
    assert "tracker.example" in browser.get(base + "/body").text
    assert "Stop showing them" in browser.get(base).text
    assert browser.post(base + "/distrust-sender").status_code == 303
    assert "tracker.example" not in browser.get(base + "/body").text


def test_hostile_attachment_names_download_safely(server: RunningServer, bob: Account,
                                                  browser: Browser) -> None:
    uid = store(server, bob, with_attachments())
    base = f"/mail/{folder_id(server, bob)}/{uid}"
    view = read_view(with_attachments())
    names = []
    for attachment in view.attachments:
        answer = browser.get(f"{base}/part/{attachment.number}")
        assert answer.status_code == 200
        assert answer.headers["x-content-type-options"].startswith("nosniff")
        assert answer.headers["content-type"] == "application/octet-stream"
        disposition = answer.headers["content-disposition"]
        assert disposition.startswith("attachment;")
        assert all(bad not in disposition for bad in ("..", "/", "\\", "%00", "%E2%80%AE"))
        names.append(re.search(r"filename\*=UTF-8''(.*)$", disposition).group(1))  # type: ignore[union-attr]
        found = part_content(with_attachments(), attachment.number)
        assert found is not None and answer.content == found[1]
    assert names == ["x", "a.html", "invoicegpj.exe", "boot.ini"]
    archive = zipfile.ZipFile(io.BytesIO(browser.get(base + "/attachments.zip").content))
    assert sorted(archive.namelist()) == sorted(names)
    source = browser.get(base + "/source")
    assert source.headers["content-type"].startswith("text/html")  # our page (source_page)
    assert "sandbox" in source.headers["content-security-policy"]


def test_another_users_message_is_404(server: RunningServer, bob: Account,
                                     browser: Browser) -> None:
    eve = server.add_user("eve@example.com")
    uid = store(server, eve, korean_message())
    eve_inbox = folder_id(server, eve)
    for path in (f"/mail/{eve_inbox}/{uid}", f"/mail/{eve_inbox}/{uid}/body",
                 f"/mail/{eve_inbox}/{uid}/part/0", f"/mail/{eve_inbox}/{uid}/source",
                 f"/mail/{eve_inbox}/{uid}/attachments.zip", f"/compose/reply/{eve_inbox}/{uid}",
                 f"/mail/{folder_id(server, bob)}/{uid + 100}", f"/mail/{eve_inbox}/0",
                 f"/mail/{eve_inbox}/99999999999999999999"):
        assert browser.get(path).status_code in (404, 422), path


def test_compose_send_with_attachment_to_a_local_user(server: RunningServer, bob: Account,
                                                      browser: Browser) -> None:
    carol = server.add_user("carol@example.com")
    browser.get("/compose")
    data = bytes(range(256)) * 64
    answer = browser.client.post(
        f"/compose/send?_csrf={browser.csrf}",
        data={"to": "캐롤 <carol@example.com>", "subject": "자료 보냅니다", "body": "첨부 확인",
              "action": "send"},
        files={"files": ("보고서.bin", data, "application/octet-stream")},
    )
    assert answer.status_code == 303, answer.text
    [row] = server.runtime.store.list_messages(carol.id, "INBOX")
    raw = server.runtime.store.read_message(carol.id, "INBOX", row.uid)
    assert raw is not None
    view = read_view(raw)
    assert view.subject == "자료 보냅니다" and view.sender[0][1] == "bob@example.com"
    [attachment] = view.attachments
    found = part_content(raw, attachment.number)
    assert found is not None and found[1] == data and attachment.filename == "보고서.bin"
    assert len(server.runtime.store.list_messages(bob.id, "Sent")) == 1


def test_reply_and_forward_forms_and_marks(server: RunningServer, bob: Account,
                                          browser: Browser) -> None:
    carol = server.add_user("carol@example.com")
    raw = (b"From: Carol <carol@example.com>\r\nTo: bob@example.com\r\nSubject: plan\r\n"
           b"Message-ID: <p1@example.com>\r\n\r\nthe plan\r\n")
    uid = store(server, bob, raw)
    inbox = folder_id(server, bob)
    form = browser.get(f"/compose/reply/{inbox}/{uid}")
    assert 'value="Re: plan"' in form.text and "&gt; the plan" in form.text
    assert "carol@example.com" in form.text
    answer = browser.client.post(
        f"/compose/send?_csrf={browser.csrf}",
        data={"to": "carol@example.com", "subject": "Re: plan", "body": "ok",
              "in_reply_to": "p1@example.com", "references": "p1@example.com",
              "original": f"{inbox}/{uid}/answered"},
    )
    assert answer.status_code == 303
    flags = server.runtime.store.list_messages(bob.id, "INBOX")[0].flags
    assert "\\Answered" in flags
    got = read_view(server.runtime.store.read_message(
        carol.id, "INBOX", server.runtime.store.list_messages(carol.id, "INBOX")[0].uid) or b"")
    assert got.in_reply_to == "p1@example.com"
    forward = browser.get(f"/compose/forward/{inbox}/{uid}")
    assert 'value="Fwd: plan"' in forward.text and "Forwarded message" in forward.text
    answer = browser.client.post(
        f"/compose/send?_csrf={browser.csrf}",
        data={"to": "carol@example.com", "subject": "Fwd: plan", "body": "fyi",
              "attach_message": f"{inbox}/{uid}", "original": f"{inbox}/{uid}/forwarded"},
    )
    assert answer.status_code == 303
    assert "$Forwarded" in server.runtime.store.list_messages(bob.id, "INBOX")[0].flags


def test_posts_without_csrf_are_refused(server: RunningServer, bob: Account,
                                        browser: Browser) -> None:
    carol = server.add_user("carol@example.com")
    uid = store(server, bob, korean_message())
    inbox = folder_id(server, bob)
    assert browser.client.post("/compose/send", data={
        "to": "carol@example.com", "subject": "s", "body": "b"}).status_code == 403
    assert browser.client.post("/compose/upload?name=x", content=b"x").status_code == 403
    assert browser.client.post(f"/mail/{inbox}/{uid}/trust-sender").status_code == 403
    assert server.runtime.store.list_messages(carol.id, "INBOX") == []


def test_header_injection_and_bad_addresses_reshow_the_form(server: RunningServer, bob: Account,
                                                            browser: Browser) -> None:
    carol = server.add_user("carol@example.com")
    browser.get("/compose")
    for fields in ({"to": "carol@example.com", "subject": "a\r\nBcc: carol@example.com"},
                   {"to": "carol@example.com\r\nBcc: x@y.z", "subject": "s"},
                   {"to": "not an address", "subject": "s"},
                   {"to": "nobody@example.com", "subject": "s"}):
        answer = browser.client.post(f"/compose/send?_csrf={browser.csrf}",
                                     data={**fields, "body": "b"})
        assert answer.status_code == 400, fields
        assert 'role="alert"' in answer.text
    assert "There is no mailbox nobody@example.com. (550 5.1.1" in answer.text
    assert server.runtime.store.list_messages(carol.id, "INBOX") == []


def test_recipient_fields_take_names_in_any_script(server: RunningServer, bob: Account,
                                                   browser: Browser) -> None:
    """To/Cc/Bcc are plain text fields (a phone's e-mail keyboard cannot type 영업팀 or
    김철수); what was typed is checked on the server, and nothing goes out when it is bad."""
    carol = server.add_user("carol@example.com")
    form = browser.get("/compose").text
    for name in ("to", "cc", "bcc"):
        field = re.search(rf'<input id="compose-{name}"[^>]*>', form, re.S)
        assert field is not None
        tag = field.group(0)
        assert 'type="text"' in tag and "inputmode" not in tag and 'type="email"' not in tag
        for attribute in ('autocomplete="off"', 'autocapitalize="off"', 'autocorrect="off"',
                          'spellcheck="false"'):
            assert attribute in tag, (name, attribute)
    for fields, said in (
            ({"to": "김철수"}, "“김철수” is neither an address nor a group"),
            ({"to": "carol@example.com", "cc": "영업팀"}, "“영업팀” is neither"),
            ({"to": "홍길동 <hong@", "bcc": ""}, "To: this address is not valid"),
            ({"to": "carol@example.com", "bcc": "carol@example.com, 이름 없는"},
             "“이름 없는” is neither")):
        answer = browser.client.post(f"/compose/send?_csrf={browser.csrf}",
                                     data={**fields, "subject": "s", "body": "b"})
        assert answer.status_code == 400, fields
        assert said in answer.text, (fields, answer.text[:3000])
        # The form comes back with what was typed, still a text field.
        assert "inputmode" not in answer.text
    assert server.runtime.store.list_messages(carol.id, "INBOX") == []
    # A display name in Hangul before the address goes through.
    sent = browser.client.post(f"/compose/send?_csrf={browser.csrf}", data={
        "to": "캐롤 <carol@example.com>", "subject": "s", "body": "b"})
    assert sent.status_code == 303
    assert len(server.runtime.store.list_messages(carol.id, "INBOX")) == 1


def test_upload_limit_and_staged_attachment(server: RunningServer, bob: Account,
                                            browser: Browser) -> None:
    carol = server.add_user("carol@example.com")
    browser.get("/compose")
    headers = {"X-CSRF-Token": browser.csrf, "Content-Type": "image/png"}
    limit = int(re.search(r'data-limit="(\d+)"', browser.get("/compose").text).group(1))  # type: ignore[union-attr]
    too_big = browser.client.post("/compose/upload?name=big.bin", content=b"x" * (limit + 1),
                                  headers=headers)
    assert too_big.status_code == 413 and "limit" in too_big.json()["detail"]
    ok = browser.client.post("/compose/upload?name=../pic.png", content=b"PNGDATA",
                             headers=headers)
    assert ok.status_code == 200 and ok.json()["name"] == "pic.png"
    answer = browser.client.post(f"/compose/send?_csrf={browser.csrf}", data={
        "to": "carol@example.com", "subject": "pic", "body": "b", "upload": ok.json()["id"]})
    assert answer.status_code == 303
    raw = server.runtime.store.read_message(
        carol.id, "INBOX", server.runtime.store.list_messages(carol.id, "INBOX")[0].uid) or b""
    [attachment] = read_view(raw).attachments
    assert attachment.filename == "pic.png"


def test_draft_saved_edited_and_gone_once_sent(server: RunningServer, bob: Account,
                                               browser: Browser) -> None:
    carol = server.add_user("carol@example.com")
    browser.get("/compose")
    saved = browser.client.post(
        f"/compose/send?_csrf={browser.csrf}",
        data={"to": "carol@example.com", "bcc": "bob@example.com", "subject": "초안",
              "body": "아직 쓰는 중", "action": "save"},
        files={"files": ("메모.txt", b"note bytes", "text/plain")})
    assert saved.status_code == 200 and "Draft saved." in saved.text
    mailstore = server.runtime.store
    [draft] = mailstore.list_messages(bob.id, "Drafts")
    drafts = folder_id(server, bob, "Drafts")
    form = browser.get(f"/compose/draft/{drafts}/{draft.uid}")
    assert 'value="초안"' in form.text and "아직 쓰는 중" in form.text
    assert "메모.txt" in form.text and 'name="carry_part"' in form.text
    assert 'value="bob@example.com"' in form.text  # the Bcc is kept in the draft
    # A draft is opened for editing only from Drafts.
    inbox_uid = store(server, bob, korean_message())
    assert browser.get(f"/compose/draft/{folder_id(server, bob)}/{inbox_uid}").status_code == 404
    number = re.search(r'name="carry_part" value="(\d+)"', form.text).group(1)  # type: ignore[union-attr]
    sent = browser.client.post(f"/compose/send?_csrf={browser.csrf}", data={
        "to": "carol@example.com", "subject": "초안", "body": "완성", "draft": str(draft.uid),
        "carry_from": f"{drafts}/{draft.uid}", "carry_part": number})
    assert sent.status_code == 303
    assert mailstore.list_messages(bob.id, "Drafts") == []
    newest = mailstore.list_messages(carol.id, "INBOX")[0].uid
    raw = mailstore.read_message(carol.id, "INBOX", newest)
    [attachment] = read_view(raw or b"").attachments
    assert attachment.filename == "메모.txt"
    assert part_content(raw or b"", attachment.number) is not None


def test_autosave_answers_json(server: RunningServer, bob: Account, browser: Browser) -> None:
    browser.get("/compose")
    answer = browser.client.post(f"/compose/send?_csrf={browser.csrf}",
                                 data={"subject": "auto", "body": "x", "action": "save"},
                                 headers={"Accept": "application/json"})
    assert answer.status_code == 200 and answer.json()["draft"] > 0
    again = browser.client.post(f"/compose/send?_csrf={browser.csrf}",
                                data={"subject": "auto 2", "body": "y", "action": "save",
                                      "draft": str(answer.json()["draft"])},
                                headers={"Accept": "application/json"})
    assert again.status_code == 200
    [row] = server.runtime.store.list_messages(bob.id, "Drafts")
    assert row.subject == "auto 2"


def test_rich_text_is_sanitized_on_the_server(server: RunningServer, bob: Account,
                                              browser: Browser) -> None:
    carol = server.add_user("carol@example.com")
    browser.get("/compose")
    answer = browser.client.post(f"/compose/send?_csrf={browser.csrf}", data={
        "to": "carol@example.com", "subject": "rich", "body": "ignored", "rich": "1",
        "html": '<b>bold</b><img src=x onerror=alert(1)><script>alert(2)</script>'
                '<a href="javascript:alert(3)">link</a>'})
    assert answer.status_code == 303
    mailstore = server.runtime.store
    newest = mailstore.list_messages(carol.id, "INBOX")[0].uid
    view = read_view(mailstore.read_message(carol.id, "INBOX", newest) or b"")
    assert "<b>bold</b>" in view.html
    assert "onerror" not in view.html and "<script" not in view.html
    assert "javascript:" not in view.html
    assert view.text.strip().startswith("bold")


def test_print_view_and_completion(server: RunningServer, bob: Account, browser: Browser) -> None:
    carol = server.add_user("carol@example.com")
    uid = store(server, bob, b"From: a@remote.example\r\nSubject: p\r\nContent-Type: text/html"
                             b"\r\n\r\n<p>print me</p><script>x()</script>")
    printed = browser.get(f"/mail/{folder_id(server, bob)}/{uid}/print")
    csp = printed.headers["content-security-policy"]
    assert "sandbox allow-scripts allow-modals" in csp and "allow-same-origin" not in csp
    assert "script-src http://" in csp and "/static/print.js" in csp
    assert "print me" in printed.text and "x()" not in printed.text
    browser.get("/compose")
    browser.client.post(f"/compose/send?_csrf={browser.csrf}", data={
        "to": "캐롤 <carol@example.com>", "subject": "s", "body": "b"})
    assert carol.id
    found = browser.client.get("/compose/recipients?q=캐", headers={"Accept": "application/json"})
    assert found.json() == [{"name": "캐롤", "address": "carol@example.com"}]
    assert browser.client.get("/compose/recipients?q=zzz").json() == []


def test_returned_mail_shows_the_bounce_panel(server: RunningServer, bob: Account,
                                              browser: Browser) -> None:
    data = Path(__file__).parent / "data" / "bounces" / "disabled" / "17_postfix.eml"
    uid = store(server, bob, data.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    page = browser.get(f"/mail/{folder_id(server, bob)}/{uid}")
    assert page.status_code == 200
    assert 'class="bounce-panel"' in page.text and "This message was returned" in page.text
    assert 'class="bounce-reply"' in page.text  # the remote reply, verbatim
    # The reason links to its own section of the guide (which the settings promise).
    assert 'href="/help/returnmail#disabled" target="_top"' in page.text
    assert 'id="disabled"' in browser.get("/help/returnmail").text
    korean = Browser(server, language="ko")
    korean.login("bob")
    shown = korean.get(f"/mail/{folder_id(server, bob)}/{uid}")
    assert "리턴메일입니다" in shown.text
    korean.close()
    plain = store(server, bob, korean_message())
    assert 'class="bounce-panel"' not in browser.get(f"/mail/{folder_id(server, bob)}/{plain}").text


def test_image_previews_inline_only_for_raster_types(server: RunningServer, bob: Account,
                                                    browser: Browser) -> None:
    png = base64.b64encode(b"\x89PNG\r\n\x1a\nfake")
    raw = (b"From: a@remote.example\r\nSubject: pics\r\nContent-Type: multipart/mixed; boundary=z"
           b"\r\n\r\n--z\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
           b"--z\r\nContent-Type: image/png; name=p.png\r\nContent-Transfer-Encoding: base64\r\n"
           b"\r\n" + png + b"\r\n--z\r\nContent-Type: image/svg+xml; name=v.svg\r\n\r\n"
           b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>\r\n--z--\r\n")
    uid = store(server, bob, raw)
    base = f"/mail/{folder_id(server, bob)}/{uid}"
    page = browser.get(base)
    assert f'src="{base}/part/1?preview=1"' in page.text
    assert f"{base}/part/2?preview=1" not in page.text
    shown = browser.get(f"{base}/part/1?preview=1")
    assert shown.headers["content-type"] == "image/png"
    assert shown.headers["content-disposition"].startswith("inline;")
    svg = browser.get(f"{base}/part/2?preview=1")
    assert svg.headers["content-type"] == "application/octet-stream"
    assert svg.headers["content-disposition"].startswith("attachment;")


def test_an_upload_token_is_only_its_uploaders(server: RunningServer, bob: Account,
                                               browser: Browser) -> None:
    server.add_user("eve@example.com")
    carol = server.add_user("carol@example.com")
    browser.get("/compose")
    token = browser.client.post("/compose/upload?name=secret.txt", content=b"bob's secret",
                                headers={"X-CSRF-Token": browser.csrf}).json()["id"]
    eve = Browser(server)
    eve.login("eve")
    eve.get("/compose")
    answer = eve.client.post(f"/compose/send?_csrf={eve.csrf}", data={
        "to": "carol@example.com", "subject": "s", "body": "b", "upload": token})
    assert answer.status_code == 303
    raw = server.runtime.store.read_message(
        carol.id, "INBOX", server.runtime.store.list_messages(carol.id, "INBOX")[0].uid)
    assert b"secret" not in (raw or b"") and read_view(raw or b"").attachments == []
    assert eve.client.post(f"/compose/upload/{token}/delete",
                           headers={"X-CSRF-Token": eve.csrf}).status_code == 204
    eve.close()
    # Still there for Bob: Eve's delete looked only in her own uploads.
    answer = browser.client.post(f"/compose/send?_csrf={browser.csrf}", data={
        "to": "carol@example.com", "subject": "s2", "body": "b", "upload": token})
    assert answer.status_code == 303
    rows = server.runtime.store.list_messages(carol.id, "INBOX")
    newest = server.runtime.store.read_message(carol.id, "INBOX", rows[0].uid) or b""
    assert [a.filename for a in read_view(newest).attachments] == ["secret.txt"]


def test_completion_puts_the_address_book_first(server: RunningServer, bob: Account,
                                                browser: Browser) -> None:
    from nmail.web.contacts_store import Contact, ContactsStore

    book = ContactsStore(server.runtime.engine, time.time)
    book.save(bob.id, Contact(0, "김영수", "youngsoo@corp.example"))
    book.save(bob.id, Contact(0, "Kim Book", "kimbook@corp.example"))
    server.add_user("kimchi@example.com")
    browser.get("/compose")
    browser.client.post(f"/compose/send?_csrf={browser.csrf}", data={
        "to": "kimchi@example.com", "subject": "s", "body": "b"})
    found = browser.client.get("/compose/recipients?q=kim").json()
    assert [c["address"] for c in found] == ["kimbook@corp.example", "kimchi@example.com"]
    by_name = browser.client.get("/compose/recipients?q=김영").json()
    assert by_name == [{"name": "김영수", "address": "youngsoo@corp.example"}]


def test_a_draft_over_quota_is_refused_with_the_reason(server: RunningServer) -> None:
    server.add_user("tiny@example.com", quota=2000)
    tiny = Browser(server)
    assert tiny.login("tiny").status_code == 303
    tiny.get("/compose")
    answer = tiny.client.post(f"/compose/send?_csrf={tiny.csrf}", data={
        "subject": "big", "body": "x" * 5000, "action": "save"})
    assert answer.status_code == 507 and 'role="alert"' in answer.text
    assert 'value="big"' in answer.text  # what the user wrote is still there
    tiny.close()


def test_reply_all_keeps_everyone_but_me(server: RunningServer, bob: Account,
                                         browser: Browser) -> None:
    server.add_user("bobby@example.com")
    raw = (b"From: Carol <carol@example.com>\r\nTo: bob@example.com, dave@remote.example\r\n"
           b"Cc: =?utf-8?b?7J2066m07Z2s?= <lee@remote.example>, BOB@example.com\r\n"
           b"Subject: team\r\nMessage-ID: <t1@example.com>\r\n\r\nall hands\r\n")
    uid = store(server, bob, raw)
    form = browser.get(f"/compose/reply-all/{folder_id(server, bob)}/{uid}").text
    to = re.search(r'id="compose-to" name="to" type="text" value="([^"]*)"', form)
    cc = re.search(r'id="compose-cc" name="cc" type="text" value="([^"]*)"', form)
    assert to is not None and cc is not None
    assert to.group(1) == "Carol &lt;carol@example.com&gt;, dave@remote.example"
    assert cc.group(1) == "이면희 &lt;lee@remote.example&gt;"
    assert 'value="Re: team"' in form and "&gt; all hands" in form

"""The source shown in the browser (web/source_page.py): whole when small, its head when big.

A real web app over a real store: the page is ours (HTML, sandboxed, no script),
says when it is cut and links the whole download; the shown text is the file's
first bytes decoded; raw Korean headers read as Korean; bytes no codec fits,
control characters and markup in the source neither break the page nor become
markup. Bad inputs: a uid that does not exist, another account's message, a
message whose file is gone, and what is not a uid, each a clear 404 (or 422)
in the reader's language. (Memory with a 20 MiB message: test_web_read_memory.)
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from nmail.directory.model import Account
from nmail.mime.charsets import decode_bytes
from nmail.web.source_page import SHOWN
from server_rig import RunningServer
from test_web_read_compose import bob, browser, folder_id, korean_message, server, store
from test_web_reading_more import forwarded_as_attachment
from web_rig import Browser

__all__ = ["bob", "browser", "server"]  # fixtures

PRE = re.compile(r"<pre>(.*)</pre>", re.S)


def shown(page: str) -> str:
    found = PRE.search(page)
    assert found, page[:500]
    return html.unescape(found.group(1))


def stored_bytes(server: RunningServer, bob: Account, uid: int) -> bytes:
    path = server.runtime.store.open_folder(bob.id, "INBOX").message_path(uid)
    assert path is not None
    return Path(path).read_bytes()


def test_a_small_message_is_shown_whole_on_a_sandboxed_page(server: RunningServer, bob: Account,
                                                             browser: Browser) -> None:
    uid = store(server, bob, korean_message())
    base = f"/mail/{folder_id(server, bob)}/{uid}"
    page = browser.get(base + "/source")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "sandbox" in policy and "default-src 'none'" in policy and "script" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "<script" not in page.text
    raw = stored_bytes(server, bob, uid)
    assert shown(page.text) == decode_bytes(raw, None)
    assert "only its first" not in page.text
    assert f'href="{base}/source?download=1"' in page.text
    assert browser.get(base + "/source?download=1").content == raw


def test_a_big_message_shows_its_head_and_says_so(server: RunningServer, bob: Account,
                                                  browser: Browser) -> None:
    lines = b"".join(b"line %06d \xea\xb0\x80\xeb\x82\x98\r\n" % i for i in range(60000))
    raw = (b"From: a@remote.example\r\nSubject: big\r\nContent-Type: text/plain; charset=utf-8"
           b"\r\n\r\n" + lines + b"THE END\r\n")
    assert len(raw) > 2 * SHOWN
    uid = store(server, bob, raw)
    base = f"/mail/{folder_id(server, bob)}/{uid}"
    page = browser.get(base + "/source")
    assert page.status_code == 200 and len(page.content) < 2 * SHOWN
    text = shown(page.text)
    stored = stored_bytes(server, bob, uid)
    # The head, cut at a line end at most SHOWN bytes in: the file's own first bytes.
    head = text.encode()
    assert head.endswith(b"\r\n") and stored.startswith(head) and len(head) <= SHOWN
    assert len(head) > SHOWN - 100 and "THE END" not in text
    assert "only its first 512 KB" in page.text and "The rest of the message" in page.text
    assert page.text.count(f'href="{base}/source?download=1"') == 2
    korean = Browser(server, language="ko")
    korean.login("bob")
    said = korean.get(base + "/source").text
    assert "메일 원본" in said and "앞의 512 KB(헤더와 본문 앞부분)만 보여 드립니다" in said
    korean.close()


def test_one_huge_line_is_cut_inside_without_splitting_a_character(
        server: RunningServer, bob: Account, browser: Browser) -> None:
    # No line end near the limit; a 3-byte character straddles it.
    body = b"x" * (SHOWN - 1000 - 1) + "가".encode() * 2000
    uid = store(server, bob, b"Subject: one line\r\n\r\n" + body)
    text = shown(browser.get(f"/mail/{folder_id(server, bob)}/{uid}/source").text)
    assert "\ufffd" not in text and text.endswith("가") and len(text.encode()) <= SHOWN


@pytest.mark.parametrize("raw, expected", [
    # Raw 8-bit EUC-KR header and body, no label: read as Korean.
    (b"Subject: " + "견적서".encode("cp949") + b"\r\n\r\n" + "안녕하세요".encode("cp949"),
     ["견적서", "안녕하세요"]),
    # A label no codec knows and bytes that are no text at all.
    (b"Subject: x\r\nContent-Type: text/plain; charset=x-unknown-\xff\r\n\r\n\xff\xfe\xfa\x80",
     ["charset=x-unknown-"]),
    # Markup and control characters: text, never markup; controls shown as U+FFFD.
    (b"Subject: <script>alert(1)</script>\r\n\r\n</pre><img src=x onerror=alert(2)>"
     b"\x00\x1b[31m\x07\x0c end\r\n", ["<script>alert(1)</script>", "<img src=x", "\ufffd[31m"]),
    # ISO-2022-KR, escapes and all.
    (b"Subject: k\r\n\r\n" + "한글".encode("iso2022_kr"), ["한글"]),
    # Nothing at all.
    (b"", []),
])
def test_any_bytes_are_shown_safely(server: RunningServer, bob: Account, browser: Browser,
                                    raw: bytes, expected: list[str]) -> None:
    uid = store(server, bob, raw)
    page = browser.get(f"/mail/{folder_id(server, bob)}/{uid}/source")
    assert page.status_code == 200
    assert "<script" not in page.text and "<img" not in page.text
    text = shown(page.text)
    for wanted in expected:
        assert wanted in text, (wanted, text[:200])
    assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", page.text)


def test_an_attached_messages_source_is_its_own(server: RunningServer, bob: Account,
                                                browser: Browser) -> None:
    outer = f"/mail/{folder_id(server, bob)}/{store(server, bob, forwarded_as_attachment())}"
    page = browser.get(outer + "/msg/1/source")
    assert page.status_code == 200
    inner = browser.get(outer + "/msg/1/source?download=1").content
    assert shown(page.text) == decode_bytes(inner, None)
    assert f'href="{outer}/msg/1/source?download=1"' in page.text


def test_bad_inputs_get_a_clear_answer(server: RunningServer, bob: Account,
                                       browser: Browser) -> None:
    inbox = folder_id(server, bob)
    uid = store(server, bob, korean_message())
    eve = server.add_user("eve@example.com")
    eve_uid = store(server, eve, b"Subject: eve's\r\n\r\nsecret of eve\r\n")
    gone = store(server, bob, b"Subject: gone\r\n\r\nfile removed\r\n")
    Path(str(server.runtime.store.open_folder(bob.id, "INBOX").message_path(gone))).unlink()
    nothing = "There is nothing here. The message or folder may have been moved or deleted."
    for path in (f"/mail/{inbox}/{uid + 100}/source", f"/mail/{inbox}/{gone}/source",
                 f"/mail/{folder_id(server, eve)}/{eve_uid}/source",
                 f"/mail/{folder_id(server, eve)}/{eve_uid}/source?download=1",
                 f"/mail/{inbox}/0/source", f"/mail/{inbox}/99999999999999999999/source",
                 f"/mail/999999/{uid}/source", f"/mail/{inbox}/{uid}/msg/1/source"):
        answer = browser.get(path)
        assert answer.status_code == 404, path
        assert nothing in answer.text and "secret of eve" not in answer.text, path
    assert browser.get(f"/mail/{inbox}/x/source").status_code == 422
    assert browser.get(f"/mail/{inbox}/{uid}/source?download=x").status_code == 422
    korean = Browser(server, language="ko")
    korean.login("bob")
    answer = korean.get(f"/mail/{inbox}/{gone}/source")
    assert answer.status_code == 404 and "메일이나 편지함이 옮겨졌거나 삭제되었을" in answer.text
    korean.close()
    # The others still work: nothing broke.
    assert browser.get(f"/mail/{inbox}/{uid}/source").status_code == 200

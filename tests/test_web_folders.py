"""Issue 11: folder tree with counts, folder create/rename/delete/nest, moves into them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from server_rig import RunningServer
from web_rig import Browser, deliver, web_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with web_server(tmp_path) as srv:
        srv.add_user("bob@example.com")
        srv.add_user("carol@example.com")
        yield srv


@pytest.fixture
def bob(server: RunningServer) -> Iterator[Browser]:
    b = Browser(server)
    b.login("bob")
    yield b
    b.close()


def folder_ids(page: str) -> dict[str, str]:
    return dict((name, fid) for fid, name in
                re.findall(r'data-folder-id="(\d+)" data-folder-name="([^"]+)"', page))


def test_create_nest_rename_delete(server: RunningServer, bob: Browser) -> None:
    bob.get("/folders")
    assert bob.post("/folders/create", {"name": "거래처"}).status_code == 303
    ids = folder_ids(bob.get("/folders").text)
    assert "거래처" in ids
    assert bob.post("/folders/create", {"name": "2026", "parent": ids["거래처"]}
                    ).status_code == 303
    ids = folder_ids(bob.get("/folders").text)
    assert "거래처/2026" in ids
    for bad in ("", "a/", "..", "x*y"):
        assert bob.post("/folders/create", {"name": bad}).status_code == 400, bad
    assert bob.post("/folders/create", {"name": "거래처"}).status_code == 400  # exists
    assert bob.post(f"/folders/{ids['거래처']}/rename", {"name": "고객사"}).status_code == 303
    ids = folder_ids(bob.get("/folders").text)
    assert "고객사/2026" in ids and "거래처" not in ids
    # Special folders stay.
    assert bob.post(f"/folders/{ids['INBOX']}/rename", {"name": "x"}).status_code == 403
    assert bob.post(f"/folders/{ids['Trash']}/delete").status_code == 403
    # Move a message into the nested folder, then delete the folder with it.
    deliver(server, "bob@example.com", "to file away")
    inbox = bob.get(f"/mail/{ids['INBOX']}").text
    uid = re.search(r'name="uid" value="(\d+)"', inbox).group(1)  # type: ignore[union-attr]
    moved = bob.post(f"/mail/{ids['INBOX']}/actions", {"action": "move", "uid": uid,
                                                      "target": ids["고객사/2026"]})
    assert moved.status_code == 303
    assert "to file away" in bob.get(f"/mail/{ids['고객사/2026']}").text
    assert bob.post(f"/folders/{ids['고객사']}/delete").status_code == 303
    assert "고객사" not in folder_ids(bob.get("/folders").text)


def test_counts_and_korean_special_names(server: RunningServer) -> None:
    deliver(server, "bob@example.com", "one")
    deliver(server, "bob@example.com", "two")
    b = Browser(server, language="ko-KR,ko;q=0.9")
    b.login("bob")
    page = b.get(b.get("/").headers["location"]).text
    for name in ("받은편지함", "보낸편지함", "임시보관함", "휴지통", "스팸편지함"):
        assert name in page
    assert re.search(r'data-unseen="2"', page)
    assert page.count('class="msg unseen') == 2
    assert "<title>(2) 받은편지함" in page
    b.close()


def test_another_users_folder_cannot_be_changed(server: RunningServer, bob: Browser) -> None:
    bob.post("/folders/create", {"name": "private"})
    ids = folder_ids(bob.get("/folders").text)
    carol = Browser(server)
    carol.login("carol")
    assert carol.post(f"/folders/{ids['private']}/delete").status_code == 404
    assert carol.post(f"/folders/{ids['private']}/rename", {"name": "x"}).status_code == 404
    assert carol.post("/folders/create", {"name": "x", "parent": ids["private"]}
                      ).status_code == 404
    carol.close()
    assert "private" in folder_ids(bob.get("/folders").text)


def test_sorting_and_paging(server: RunningServer, bob: Browser) -> None:
    for i in range(30):
        deliver(server, "bob@example.com", f"msg {i:02d}", sender=f"s{i:02d}@remote.example")
    bob.post("/settings/preferences", {"language": "", "page_size": "25"})
    inbox = bob.get("/").headers["location"]
    first = bob.get(inbox).text
    assert "Page 1 of 2" in first and "msg 29" in first and "msg 00" not in first
    second = bob.get(inbox + "?page=2").text
    assert "msg 00" in second
    by_subject = bob.get(inbox + "?sort=subject&order=asc").text
    assert by_subject.index("msg 00") < by_subject.index("msg 01")
    assert bob.get(inbox + "?sort=evil").status_code == 400
    assert bob.get(inbox + "?page=-5").status_code == 200


SENDERS = ("하늘", "apple", "김철수", "Zed", "박영희", "가나")  # in the order they arrive


def shown_order(html: str) -> list[str]:
    rows = html[html.index("data-message-list"):]
    return sorted(SENDERS, key=lambda name: rows.index(f">{name}<"))


def sort_label(html: str) -> str:
    found = re.search(r'<summary class="sort-current">(.*?)</summary>', html, re.S)
    assert found is not None
    return " ".join(re.sub(r"<[^>]+>", "", found.group(1)).split())


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_each_sort_key_starts_its_natural_way(tmp_path: Path, db_url: str, lang: str) -> None:
    """Date and Size start newest/largest first, From and Subject A→Z (Hangul ㄱ→ㅎ,
    after Latin, case aside) in the index's own order; choosing the key again reverses
    it; the menu's labels say the direction; bad keys and orders are 400. On every
    database: the order is the sort index's, under each one's collation."""
    with web_server(tmp_path, db_url) as server:
        server.add_user("bob@example.com")
        natural_orders(server, lang)


def natural_orders(server: RunningServer, lang: str) -> None:
    for i, name in enumerate(SENDERS):
        deliver(server, "bob@example.com", f"{name} 보고서", body="x" * (100 * (i + 1)),
                sender=f"s{i}@remote.example", name=name,
                date=f"Mon, 0{i + 1} Dec 2026 10:00:00 +0900")
    b = Browser(server, language="ko-KR,ko;q=0.9" if lang == "ko" else "en-US")
    b.login("bob")
    inbox = b.get("/").headers["location"]
    a_to_z = ["apple", "Zed", "가나", "김철수", "박영희", "하늘"]
    newest = list(reversed(SENDERS))
    expected = {
        "date": (newest, "정렬: 최신순", "Sort: Newest first"),
        "size": (newest, "정렬: 큰 메일부터", "Sort: Largest first"),
        "from": (a_to_z, "정렬: 보낸사람 ㄱ→ㅎ", "Sort: From A→Z"),
        "subject": (a_to_z, "정렬: 제목 ㄱ→ㅎ", "Sort: Subject A→Z"),
    }
    reverse = {"date": ("정렬: 오래된순", "Sort: Oldest first"),
               "size": ("정렬: 작은 메일부터", "Sort: Smallest first"),
               "from": ("정렬: 보낸사람 ㅎ→ㄱ", "Sort: From Z→A"),
               "subject": ("정렬: 제목 ㅎ→ㄱ", "Sort: Subject Z→A")}
    default = b.get(inbox).text
    assert shown_order(default) == newest
    for key, (order, ko, en) in expected.items():
        # Another key's menu links to this key in its natural order.
        other = b.get(f"{inbox}?sort={'size' if key == 'date' else 'date'}").text
        links = dict(re.findall(r'<a href="\?sort=(\w+)&amp;order=(\w+)" class="sort-link"',
                                other))
        page = b.get(f"{inbox}?sort={key}&order={links[key]}").text
        assert b.get(f"{inbox}?sort={key}").text.count(">") == page.count(">")  # same page
        assert shown_order(page) == order, key
        assert sort_label(page) == (ko if lang == "ko" else en)
        # The current key's link reverses it, and says so.
        toggle = re.search(rf'<a href="\?sort={key}&amp;order=(\w+)" class="sort-link">([^<]+)',
                           page)
        assert toggle is not None
        again = b.get(f"{inbox}?sort={key}&order={toggle.group(1)}").text
        assert shown_order(again) == list(reversed(order)), key
        assert sort_label(again) == reverse[key][0 if lang == "ko" else 1]
        assert toggle.group(2) in sort_label(again)
    for bad in ("evil", "date desc", "from;DROP TABLE messages", "subject' OR '1'='1",
                "arrival", "", "x" * 5000, "%00"):
        answer = b.get(inbox, params={"sort": bad})
        assert answer.status_code == 400, bad
        assert ("정렬" in answer.text) if lang == "ko" else ("order" in answer.text)
    for bad in ("up", "DESC", "asc;", "x" * 5000):
        assert b.get(inbox, params={"sort": "from", "order": bad}).status_code == 400, bad
    assert shown_order(b.get(inbox).text) == newest  # nothing changed
    b.close()


def test_conversation_view(server: RunningServer, bob: Browser) -> None:
    import smtplib

    def send(subject: str, message_id: str, reply_to: str = "") -> None:
        extra = f"In-Reply-To: {reply_to}\r\nReferences: {reply_to}\r\n" if reply_to else ""
        body = (f"From: kim@remote.example\r\nTo: bob@example.com\r\nSubject: {subject}\r\n"
                f"Message-ID: {message_id}\r\n{extra}\r\nhi\r\n")
        with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=10) as smtp:
            smtp.sendmail("kim@remote.example", ["bob@example.com"], body.encode())

    send("예산 회의", "<a1@remote.example>")
    send("Re: 예산 회의", "<a2@remote.example>", "<a1@remote.example>")
    send("다른 이야기", "<b1@remote.example>")
    inbox = bob.get("/").headers["location"]
    flat = bob.get(inbox).text
    assert flat.count('<li class="msg') == 3
    bob.post("/settings/preferences", {"language": "", "page_size": "50", "threads": "on"})
    folded = bob.get(inbox).text
    assert folded.count('<li class="msg') == 2
    link = re.search(r'href="(/mail/\d+/thread/[^"]+)"', folded)
    assert link is not None and '<span class="thread-count">2</span>' in folded
    conversation = bob.get(link.group(1)).text
    assert conversation.count("data-thread-msg") == 2
    assert "<bdi>예산 회의</bdi>" in conversation and "2 messages" in conversation
    assert bob.get(inbox + "/thread/nothing-here").status_code == 404
    carol = Browser(server)
    carol.login("carol")
    assert carol.get(link.group(1)).status_code == 404
    carol.close()


def test_mark_as_spam_offers_the_reject_list(server: RunningServer, bob: Browser) -> None:
    deliver(server, "bob@example.com", "cheap pills", sender="pills@spam.example")
    ids = folder_ids(bob.get("/folders").text)
    inbox = bob.get(f"/mail/{ids['INBOX']}").text
    uid = re.search(r'name="uid" value="(\d+)"', inbox).group(1)  # type: ignore[union-attr]
    answer = bob.post(f"/mail/{ids['INBOX']}/actions", {"action": "spam", "uid": uid})
    assert answer.status_code == 303 and "offer_reject=pills%40spam.example" in (
        answer.headers["location"])
    page = bob.get(answer.headers["location"]).text
    assert "Add to reject list" in page and "pills@spam.example" in page
    assert "cheap pills" in bob.get(f"/mail/{ids['Spam']}").text
    assert bob.post("/settings/rejects/add-many", {"patterns": "pills@spam.example"}
                    ).status_code == 303
    assert "pills@spam.example" in bob.get("/settings/rejects").text
    # Empty Spam: gone for good; only Trash and Spam can be emptied.
    assert bob.post(f"/mail/{ids['INBOX']}/empty").status_code == 400
    assert bob.post(f"/mail/{ids['Spam']}/empty").status_code == 303
    assert "cheap pills" not in bob.get(f"/mail/{ids['Spam']}").text

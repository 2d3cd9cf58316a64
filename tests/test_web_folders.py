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
    assert bob.get(inbox + "?sort=evil").status_code == 422
    assert bob.get(inbox + "?page=-5").status_code == 200


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

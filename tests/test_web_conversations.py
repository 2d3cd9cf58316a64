"""Issue 11: the conversation list (a thread over several pages is one row), its
switch, the conversation screen, and actions on a conversation row (no script)."""

from __future__ import annotations

import re
import smtplib
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


def send(server: RunningServer, subject: str, message_id: str, *, day: int,
         in_reply_to: str = "", references: str = "", sender: str = "kim@remote.example",
         to: str = "bob@example.com") -> None:
    extra = f"In-Reply-To: {in_reply_to}\r\n" if in_reply_to else ""
    extra += f"References: {references}\r\n" if references else ""
    body = (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Date: {day:02d} Nov 2026 09:00:00 +0900\r\n"
            f"Message-ID: {message_id}\r\n{extra}\r\n{subject} body\r\n")
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=10) as smtp:
        smtp.sendmail(sender, [to], body.encode())


def spread_thread(server: RunningServer) -> None:
    """A thread whose start is on page 2 of the message list and whose reply is first."""
    send(server, "예산 회의", "<root@remote.example>", day=1)
    for i in range(26):
        deliver(server, "bob@example.com", f"filler {i:02d}",
                date=f"{2 + i % 20:02d} Nov 2026 10:00:00 +0900")
    # Only In-Reply-To, and out of order: the answer to the answer comes first.
    send(server, "Re: Re: 예산 회의", "<r2@remote.example>", day=28,
         in_reply_to="<r1@remote.example>", sender="lee@remote.example")
    send(server, "Re: 예산 회의", "<r1@remote.example>", day=27,
         references="<root@remote.example>", sender="park@remote.example")


def rows(page: str) -> list[str]:
    return re.findall(r'<li class="msg[^"]*" data-uid="\d+".*?</li>', page, re.S)


def test_a_thread_over_two_pages_is_one_conversation(server: RunningServer,
                                                     bob: Browser) -> None:
    spread_thread(server)
    bob.post("/settings/preferences", {"language": "", "page_size": "25"})
    inbox = bob.get("/").headers["location"]
    first = bob.get(inbox).text
    assert "Page 1 of 2" in first and "예산 회의</bdi>" not in first.split("Re: 예산")[0]
    folder_id = inbox.rsplit("/", 1)[1]
    switched = bob.post(f"/mail/{folder_id}/view", {"view": "conversations"})
    assert switched.status_code == 303
    page = bob.get(inbox).text
    assert "27 conversations" in page and "Page 1 of 2" in page
    top = rows(page)[0]
    assert '<span class="thread-count">3</span>' in top
    assert "Re: Re: 예산 회의" in top and "unseen" in top
    assert "kim@remote.example, park@remote.example, lee@remote.example" in top
    assert "예산 회의" not in "".join(rows(bob.get(inbox + "?page=2").text))
    # the choice is remembered: a new login still sees conversations
    again = Browser(server)
    again.login("bob")
    assert "27 conversations" in again.get(inbox).text
    again.close()
    assert bob.post(f"/mail/{folder_id}/view", {"view": "evil"}).status_code == 400
    bob.post(f"/mail/{folder_id}/view", {"view": "messages"})
    assert "29 messages" in bob.get(inbox).text


def test_conversation_screen_opens_unread_and_last(server: RunningServer,
                                                   bob: Browser) -> None:
    send(server, "안건", "<a@remote.example>", day=1)
    send(server, "Re: 안건", "<b@remote.example>", day=2, references="<a@remote.example>")
    send(server, "Re: Re: 안건", "<c@remote.example>", day=3,
         references="<a@remote.example> <b@remote.example>")
    inbox = bob.get("/").headers["location"]
    folder_id = inbox.rsplit("/", 1)[1]
    bob.post(f"/mail/{folder_id}/view", {"view": "conversations"})
    link = re.search(r'href="(/mail/\d+/thread/[0-9a-f]+)"', bob.get(inbox).text)
    assert link is not None
    screen = bob.get(link.group(1)).text
    opened = re.findall(r'<details class="thread-msg([^"]*)"\s*(open)?', screen)
    assert opened == [(" unseen", "open")] * 3  # every message unread: all open
    bob.post(f"/mail/{folder_id}/actions", {"action": "read", "uid": ["1", "2"]})
    screen = bob.get(link.group(1)).text
    opened = re.findall(r'<details class="thread-msg([^"]*)"\s*(open)?', screen)
    assert opened == [("", ""), ("", ""), (" unseen", "open")]  # read ones folded
    assert re.search(r'id="thread-subject"[^>]*><bdi>안건</bdi>', screen)  # the first's
    assert screen.count('<iframe class="thread-frame"') == 3
    assert "data-folder-tree" in screen
    in_pane = bob.get(link.group(1) + "?pane=1")
    assert in_pane.status_code == 200 and "data-folder-tree" not in in_pane.text
    assert in_pane.text.count('<iframe class="thread-frame"') == 3
    carol = Browser(server)
    carol.login("carol")
    assert carol.get(link.group(1)).status_code == 404
    carol.close()
    assert bob.get(inbox + "/thread/0123456789abcdef").status_code == 404


def thread_links_of(page: str) -> list[str]:
    return re.findall(r'href="(/mail/\d+/thread/[0-9a-f]+)"', page)


def test_a_merged_conversations_old_address_leads_to_it(tmp_path: Path, db_url: str) -> None:
    """Two conversations, then a message naming both: they merge (the smaller id wins,
    mailstore/thread_index.py) and the loser's URL, in a bookmark or an open tab, leads
    to the merged conversation instead of a 404. Only within the account: anyone else
    gets the 404 an unknown id gets. On every database (the old id is read from
    thread_links, whose collation differs)."""
    with web_server(tmp_path, db_url) as server:
        server.add_user("bob@example.com")
        server.add_user("carol@example.com")
        bob = Browser(server)
        bob.login("bob")
        merged_conversation_redirects(server, bob)
        bob.close()


def merged_conversation_redirects(server: RunningServer, bob: Browser) -> None:
    send(server, "견적", "<quote@remote.example>", day=1)
    send(server, "Re: 견적", "<quote-2@remote.example>", day=2,
         references="<quote@remote.example>")
    send(server, "일정", "<plan@remote.example>", day=3)
    send(server, "Re: 일정", "<plan-2@remote.example>", day=4, in_reply_to="<plan@remote.example>")
    inbox = bob.get("/").headers["location"]
    folder_id = inbox.rsplit("/", 1)[1]
    bob.post(f"/mail/{folder_id}/view", {"view": "conversations"})
    before = thread_links_of(bob.get(inbox).text)
    assert len(before) == 2
    send(server, "Re: 견적, 일정", "<both@remote.example>", day=5, sender="lee@remote.example",
         references="<quote@remote.example> <plan@remote.example>")
    after = thread_links_of(bob.get(inbox).text)
    assert len(after) == 1 and after[0] in before  # one conversation, one of the two ids
    merged = after[0]
    assert bob.get(merged).text.count("data-thread-msg") == 5
    old = next(link for link in before if link != merged)
    moved = bob.get(old)
    assert moved.status_code == 307 and moved.headers["location"] == merged
    in_pane = bob.get(old + "?pane=1")
    assert in_pane.status_code == 307 and in_pane.headers["location"] == merged + "?pane=1"
    assert bob.get(merged + "?pane=1").text.count("data-thread-msg") == 5
    # Bad inputs: the old id under a folder without the conversation, malformed ids, an
    # id nobody has. All 404.
    sent = re.search(r'data-folder-id="(\d+)" data-folder-name="Sent"', bob.get(inbox).text)
    assert sent is not None
    old_id = old.rsplit("/", 1)[1]
    for path in (f"/mail/{sent.group(1)}/thread/{old_id}", f"{inbox}/thread/{old_id[:-1]}",
                 f"{inbox}/thread/{old_id}0", f"{inbox}/thread/{old_id.upper()}",
                 f"{inbox}/thread/0123456789abcdef", f"{inbox}/thread/{'a' * 65}",
                 f"{inbox}/thread/{old_id}%20", f"{inbox}/thread/%00{old_id[1:]}"):
        assert bob.get(path).status_code == 404, path
    # Another account, of this domain or another: the old id is a 404 under their own
    # folder (no sign that it means something to someone) and under bob's.
    server.add_user("dave@other.example")
    for who in ("carol", "dave@other.example"):
        other = Browser(server)
        assert other.login(who).status_code == 303
        own = other.get("/").headers["location"]
        other.post(f"{own}/view", {"view": "conversations"})
        answer = other.get(f"{own}/thread/{old_id}")
        assert answer.status_code == 404
        nothing = other.get(f"{own}/thread/0123456789abcdef")
        assert answer.text == nothing.text  # the same page as an id nobody has
        for path in (old, merged, old + "?pane=1"):
            assert other.get(path).status_code == 404
        other.close()
    # Even when another account has merged conversations of its own with these very
    # message ids (the same mail sent to both), bob's old id still means bob's only.
    for mid, refs in (("<quote@remote.example>", ""), ("<plan@remote.example>", ""),
                      ("<both@remote.example>", "<quote@remote.example> <plan@remote.example>")):
        send(server, "복사", mid, day=6, to="carol@example.com", references=refs)
    carol = Browser(server)
    carol.login("carol")
    carol_inbox = carol.get("/").headers["location"]
    assert carol.get(old).status_code == 404 and carol.get(merged).status_code == 404
    mine = carol.get(f"{carol_inbox}/thread/{old_id}")
    assert mine.status_code == 307
    assert mine.headers["location"].startswith(carol_inbox + "/thread/")
    carol.close()


def test_actions_on_a_conversation_row_apply_to_all_its_messages(
    server: RunningServer, bob: Browser
) -> None:
    send(server, "안건", "<a@remote.example>", day=1)
    send(server, "Re: 안건", "<b@remote.example>", day=2, in_reply_to="<a@remote.example>")
    send(server, "다른 이야기", "<z@remote.example>", day=3)
    inbox = bob.get("/").headers["location"]
    folder_id = inbox.rsplit("/", 1)[1]
    bob.post(f"/mail/{folder_id}/view", {"view": "conversations"})
    page = bob.get(inbox).text
    assert 'name="scope" value="thread"' in page
    thread_row = next(r for r in rows(page) if "Re: 안건" in r)
    uid = re.search(r'data-uid="(\d+)"', thread_row).group(1)  # type: ignore[union-attr]
    done = bob.post(f"/mail/{folder_id}/actions",
                    {"action": "read", "uid": uid, "scope": "thread"})
    assert done.status_code == 303 and "n=2" in done.headers["location"]
    bob.post(f"/mail/{folder_id}/view", {"view": "messages"})
    flat = bob.get(inbox).text
    assert flat.count('class="msg unseen') == 1  # only the other conversation
    # the star of a conversation: on for all, then off for all
    bob.post(f"/mail/{folder_id}/actions", {"toggle_flag": uid, "scope": "thread"})
    assert bob.get(inbox).text.count('class="msg flagged') == 2
    bob.post(f"/mail/{folder_id}/actions", {"toggle_flag": uid, "scope": "thread"})
    assert 'msg flagged' not in bob.get(inbox).text
    # without scope a UID is one message, as before
    bob.post(f"/mail/{folder_id}/actions", {"action": "unread", "uid": uid})
    assert bob.get(inbox).text.count('class="msg unseen') == 2
    moved = bob.post(f"/mail/{folder_id}/actions",
                     {"action": "delete", "uid": uid, "scope": "thread"})
    assert "n=2" in moved.headers["location"]
    left = bob.get(inbox).text
    assert "안건" not in left and "다른 이야기" in left


def test_the_conversation_shows_your_replies_from_sent(server: RunningServer,
                                                       bob: Browser) -> None:
    send(server, "안건", "<a@remote.example>", day=1)
    send(server, "Re: 안건", "<c@remote.example>", day=3, references="<a@remote.example> "
         "<mine@example.com>", sender="lee@remote.example")
    account = server.directory.get_account("bob@example.com")
    assert account is not None
    reply = (b"From: Bob <bob@example.com>\r\nTo: kim@remote.example\r\nSubject: Re: \xec\x95\x88"
             b"\xea\xb1\xb4\r\nDate: 02 Nov 2026 09:00:00 +0900\r\nMessage-ID: <mine@example.com>"
             b"\r\nIn-Reply-To: <a@remote.example>\r\n\r\nmy answer\r\n")
    server.runtime.store.append(account, "Sent", reply, flags=["\\Seen"])
    inbox = bob.get("/").headers["location"]
    folder_id = inbox.rsplit("/", 1)[1]
    bob.post(f"/mail/{folder_id}/view", {"view": "conversations"})
    page = bob.get(inbox).text
    assert "2 conversations" not in page and "1 conversation" in page
    link = re.search(r'href="(/mail/\d+/thread/[0-9a-f]+)"', page)
    assert link is not None
    screen = bob.get(link.group(1)).text
    assert screen.count("data-thread-msg") == 3
    assert "2 messages · 1 in another folder" in screen  # one: singular
    sent_id = re.search(r'data-folder-id="(\d+)" data-folder-name="Sent"', screen)
    assert sent_id is not None
    frames = re.findall(r'<iframe class="thread-frame" src="/mail/(\d+)/', screen)
    assert frames == [folder_id, sent_id.group(1), folder_id]  # by date
    assert '<span class="folder-chip">Sent</span>' in screen
    # actions still mean this folder: the hidden UID is the newest of the INBOX
    assert re.search(r'name="uid" value="2"', screen)
    # A second answer elsewhere: plural in English; Korean counts both alike.
    server.runtime.store.append(account, "Sent", reply.replace(b"<mine@", b"<mine2@"),
                                flags=["\\Seen"])
    assert "2 messages · 2 in other folders" in bob.get(link.group(1)).text
    korean = Browser(server, language="ko")
    korean.login("bob")
    assert "메일 2통 · 다른 편지함에 2통" in korean.get(link.group(1)).text
    korean.close()

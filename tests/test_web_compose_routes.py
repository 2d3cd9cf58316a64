"""The compose form's URLs: every kind of answer (reply, reply-all, forward, forward as an
attachment), of a stored message and of one attached inside it, is one handler behind a
checked kind (routes/compose.py). These pin what each URL answered before they were one:
the status, the redirect, 404 for a kind it does not know and for another user's id, 422
for an id that is not a number, 403 for a POST without the CSRF token and 405 with it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from server_rig import RunningServer
from test_web_read_compose import folder_id, store
from test_web_reading_more import forwarded_as_attachment
from web_rig import Browser, web_server

KINDS = ("reply", "reply-all", "forward", "forward-attached")
HEADINGS = {"reply": "<h1>Reply</h1>", "reply-all": "<h1>Reply</h1>",
            "forward": "<h1>Forward</h1>", "forward-attached": "<h1>Forward</h1>"}


@dataclass
class Rig:
    server: RunningServer
    browser: Browser  # logged in as bob
    inbox: int  # bob's INBOX id
    uid: int  # a message there with a message attached inside it


@pytest.fixture
def rig(tmp_path: Path, db_url: str) -> Iterator[Rig]:
    with web_server(tmp_path, db_url) as srv:
        bob = srv.add_user("bob@example.com")
        browser = Browser(srv)
        assert browser.login("bob").status_code == 303
        yield Rig(srv, browser, folder_id(srv, bob), store(srv, bob, forwarded_as_attachment()))
        browser.close()


def test_every_kind_of_answer_opens_its_form(rig: Rig) -> None:
    browser, inbox, uid = rig.browser, rig.inbox, rig.uid
    for kind in KINDS:
        stored = browser.get(f"/compose/{kind}/{inbox}/{uid}")
        assert stored.status_code == 200, kind
        assert HEADINGS[kind] in stored.text, kind
        subject = "Re: Fwd: quote" if kind.startswith("reply") else "Fwd: quote"
        assert f'value="{subject}"' in stored.text, kind
        marks = "answered" if kind.startswith("reply") else "forwarded"
        assert f'name="original" value="{inbox}/{uid}/{marks}"' in stored.text, kind
        inner = browser.get(f"/compose/{kind}/{inbox}/{uid}/msg/1")
        assert inner.status_code == 200, kind
        assert HEADINGS[kind] in inner.text and "견적서 송부" in inner.text, kind
        assert 'name="original" value=""' in inner.text, kind  # nothing stored to mark
    attached = browser.get(f"/compose/forward-attached/{inbox}/{uid}").text
    assert f'name="attach_message" value="{inbox}/{uid}"' in attached
    inline = browser.get(f"/compose/forward/{inbox}/{uid}").text
    assert 'name="attach_message" value=""' in inline
    # The list's shortcut still redirects to the form's own URL.
    for field, kind in (("reply", "reply"), ("reply_all", "reply-all"), ("forward", "forward")):
        moved = browser.get(f"/compose?{field}={inbox}:{uid}")
        assert moved.status_code == 303
        assert moved.headers["location"] == f"/compose/{kind}/{inbox}/{uid}"
    assert browser.get(f"/compose?reply={inbox}:x").status_code == 404


def test_bad_kinds_and_ids_are_refused(rig: Rig) -> None:
    browser, inbox, uid = rig.browser, rig.inbox, rig.uid
    eve = rig.server.add_user("eve@example.com")
    eves = store(rig.server, eve, forwarded_as_attachment())
    eve_inbox = folder_id(rig.server, eve)
    for kind in ("Reply", "replyall", "reply_all", "forward-attachment", "forwarded", "send",
                 "upload", "recipients", "draft-all", "re", ""):
        for tail in ("", "/msg/1"):
            path = f"/compose/{kind}/{inbox}/{uid}{tail}"
            assert browser.get(path).status_code == 404, path
    assert browser.get(f"/compose/draft/{inbox}/{uid}/msg/1").status_code == 404
    for kind in KINDS:
        for tail in ("", "/msg/1"):
            for path, status in (
                    (f"/compose/{kind}/{eve_inbox}/{eves}{tail}", 404),  # not bob's
                    (f"/compose/{kind}/{inbox}/{uid + 9}{tail}", 404),  # no such message
                    (f"/compose/{kind}/{inbox}/0{tail}", 404),
                    (f"/compose/{kind}/{'9' * 25}/{uid}{tail}", 404),  # past every id
                    (f"/compose/{kind}/{inbox}/x{tail}", 422),
                    (f"/compose/{kind}/x/{uid}{tail}", 422),
                    (f"/compose/{kind}/{inbox}/-1{tail}", 404),
                    (f"/compose/{kind}/{inbox}/{uid}{tail}/", 307),  # to the form
                    (f"/compose/{kind}/{inbox}{tail}", 404),
                    (f"/compose/{kind}/{inbox}/{uid}/extra{tail}", 404)):
                answer = browser.get(path)
                assert answer.status_code == status, path
                if status == 307:
                    assert answer.headers["location"].endswith(path[:-1]), path
        for bad in ("/msg/", "/msg/9", "/msg/x", "/msg/1/2", "/msg/1/body"):
            assert browser.get(f"/compose/{kind}/{inbox}/{uid}{bad}").status_code == 404, bad


def test_the_forms_take_no_posts_and_need_a_login(rig: Rig) -> None:
    browser, inbox, uid = rig.browser, rig.inbox, rig.uid
    stranger = Browser(rig.server)
    for kind in (*KINDS, "draft"):
        for tail in ("", "/msg/1") if kind != "draft" else ("",):
            path = f"/compose/{kind}/{inbox}/{uid}{tail}"
            assert browser.client.post(path).status_code == 403, path  # no CSRF token
            assert browser.client.post(path, headers={"X-CSRF-Token": browser.csrf}
                                       ).status_code == 405, path
            away = stranger.get(path)
            assert away.status_code == 303, path
            assert away.headers["location"].startswith("/login?next=/compose/"), path
    stranger.close()
    # A POST to a path no form has is still 404 past the CSRF check.
    assert browser.client.post(f"/compose/replyx/{inbox}/{uid}", headers={
        "X-CSRF-Token": browser.csrf}).status_code == 404

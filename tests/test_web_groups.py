"""Address-book groups in compose: completion offers them, sending expands them on the server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from nmail.mime.reading import read_view
from nmail.web.recipient_groups import GroupError, expand, split_items
from server_rig import RunningServer
from web_rig import Browser, web_server


@pytest.fixture
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with web_server(tmp_path_factory.mktemp("groups")) as srv:
        for name in ("bob", "carol", "dave", "erin"):
            srv.add_user(f"{name}@example.com")
        yield srv


@pytest.fixture
def bob(server: RunningServer) -> Iterator[Browser]:
    b = Browser(server)
    assert b.login("bob").status_code == 303
    b.get("/contacts/new")
    for name, email, groups in (("Carol", "carol@example.com", "Team"),
                                ("데이브", "dave@example.com", "Team; 친구"),
                                ("Erin", "erin@example.com", "")):
        answer = b.post("/contacts/save", {"name": name, "email": email, "groups": groups})
        assert answer.status_code == 303
    yield b
    b.close()


def inbox(server: RunningServer, userid: str) -> list[bytes]:
    account = server.directory.get_account(f"{userid}@example.com")
    assert account is not None
    store = server.runtime.store
    return [store.read_message(account.id, "INBOX", row.uid) or b""
            for row in store.list_messages(account.id, "INBOX")]


def send(b: Browser, **fields: str) -> object:
    b.get("/compose")
    data = {"subject": "group test", "body": "hello", "action": "send", **fields}
    return b.client.post(f"/compose/send?_csrf={b.csrf}", data=data)


def test_completion_offers_the_group_first(bob: Browser) -> None:
    found = bob.client.get("/compose/recipients?q=tea",
                           headers={"Accept": "application/json"}).json()
    assert found[0] == {"name": "Team", "address": "", "group": True, "members": 2}
    korean = bob.client.get("/compose/recipients?q=친", headers={"Accept": "application/json"})
    assert korean.json()[0]["name"] == "친구" and korean.json()[0]["members"] == 1
    assert bob.client.get("/compose/recipients?q=",
                          headers={"Accept": "application/json"}).json() == []


def test_sending_to_a_group_reaches_its_members(server: RunningServer, bob: Browser) -> None:
    answer = send(bob, to="team")  # any case
    assert answer.status_code == 303, answer.text  # type: ignore[attr-defined]
    for userid in ("carol", "dave"):
        [raw] = inbox(server, userid)
        view = read_view(raw)
        assert {a for _, a in view.to} == {"carol@example.com", "dave@example.com"}
        assert ("데이브", "dave@example.com") in view.to
    assert inbox(server, "erin") == []


def test_group_in_bcc_and_beside_its_own_member(server: RunningServer, bob: Browser) -> None:
    answer = send(bob, to="Carol <carol@example.com>, Team", bcc="친구")
    assert answer.status_code == 303  # type: ignore[attr-defined]
    [to_carol] = inbox(server, "carol")  # once, though named twice
    view = read_view(to_carol)
    assert [a for _, a in view.to] == ["carol@example.com", "dave@example.com"]
    assert not view.bcc
    assert len(inbox(server, "dave")) == 1  # To and Bcc: one delivery


def test_unknown_or_deleted_group_sends_nothing(server: RunningServer, bob: Browser) -> None:
    for fields in ({"to": "Nobody"}, {"to": "carol@example.com", "cc": "Nobody"},
                   {"to": "carol@example.com", "bcc": "팀장들"}):
        answer = send(bob, **fields)
        assert answer.status_code == 400  # type: ignore[attr-defined]
        text = answer.text  # type: ignore[attr-defined]
        assert "is neither an address nor a group of your address book" in text
        assert 'value="' + next(iter(fields.values())) in text  # the form keeps what was typed
    # A group whose members were all deleted is gone with them.
    page = bob.get("/contacts")
    ids = [line.split('value="')[1].split('"')[0] for line in page.text.splitlines()
           if 'name="id"' in line]
    assert bob.post("/contacts/delete", {"id": ids}).status_code == 303
    answer = send(bob, to="Team")
    assert answer.status_code == 400  # type: ignore[attr-defined]
    # The script's JSON answer says the same.
    script = bob.client.post(f"/compose/send?_csrf={bob.csrf}", data={
        "to": "Team", "subject": "s", "body": "b", "action": "send"},
        headers={"Accept": "application/json"})
    assert script.status_code == 400 and script.json()["field"] == "to"
    for userid in ("carol", "dave", "erin"):
        assert inbox(server, userid) == []


def test_split_and_expand() -> None:
    assert split_items('"Kim, Lee" <a@b.kr>; c@d.kr\nTeam, ,') == [
        '"Kim, Lee" <a@b.kr>', "c@d.kr", "Team"]
    assert split_items('x <a,b@c.kr>') == ["x <a,b@c.kr>"]
    groups = {"team": [("Carol", "carol@x.kr"), ("", "dave@x.kr")], "팀 a": [("", "e@x.kr")]}
    assert expand("TEAM", "to", groups) == "Carol <carol@x.kr>, dave@x.kr"
    assert expand("dave@x.kr, team", "to", groups) == "dave@x.kr, Carol <carol@x.kr>"
    assert expand("팀   A", "cc", groups) == "e@x.kr"
    with pytest.raises(GroupError) as caught:
        expand("a@b.kr, Ghost", "bcc", groups)
    assert caught.value.field == "bcc" and caught.value.name == "Ghost"

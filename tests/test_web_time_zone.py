"""Per-user time zones: the browser's from login, the user's setting, the server's."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from nmail.web.time_zone import zone_names, zone_or_none
from server_rig import PASSWORD, RunningServer
from web_rig import Browser, deliver, web_server

SENT = "Thu, 03 Dec 2026 10:00:00 +0900"  # 01:00 UTC; 20:00 the day before in New York


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with web_server(tmp_path_factory.mktemp("zones")) as srv:
        for name in ("bob", "carol", "dave"):
            srv.add_user(f"{name}@example.com")
            deliver(srv, f"{name}@example.com", "zoned", date=SENT)
        yield srv


def log_in(server: RunningServer, userid: str, zone: str | None) -> Browser:
    b = Browser(server)
    b.get("/login")
    fields = {"userid": userid, "password": PASSWORD}
    if zone is not None:
        fields["timezone"] = zone
    assert b.post("/login", fields).status_code == 303
    return b


def shown_date(b: Browser) -> str:
    """The message's full date on its read page, and the list's title for it."""
    inbox = b.get(b.get("/").headers["location"])
    listed = re.search(r'title="(\d{4}-\d\d-\d\d \d\d:\d\d)"', inbox.text)
    uid = re.search(r'data-uid="(\d+)"', inbox.text)
    assert listed and uid
    page = b.get(f"{inbox.url.path}/{uid.group(1)}").text
    found = re.search(r"<time[^>]*>([^<]+)</time></dd>", page)
    assert found
    assert found.group(1) == listed.group(1)  # the list and the reader agree
    return found.group(1)


def test_browser_zone_from_login(server: RunningServer) -> None:
    b = log_in(server, "bob", "America/New_York")
    assert shown_date(b) == "2026-12-02 20:00"
    folder = b.get("/").headers["location"].rsplit("/", 1)[1]
    reply = b.get(f"/compose/reply/{folder}/1")
    assert "On 2026-12-02 20:00, Alice wrote:" in reply.text
    b.close()


@pytest.mark.parametrize("zone", [None, "", "Mars/Olympus_Mons", "../../etc/passwd",
                                  "x" * 150, "Asia/Seoul\x00", "/etc/localtime"])
def test_no_or_bad_browser_zone_is_the_servers(server: RunningServer, zone: str | None) -> None:
    b = log_in(server, "carol", zone)  # logging in still works
    assert shown_date(b) == "2026-12-03 10:00"  # [web] time_zone: Asia/Seoul
    b.close()


def test_user_setting_wins_and_bad_values_are_refused(server: RunningServer) -> None:
    b = log_in(server, "dave", "America/New_York")
    form = b.get("/settings/preferences")
    assert "Same as the browser (America/New_York)" in form.text
    assert '<option value="Europe/London"' in form.text
    saved = b.post("/settings/preferences", {"language": "", "page_size": "50",
                                             "time_zone": "Europe/London"})
    assert saved.status_code == 303
    assert shown_date(b) == "2026-12-03 01:00"
    for bad in ("Nowhere/City", "../../etc/passwd", "EST5EDT", "local", "Europe/Lon don"):
        answer = b.post("/settings/preferences", {"language": "", "page_size": "50",
                                                  "time_zone": bad})
        assert answer.status_code == 400, bad
        assert "is not a time zone this server knows" in answer.text
    assert b.post("/settings/preferences", {"language": "", "page_size": "50",
                                            "time_zone": "x" * 300}).status_code in (400, 422)
    assert shown_date(b) == "2026-12-03 01:00"  # unchanged by the refusals
    # Back to the browser's.
    assert b.post("/settings/preferences", {"language": "", "page_size": "50",
                                            "time_zone": ""}).status_code == 303
    assert shown_date(b) == "2026-12-02 20:00"
    b.close()


def test_zone_names() -> None:
    assert zone_or_none("Asia/Seoul") is not None and zone_or_none("UTC") is not None
    for bad in ("", "Nope/Nope", "../x", "/abs", "a" * 65, "Asia/../Asia/Seoul"):
        assert zone_or_none(bad) is None, bad
    names = zone_names()
    assert "Asia/Seoul" in names and "America/New_York" in names and list(names) == sorted(names)

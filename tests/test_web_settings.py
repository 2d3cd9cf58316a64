"""Issue 11: settings, address book, search and help pages over HTTP (httpx)."""

from __future__ import annotations

import re
import smtplib
from collections.abc import Iterator
from pathlib import Path

import pytest

from nmail.mailstore.search_indexer import SearchIndexer
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
    assert b.login("bob").status_code == 303
    yield b
    b.close()


def test_display_name_and_bad_name(server: RunningServer, bob: Browser) -> None:
    bob.get("/settings/account")
    assert bob.post("/settings/account", {"display_name": "홍 길동"}).status_code == 303
    assert server.directory.get_account("bob@example.com").display_name == "홍 길동"  # type: ignore[union-attr]
    assert bob.post("/settings/account", {"display_name": "x\x00y"}).status_code in (303, 400)


def test_password_change_checks_and_revokes_other_sessions(server: RunningServer,
                                                             bob: Browser) -> None:
    other = Browser(server)
    other.login("bob")
    bob.get("/settings/account")
    wrong = bob.post("/settings/password", {"current": "nope", "new": "New-secret-77",
                                            "repeat": "New-secret-77"})
    assert wrong.status_code == 400 and "current password is wrong" in wrong.text
    differ = bob.post("/settings/password", {"current": "Correct-horse-9",
                                             "new": "New-secret-77", "repeat": "x"})
    assert differ.status_code == 400
    weak = bob.post("/settings/password", {"current": "Correct-horse-9", "new": "a",
                                           "repeat": "a"})
    assert weak.status_code == 400
    ok = bob.post("/settings/password", {"current": "Correct-horse-9", "new": "New-secret-77",
                                         "repeat": "New-secret-77"})
    assert ok.status_code == 303
    assert bob.get("/settings/account").status_code == 200  # this session stays
    assert other.get("/settings/account").status_code == 303  # the other one is gone
    assert Browser(server).login("bob", "New-secret-77").status_code == 303
    other.close()


def test_language_setting_wins_over_the_browser(bob: Browser) -> None:
    bob.get("/settings/preferences")
    assert bob.post("/settings/preferences", {"language": "ko", "page_size": "25",
                                              "signature": "-- 밥"}).status_code == 303
    page = bob.get("/settings/preferences")
    assert "기본 설정" in page.text and '<html lang="ko">' in page.text
    assert bob.post("/settings/preferences", {"language": "fr", "page_size": "25"}
                    ).status_code == 400
    assert bob.post("/settings/preferences", {"language": "", "page_size": "7"}
                    ).status_code == 400


def test_reject_list_refuses_at_smtp_with_the_seeds_reply(server: RunningServer,
                                                          bob: Browser) -> None:
    bob.get("/settings/rejects")
    assert bob.post("/settings/rejects/add", {"pattern": "spam.example"}).status_code == 303
    assert "spam.example" in bob.get("/settings/rejects").text
    assert bob.post("/settings/rejects/add", {"pattern": "not an address!"}).status_code == 400
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=10) as smtp:
        smtp.ehlo()
        smtp.mail("x@spam.example")
        code, text = smtp.rcpt("bob@example.com")
    assert code == 550 and b"reject list" in text
    assert bob.post("/settings/rejects/delete", {"pattern": "spam.example"}).status_code == 303
    assert "spam.example" not in bob.get("/settings/rejects").text


def test_reject_list_shows_a_korean_domain_in_hangul(bob: Browser) -> None:
    """Stored as IDNA, shown as typed (the list read "@xn--299aqd.example")."""
    bob.get("/settings/rejects")
    assert bob.post("/settings/rejects/add", {"pattern": "광고.example"}).status_code == 303
    page = bob.get("/settings/rejects").text
    assert '<td class="mono">@광고.example</td>' in page
    stored = re.search(r'name="pattern" value="([^"]+)"', page)
    assert stored is not None and "xn--" in stored.group(1)  # the form removes what is stored
    assert bob.post("/settings/rejects/delete", {"pattern": stored.group(1)}).status_code == 303
    assert "광고.example" not in bob.get("/settings/rejects").text


def test_forwarding_form_and_bad_targets(server: RunningServer, bob: Browser) -> None:
    bob.get("/settings/forwarding")
    for bad in ("not-an-address", "bob@example.com", " ".join(f"a{i}@x.example"
                                                               for i in range(11))):
        assert bob.post("/settings/forwarding", {"targets": bad, "keep": "on"}
                        ).status_code == 400
    assert bob.post("/settings/forwarding", {"targets": "carol@example.com"}).status_code == 303
    deliver(server, "bob@example.com", "forward me")
    carol = Browser(server)
    carol.login("carol")
    inbox = carol.get(carol.get("/").headers["location"])
    assert "forward me" in inbox.text
    page = bob.get(bob.get("/").headers["location"])
    assert "forward me" not in page.text  # no copy kept
    carol.close()


def test_vacation_form_and_bad_values(bob: Browser) -> None:
    bob.get("/settings/vacation")
    assert bob.post("/settings/vacation", {"on": "on", "subject": "", "body": "", "days": "7"}
                    ).status_code == 400
    assert bob.post("/settings/vacation", {"on": "on", "subject": "휴가", "days": "0"}
                    ).status_code == 400
    assert bob.post("/settings/vacation", {"on": "on", "subject": "휴가", "days": "3",
                                           "until": "not-a-date"}).status_code == 400
    assert bob.post("/settings/vacation", {"on": "on", "subject": "휴가", "days": "3",
                                           "until": "2099-12-31"}).status_code == 303
    page = bob.get("/settings/vacation")
    assert "2099-12-31" in page.text and "checked" in page.text


def test_address_book_round_trip(server: RunningServer, bob: Browser) -> None:
    bob.get("/contacts")
    assert bob.post("/contacts/save", {"name": "홍길동", "email": "hong@example.org",
                                       "groups": "친구, 회사"}).status_code == 303
    assert bob.post("/contacts/save", {"name": "x", "email": "bad"}).status_code == 400
    listing = bob.get("/contacts?group=친구")
    assert "홍길동" in listing.text
    exported = bob.get("/contacts/export.vcf")
    assert "FN:홍길동" in exported.text and "CATEGORIES:친구,회사" in exported.text
    assert bob.get("/contacts/export.exe").status_code == 404
    csv_text = "Name,E-mail\n=cmd,evil@example.org\n김철수,kim@example.org\n,\n"
    answer = bob.client.post(f"/contacts/import?_csrf={bob.csrf}",
                             files={"file": ("c.csv", csv_text.encode("utf-8"), "text/csv")})
    assert answer.status_code == 303 and "added=2" in answer.headers["location"]
    exported_csv = bob.get("/contacts/export.csv").text
    assert "'=cmd" in exported_csv  # no formula reaches a spreadsheet
    bad = bob.client.post(f"/contacts/import?_csrf={bob.csrf}",
                          files={"file": ("c.csv", b"foo,bar\n1,2\n", "text/csv")})
    assert bad.status_code == 400
    # Another user cannot open bob's contact by id.
    carol = Browser(server)
    carol.login("carol")
    assert carol.get("/contacts/1").status_code == 404
    carol.close()


def test_search_finds_korean_word_parts(server: RunningServer, bob: Browser) -> None:
    deliver(server, "bob@example.com", "회의록을 보냅니다", "견적서를 첨부합니다")
    deliver(server, "bob@example.com", "lunch", "nothing here")
    SearchIndexer(server.runtime.engine, server.config.mail_dir).catch_up()
    found = bob.get("/search", params={"q": "회의"})
    assert "회의록을 보냅니다" in found.text and "lunch" not in found.text
    body = bob.get("/search", params={"q": "견적", "field": "body"})
    assert "회의록을 보냅니다" in body.text
    assert "회의록을" not in bob.get("/search", params={"q": "견적", "field": "subject"}).text
    too_long = bob.get("/search", params={"q": "x" * 600})
    assert too_long.status_code == 200 and "alert-error" in too_long.text
    assert bob.get("/search", params={"q": "회의", "field": "nope"}).status_code == 422


def test_help_pages_show_this_servers_ports(tmp_path: Path) -> None:
    from server_rig import make_data_dir

    with RunningServer(make_data_dir(tmp_path / "full")) as full:
        full.add_user("bob@example.com")
        b = Browser(full)
        b.login("bob")
        clients = b.get("/help/clients").text
        assert "mail.example.com" in clients and "bob@example.com" in clients
        assert f">{full.port('pop3s')}<" in clients and f">{full.port('submission')}<" in clients
        assert f">{full.port('smtp')}<" not in clients  # port 25 is for servers
        b.close()


def test_help_pages(server: RunningServer, bob: Browser) -> None:
    clients = bob.get("/help/clients")
    assert "not turned on POP3" in clients.text
    guide = bob.get("/help/returnmail")
    assert "550 User unknown" in guide.text or "User unknown" in guide.text
    korean = Browser(server, language="ko")
    korean.login("bob")
    assert "리턴메일" in korean.get("/help/returnmail").text
    # The mail program page is public (linked from the login page); the guide is not.
    anonymous = Browser(server)
    assert anonymous.get("/help/clients").status_code == 200
    assert anonymous.get("/help/returnmail").status_code == 303
    korean.close()
    anonymous.close()

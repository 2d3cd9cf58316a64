"""The admin console's first screen (/admin): who sees it, and only their own domains."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nmail.queue.rows import MessageInfo, NewRecipient
from nmail.queue.store import QueueStore
from server_rig import POSTMASTER_PASSWORD, RunningServer
from web_rig import Browser, deliver, web_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with web_server(tmp_path_factory.mktemp("admin")) as srv:
        srv.add_user("bob@example.com", quota=1_000_000)
        srv.add_user("dana@example.com", admin=True)
        srv.add_user("eve@other.org")
        srv.add_user("olga@other.org", admin=True)
        deliver(srv, "bob@example.com", "for the usage column", "x" * 5000)
        deliver(srv, "eve@other.org", "secret-of-other-org", "y" * 3000)
        later = int(time.time()) + 86400  # not due: the queue leaves it alone
        QueueStore(srv.runtime.engine).insert(
            MessageInfo("adm-test-1", "bob@example.com", 1234, int(time.time()) - 600, False,
                        None, None, False),
            [NewRecipient("x@far.example", "far.example"),
             NewRecipient("y@far.example", "far.example")], later)
        yield srv


def logged_in(server: RunningServer, userid: str, password: str | None = None,
              host: str = "mail.example.com") -> Browser:
    b = Browser(server, host=host)
    answer = b.login(userid) if password is None else b.login(userid, password)
    assert answer.status_code == 303, userid
    return b


def test_plain_user_has_no_entry_and_gets_403(server: RunningServer) -> None:
    bob = logged_in(server, "bob")
    page = bob.get(bob.get("/").headers["location"])
    assert 'href="/admin"' not in page.text
    for path in ("/admin", "/admin/domains/example.com", "/admin/domains/other.org"):
        assert bob.get(path).status_code == 403, path
    bob.close()


def test_not_logged_in_goes_to_login(server: RunningServer) -> None:
    stranger = Browser(server)
    answer = stranger.get("/admin")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
    stranger.close()


def test_domain_admin_sees_only_their_domain(server: RunningServer) -> None:
    dana = logged_in(server, "dana")
    page = dana.get(dana.get("/").headers["location"])
    assert 'href="/admin"' in page.text  # the entry is there, and it leads somewhere
    home = dana.get("/admin")
    assert home.status_code == 200
    assert "example.com" in home.text and "other.org" not in home.text
    assert "Outgoing queue" not in home.text  # the queue is the postmaster's
    domain = dana.get("/admin/domains/example.com")
    assert domain.status_code == 200
    assert "bob@example.com" in domain.text and "dana@example.com" in domain.text
    assert "of 976.6 KB" in domain.text  # bob's quota, with his usage before it
    assert "Domain administrator" in domain.text
    # Another domain's data: 404, whatever the spelling; nothing of it in the answer.
    for path in ("/admin/domains/other.org", "/admin/domains/OTHER.ORG",
                 "/admin/domains/nowhere.example", "/admin/domains/" + "a" * 300):
        answer = dana.get(path)
        assert answer.status_code == 404, path
        assert "eve@other.org" not in answer.text
    dana.close()


def test_other_domain_admin_is_kept_to_theirs(server: RunningServer) -> None:
    olga = logged_in(server, "olga", host="mail.other.org")
    assert "eve@other.org" in olga.get("/admin/domains/other.org").text
    assert olga.get("/admin/domains/example.com").status_code == 404
    olga.close()


def test_postmaster_sees_every_domain_and_the_queue(server: RunningServer) -> None:
    postmaster = logged_in(server, "postmaster", POSTMASTER_PASSWORD)
    home = postmaster.get("/admin")
    assert home.status_code == 200
    assert "example.com" in home.text and "other.org" in home.text
    assert "Outgoing queue" in home.text
    assert "<dd>1</dd>" in home.text and "<dd>2</dd>" in home.text  # 1 message, 2 recipients
    assert postmaster.get("/admin/domains/other.org").status_code == 200
    postmaster.close()


def test_admin_pages_in_korean_and_read_only(server: RunningServer) -> None:
    b = Browser(server, language="ko")
    b.login("dana")
    page = b.get("/admin")
    assert "관리" in page.text and 'lang="ko"' in page.text
    # Nothing to post: an unsafe method is refused by the CSRF layer or the router.
    assert b.client.post("/admin").status_code in (403, 405)
    assert b.post("/admin").status_code == 405
    b.close()


def test_queue_counts(tmp_path: Path) -> None:
    from nmail.config import load_config
    from nmail.db.engine import make_engine
    from server_rig import make_data_dir

    engine = make_engine(load_config(make_data_dir(tmp_path)).database_url)
    try:
        store = QueueStore(engine)
        assert store.pending_counts() == (0, 0, None)
        store.insert(MessageInfo("q1", "a@b.example", 10, 500, False, None, None, False),
                     [NewRecipient("c@d.example", "d.example")], 10**10)
        store.insert(MessageInfo("q2", "a@b.example", 10, 400, False, None, None, False),
                     [NewRecipient("c@d.example", "d.example"),
                      NewRecipient("e@d.example", "d.example")], 10**10)
        assert store.pending_counts() == (2, 3, 400)
    finally:
        engine.dispose()

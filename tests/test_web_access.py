"""Issue 11: webmail access: host-derived domains, sessions, CSRF, other users' ids."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from server_rig import RunningServer
from web_rig import Browser, deliver, set_web, web_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with web_server(tmp_path) as srv:
        srv.add_user("bob@example.com")
        srv.add_user("bob@other.org")
        srv.add_user("carol@other.org")
        yield srv


@pytest.fixture
def browser(server: RunningServer) -> Iterator[Browser]:
    b = Browser(server)
    yield b
    b.close()


def test_bare_id_logs_in_to_the_domain_of_the_host(server: RunningServer) -> None:
    for host in ("mail.example.com", "webmail.example.com", "example.com:8080"):
        b = Browser(server, host=host)
        answer = b.login("bob")
        assert answer.status_code == 303, host
        page = b.get(b.get("/").headers["location"])
        assert "bob@example.com" in page.text
        b.close()


def test_other_domain_host_logs_its_own_bob_in(server: RunningServer) -> None:
    b = Browser(server, host="mail.other.org")
    b.login("bob")
    page = b.get(b.get("/").headers["location"])
    assert "bob@other.org" in page.text and "bob@example.com" not in page.text
    b.close()


def test_bare_id_never_crosses_to_another_domain(server: RunningServer) -> None:
    # carol exists only at other.org: example.com's host must not find her by bare id.
    b = Browser(server, host="mail.example.com")
    answer = b.login("carol")
    assert answer.status_code == 401
    assert "nmail_session" not in answer.headers.get("set-cookie", "") or (
        b.get("/").status_code == 303 and b.get("/").headers["location"].startswith("/login"))
    # ...but her full address works from any host.
    assert b.login("carol@other.org").status_code == 303
    b.close()


def test_unknown_host_needs_the_full_address(server: RunningServer) -> None:
    b = Browser(server, host="127.0.0.1")
    assert b.login("bob").status_code == 401
    assert b.login("bob@example.com").status_code == 303
    b.close()


def test_configured_host_map(tmp_path: Path) -> None:
    from server_rig import make_data_dir

    data = make_data_dir(tmp_path)
    set_web(data, 'hosts = { "post.corp.test" = "other.org" }')
    with RunningServer(data, listeners=("http",)) as srv:
        srv.add_user("bob@other.org")
        b = Browser(srv, host="post.corp.test")
        assert b.login("bob").status_code == 303
        b.close()


def test_wrong_password_and_bad_inputs_get_one_answer(browser: Browser) -> None:
    for userid, password in (("bob", "wrong"), ("nobody", "x"), ("", ""), ("a b", "x"),
                             ("bob@", "x"), ("@example.com", "x"), ("x" * 400, "y")):
        answer = browser.login(userid, password)
        assert answer.status_code in (401, 422), userid
        if answer.status_code == 401:
            assert "user id or password is wrong" in answer.text


def test_cookie_flags_and_new_session_at_login(browser: Browser) -> None:
    form = browser.get("/login")
    cookie = form.headers["set-cookie"]
    assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
    assert "Secure" not in cookie  # plain http on loopback
    assert not browser.session_cookie()  # the form needs no session
    before = browser.client.cookies.get("nmail_login") or ""
    assert before
    answer = browser.post("/login", {"userid": "bob", "password": "Correct-horse-9"})
    assert answer.status_code == 303
    after = browser.session_cookie()
    assert after and after != before
    # What the browser held before login is dead: presented as a session, it is not one.
    for old in (before, "planted-by-someone-else"):
        stale = httpx.get(browser.base + "/", headers={"Host": "mail.example.com",
                                                      "Accept": "text/html",
                                                      "Cookie": f"nmail_session={old}"})
        assert stale.status_code == 303 and stale.headers["location"].startswith("/login")


def test_a_flood_of_cookieless_login_gets_writes_no_session_row(server: RunningServer,
                                                                browser: Browser) -> None:
    from sqlalchemy import func, select

    from nmail.db.web_tables import web_sessions

    def rows() -> int:
        with server.runtime.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(web_sessions)).scalar_one())

    before = rows()
    with httpx.Client(base_url=browser.base, headers={"Host": "mail.example.com"}) as client:
        for _ in range(1000):
            answer = client.get("/login")
            assert answer.status_code == 200
            client.cookies.clear()
    assert rows() == before
    # The form still logs in; only then is there a row.
    assert browser.login("bob").status_code == 303
    assert rows() == before + 1


def test_login_form_token_is_bound_to_its_cookie(server: RunningServer) -> None:
    first, second = Browser(server), Browser(server)
    first.get("/login")
    second.get("/login")
    # first's token with second's cookie, a forged token, a token without its cookie: 403.
    stolen = second.post("/login", {"userid": "bob", "password": "Correct-horse-9",
                                    "csrf_token": first.csrf}, csrf=False)
    assert stolen.status_code == 403
    forged = first.post("/login", {"userid": "bob", "password": "Correct-horse-9",
                                   "csrf_token": first.csrf.split(".")[0] + ".AAAA"},
                        csrf=False)
    assert forged.status_code == 403
    first.client.cookies.clear()
    assert first.post("/login", {"userid": "bob", "password": "Correct-horse-9"}
                      ).status_code == 403
    # A wrong password re-shows a form that works, with the same cookie.
    assert second.post("/login", {"userid": "bob", "password": "wrong"}).status_code == 401
    second.get("/login")
    assert second.post("/login", {"userid": "bob", "password": "Correct-horse-9"}
                       ).status_code == 303
    first.close()
    second.close()


def test_login_tokens_expire_and_need_our_key() -> None:
    from nmail.web.login_tokens import MAX_AGE, LoginTokens
    from support import FakeClock

    clock = FakeClock()
    tokens = LoginTokens(b"k" * 64, clock)
    cookie = tokens.new_cookie()
    token = tokens.token_for(cookie)
    assert tokens.valid(cookie, token)
    assert not LoginTokens(b"x" * 64, clock).valid(cookie, token)
    for bad_cookie in ("", "short", cookie[:-1] + "!", tokens.new_cookie()):
        assert not tokens.valid(bad_cookie, token)
    for bad in ("", ".", "x.y", "1." + token.split(".")[1], token + "A", "9" * 20 + ".a"):
        assert not tokens.valid(cookie, bad)
    clock.advance(MAX_AGE + 1)
    assert not tokens.valid(cookie, token)


def test_post_without_csrf_token_is_403(server: RunningServer, browser: Browser) -> None:
    browser.login("bob")
    inbox = browser.get("/").headers["location"]
    browser.get(inbox)
    for data in ({"action": "read", "uid": "1"}, {"action": "read", "uid": "1",
                                                   "csrf_token": "forged"}):
        answer = browser.client.post(inbox + "/actions", data=data)
        assert answer.status_code == 403
    assert browser.client.post("/logout").status_code == 403
    # A login POST without the form's token is refused too (login CSRF).
    fresh = Browser(server)
    answer = fresh.client.post("/login", data={"userid": "bob", "password": "Correct-horse-9"})
    assert answer.status_code == 403
    fresh.close()
    # The header form used by scripts works.
    ok = browser.client.post(inbox + "/actions", data={"action": "read", "uid": "1"},
                             headers={"X-CSRF-Token": browser.csrf, "Accept": "application/json"})
    assert ok.status_code == 200


def test_the_guards_refusals_are_pages_for_a_browser(server: RunningServer,
                                                      browser: Browser) -> None:
    """An expired form (or an id past every row) shows the styled error page to a person,
    in their language; a script still gets the bare text."""
    browser.login("bob")
    inbox = browser.get("/").headers["location"]
    browser.get(inbox)
    expired = browser.client.post(inbox + "/actions", data={"action": "read", "uid": "1",
                                                             "csrf_token": "old"})
    assert expired.status_code == 403
    assert expired.headers["content-type"].startswith("text/html")
    assert 'class="login-card error-card"' in expired.text and "/static/nmail.css" in expired.text
    assert "This form has expired." in expired.text
    korean = Browser(server, language="ko")
    korean.login("bob")
    gone = korean.get("/mail/99999999999999999999")
    assert gone.status_code == 404 and gone.headers["content-type"].startswith("text/html")
    assert "찾는 것이 없습니다" in gone.text and 'lang="ko"' in gone.text
    korean.close()
    script = browser.client.post(inbox + "/actions", data={"action": "read", "uid": "1"},
                                 headers={"X-CSRF-Token": "old", "Accept": "application/json"})
    assert script.status_code == 403 and script.headers["content-type"].startswith("text/plain")


def test_an_ended_session_says_so_on_the_login_page(server: RunningServer) -> None:
    """A cookie whose session is gone (timed out, logged out elsewhere) lands on the login
    page with a notice, not on a bare login form; no cookie, no notice."""
    fresh = Browser(server)
    first = fresh.get("/settings/account")
    assert first.status_code == 303 and "ended" not in first.headers["location"]
    assert "session has ended" not in fresh.get(first.headers["location"]).text
    fresh.close()
    korean = Browser(server, language="ko")
    korean.login("bob")
    korean.client.cookies.set("nmail_session", "gone-" + "x" * 40)
    answer = korean.get("/settings/account")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/settings/account&ended=1"
    page = korean.get(answer.headers["location"]).text
    assert "로그인 시간이 지났습니다" in page and 'name="next" value="/settings/account"' in page
    korean.close()


def test_another_users_folder_ids_are_404(server: RunningServer) -> None:
    deliver(server, "carol@other.org", "private")
    carol = Browser(server, host="mail.other.org")
    carol.login("carol")
    carol_inbox = carol.get("/").headers["location"]
    bob = Browser(server)
    bob.login("bob")
    bob.get(bob.get("/").headers["location"])
    assert bob.get(carol_inbox).status_code == 404
    assert "private" not in bob.get(carol_inbox).text
    moved = bob.post(carol_inbox + "/actions", {"action": "delete", "uid": "1"})
    assert moved.status_code == 404
    assert bob.get("/mail/999999").status_code == 404
    assert bob.get("/mail/not-a-number").status_code == 422
    page = carol.get(carol_inbox)
    assert "private" in page.text
    carol.close()
    bob.close()


def test_logout_revokes_the_session(browser: Browser) -> None:
    browser.login("bob")
    cookie = browser.session_cookie()
    browser.get(browser.get("/").headers["location"])
    assert browser.post("/logout").status_code == 303
    again = httpx.get(browser.base + "/", headers={"Host": "mail.example.com",
                                                  "Accept": "text/html",
                                                  "Cookie": f"nmail_session={cookie}"})
    assert again.status_code == 303 and again.headers["location"].startswith("/login")


def test_login_next_only_goes_to_this_site(browser: Browser) -> None:
    browser.get("/login")
    for target, expected in (("/settings", "/settings"), ("//evil.example/x", "/"),
                             ("https://evil.example/", "/"), ("/\\evil", "/")):
        fresh = browser.post("/login", {"userid": "bob", "password": "Correct-horse-9",
                                        "next": target})
        assert fresh.headers["location"] == expected
        browser.client.cookies.clear()
        browser.get("/login")


def test_admin_entry_only_for_administrators(server: RunningServer) -> None:
    bob = Browser(server)
    bob.login("bob")
    assert "/admin" not in bob.get(bob.get("/").headers["location"]).text
    boss = Browser(server)
    boss.login("postmaster", "Postmaster-pw-1")
    assert 'href="/admin"' in boss.get(boss.get("/").headers["location"]).text
    bob.close()
    boss.close()


def test_throttle_uses_the_real_client_and_is_shared_with_smtp(tmp_path: Path) -> None:
    import base64
    import smtplib

    from nmail.directory.throttle import LoginThrottle
    from nmail.directory.throttle_store import SqlRecords
    from server_rig import make_data_dir

    data = make_data_dir(tmp_path)
    set_web(data, 'trusted_proxies = ["127.0.0.1/32"]')
    engine = engine_for(data)
    with RunningServer(data, listeners=("smtp", "http"), throttle=LoginThrottle(
            first_delay=0, max_delay=0, max_failures=3, records=SqlRecords(engine))) as srv:
        srv.add_user("bob@example.com")
        srv.add_user("dave@example.com")
        guesser = Browser(srv)
        guesser.client.headers["X-Forwarded-For"] = "198.51.100.7"
        for _ in range(3):
            assert guesser.login("dave", "wrong").status_code == 401
        # That address is locked out now, even for another account...
        assert "Too many failed logins" in guesser.login("bob").text
        # ...but the proxy's other clients are not: the throttle saw the real address.
        other = Browser(srv)
        other.client.headers["X-Forwarded-For"] = "203.0.113.50"
        assert other.login("bob").status_code == 303
        # dave's account is locked for every door: SMTP AUTH refuses the right password.
        with smtplib.SMTP("127.0.0.1", srv.port("smtp"), timeout=10) as smtp:
            smtp.ehlo()
            token = base64.b64encode(b"\0dave@example.com\0Correct-horse-9").decode()
            code, _ = smtp.docmd("AUTH", f"PLAIN {token}")
        assert code != 235
        guesser.close()
        other.close()
    engine.dispose()


def engine_for(data: Path) -> Engine:
    from nmail.config import load_config
    from nmail.db.engine import make_engine

    return make_engine(load_config(data).database_url)


def test_secure_cookie_when_a_trusted_proxy_says_https(tmp_path: Path) -> None:
    from server_rig import make_data_dir

    data = make_data_dir(tmp_path)
    set_web(data, 'trusted_proxies = ["127.0.0.1/32"]')
    with RunningServer(data, listeners=("http",)) as srv:
        proxied = Browser(srv)
        proxied.client.headers["X-Forwarded-Proto"] = "https"
        assert "Secure" in proxied.get("/login").headers["set-cookie"]
        # Every cookie over TLS, the language picked on the login page's too (its link
        # is on our own page: the Referer names this host).
        own = {"Referer": "https://mail.example.com/login"}
        picked = proxied.get("/login", params={"lang": "ko"},
                             headers=own).headers.get_list("set-cookie")
        assert any(c.startswith("nmail_lang=ko") for c in picked)
        assert all("Secure" in c for c in picked), picked
        plain = Browser(srv)
        assert "Secure" not in plain.get("/login").headers["set-cookie"]
        assert all("Secure" not in c for c in plain.get(
            "/login", params={"lang": "ko"}, headers=own).headers.get_list("set-cookie"))
        proxied.close()
        plain.close()
    # From a client that is not a declared proxy the header is ignored.
    with RunningServer(make_data_dir(tmp_path / "b"), listeners=("http",)) as srv:
        stranger = Browser(srv)
        stranger.client.headers["X-Forwarded-Proto"] = "https"
        assert "Secure" not in stranger.get("/login").headers["set-cookie"]
        stranger.close()


def test_password_change_guesses_meet_the_login_throttle(tmp_path: Path) -> None:
    from nmail.directory.throttle import LoginThrottle
    from server_rig import make_data_dir

    data = make_data_dir(tmp_path)
    engine = engine_for(data)
    from nmail.directory.throttle_store import SqlRecords

    with RunningServer(data, listeners=("http",), throttle=LoginThrottle(
            first_delay=0, max_delay=0, max_failures=3, records=SqlRecords(engine))) as srv:
        srv.add_user("bob@example.com")
        thief = Browser(srv)
        thief.login("bob")
        thief.get("/settings/account")
        for guess in ("a1", "b2", "c3"):
            answer = thief.post("/settings/password", {"current": guess, "new": "New-secret-77",
                                                       "repeat": "New-secret-77"})
            assert answer.status_code == 400
        # Locked now: even the right current password is not tried.
        answer = thief.post("/settings/password", {"current": "Correct-horse-9",
                                                   "new": "New-secret-77",
                                                   "repeat": "New-secret-77"})
        assert answer.status_code == 400 and "Too many failed logins" in answer.text
        assert srv.directory.authenticate("bob@example.com", "Correct-horse-9").ok
        thief.close()
    engine.dispose()


def test_a_login_past_the_password_gate_is_503_with_retry_after(server: RunningServer) -> None:
    """The web process's login shares the process's password gate (directory/login_gate.py)."""
    gate = server.runtime.login_gate
    gate.waiting = 0  # no line: past the checks running, refused at once
    for _ in range(gate.checks):
        assert gate.enter()
    b = Browser(server)
    try:
        answer = b.login("bob@example.com")
        assert answer.status_code == 503
        assert answer.headers["retry-after"] == "5"
        assert "too many logins at once" in answer.text
    finally:
        for _ in range(gate.checks):
            gate.leave()
    assert b.login("bob@example.com").status_code == 303
    b.close()

"""The webmail from an attacker's side: what the other tests did not try (red team).

A hostile sender, a curious user, a shared cache: each test is a hole that
was found open, kept closed here.
"""

from __future__ import annotations

import base64
import html
import io
import re
import smtplib
import socket
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from nmail.db.tables import accounts
from nmail.db.web_tables import web_sessions
from nmail.mime import file_parts, reading
from nmail.mime.reading import read_view
from nmail.web import part_downloads
from nmail.web.body_limit import HEADROOM
from nmail.web.message_html import MAX_START_TAGS, sanitize_html
from nmail.web.plain_text import text_to_html
from nmail.web.sessions import ANONYMOUS_IDLE, SWEEP_EVERY, SessionStore
from nmail.web.uploads import STAGED_MESSAGES
from server_rig import RunningServer
from web_rig import Browser, deliver, web_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with web_server(tmp_path) as srv:
        srv.add_user("bob@example.com")
        yield srv


@pytest.fixture
def browser(server: RunningServer) -> Iterator[Browser]:
    b = Browser(server)
    yield b
    b.close()


def _send_raw(server: RunningServer, raw: bytes, to: str = "bob@example.com") -> None:
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=10) as smtp:
        smtp.sendmail("mallory@remote.example", [to], raw)


def _first_message(browser: Browser) -> str:
    inbox = browser.get("/").headers["location"]
    links = re.findall(r'href="(/mail/\d+/\d+)"', browser.get(inbox).text)
    assert links, "the message did not arrive"
    return links[0]


def test_private_pages_are_never_stored_by_a_cache(server: RunningServer,
                                                   browser: Browser) -> None:
    _send_raw(server, b"From: a@remote.example\r\nTo: bob@example.com\r\nSubject: payroll\r\n"
                      b"\r\nsecret\r\n")
    assert browser.login("bob").status_code == 303
    message = _first_message(browser)
    inbox = browser.get("/").headers["location"]
    for path in (inbox, message, message + "?pane=1", "/compose", "/login", "/"):
        answer = browser.get(path)
        assert "no-store" in answer.headers.get("cache-control", ""), path
    # The static files may be cached (they are versioned in the pages' links).
    assert "no-store" not in browser.get("/static/nmail.css").headers.get("cache-control", "")


def test_style_element_with_attributes_is_scrubbed_too() -> None:
    for markup in ('<style title="a">body{background:url(http://track.example/p)}</style>',
                   '<style class=x dir=rtl>p{background:url(//track.example/p)}</style>'):
        safe = sanitize_html(markup, allow_remote=False)
        assert "track.example" not in safe.html, markup
        assert safe.blocked_remote == 1  # and "show images" is offered


def test_deeply_nested_html_is_clipped_before_the_sanitizer() -> None:
    # html5ever pays the depth of its open elements for each such tag: 200,000
    # nested <div> (1 MB) took minutes of CPU per view before the clip.
    for piece in ("<div>", "<ul><li>", "<b><div>"):
        count = (MAX_START_TAGS + 500) // piece.count("<") + 1
        safe = sanitize_html(piece * count + "<p>end</p>", allow_remote=False)
        assert safe.clipped, piece
        assert "end" not in safe.html
        assert safe.html.count("<") <= 2 * MAX_START_TAGS  # start and end tags kept
    ordinary = "<table>" + "<tr><td>cell</td></tr>" * 3000 + "</table><p>end</p>"
    safe = sanitize_html(ordinary, allow_remote=False)
    assert not safe.clipped and "end" in safe.html


def test_nested_html_mail_opens_on_the_real_server(server: RunningServer,
                                                   browser: Browser) -> None:
    html = ("<ul><li>" * 100 + "\r\n") * 1000 + "deep"  # lines under SMTP's 1000
    _send_raw(server, b"From: a@remote.example\r\nTo: bob@example.com\r\nSubject: deep\r\n"
                      b"MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
                      + html.encode() + b"\r\n")
    assert browser.login("bob").status_code == 303
    message = _first_message(browser)
    # Each answers within the client's timeout (20 s) instead of minutes.
    assert browser.get(message).status_code == 200
    assert browser.get(message + "/body").status_code == 200


def test_an_address_is_looked_for_only_from_the_start_of_a_run() -> None:
    # The engine no longer tries every position inside "a.a.a...": a run longer
    # than an address's local part is not an address, and leading dots stay text.
    assert "<a " not in text_to_html("x" * 70 + "@example.com")
    assert "<a " not in text_to_html("a." * 40 + "b@example.com")  # not its last 64
    assert text_to_html("..kim.lee@example.com.") == (
        '..<a href="mailto:kim.lee@example.com">kim.lee@example.com</a>.\n')
    assert 'href="mailto:bob@example.com"' in text_to_html("(bob@example.com)")


def _raw_request(server: RunningServer, head: str, body: bytes = b"") -> str:
    """One request over a plain socket; the status line and headers of the answer."""
    with socket.create_connection(("127.0.0.1", server.port("http")), timeout=20) as sock:
        sock.sendall(head.encode("latin-1") + body)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer.decode("latin-1")


def test_a_stranger_cannot_send_a_large_body(server: RunningServer, browser: Browser) -> None:
    # Anyone gets a login cookie and its CSRF token from the login page; Starlette
    # would then keep a urlencoded form of up to 1,000 x 1 MB in memory.
    browser.get("/login")
    cookie = f"nmail_login={browser.client.cookies.get('nmail_login')}"
    field = f"csrf_token={browser.csrf}&userid=bob&password=x&pad=".encode() + b"a" * 200_000
    answer = browser.client.post("/login", content=field,
                                 headers={"content-type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 413
    # Announced but not sent: refused before any byte of the body is read.
    head = (f"POST /login?_csrf={browser.csrf} HTTP/1.1\r\nHost: mail.example.com\r\n"
            f"Cookie: {cookie}\r\nContent-Type: multipart/form-data; boundary=x\r\n"
            "Content-Length: 10000000000\r\n\r\n")
    assert _raw_request(server, head).startswith("HTTP/1.1 413")
    # Chunked, so no length is announced: cut once it passes the limit.
    chunk = b"a" * 32_768
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(4)) + b"0\r\n\r\n"
    head = ("POST /login HTTP/1.1\r\nHost: mail.example.com\r\n"
            f"Cookie: {cookie}\r\nX-CSRF-Token: {browser.csrf}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            "Transfer-Encoding: chunked\r\n\r\n")
    assert _raw_request(server, head, chunks).startswith("HTTP/1.1 413")
    # A login form still logs in.
    assert browser.login("bob").status_code == 303


def test_a_user_body_is_bounded_by_the_message_size(server: RunningServer,
                                                   browser: Browser) -> None:
    assert browser.login("bob").status_code == 303
    limit = server.config.smtp.max_message_size + HEADROOM
    head = (f"POST /compose/send?_csrf={browser.csrf} HTTP/1.1\r\nHost: mail.example.com\r\n"
            f"Cookie: nmail_session={browser.session_cookie()}\r\n"
            f"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: {limit + 1}\r\n\r\n")
    assert _raw_request(server, head).startswith("HTTP/1.1 413")


def test_download_all_reads_the_message_once_whatever_the_attachments(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # One pass over the message per attachment made 255 attachments of a 20 MB
    # message cost 255 passes (seconds of CPU per click on "download all"). Now the
    # boundary scan runs over the file's skeleton a fixed number of times (the view
    # of its text parts, the parts' offsets), then each attachment is read at its
    # offsets.
    parts = b"".join(
        b"--B\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Disposition: attachment; filename=same.bin\r\n\r\n%d\r\n" % i
        for i in range(200))
    raw = (b"From: a@remote.example\r\nSubject: many\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=B\r\n\r\n" + parts + b"--B--\r\n")
    passes = []
    original = reading.iter_parts

    def counted(*args: Any) -> Any:
        passes.append(1)
        return original(*args)

    monkeypatch.setattr(reading, "iter_parts", counted)
    monkeypatch.setattr(file_parts, "iter_parts", counted)
    (tmp_path / "m").write_bytes(raw)
    with (tmp_path / "m").open("rb") as file:
        _name, chosen = part_downloads.zip_plan(file_parts.whole_file(file))
        archive = zipfile.ZipFile(io.BytesIO(b"".join(part_downloads.zip_pieces(file, chosen))))
    assert len(passes) <= 3  # the view, the parts' offsets: not one per attachment
    names = archive.namelist()
    assert len(names) == 200 and len(set(names)) == 200
    assert archive.read("same.bin") == b"0" and archive.read("same (200).bin") == b"199"


def _field(page: str, name: str) -> str:
    found = re.search(rf'name="{name}"[^>]*? value="([^"]*)"', page)
    assert found, name
    return html.unescape(found.group(1))


def test_a_reply_carries_no_header_the_original_smuggled_in(server: RunningServer,
                                                            browser: Browser) -> None:
    # email's header registry decoded encoded words it was given and wrote the
    # decoded CR LF as a line break: the original's Message-ID (In-Reply-To,
    # References) and a subject that decodes to an encoded word added header
    # fields of the sender's choosing to the reply, signed with our key.
    carol = server.add_user("carol@example.com")
    smuggled = "=?utf-8?q?=0d=0aReply-To:_attacker=40evil.example?=@evil.example"
    # Decodes to the text "=?utf-8?q?=0d=0aX-Injected:_1?=".
    subject = "=?utf-8?b?" + base64.b64encode(b"=?utf-8?q?=0d=0aX-Injected:_1?=").decode() + "?="
    _send_raw(server, f"From: a@remote.example\r\nTo: bob@example.com\r\nSubject: {subject}\r\n"
                      f"Message-ID: <{smuggled}>\r\n\r\nhello\r\n".encode())
    assert browser.login("bob").status_code == 303
    folder, uid = _first_message(browser).split("/")[2:]
    form = browser.get(f"/compose/reply/{folder}/{uid}").text
    assert _field(form, "in_reply_to") == smuggled
    answer = browser.client.post(f"/compose/send?_csrf={browser.csrf}", data={
        "to": "carol@example.com", "subject": _field(form, "subject"), "body": "ok",
        "in_reply_to": _field(form, "in_reply_to"), "references": _field(form, "references"),
    })
    assert answer.status_code == 303
    store = server.runtime.store
    [row] = store.list_messages(carol.id, "INBOX")
    raw = store.read_message(carol.id, "INBOX", row.uid) or b""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    names = [line.split(":", 1)[0].lower() for line in head.split("\r\n")
             if line and not line[0].isspace()]
    assert "reply-to" not in names and "x-injected" not in names
    view = read_view(raw)
    assert view.in_reply_to == smuggled
    assert view.subject == "Re: =?utf-8?q?=0d=0aX-Injected:_1?="  # the text, as shown


def test_staged_uploads_of_one_account_are_bounded(tmp_path: Path) -> None:
    # Each upload was checked against the attachment limit alone, and uploads
    # are kept a day: a script uploading in a loop filled the disk.
    from serve_setup import set_option
    from server_rig import make_data_dir

    data = make_data_dir(tmp_path)
    set_option(data, "web", "max_attachment_size", '"64K"')
    with RunningServer(data, listeners=("http",)) as srv:
        srv.add_user("bob@example.com")
        bob = Browser(srv)
        assert bob.login("bob").status_code == 303
        headers = {"X-CSRF-Token": bob.csrf, "Content-Type": "application/octet-stream"}

        def upload() -> httpx.Response:
            return bob.client.post("/compose/upload?name=a.bin", content=b"x" * 60_000,
                                   headers=headers)

        kept = [upload() for _ in range(STAGED_MESSAGES)]
        assert [r.status_code for r in kept] == [200] * STAGED_MESSAGES
        assert upload().status_code == 413
        token = kept[0].json()["id"]
        assert bob.client.post(f"/compose/upload/{token}/delete",
                               headers={"X-CSRF-Token": bob.csrf}).status_code == 204
        assert upload().status_code == 200  # room again
        bob.close()


def test_pre_login_sessions_of_cookieless_visitors_do_not_pile_up(tmp_path: Path) -> None:
    # Older versions wrote a row for every GET /login without a cookie (now the form
    # needs none: test_web_access); rows without an account, never presented
    # again, must still not stay for ever.
    from nmail.config import load_config
    from nmail.db.engine import make_engine
    from server_rig import make_data_dir

    engine = make_engine(load_config(make_data_dir(tmp_path)).database_url)
    now = [1_000_000.0]
    sessions = SessionStore(engine, lambda: now[0], idle=8 * 3600, longest=86400)
    try:
        for _ in range(50):
            sessions.create(None, "192.0.2.1")
        with engine.connect() as conn:
            postmaster = conn.execute(select(func.min(accounts.c.id))).scalar_one()
        kept, _ = sessions.create(postmaster, "192.0.2.2")  # a logged-in one stays
        now[0] += ANONYMOUS_IDLE + SWEEP_EVERY + 1
        sessions.create(None, "192.0.2.1")
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(web_sessions)).scalar() == 2
        assert sessions.load(kept) is not None
    finally:
        engine.dispose()


BIG = "9" * 25  # past BIGINT: no row of any table has this id


def test_ids_no_row_can_have_are_refused_not_a_crash(tmp_path: Path, db_url: str) -> None:
    # Found open: an id past BIGINT in a path or a form went to SQL and came back as
    # OverflowError (SQLite) or out-of-range (PostgreSQL): 500, traceback, connection cut.
    # So did a UID past 2^32-1, a 5000-digit move target, and a NUL PostgreSQL refuses.
    with web_server(tmp_path, db_url) as srv:
        srv.add_user("bob@example.com")
        bob = Browser(srv)
        try:
            bob.login("bob")
            inbox = bob.get("/").headers["location"]
            for path in (f"/contacts/{BIG}", f"/compose/reply/{BIG}/1", f"/mail/{BIG}",
                         f"{inbox}/{BIG}", f"{inbox}/1/part/{BIG}", f"/mail/{BIG}/thread/x",
                         f"/compose/draft/{inbox.rsplit('/', 1)[1]}/{BIG}"):
                answer = bob.get(path)
                assert answer.status_code == 404, path
                assert answer.headers["x-frame-options"] == "SAMEORIGIN"  # still our headers
            assert bob.post(f"/mail/{BIG}/view", {"view": "messages"}).status_code == 404
            for path, fields in (
                (f"{inbox}/actions", {"action": "read", "uid": BIG}),
                (f"{inbox}/actions", {"action": "read", "toggle_flag": BIG}),
                (f"{inbox}/actions", {"action": "move", "uid": "1", "target": "9" * 5000}),
                (f"{inbox}/actions", {"action": "move", "uid": "1", "target": BIG}),
                ("/contacts/save", {"id": BIG, "name": "x", "email": "x@example.com"}),
                ("/contacts/delete", {"id": BIG}),
                ("/contacts/save", {"name": "a\x00b", "email": "x@example.com"}),
                ("/folders/create", {"name": "a\x00b"}),
            ):
                answer = bob.post(path, fields)
                assert answer.status_code in (303, 400, 404), (path, fields, answer.status_code)
            for query in ("a\x00b", "%", "_%_", "a " * 300):
                assert bob.get("/search", params={"q": query}).status_code == 200, query
            assert bob.get(inbox).status_code == 200  # and the server is still there
        finally:
            bob.close()


def test_event_streams_of_one_account_are_bounded(server: RunningServer) -> None:
    # Found open: one logged-in script held 40 /events streams (each a feed
    # subscription and a SELECT every 2 s) and nothing said no.
    from nmail.web.routes.events import MAX_STREAMS

    server.add_user("eve@example.com")
    bob, eve = Browser(server), Browser(server)
    held: list[Any] = []
    try:
        bob.login("bob")
        eve.login("eve")

        def open_stream(who: Browser) -> httpx.Response:
            stream = who.client.stream("GET", "/events", timeout=10)
            answer = stream.__enter__()
            held.append(stream)
            return answer

        assert all(open_stream(bob).status_code == 200 for _ in range(MAX_STREAMS))
        assert open_stream(bob).status_code == 429
        assert open_stream(eve).status_code == 200  # another account is not starved
        held.pop(0).__exit__(None, None, None)  # a tab closes: its place comes back
        deadline = time.monotonic() + 10
        while (answer := open_stream(bob)).status_code != 200:
            assert time.monotonic() < deadline, answer.status_code
            held.pop().__exit__(None, None, None)
    finally:
        for stream in held:
            stream.__exit__(None, None, None)
        bob.close()
        eve.close()



def _guarded(answer: httpx.Response, path: str) -> None:
    h = answer.headers
    policy = h.get("content-security-policy", "")
    assert "frame-ancestors 'self'" in policy, path  # no clickjacking by another site
    assert "script-src" not in policy or "'unsafe-inline'" not in policy.split(
        "script-src", 1)[1].split(";", 1)[0], path
    assert h.get("x-frame-options") == "SAMEORIGIN", path
    assert h.get("x-content-type-options") == "nosniff", path
    assert h.get("referrer-policy") in ("same-origin", "no-referrer"), path  # mail links
    if not path.startswith("/static/"):
        assert "no-store" in h.get("cache-control", ""), path


def test_every_answer_carries_the_security_headers(server: RunningServer,
                                                   browser: Browser) -> None:
    # Every GET route without a parameter (enumerated from the app, so a new one is
    # checked too), message routes, errors, JSON, redirects and static files.
    from nmail.web.routes import ROUTERS

    browser.login("bob")
    plain = sorted({r.path for router in ROUTERS for r in router.routes  # type: ignore[attr-defined]
                    if "GET" in getattr(r, "methods", set()) and "{" not in r.path})
    assert "/search" in plain and "/settings/account" in plain
    plain.remove("/events")  # a stream: its headers are read below, not its end
    with browser.client.stream("GET", "/events") as events:
        _guarded(events, "/events")
    _send_raw(server, b"From: m@remote.example\r\nSubject: s\r\nContent-Type: text/html\r\n\r\n"
              b"<p>x</p>\r\n")
    message = _first_message(browser)
    others = [message, message + "/body", message + "/source", message + "/print",
              "/mail/1/999999", "/nothing-here", "/mail/x", "/static/nmail.css", "/"]
    for path in plain + others:
        _guarded(browser.get(path), path)
    _guarded(browser.client.get("/compose/recipients?q=a"), "json")
    _guarded(browser.post("/folders/create", {"name": "x"}, csrf=False), "403")
    stranger = Browser(server)
    try:
        _guarded(stranger.get("/settings"), "login redirect")
        _guarded(stranger.get("/login"), "/login")
    finally:
        stranger.close()



def test_a_forged_host_writes_nothing_into_the_print_policy(server: RunningServer,
                                                             browser: Browser) -> None:
    # The print view's CSP names our script by a URL built from the Host header, so
    # `Host: x;...` put a `;` of the client's into the policy. Not exploitable today
    # (Starlette drops a Host with spaces, and a directive needs one), kept out anyway.
    browser.login("bob")
    _send_raw(server, b"From: m@remote.example\r\nSubject: s\r\nContent-Type: text/html\r\n\r\n"
              b"<p>x</p>\r\n")
    message = _first_message(browser)
    assert "/static/print.js" in browser.get(message + "/print").headers[
        "content-security-policy"]
    forged = browser.client.get(message + "/print", headers={"Host": "x;sandbox"})
    assert forged.status_code == 200
    policy = forged.headers["content-security-policy"]
    assert "x;" not in policy and "script-src 'none'" in policy, policy


def test_an_event_stream_ends_with_its_session(server: RunningServer) -> None:
    """Found open: a logged-out tab's /events stream lived on for up to an hour."""
    bob = Browser(server)
    try:
        bob.login("bob")
        with bob.client.stream("GET", "/events", timeout=10) as events:
            assert events.status_code == 200
            lines = events.iter_lines()
            assert next(lines).startswith("retry:")
            assert bob.post("/logout").status_code == 303
            deadline = time.monotonic() + 10
            seen = []
            for line in lines:  # ends within a poll, not at the next change or in an hour
                seen.append(line)
                if line == "event: logout" or time.monotonic() > deadline:
                    break
            assert "event: logout" in seen, seen
    finally:
        bob.close()


def test_a_link_cannot_make_the_list_say_or_offer_things(server: RunningServer) -> None:
    """Found open: `/mail/F?done=empty&n=500` said "500 messages deleted for good" and
    `offer_reject=boss@...` offered to refuse any sender, for a link from anyone."""
    deliver(server, "bob@example.com", "cheap pills", sender="pills@spam.example")
    bob, other = Browser(server), Browser(server)
    try:
        bob.login("bob")
        other.login("bob")  # the same user's other session (another browser)
        inbox = re.search(r'data-folder-id="(\d+)" data-folder-name="INBOX"',
                          bob.get("/folders").text)
        assert inbox is not None
        base = f"/mail/{inbox.group(1)}"
        folder = re.search(r'name="uid" value="(\d+)"', bob.get(base).text)
        assert folder is not None
        forged = bob.get(base, params={"done": "empty", "n": "500",
                                       "offer_reject": "boss@example.com"})
        assert forged.status_code == 200
        assert "500" not in forged.text and "boss@example.com" not in forged.text
        assert "Add to reject list" not in forged.text
        # The server's own redirect after an action says it, in that session only.
        answer = bob.post(base + "/actions", {"action": "spam", "uid": folder.group(1)})
        assert answer.status_code == 303
        told = bob.get(answer.headers["location"]).text
        assert "Add to reject list" in told and "pills@spam.example" in told
        replayed = other.get(answer.headers["location"]).text
        assert "Add to reject list" not in replayed and "pills@spam.example" not in replayed
        tampered = answer.headers["location"].replace("n=1", "n=500")
        assert "500" not in bob.get(tampered).text
    finally:
        bob.close()
        other.close()

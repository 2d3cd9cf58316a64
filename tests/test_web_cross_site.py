"""No GET changes anything when another site caused it (red team: cross-site GET).

A link or a navigation from another site carries the session cookie (SameSite=Lax
lets top-level GETs through), and /mail/{folder}/{uid} used to mark the message
read for it. A GET now does its side effect only when the browser says the
request came from our own pages or the user (guard.from_own_pages): Sec-Fetch-Site
"same-origin" or "none"; without it, Origin or Referer naming our host; with none
of them, no. The page itself still opens.

One server a database kind; real sockets, httpx sending the headers a browser
sends (tests/test_web_browser_reading.py opens messages in Chromium, which sends
Sec-Fetch-Site itself).
"""

from __future__ import annotations

import os
import re
import smtplib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update

from conftest import BACKENDS
from databases import ServerDatabase
from server_rig import RunningServer
from support import wait_until
from web_rig import Browser, web_server

HOST = "mail.a.example"
CROSS_SITE = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate",
              "Sec-Fetch-Dest": "document"}
SAME_SITE = {"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "navigate"}
FOREIGN_REFERER = {"Referer": "https://evil.example/page"}  # no Fetch Metadata (plain HTTP)
LOOKALIKE_REFERER = {"Referer": f"https://{HOST}.evil.example/"}
NOTHING: dict[str, str] = {}  # no Fetch Metadata, Origin nor Referer: not our page either
FOREIGN = (CROSS_SITE, SAME_SITE, FOREIGN_REFERER, LOOKALIKE_REFERER, NOTHING)
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "navigate"}
TYPED = {"Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate"}
OWN_REFERER = {"Referer": f"http://{HOST}/mail/1"}


@pytest.fixture(scope="module", params=BACKENDS)
def server(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    tmp = Path(tmp_path_factory.mktemp("crosssite"))
    database = None if request.param == "sqlite" else ServerDatabase(request.param)
    try:
        with web_server(tmp, database.url if database else None) as srv:
            srv.add_user("alice@a.example", admin=True)  # the admin pages are GETs too
            yield srv
    finally:
        if database is not None:
            database.drop()


@pytest.fixture
def alice(server: RunningServer) -> Iterator[Browser]:
    b = Browser(server, host=HOST)
    assert b.login("alice").status_code == 303
    yield b
    b.close()


def _send(server: RunningServer, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=10) as smtp:
        smtp.sendmail("mallory@remote.example", ["alice@a.example"], raw)


def _plain(subject: str, extra: str = "") -> bytes:
    return (f"From: Mallory <mallory@remote.example>\r\nTo: alice@a.example\r\n"
            f"Subject: {subject}\r\nMessage-ID: <{subject}@remote.example>\r\n{extra}"
            f"\r\nbody of {subject}\r\n").encode()


def _uid(server: RunningServer, subject: str) -> int:
    account = server.directory.get_account("alice@a.example")
    assert account is not None
    rows = server.runtime.store.list_messages(account.id, "INBOX", limit=500)
    return next(r.uid for r in rows if r.subject == subject)


def _seen(server: RunningServer, subject: str) -> bool:
    account = server.directory.get_account("alice@a.example")
    assert account is not None
    rows = server.runtime.store.list_messages(account.id, "INBOX", limit=500)
    return "\\Seen" in next(r.flags for r in rows if r.subject == subject)


def _marks_settled() -> bool:
    """No "mark as read" of an answered request is still on its way (routes/message.py
    starts it before the answer and lets the reader go)."""
    from nmail.web.routes.message import _marking

    return not _marking


def _inbox(b: Browser) -> str:
    return str(b.get("/").headers["location"]).split("?")[0]


def test_a_cross_site_open_shows_the_message_and_leaves_it_unread(
        server: RunningServer, alice: Browser) -> None:
    _send(server, _plain("xsite-unread"))  # stored once SMTP said 250
    link = f"{_inbox(alice)}/{_uid(server, 'xsite-unread')}"
    for headers in FOREIGN:
        for path in (link, link + "?pane=1"):
            page = alice.client.get(path, headers=headers)
            assert page.status_code == 200, (headers, path)
            assert "body of xsite-unread" in page.text, headers  # it opens as always
    wait_until(_marks_settled, 10, "marks settled")
    assert not _seen(server, "xsite-unread")
    maildir = server.maildir("alice@a.example")
    assert any("xsite-unread" in p.read_text() for p in (maildir / "new").iterdir())
    # Opened from our own pages (or typed): read, as before.
    for subject, headers in (("xsite-own", SAME_ORIGIN), ("xsite-typed", TYPED),
                             ("xsite-referer", OWN_REFERER)):
        _send(server, _plain(subject))
        page = alice.client.get(f"{_inbox(alice)}/{_uid(server, subject)}", headers=headers)
        assert page.status_code == 200 and f"body of {subject}" in page.text
        wait_until(lambda s=subject: _seen(server, s), 10, f"{subject} marked read")  # type: ignore[misc]
    assert not _seen(server, "xsite-unread")


def _session_last_seen(engine: Engine, cookie: str) -> int:
    from nmail.db.web_tables import web_sessions
    from nmail.web.sessions import token_hash

    with engine.connect() as conn:
        return int(conn.execute(select(web_sessions.c.last_seen).where(
            web_sessions.c.id == token_hash(cookie))).scalar_one())


def _age_sessions(engine: Engine, seconds: int) -> None:
    """Every session's last use `seconds` earlier: the next own request refreshes it."""
    from nmail.db.web_tables import web_sessions

    with engine.begin() as conn:
        conn.execute(update(web_sessions).values(
            last_seen=web_sessions.c.last_seen - seconds))


def test_a_cross_site_get_keeps_neither_the_session_alive_nor_a_language(
        server: RunningServer, alice: Browser) -> None:
    engine = server.runtime.engine
    cookie = alice.session_cookie()
    _age_sessions(engine, 600)
    aged = _session_last_seen(engine, cookie)
    for headers in FOREIGN:
        answer = alice.client.get("/settings/account", params={"lang": "ko"}, headers=headers)
        assert answer.status_code == 200 and 'lang="ko"' in answer.text  # shown in Korean
        assert not any(c.startswith("nmail_lang=")
                       for c in answer.headers.get_list("set-cookie")), headers
    assert _session_last_seen(engine, cookie) == aged
    own = alice.client.get("/settings/account", params={"lang": "ko"}, headers=SAME_ORIGIN)
    assert any(c.startswith("nmail_lang=ko") for c in own.headers.get_list("set-cookie"))
    assert _session_last_seen(engine, cookie) > aged


def test_a_language_picked_by_a_link_from_elsewhere_lasts_through_login(
        server: RunningServer) -> None:
    # A portal's link to /login?lang=ko: the form carries the choice, and its POST (our
    # own page, with its token) remembers it.
    b = Browser(server, host=HOST)
    try:
        form = b.get("/login?lang=ko", headers=CROSS_SITE)
        assert 'action="/login?lang=ko"' in form.text
        answer = b.client.post("/login?lang=ko", data={
            "userid": "alice", "password": "Correct-horse-9", "csrf_token": b.csrf},
            headers={"Origin": f"http://{HOST}", "Referer": f"http://{HOST}/login?lang=ko"})
        assert answer.status_code == 303
        assert any(c.startswith("nmail_lang=ko") for c in answer.headers.get_list("set-cookie"))
    finally:
        b.close()


# -- every GET route of the app, asked from another site, changes nothing -------------

def _seed(server: RunningServer, alice: Browser) -> dict[str, str]:
    """Something behind every id a GET route takes: a message with an attachment, an
    attached message (with its own) and HTML with a remote image, a reply to it (a
    conversation), a draft, a contact; alice administers her domain."""
    raw = (b"From: Mallory <mallory@remote.example>\r\nTo: alice@a.example\r\n"
           b"Subject: seeded-all\r\nMessage-ID: <seeded-all@remote.example>\r\n"
           b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
           b"--B\r\nContent-Type: text/html\r\n\r\n"
           b'<p>hi <img src="https://tracker.example/p.gif"></p>\r\n'
           b"--B\r\nContent-Type: application/octet-stream\r\n"
           b"Content-Disposition: attachment; filename=a.bin\r\n\r\nattached\r\n"
           b"--B\r\nContent-Type: message/rfc822\r\n\r\n"
           b"From: x@remote.example\r\nSubject: inner\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=C\r\n\r\n"
           b"--C\r\nContent-Type: text/plain\r\n\r\ninner body\r\n"
           b"--C\r\nContent-Type: application/octet-stream\r\n"
           b"Content-Disposition: attachment; filename=i.bin\r\n\r\ninner-attached\r\n"
           b"--C--\r\n--B--\r\n")
    _send(server, raw)
    _send(server, _plain("Re: seeded-all", "In-Reply-To: <seeded-all@remote.example>\r\n"))
    account = server.directory.get_account("alice@a.example")
    assert account is not None
    rows = server.runtime.store.list_messages(account.id, "INBOX", limit=500)
    first = next(r for r in rows if r.subject == "seeded-all")
    assert sum(1 for r in rows if r.thread_id == first.thread_id) == 2
    inbox = _inbox(alice).rsplit("/", 1)[1]
    alice.get(f"/mail/{inbox}")  # a CSRF token for the posts below
    saved = alice.client.post("/compose/send", data={
        "csrf_token": alice.csrf, "action": "save", "to": "x@remote.example",
        "subject": "seeded-draft", "body": "draft"}, headers={"Accept": "application/json"})
    assert saved.status_code == 200, saved.text
    assert alice.post("/contacts/save", {"name": "Seeded", "email": "seeded@remote.example"}
                      ).status_code == 303
    contact = re.findall(r'href="/contacts/(\d+)"', alice.get("/contacts").text)
    assert contact
    from nmail.mime.reading import ATTACHED_TYPES, read_view

    stored = server.runtime.store.read_message(account.id, "INBOX", first.uid)
    assert stored is not None
    parts = read_view(stored).attachments
    inner = next(a.number for a in parts if a.content_type in ATTACHED_TYPES)
    download = next(a.number for a in parts if a.content_type not in ATTACHED_TYPES)
    return {"folder_id": inbox, "uid": str(first.uid), "thread_id": str(first.thread_id),
            "path": str(inner), "number": str(download), "kind": "reply", "contact_id": contact[0],
            "domain": "a.example", "draft_folder": saved.json()["carry_from"].split("/")[0],
            "draft": str(saved.json()["draft"])}


def _get_routes(server: RunningServer) -> list[str]:
    """Every GET path of the app as served (its routers, autoconfig, its own routes),
    from the app's own route table (FastAPI's schema of it: the app serves none)."""
    from fastapi.routing import APIRoute

    from nmail.web.app import create_app
    from nmail.web.routes import ROUTERS

    # The schema leaves out a route marked include_in_schema=False: there is none.
    assert all(r.include_in_schema for router in ROUTERS for r in router.routes
               if isinstance(r, APIRoute))
    schema = create_app(server.runtime.web_context()).openapi()
    paths = sorted(p for p, operations in schema["paths"].items() if "get" in operations)
    assert "/mail/{folder_id}/{uid}" in paths and "/search" in paths and len(paths) > 30
    return paths


def _filled(path: str, ids: dict[str, str]) -> str:
    if path.startswith("/compose/draft/"):
        ids = {**ids, "folder_id": ids["draft_folder"], "uid": ids["draft"]}
    if path.startswith("/contacts/export."):
        ids = {**ids, "kind": "csv"}

    def value(found: re.Match[str]) -> str:
        name = found.group(1)
        assert name in ids, f"a new GET route parameter: tell this test how to fill {{{name}}}"
        return ids[name]
    filled = re.sub(r"\{([^}:]+)(?::[^}]*)?\}", value, path)
    return filled + QUERIES.get(path, "")


# What a route does with nothing asked is not all it does.
QUERIES = {"/.well-known/autoconfig/mail/config-v1.1.xml": "?emailaddress=alice@a.example",
           "/mail/config-v1.1.xml": "?emailaddress=alice@a.example",
           "/search": "?q=seeded", "/compose/recipients": "?q=se", "/contacts": "?q=se",
           "/compose": "?to=x@remote.example&subject=s", "/login": "?next=/folders",
           "/mail/{folder_id}/{uid}": "?images=1"}


def _db_state(engine: Engine) -> dict[str, list[str]]:
    from nmail.db.tables import metadata

    state = {}
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            state[table.name] = sorted(repr(tuple(row)) for row in conn.execute(select(table)))
    return state


def _file_state(data: Path) -> list[tuple[str, int]]:
    """Every file of the data directory but the database's own and the logs."""
    found = []
    for root, dirs, files in os.walk(data):
        dirs[:] = [d for d in dirs if d != "logs"]
        for name in files:
            if ".sqlite3" in name:  # index.sqlite3 and its -wal, -shm: compared as rows
                continue
            path = Path(root) / name
            found.append((str(path.relative_to(data)), path.stat().st_size))
    return sorted(found)


def _settled(server: RunningServer) -> None:
    # The search follower is not started in this process (Runtime.start_search_indexer):
    # nothing writes behind the requests' backs but their own marks.
    assert server.runtime._search_follower is None
    wait_until(_marks_settled, 10, "marks settled")


def test_no_get_route_changes_anything_when_another_site_asks(
        server: RunningServer, alice: Browser) -> None:
    ids = _seed(server, alice)
    paths = [_filled(p, ids) for p in _get_routes(server)]
    _settled(server)
    _age_sessions(server.runtime.engine, 600)  # an own request now would touch its session
    before = (_db_state(server.runtime.engine), _file_state(server.data_dir))
    for headers in FOREIGN:
        for path in paths:
            if path == "/events":  # a stream: its start is what it does
                with alice.client.stream("GET", path, headers=headers) as events:
                    assert events.status_code == 200
                continue
            answer = alice.client.get(path, headers=headers)
            assert answer.status_code in (200, 303), (path, headers, answer.status_code)
    _settled(server)
    after = (_db_state(server.runtime.engine), _file_state(server.data_dir))
    changed_tables = [t for t in before[0] if before[0][t] != after[0][t]]
    assert not changed_tables, changed_tables
    assert before[1] == after[1], sorted(set(before[1]) ^ set(after[1]))
    # The check sees a change: the same sweep from our own pages marks the message read.
    message = f"/mail/{ids['folder_id']}/{ids['uid']}"
    assert any(p.startswith(message + "?") for p in paths)
    assert alice.client.get(message, headers=SAME_ORIGIN).status_code == 200
    _settled(server)
    own = (_db_state(server.runtime.engine), _file_state(server.data_dir))
    assert own[0]["messages"] != before[0]["messages"] and own[1] != before[1]
    assert own[0]["web_sessions"] != before[0]["web_sessions"]  # touched, too


# -- the decision itself --------------------------------------------------------------

def _scope(headers: dict[str, str]) -> dict[str, object]:
    return {"type": "http", "headers": [(k.lower().encode("latin-1"), v.encode("latin-1"))
                                        for k, v in headers.items()]}


@pytest.mark.parametrize(("headers", "own"), [
    ({"Host": HOST, "Sec-Fetch-Site": "same-origin"}, True),
    ({"Host": HOST, "Sec-Fetch-Site": "none"}, True),
    ({"Host": HOST, "Sec-Fetch-Site": "same-site"}, False),
    ({"Host": HOST, "Sec-Fetch-Site": "cross-site"}, False),
    ({"Host": HOST, "Sec-Fetch-Site": "cross-site", "Referer": f"https://{HOST}/"}, False),
    ({"Host": HOST, "Sec-Fetch-Site": "nonsense"}, False),
    ({"Host": HOST}, False),
    ({"Host": HOST, "Referer": f"https://{HOST}/mail/1"}, True),
    ({"Host": HOST, "Referer": f"http://{HOST}:80/mail/1"}, True),
    ({"Host": f"{HOST}:443", "Referer": f"https://{HOST}/mail/1"}, True),
    ({"Host": "MAIL.A.EXAMPLE", "Referer": f"https://{HOST}/"}, True),
    ({"Host": f"{HOST}:8080", "Referer": f"http://{HOST}:8080/x"}, True),
    ({"Host": f"{HOST}:8080", "Referer": f"http://{HOST}/x"}, False),
    ({"Host": HOST, "Referer": f"https://{HOST}.evil.example/"}, False),
    ({"Host": HOST, "Referer": f"https://evil.example/{HOST}"}, False),
    ({"Host": HOST, "Referer": f"https://{HOST}@evil.example/"}, False),
    ({"Host": HOST, "Referer": "https://[::1/"}, False),
    ({"Host": HOST, "Referer": "/mail/1"}, False),
    ({"Host": HOST, "Origin": f"https://{HOST}"}, True),
    ({"Host": HOST, "Origin": "null", "Referer": f"https://{HOST}/"}, False),
    ({"Host": HOST, "Origin": "https://evil.example", "Referer": f"https://{HOST}/"}, False),
    ({"Referer": f"https://{HOST}/"}, False),
])
def test_from_own_pages_decides_by_fetch_metadata_then_origin_or_referer(
        headers: dict[str, str], own: bool) -> None:
    from nmail.web.guard import from_own_pages

    assert from_own_pages(_scope(headers)) is own


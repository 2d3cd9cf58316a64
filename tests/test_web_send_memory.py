"""A webmail send with a large attachment goes through a spool file (mime/compose_spool.py).

The spooled bytes are exactly those `build_message` writes (files from bytes, paths and
spooled uploads; an empty file; a folded Bcc kept out of the recipients' copy); a
forwarded message's own bare CR or LF is spooled as CRLF. Then a
real `nmail serve` sends a 20 MiB attachment from the form and from a staged upload, to a
local mailbox and to the queue: its web process's peak RSS (VmHWM after clear_refs) grew
by 214 MiB (local) and 170 MiB (queued) when the message was built in memory; now it
must stay under half the attachment, and every copy (the recipient's, a Bcc's, Sent's, with Bcc only
in Sent's) must carry the same bytes.
"""

from __future__ import annotations

import io
import os
import random
import re
import socket
import tempfile
from collections.abc import Callable
from hashlib import sha256
from pathlib import Path

import httpx
import pytest

from nmail.mime.compose_spool import spool_message, without_bcc
from nmail.mime.composing import Outgoing, OutgoingFile, build_message
from nmail.mime.reading import part_content, read_view
from proc_tree import descendants, holders, rss_bytes
from serve_process import ServeProcess
from serve_setup import PASSWORD, as_options, listen_specs, make_data, set_option

pytestmark = pytest.mark.timeout(300)
MIB = 1 << 20


CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def web_pid(srv: ServeProcess, http_port: int) -> int:
    """The process of `nmail serve` that holds the http listener (the web process)."""
    found = holders([srv.proc.pid, *descendants(srv.proc.pid)], http_port)
    return next(pid for pid in found if pid != srv.proc.pid) if len(found) > 1 else found[0]


def logged_in(http_port: int, user: str) -> tuple[httpx.Client, str, int]:
    """A webmail client logged in as `user`, its CSRF token and its INBOX's folder id."""
    client = httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=120,
                          headers={"Host": "mail.test.local", "Accept": "text/html"})
    token = CSRF_FIELD.findall(client.get("/login").text)[0]
    assert client.post("/login", data={"userid": user, "password": PASSWORD,
                                       "csrf_token": token}).status_code == 303
    csrf = CSRF_FIELD.findall(client.get("/compose").text)[0]
    inbox = int(client.get("/").headers["location"].rsplit("/", 1)[1])
    return client, csrf, inbox


def outgoing(tmp_path: Path, **extra: object) -> Outgoing:
    staged = tmp_path / "staged.bin"
    staged.write_bytes(os.urandom(300_000))
    spooled = tempfile.SpooledTemporaryFile(max_size=1000)  # noqa: SIM115 (the form's)
    spooled.write(os.urandom(57 * 1024 * 2 + 5))
    files = (OutgoingFile("a.bin", "application/octet-stream", os.urandom(1000)),
             OutgoingFile("견적서.pdf", "application/pdf", staged),
             OutgoingFile("empty.txt", "text/plain", b""),
             OutgoingFile("u.bin", "application/octet-stream", spooled))
    values: dict[str, object] = {
        "sender": ("Bob", "bob@test.local"), "to": (("", "carol@test.local"),),
        "bcc": (("Someone With A Long Name " * 4, "dan@test.local"), ("", "eve@test.local")),
        "subject": "자료", "text": "see", "html": "<p>see</p>", "files": files,
        "message_id": "m1@test.local", "date": 1.0, **extra}
    return Outgoing(**values)  # type: ignore[arg-type]


def test_the_spooled_message_is_the_built_one(tmp_path: Path) -> None:
    out = outgoing(tmp_path)
    for bcc in (False, True):
        random.seed(7)  # email's boundaries
        built = build_message(out, hostname="test.local", include_bcc=bcc)
        random.seed(7)
        file = io.BytesIO()
        parts = spool_message(out, file, hostname="test.local")
        assert parts is not None and parts.size == len(file.getvalue())
        assert (parts.head_bcc if bcc else parts.head) + file.getvalue() == built
    assert b"Bcc:" in parts.head_bcc and b"bcc:" not in parts.head.lower()
    assert b"dan@test.local" not in parts.head and b"Long Name" not in parts.head
    assert without_bcc(b"To: a@b\r\nBCC: x,\r\n y\r\n\tz\r\nSubject: s\r\n\r\n") == (
        b"To: a@b\r\nSubject: s\r\n\r\n")


@pytest.mark.parametrize("forwarded", [
    b"From: x@y.example\nSubject: old\n\nbare\nline feeds\n",
    b"From: x@y.example\r\nSubject: old\r\n\r\na bare\rCR\r\n",
    b"From: x@y.example\r\nContent-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: binary\r\n\r\na\nb\rc\r\n"])
def test_a_forwarded_message_with_bare_line_ends_spools_clean(tmp_path: Path,
                                                              forwarded: bytes) -> None:
    """A spooled message is queued as it is (no CRLF repair on the way in), and the
    queue refuses a bare CR or LF: the forwarded message is copied with its line ends
    made CRLF (tests/test_mime_file_parts.py compares it with `build_message`)."""
    file = io.BytesIO()
    parts = spool_message(outgoing(tmp_path, attached_messages=(forwarded,)), file,
                          hostname="test.local")
    assert parts is not None
    whole = parts.head_bcc + file.getvalue()
    assert whole.count(b"\r") == whole.count(b"\n") == whole.count(b"\r\n")


def silent_dns() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def peak_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for {pid}")


def stored(data: Path, address: str, folder: str) -> dict[str, Path]:
    """The message files of one Maildir folder ("INBOX", ".Sent") by unique name.

    By name, not by modification time: a file's mtime is no delivery order (the
    spooled copy of a later send was seen older than an earlier send's file).
    """
    userid, domain = address.split("@")
    base = data / "mail" / domain / userid / "Maildir"
    if folder != "INBOX":
        base = base / folder
    return {p.name.split(":")[0]: p for sub in ("new", "cur") for p in (base / sub).iterdir()}


def test_a_20_mib_attachment_is_sent_in_bounded_memory(tmp_path: Path) -> None:
    dns = silent_dns()  # remote.example stays unresolved: its message waits in the queue
    data = make_data(tmp_path, "bob@test.local", "carol@test.local")
    set_option(data, "dns", "nameservers", f'["127.0.0.1:{dns.getsockname()[1]}"]')
    ports = listen_specs("smtp", "http")
    srv = ServeProcess(data, *as_options(ports), workers=1)
    try:
        web = web_pid(srv, ports["http"])
        client, csrf, _inbox = logged_in(ports["http"], "bob@test.local")

        def measured(post: Callable[[], httpx.Response]) -> tuple[int, httpx.Response]:
            """(the web process's peak RSS growth during `post`, its answer)."""
            start = rss_bytes(web)
            Path(f"/proc/{web}/clear_refs").write_text("5")  # VmHWM := VmRSS now
            answer = post()
            return peak_bytes(web) - start, answer

        def send(payload: bytes, to: str, staged: bool) -> tuple[int, httpx.Response]:
            fields: dict[str, object] = {"to": to, "subject": "big", "body": "see",
                                         "bcc": "bob@test.local"}
            files = {"files": ("big.bin", payload, "application/octet-stream")}
            if staged:  # uploaded first, as the page's script does (it held the whole body)
                growth, made = measured(lambda: client.post(
                    "/compose/upload?name=big.bin", content=payload,
                    headers={"X-CSRF-Token": csrf}))
                assert made.status_code == 200, made.text
                print(f"upload: peak RSS grew {growth / MIB:.1f} MiB")
                assert growth < 10 * MIB, f"the upload grew the peak by {growth / MIB:.1f} MiB"
                fields["upload"] = made.json()["id"]
                files = {}
            return measured(lambda: client.post(f"/compose/send?_csrf={csrf}", data=fields,
                                                files=files or None))

        assert send(os.urandom(2 * MIB), "carol@test.local", False)[1].status_code == 303
        copies = (("INBOX", False), ("INBOX", False), (".Sent", True))
        for to, staged in (("carol@test.local", False), ("friend@remote.example", False),
                           ("carol@test.local", True)):
            payload = os.urandom(20 * MIB)
            owners = (to, "bob@test.local", "bob@test.local")
            before = [set(stored(data, o, f)) for o, (f, _) in zip(owners, copies, strict=True)
                      if not o.endswith("remote.example")]
            growth, sent = send(payload, to, staged)
            assert sent.status_code == 303, sent.text[:500]
            assert growth < 10 * MIB, f"peak RSS grew {growth / MIB:.1f} MiB ({to}, {staged})"
            print(f"{to} staged={staged}: peak RSS grew {growth / MIB:.1f} MiB")
            local = [(o, f, b) for o, (f, b) in zip(owners, copies, strict=True)
                     if not o.endswith("remote.example")]
            for (copy, folder, bcc), seen in zip(local, before, strict=True):
                now = stored(data, copy, folder)
                [new] = set(now) - seen  # this send's one copy in that folder
                raw = now[new].read_bytes()
                [attachment] = read_view(raw).attachments
                got = part_content(raw, attachment.number)
                # digests: pytest's diff of two 20 MiB byte strings ran to the timeout
                assert got is not None and sha256(got[1]).digest() == sha256(payload).digest(), (
                    copy, folder)
                head = raw.split(b"\r\n\r\n", 1)[0]
                assert (b"\r\nBcc: bob@test.local" in head) is bcc, (copy, folder)
        [queued] = (data / "queue").glob("*.eml")
        assert queued.stat().st_size > 27 * MIB
    finally:
        srv.stop()
        dns.close()

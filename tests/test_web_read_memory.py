"""Reading a big message and downloading its parts, in bounded memory.

A real `nmail serve` holds in bob's INBOX a message with a 20 MiB attachment
(Korean subject in encoded words, Korean RFC 2231 file name) and a message that
carries that one attached (message/rfc822). Through its web process: the read
screen, its frame, its print view, the attachment, "download all" (ZIP), the
source shown (its head, 109 MiB before web/source_page.py) and downloaded, and the
same views of the attached message. The web process's peak RSS
(VmHWM after clear_refs, from /proc) may grow by a few MiB each time, not by the
message (before: the message was read whole and each part decoded into bytes,
the ZIP built in memory: 50 to 100 MiB each; the figures are printed with -s).
Every download is compared by digest with what was sent and with what
`part_content` finds in the stored file; the headers are those of
`download_headers` (RFC 6266 / 5987 names). A second message tries the other
shapes: quoted-printable, 8bit, base64 in odd lines, all again with bare LF line
ends (the stored file rewritten as an mbox import leaves it), and truncated in
the middle of a part. Then the bad inputs: part numbers that do not exist, are
negative, huge or not numbers; another account's message; an expunged one.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import re
import zipfile
from collections.abc import Callable
from hashlib import sha256
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from nmail.mime.reading import part_content, read_view
from nmail.web.download_names import download_headers
from proc_tree import rss_bytes
from serve_process import ServeProcess
from serve_setup import as_options, listen_specs, make_data
from test_big_messages import send as smtp_send
from test_web_forward_memory import NAME, SUBJECT, original
from test_web_send_memory import logged_in, peak_bytes, stored, web_pid

pytestmark = pytest.mark.timeout(600)
MIB = 1 << 20
T = TypeVar("T")
BOUND = 10 * MIB  # the attachment is 20 MiB, its base64 27 MiB


def digest(data: bytes) -> bytes:
    return sha256(data).digest()


def wrapped(inner: bytes, tag: str) -> bytes:
    """A message that carries `inner` attached (as a bounce or a forward does)."""
    return (f"From: Lee <lee@test.local>\r\nTo: bob@test.local\r\nSubject: 전달 {tag}\r\n"
            f"Message-ID: <{tag}@test.local>\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="=o="\r\n\r\n'
            "--=o=\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n원본을 붙입니다.\r\n"
            "--=o=\r\nContent-Type: message/rfc822\r\n"
            "Content-Disposition: attachment\r\n\r\n").encode() + inner + b"\r\n--=o=--\r\n"


QP_DATA = bytes(range(256)) * 2000 + "한글 줄\r\n".encode() * 3000  # 512 KB + text
PLAIN_DATA = b"".join(b"line %d of eight bit \xed\x95\x9c\r\n" % i for i in range(20000))
ODD_DATA = os.urandom(300_001)


def shapes(tag: str) -> bytes:
    """Parts in quoted-printable, 8bit and base64 in 60-character lines."""
    qp = binascii.b2a_qp(QP_DATA, istext=False).replace(b"\n", b"\r\n")
    b64 = b"\r\n".join(base64.b64encode(ODD_DATA)[i:i + 60]
                       for i in range(0, len(base64.b64encode(ODD_DATA)), 60))
    return (f"From: Kim <kim@test.local>\r\nTo: bob@test.local\r\nSubject: 모양 {tag}\r\n"
            f"Message-ID: <{tag}@test.local>\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
            "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n본문입니다.\r\n"
            "--b1\r\nContent-Type: application/octet-stream\r\n"
            "Content-Disposition: attachment; filename=\"q.bin\"\r\n"
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n").encode() + qp + (
        b"\r\n--b1\r\nContent-Type: text/csv\r\n"
        b"Content-Disposition: attachment; filename=\"plain.csv\"\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n") + PLAIN_DATA + (
        b"\r\n--b1\r\nContent-Type: application/zip\r\n"
        b"Content-Disposition: attachment; filename=\"odd.zip\"\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n") + b64 + b"\r\n--b1--\r\n"


def test_reading_and_downloading_a_20_mib_message_in_bounded_memory(tmp_path: Path,
                                                                    db_url: str) -> None:
    data = make_data(tmp_path, "bob@test.local", "eve@test.local", database_url=db_url)
    ports = listen_specs("smtp", "http")
    srv = ServeProcess(data, *as_options(ports), workers=1)
    try:
        payload = os.urandom(20 * MIB)
        big = original(payload, "big")
        for message in (original(b"small", "small"), wrapped(original(b"s", "s2"), "small-o"),
                        big, wrapped(big, "outer"), shapes("shapes")):
            assert smtp_send(ports["smtp"], "kim@test.local", ["bob@test.local"],
                             message).startswith(b"250")
        assert smtp_send(ports["smtp"], "kim@test.local", ["eve@test.local"],
                         original(b"eve's", "eve")).startswith(b"250")
        web = web_pid(srv, ports["http"])

        def login(user: str) -> tuple[httpx.Client, str, int, list[int]]:
            """A logged-in client, its CSRF token, its INBOX's id and its uids (oldest
            first)."""
            client, csrf, inbox = logged_in(ports["http"], user)
            listed = client.get(f"/mail/{inbox}").text
            uids = sorted({int(u) for u in re.findall(rf'/mail/{inbox}/([0-9]+)', listed)})
            return client, csrf, inbox, uids

        client, csrf, inbox, uids = login("bob@test.local")
        small, small_outer, big_uid, outer_uid, shapes_uid = uids
        _eve, _, eve_inbox, [eve_uid] = login("eve@test.local")
        files = stored(data, "bob@test.local", "INBOX")
        # The files as stored, found before anything reads them: reading a message on
        # the read screen marks it seen, which renames its file (after the answer).
        heads = {p.read_bytes()[:4096].split(b"\r\n\r\n")[0]: p for p in files.values()}
        big_stored = digest(next(p for head, p in heads.items()
                                 if b"<big@test.local>" in head).read_bytes())
        file = next(p for head, p in heads.items() if b"<shapes@test.local>" in head)

        def fetched(url: str) -> tuple[httpx.Response, bytes]:
            """The answer and the digest of its body, read a piece at a time."""
            hashing = sha256()
            with client.stream("GET", url) as answer:
                for piece in answer.iter_bytes():
                    hashing.update(piece)
            return answer, hashing.digest()

        def measured(what: str, call: Callable[[str], T], url: str) -> T:
            start = rss_bytes(web)
            Path(f"/proc/{web}/clear_refs").write_text("5")  # VmHWM := VmRSS now
            answer = call(url)
            growth = peak_bytes(web) - start
            print(f"{what}: peak RSS grew {growth / MIB:.1f} MiB")
            assert growth < BOUND, f"{what}: the peak grew {growth / MIB:.1f} MiB"
            return answer

        views = ("", "/body", "/print", "/part/1", "/attachments.zip", "/source?download=1",
                 "/source")
        # Warm-up: each view once on a small message, so that loading code is not counted.
        for view in views:
            assert client.get(f"/mail/{inbox}/{small}{view}").status_code == 200, view
            assert client.get(f"/mail/{inbox}/{small_outer}/msg/1{view}").status_code == 200

        for base, label in ((f"/mail/{inbox}/{big_uid}", "stored"),
                            (f"/mail/{inbox}/{outer_uid}/msg/1", "attached")):
            page = measured(f"{label}: read screen", client.get, base)
            assert page.status_code == 200
            assert SUBJECT in page.text and "첨부합니다." in page.text and NAME in page.text
            for view in ("/body", "/print"):
                shown = measured(f"{label}: {view}", client.get, base + view)
                assert shown.status_code == 200
            answer, body = measured(f"{label}: attachment", fetched, base + "/part/1")
            assert answer.status_code == 200 and body == digest(payload)
            assert answer.headers["content-type"] == "application/pdf"
            for key, value in download_headers(NAME).items():  # (+ frame-ancestors)
                assert answer.headers[key].startswith(value), key
            assert "filename*=UTF-8''%EA%B2%AC%EC%A0%81%EC%84%9C%202026.pdf" in (
                answer.headers["content-disposition"])
            got = measured(f"{label}: download all", fetched, base + "/attachments.zip")
            assert got[0].status_code == 200
            assert got[0].headers["content-type"] == "application/zip"
            assert "filename*=UTF-8''" in got[0].headers["content-disposition"]
            shown = measured(f"{label}: source shown", client.get, base + "/source")
            assert shown.status_code == 200 and "Subject: =?UTF-8?B?" in shown.text
            # Cut, said so (in Korean here), with the link to all of it; the whole is
            # never sent to be shown.
            assert re.search(r"앞의 51[12](\.[0-9])? KB\(헤더와 본문 앞부분\)만", shown.text)
            assert len(shown.content) < 1 * MIB
            assert f'href="{base}/source?download=1"' in shown.text
            got = measured(f"{label}: source", fetched, base + "/source?download=1")
            assert got[0].status_code == 200
            if label == "stored":
                assert got[1] == big_stored
            else:
                assert got[1] == digest(big)
        archive = zipfile.ZipFile(io.BytesIO(client.get(
            f"/mail/{inbox}/{big_uid}/attachments.zip").content))
        assert archive.namelist() == [NAME]
        assert digest(archive.read(NAME)) == digest(payload)
        del archive

        # The other shapes, then with bare LF line ends, then cut in a part.
        shapes_url = f"/mail/{inbox}/{shapes_uid}"
        # (Never on the read screen, which would rename the file: the print view shows it.)
        wanted = {1: QP_DATA, 2: PLAIN_DATA, 3: ODD_DATA}
        for shape in ("crlf", "lf", "cut"):
            raw = file.read_bytes()
            if shape == "lf":
                file.write_bytes(raw.replace(b"\r\n", b"\n"))
            elif shape == "cut":
                file.write_bytes(raw[:raw.index(b"filename=\"odd.zip\"") + 5000])
            raw = file.read_bytes()
            page = client.get(shapes_url + "/print")
            assert page.status_code == 200 and "본문입니다." in page.text, shape
            for number, sent in wanted.items():
                answer = client.get(f"{shapes_url}/part/{number}")
                expected = part_content(raw, number)
                assert expected is not None and answer.status_code == 200, (shape, number)
                assert digest(answer.content) == digest(expected[1]), (shape, number)
                if shape == "crlf" or (shape == "lf" and number != 2):
                    assert digest(answer.content) == digest(sent), (shape, number)
            archive = zipfile.ZipFile(io.BytesIO(client.get(f"{shapes_url}/attachments.zip"
                                                            ).content))
            assert archive.namelist() == ["q.bin", "plain.csv", "odd.zip"]
            for number, name in ((1, "q.bin"), (2, "plain.csv"), (3, "odd.zip")):
                expected = part_content(raw, number)
                assert expected is not None
                assert digest(archive.read(name)) == digest(expected[1]), (shape, name)
        assert [a.filename for a in read_view(raw).attachments] == ["q.bin", "plain.csv",
                                                                    "odd.zip"]

        # Bad inputs: refused as before (404, or 422 for what is not a number).
        for bad in ("/part/4", "/part/-1", "/part/999999999999999999999999", "/part/1000",
                    "/msg/2", "/msg/1/part/9", "/msg/x", "/msg/1.1"):
            assert client.get(f"/mail/{inbox}/{outer_uid}{bad}").status_code == 404, bad
        assert client.get(f"/mail/{inbox}/{big_uid}/part/x").status_code == 422
        for view in ("", *views, "/msg/1", "/msg/1/part/1"):
            answer = client.get(f"/mail/{eve_inbox}/{eve_uid}{view}")
            assert answer.status_code == 404 and b"eve's" not in answer.content, view
        moved = client.post(f"/mail/{inbox}/actions?_csrf={csrf}",
                            data={"action": "delete", "uid": str(big_uid)})
        assert moved.status_code in (200, 303), moved.text[:300]
        for view in ("", *views):
            assert client.get(f"/mail/{inbox}/{big_uid}{view}").status_code == 404, view
    finally:
        srv.stop()

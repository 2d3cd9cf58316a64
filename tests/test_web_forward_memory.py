"""Forwarding a big message and saving, reopening and sending a draft, in bounded memory.

A real `nmail serve` holds in bob's INBOX a message (Korean subject in encoded words,
a Korean RFC 2231 file name) with a 20 MiB attachment. Through its web process:
forward it as an attachment, forward it inline with its attachment carried, open
both forms, save a draft with a 20 MiB upload, reopen it and send it. The web
process's peak RSS (VmHWM after clear_refs, from /proc) may grow by a few MiB
each time, not by the message (before: the original was read whole, parsed and
each carried part decoded into bytes: tens of MiB each). Every copy that arrives
is compared by digest: the forwarded original byte for byte, a carried attachment
with the bytes first sent. Then the bad inputs: another account's message, one that
is gone, a draft deleted meanwhile: 400 with the reason, nothing sent, the typed
text kept in the re-shown form.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Callable
from hashlib import sha256
from pathlib import Path

import httpx
import pytest

from nmail.mime.reading import part_content, read_view
from proc_tree import rss_bytes
from serve_process import ServeProcess
from serve_setup import as_options, listen_specs, make_data
from test_big_messages import send as smtp_send
from test_web_send_memory import logged_in, peak_bytes, stored, web_pid

pytestmark = pytest.mark.timeout(600)
MIB = 1 << 20
BOUND = 10 * MIB  # the attachment is 20 MiB, its base64 27 MiB
NAME = "견적서 2026.pdf"
SUBJECT = "자료 모음 (12월)"
NOT_SENT = "메일은 보내지 않았습니다"  # the reason, in the user's language (Korean here)


def original(payload: bytes, tag: str) -> bytes:
    """A message as another mail program sends it: encoded-word subject, RFC 2231 name."""
    name = "UTF-8''" + "".join(f"%{b:02X}" for b in NAME.encode())
    subject = "=?UTF-8?B?" + base64.b64encode(SUBJECT.encode()).decode() + "?="
    return (
        f"From: Kim <kim@test.local>\r\nTo: bob@test.local\r\nSubject: {subject}\r\n"
        f"Message-ID: <{tag}@test.local>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="=b="\r\n\r\n'
        "--=b=\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n첨부합니다.\r\n"
        "--=b=\r\nContent-Type: application/pdf\r\n"
        f"Content-Disposition: attachment; filename*={name}\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n").encode() + (
        base64.encodebytes(payload).replace(b"\n", b"\r\n") + b"--=b=--\r\n")


def one_new(data: Path, address: str, folder: str, before: set[str]) -> bytes:
    now = stored(data, address, folder)
    [new] = set(now) - before
    return now[new].read_bytes()


def digest(data: bytes) -> bytes:
    return sha256(data).digest()


def test_forwards_and_drafts_of_20_mib_in_bounded_memory(tmp_path: Path, db_url: str) -> None:
    data = make_data(tmp_path, "bob@test.local", "carol@test.local", "eve@test.local",
                     database_url=db_url)
    ports = listen_specs("smtp", "http")
    srv = ServeProcess(data, *as_options(ports), workers=1)
    try:
        payload = os.urandom(20 * MIB)
        message = original(payload, "big")
        for to in ("bob@test.local", "eve@test.local"):
            assert smtp_send(ports["smtp"], "kim@test.local", [to], message).startswith(b"250")
        [kept] = stored(data, "bob@test.local", "INBOX").values()
        whole = kept.read_bytes()  # trace fields, then the message (flags move the file)
        assert digest(whole[-len(message):]) == digest(message)
        kept_digest = digest(whole)
        del whole
        web = web_pid(srv, ports["http"])

        def login(user: str) -> tuple[httpx.Client, str, int, int]:
            """A logged-in client, its CSRF token, its INBOX's id and its message's uid."""
            client, csrf, inbox = logged_in(ports["http"], user)
            uid = int(re.findall(rf'/mail/{inbox}/([0-9]+)', client.get(f"/mail/{inbox}").text)[0])
            return client, csrf, inbox, uid

        client, csrf, inbox, uid = login("bob@test.local")
        _eve, _csrf, eve_inbox, eve_uid = login("eve@test.local")

        def measured(what: str, call: Callable[[], httpx.Response]) -> httpx.Response:
            start = rss_bytes(web)
            Path(f"/proc/{web}/clear_refs").write_text("5")  # VmHWM := VmRSS now
            answer = call()
            growth = peak_bytes(web) - start
            print(f"{what}: peak RSS grew {growth / MIB:.1f} MiB")
            assert growth < BOUND, f"{what}: the peak grew {growth / MIB:.1f} MiB"
            return answer

        def post(fields: dict[str, object], json: bool = False) -> httpx.Response:
            headers = {"Accept": "application/json"} if json else {}
            return client.post(f"/compose/send?_csrf={csrf}", data=fields, headers=headers)

        def carried(form: str) -> list[str]:
            return re.findall(r'name="carry_part" value="([0-9]+)"', form)

        # Warm-up: each path once with a small message, so that loading its code is not
        # counted below.
        assert smtp_send(ports["smtp"], "kim@test.local", ["bob@test.local"],
                         original(b"small", "small")).startswith(b"250")
        for kind in ("forward-attached", "forward"):
            assert client.get(f"/compose/{kind}/{inbox}/{uid + 1}").status_code == 200
        assert post({"to": "carol@test.local", "subject": "s", "body": "b",
                     "attach_message": f"{inbox}/{uid + 1}"}).status_code == 303
        assert post({"to": "carol@test.local", "subject": "s", "body": "b",
                     "carry_from": f"{inbox}/{uid + 1}", "carry_part": "1"}).status_code == 303
        warm = post({"to": "carol@test.local", "subject": "s", "body": "b",
                     "carry_from": f"{inbox}/{uid + 1}", "carry_part": "1",
                     "action": "save"}, json=True).json()
        assert client.get(f"/compose/draft/{warm['carry_from']}").status_code == 200
        assert post({"to": "carol@test.local", "subject": "s", "body": "b",
                     "draft": str(warm["draft"]), "carry_from": warm["carry_from"],
                     "carry_part": warm["carry_parts"]}).status_code == 303

        # Forward as an attachment: the original, byte for byte, inside.
        form = measured("forward-attached form",
                        lambda: client.get(f"/compose/forward-attached/{inbox}/{uid}"))
        assert form.status_code == 200 and "Fwd: " + SUBJECT in form.text
        before = set(stored(data, "carol@test.local", "INBOX"))
        sent = measured("forward as attachment", lambda: post({
            "to": "carol@test.local", "subject": "Fwd: " + SUBJECT, "body": "보냅니다",
            "attach_message": f"{inbox}/{uid}", "original": f"{inbox}/{uid}/forwarded"}))
        assert sent.status_code == 303, sent.text[:500]
        raw = one_new(data, "carol@test.local", "INBOX", before)
        view = read_view(raw)
        assert view.subject == "Fwd: " + SUBJECT
        [attachment] = view.attachments
        inner = part_content(raw, attachment.number)
        assert inner is not None and inner[0].content_type == "message/rfc822"
        assert digest(inner[1]) == kept_digest
        assert read_view(inner[1]).attachments[0].filename == NAME
        del raw, inner

        # Forward inline: the attachment carried, decoded part by part.
        form = measured("forward form", lambda: client.get(f"/compose/forward/{inbox}/{uid}"))
        assert form.status_code == 200 and NAME in form.text
        [number] = carried(form.text)
        before = set(stored(data, "carol@test.local", "INBOX"))
        sent = measured("forward inline", lambda: post({
            "to": "carol@test.local", "subject": "Fwd: " + SUBJECT, "body": "보냅니다",
            "carry_from": f"{inbox}/{uid}", "carry_part": number}))
        assert sent.status_code == 303, sent.text[:500]
        raw = one_new(data, "carol@test.local", "INBOX", before)
        [attachment] = read_view(raw).attachments
        assert attachment.filename == NAME
        got = part_content(raw, attachment.number)
        assert got is not None and digest(got[1]) == digest(payload)
        del raw, got

        # A draft: saved with a 20 MiB upload, reopened, sent.
        upload = os.urandom(20 * MIB)
        made = client.post(f"/compose/upload?name={NAME}", content=upload,
                           headers={"X-CSRF-Token": csrf})
        assert made.status_code == 200, made.text
        saved = measured("save draft", lambda: post({
            "to": "carol@test.local", "subject": "초안", "body": "본문",
            "upload": made.json()["id"], "action": "save"}, json=True))
        assert saved.status_code == 200, saved.text[:500]
        draft = saved.json()["draft"]
        drafts = int(saved.json()["carry_from"].split("/")[0])
        form = measured("reopen draft", lambda: client.get(f"/compose/draft/{drafts}/{draft}"))
        assert form.status_code == 200 and "본문" in form.text and NAME in form.text
        [number] = carried(form.text)
        before = set(stored(data, "carol@test.local", "INBOX"))
        sent = measured("send draft", lambda: post({
            "to": "carol@test.local", "subject": "초안", "body": "본문", "draft": str(draft),
            "carry_from": f"{drafts}/{draft}", "carry_part": number}))
        assert sent.status_code == 303, sent.text[:500]
        raw = one_new(data, "carol@test.local", "INBOX", before)
        [attachment] = read_view(raw).attachments
        got = part_content(raw, attachment.number)
        assert attachment.filename == NAME and got is not None
        assert digest(got[1]) == digest(upload)
        assert not stored(data, "bob@test.local", ".Drafts")  # sent: the draft is gone
        del raw, got

        # Bad inputs: refused with the reason, nothing sent, the typed text kept.
        before = set(stored(data, "carol@test.local", "INBOX"))
        for fields in ({"attach_message": f"{eve_inbox}/{eve_uid}"},
                       {"carry_from": f"{eve_inbox}/{eve_uid}", "carry_part": "1"},
                       {"attach_message": f"{inbox}/999999"},
                       {"carry_from": f"{inbox}/999999", "carry_part": "1"}):
            refused = post({"to": "carol@test.local", "subject": "s", "body": "내 글",
                            **fields})
            assert refused.status_code == 400, fields
            assert NOT_SENT in refused.text and "내 글" in refused.text
            assert SUBJECT not in refused.text  # nothing of eve's message leaks
        for kind in ("forward", "forward-attached"):
            assert client.get(f"/compose/{kind}/{eve_inbox}/{eve_uid}").status_code == 404
        assert client.get(f"/compose/draft/{eve_inbox}/{eve_uid}").status_code == 404

        # A draft deleted meanwhile (another tab, another client): its attachment is gone.
        saved = post({"to": "carol@test.local", "subject": "초안 2", "body": "둘째",
                      "upload": made.json()["id"], "action": "save"}, json=True)
        draft = saved.json()["draft"]
        [file] = stored(data, "bob@test.local", ".Drafts").values()
        file.unlink()
        refused = post({"to": "carol@test.local", "subject": "초안 2", "body": "둘째",
                        "draft": str(draft), "carry_from": f"{drafts}/{draft}",
                        "carry_part": "1"})
        assert refused.status_code == 400 and NOT_SENT in refused.text
        assert "둘째" in refused.text
        assert set(stored(data, "carol@test.local", "INBOX")) == before
        assert client.get(f"/compose/draft/{drafts}/{draft}").status_code == 404
    finally:
        srv.stop()

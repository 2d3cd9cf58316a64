"""Instructions per message of the index row's parse, counted by callgrind.

    python bench/summary_instructions.py [--repeat 200]

What a port-25 worker does for each delivered message before the index
writer sees it (mailstore/preparing.py): `index_values(content, arrival)`
(before Dec 7: `summary_values(summarize(content), arrival)`).
Each sample message is summarized `--repeat` times inside one process run
under `valgrind --tool=callgrind`, and once more with no repeats (imports,
start-up, one warm-up call each); the difference divided by the repeats is
that message's own cost, the interpreter's start-up cancelled out. The
samples:

  plain     what smtp-source sends (bench/smtp_inbound.py): 4 header lines, 10 KB of text
  korean    EUC-KR: encoded-word Subject and From name, 8-bit EUC-KR text/plain body
  attached  multipart/mixed: text/plain and a base64 PDF attachment
  reply     Re: subject, In-Reply-To, 12 References, multipart/alternative

Counts are load-invariant (figures within 0.1% run to run); never asserts.
Another tree's code (before/after): PYTHONPATH=/path/to/src python bench/summary_instructions.py
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import subprocess
import sys
import tempfile


def _plain() -> bytes:
    head = (b"From: <a@example.com>\r\nTo: <b@example.org>\r\n"
            b"Date: Mon,  7 Dec 2026 04:07:52 +0000 (UTC)\r\n"
            b"Message-Id: <331f.0003.0000@vm>\r\n\r\n")
    lines = [b"%dX" % n + b"X" * 77 for n in range(1, 130)]
    return head + b"\r\n".join(lines)[:10240 - len(head)] + b"\r\n"


def _korean() -> bytes:
    subject = base64.b64encode("[공지] 12월 정기 점검 안내".encode("euc-kr"))
    name = base64.b64encode("김철수".encode("euc-kr"))
    body = ("안녕하세요. 12월 정기 점검 일정을 안내드립니다.\r\n" * 40).encode("euc-kr")
    return (b"Return-Path: <kim@example.co.kr>\r\n"
            b"From: =?euc-kr?B?" + name + b"?= <kim@example.co.kr>\r\n"
            b"To: =?euc-kr?B?" + name + b"?= <lee@example.kr>, park@example.kr\r\n"
            b"Subject: =?euc-kr?B?" + subject + b"?=\r\n"
            b"Date: Mon, 7 Dec 2026 13:07:52 +0900\r\n"
            b"Message-ID: <20261207130752.1234@example.co.kr>\r\n"
            b"MIME-Version: 1.0\r\n"
            b"Content-Type: text/plain; charset=\"euc-kr\"\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n\r\n" + body)


def _attached() -> bytes:
    pdf = base64.encodebytes(bytes(range(256)) * 24).replace(b"\n", b"\r\n")
    return (b"From: Kim <kim@example.com>\r\nTo: lee@example.org\r\n"
            b"Cc: Park <park@example.org>\r\nSubject: Quarterly report\r\n"
            b"Date: Mon, 7 Dec 2026 13:07:52 +0900\r\n"
            b"Message-ID: <report.42@example.com>\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"==b1==\"\r\n\r\n"
            b"This is a multi-part message in MIME format.\r\n--==b1==\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
            b"Hello,=0D\r\nthe report is attached. Caf=C3=A9 at 3?\r\n--==b1==\r\n"
            b"Content-Type: application/pdf; name=\"report.pdf\"\r\n"
            b"Content-Disposition: attachment; filename=\"report.pdf\"\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + pdf + b"--==b1==--\r\n")


def _reply() -> bytes:
    refs = b"\r\n ".join(b"<msg%d.%d@lists.example.net>" % (n, n * 7) for n in range(12))
    text = b"> quoted line of the earlier message\r\n" * 20
    return (b"From: \"Lee, Younghee\" <lee@example.org>\r\n"
            b"To: Kim <kim@example.com>, dev@lists.example.net\r\n"
            b"Subject: Re: [dev] Release plan for 2.0\r\n"
            b"Date: Tue, 8 Dec 2026 09:01:00 +0900\r\n"
            b"Message-ID: <reply.77@example.org>\r\n"
            b"In-Reply-To: <msg11.77@lists.example.net>\r\n"
            b"References: " + refs + b"\r\n"
            b"MIME-Version: 1.0\r\n"
            b"Content-Type: multipart/alternative; boundary=alt\r\n\r\n"
            b"--alt\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
            b"Sounds good to me.\r\n\r\n" + text +
            b"--alt\r\nContent-Type: text/html; charset=us-ascii\r\n\r\n"
            b"<p>Sounds good to me.</p>\r\n--alt--\r\n")


SAMPLES = {"plain": _plain, "korean": _korean, "attached": _attached, "reply": _reply}


def child(name: str, repeat: int) -> None:
    """Run inside valgrind: warm up every sample, then summarize `name` `repeat` times."""
    try:
        from nmail.mailstore.indexrow import index_values
    except ImportError:  # before index_values (Dec 7): what preparing.py called then
        from nmail.mailstore.indexrow import summarize, summary_values

        def index_values(data: bytes, internal_date: int) -> tuple[object, ...]:
            return summary_values(summarize(data), internal_date)

    messages = {key: make() for key, make in SAMPLES.items()}
    for message in messages.values():
        index_values(message, 1765080000)
    message = messages[name]
    for _ in range(repeat):
        index_values(message, 1765080000)


def instructions(name: str, repeat: int) -> int:
    with tempfile.TemporaryDirectory() as work:
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={work}/cg.out",
             sys.executable, __file__, "--child", name, "--repeat", str(repeat)],
            capture_output=True, text=True, check=True, env=os.environ,
        )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise SystemExit(f"no callgrind total in:\n{done.stderr}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.repeat)
        return
    base = instructions("plain", 0)
    print(f"instructions per message (callgrind, {args.repeat} repeats, start-up subtracted):")
    total = 0
    for name, make in SAMPLES.items():
        each = (instructions(name, args.repeat) - base) / args.repeat
        total += each
        print(f"  {name:9} {len(make()):6d} bytes  {each / 1000:8.1f}k")
    print(f"  {'mean':9} {'':12}  {total / len(SAMPLES) / 1000:8.1f}k")


if __name__ == "__main__":
    main()

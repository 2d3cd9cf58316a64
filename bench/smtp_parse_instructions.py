"""Instructions per message for parsing and answering SMTP commands, by callgrind.

    python bench/smtp_parse_instructions.py [-n 2000] [--form NAME ...] [--keep]

Runs one session's commands through the sans-IO SmtpConnection as the
port-25 worker does (bytes in one command at a time, events out, MAIL, RCPT
and the message accepted, replies taken), N times, under
`valgrind --tool=callgrind`, and again 0 times; the difference divided by N
is the instructions one message costs, start-up excluded. The message body
is a single line, so DATA content scanning is nearly out of it (its cost
per 10 KB is the dot-unstuffing and line checks, measured elsewhere).

Forms (what the client sends per connection):

  smtp-source  HELO vm / MAIL FROM:<a@test.local> / RCPT TO:<b@test.local> /
               DATA / QUIT (what bench/smtp_inbound.py's load sends)
  esmtp        EHLO, MAIL FROM:<...> SIZE=10240 BODY=8BITMIME, RCPT TO:<...>
               (what Postfix, Exim and most MTAs send)
  quoted       EHLO, MAIL FROM:<"a b"@test.local>, RCPT TO:<@r.test:b@test.local>
               (the full parser's paths: none of it takes a shortcut)

Instruction counts do not move with the machine's load (figures within
0.1% run to run), so this may run beside anything. Never asserts a figure.
`python bench/smtp_parse_instructions.py --inner N FORM` is the part that
runs under valgrind.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FORMS: dict[str, list[bytes]] = {
    "smtp-source": [
        b"HELO vm\r\n",
        b"MAIL FROM:<a@test.local>\r\n",
        b"RCPT TO:<b@test.local>\r\n",
        b"DATA\r\n",
        b"Subject: x\r\n\r\nhello\r\n.\r\n",
        b"QUIT\r\n",
    ],
    "esmtp": [
        b"EHLO client.example.org\r\n",
        b"MAIL FROM:<sender@example.org> SIZE=10240 BODY=8BITMIME\r\n",
        b"RCPT TO:<b@test.local>\r\n",
        b"DATA\r\n",
        b"Subject: x\r\n\r\nhello\r\n.\r\n",
        b"QUIT\r\n",
    ],
    "quoted": [
        b"EHLO client.example.org\r\n",
        b'MAIL FROM:<"a b"@test.local>\r\n',
        b"RCPT TO:<@r.test:b@test.local>\r\n",
        b"DATA\r\n",
        b"Subject: x\r\n\r\nhello\r\n.\r\n",
        b"QUIT\r\n",
    ],
}


def inner(count: int, form: str) -> None:
    """The measured part: `count` sessions of `form`, answered as the worker answers."""
    from nmail.policy.decision import ACCEPT
    from nmail.protocols.smtp import SmtpConnection, SmtpOptions
    from nmail.servers.heap import settle

    options = SmtpOptions(hostname="mx.test.local", max_message_size=10 << 20)
    commands = FORMS[form]
    settle()  # the collector as a server process has it
    for _ in range(count):
        conn = SmtpConnection(options)
        conn.data_to_send()
        for data in commands:
            conn.receive_data(data)
            while True:
                event = conn.next_event()
                if event is None:
                    break
                if event.needs_decision:
                    conn.answer(ACCEPT)
            conn.data_to_send()


def count_instructions(count: int, form: str, out: Path, keep: bool) -> int:
    dump = out / f"cg.{form}.{count}"
    subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={dump}",
         sys.executable, __file__, "--inner", str(count), form],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    text = dump.read_text(errors="replace")
    match = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
    if match is None:
        raise SystemExit(f"no totals in {dump}")
    if not keep:
        dump.unlink()
    return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=2000, help="sessions per form")
    parser.add_argument("--form", action="append", choices=sorted(FORMS))
    parser.add_argument("--keep", action="store_true", help="keep the dumps (callgrind_annotate)")
    parser.add_argument("--inner", nargs=2, metavar=("N", "FORM"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        inner(int(args.inner[0]), args.inner[1])
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind not found: apt-get install valgrind")
    out = Path(tempfile.mkdtemp(prefix="smtp-parse-callgrind-", dir=os.environ.get("TMPDIR")))
    print(f"instructions per message, parse and answer (callgrind, {args.n} sessions):")
    for form in args.form or list(FORMS):
        base = count_instructions(0, form, out, args.keep)
        total = count_instructions(args.n, form, out, args.keep)
        print(f"  {form:12s} {(total - base) / args.n:10,.0f}")
    if args.keep:
        print(f"dumps kept in {out}")
    else:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()

"""`nmail bounce ...`: read returned mail, and report the refusals the queue met.

analyze FILE... prints what each bounce says (exit 0: all bounces; 2: some
file is not a bounce; 1: some file could not be read or is not mail);
report [--days N] shows the queue's classified refusals by destination
domain and category; categories lists the catalogue. `--json` everywhere
for scripts (and the admin console).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.text import Text

from nmail.bounce import catalogue
from nmail.bounce.analysis import BounceAnalysis, analyze
from nmail.bounce.categories import UNKNOWN
from nmail.bounce.outbound_log import RefusalLog, ReportLine
from nmail.cli.context import CliContext, print_error
from nmail.cli.outside_text import escape_json_text

EXIT_NOT_BOUNCE = 2
MAX_FILE_BYTES = 64 * 1024 * 1024


def register(commands: Any) -> None:
    p = commands.add_parser("bounce", help="returned mail: analyze bounces, report refusals")
    sub = p.add_subparsers(dest="bounce_command", metavar="ACTION", required=True)

    an = sub.add_parser(
        "analyze", help="why mail came back: recipient, code, category, remedy (exit 2: no bounce)"
    )
    an.add_argument("files", metavar="FILE", nargs="+",
                    help="message files (.eml, Maildir files; - reads standard input)")
    an.add_argument("--json", action="store_true", help="one JSON object per file, as a list")
    an.add_argument("--lang", choices=("en", "ko"), default="en", help="language of the texts")
    an.set_defaults(handler=analyze_cmd)

    rep = sub.add_parser("report", help="remote refusals of outbound mail by domain and category")
    rep.add_argument("--days", type=_days, default=1, metavar="N", help="the last N days (1)")
    rep.add_argument("--json", action="store_true", help="JSON for scripts")
    rep.add_argument("--lang", choices=("en", "ko"), default="en", help="language of the titles")
    rep.set_defaults(handler=report_cmd)

    cat = sub.add_parser("categories", help="the return-mail categories with remedies")
    cat.add_argument("--json", action="store_true", help="JSON for scripts")
    cat.add_argument("--lang", choices=("en", "ko"), default="en", help="language of the texts")
    cat.set_defaults(handler=categories_cmd)


def _days(value: str) -> int:
    try:
        days = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of days: {value!r}") from None
    if not 1 <= days <= 3650:
        raise argparse.ArgumentTypeError("days must be between 1 and 3650")
    return days


def analyze_cmd(args: argparse.Namespace, ctx: CliContext) -> int:
    results: list[dict[str, Any]] = []
    status = 0
    for name in args.files:
        data = _read_mail(name)
        if data is None:
            status = 1
            continue
        result = analyze(data)
        if result is None:
            status = status or EXIT_NOT_BOUNCE
            if args.json:
                results.append({"file": name, "bounce": False})
            else:
                ctx.out.print(Text(f"{name}: not a bounce"))
            continue
        if args.json:
            results.append({"file": name, "bounce": True, **result.to_dict()})
        else:
            _print_analysis(ctx, name, result, args.lang)
    if args.json:
        print(escape_json_text(json.dumps(results, ensure_ascii=False, indent=1)))
    return status


def _read_mail(name: str) -> bytes | None:
    """The file's bytes, or None after one line on stderr saying why not."""
    path = Path(name)
    try:
        if name == "-":
            data = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
        elif path.is_dir():
            print_error(f"{name}: is a directory, not a message file")
            return None
        else:
            with path.open("rb") as handle:
                data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        print_error(f"{name}: cannot read: {exc.strerror or exc}")
        return None
    if len(data) > MAX_FILE_BYTES:
        print_error(f"{name}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MB, not analyzed")
        return None
    if not _looks_like_mail(data):
        print_error(f"{name}: not a mail message (no header fields at the top)")
        return None
    return data


def _looks_like_mail(data: bytes) -> bool:
    """A header field ("Name: value") on the first line (after an mbox From_ line), no NULs."""
    if not data or b"\x00" in data[:65536]:
        return False
    first = data.split(b"\n", 2)
    line = first[1] if data.startswith(b"From ") and len(first) > 1 else first[0]
    name, colon, _ = line.partition(b":")
    return bool(colon) and 0 < len(name) <= 76 and all(33 <= b <= 126 for b in name)


def _print_analysis(ctx: CliContext, name: str, result: BounceAnalysis, lang: str) -> None:
    kind = "delay warning" if result.delayed else "bounce"
    origin = f" from {result.server}" if result.server else ""
    ctx.out.print(Text(f"{name}: {kind}{origin} ({result.source})"))
    if result.date:
        ctx.out.print(Text(f"  date:      {_stamp(result.date)}"))
    if result.original_subject or result.original_message_id:
        message_id = f"<{result.original_message_id}>" if result.original_message_id else ""
        ctx.out.print(Text(f"  original:  {result.original_subject} {message_id}".rstrip()))
    if not result.recipients:
        entry = catalogue.category(UNKNOWN)
        ctx.out.print(Text(f"  no failed recipient found: {entry.title(lang)}"))
        ctx.out.print(Text("  " + result.text[:500].replace("\n", "\n  ")))
    for rcpt in result.recipients:
        entry = catalogue.category(rcpt.category)
        codes = " ".join(x for x in (str(rcpt.code or ""), rcpt.status) if x) or "-"
        ctx.out.print(Text(f"  recipient: {rcpt.address} ({rcpt.action})"))
        ctx.out.print(Text(f"  category:  {entry.title(lang)} [{entry.id}]"))
        ctx.out.print(Text(f"  code:      {codes}   remote host: {rcpt.remote_host or '-'}"))
        ctx.out.print(Text(f"  reply:     {rcpt.diagnostic or '-'}"))
        ctx.out.print(Text(f"  why:       {entry.explanation(lang)}"))
        ctx.out.print(Text(f"  remedy:    {entry.remedy(lang)}"))


def report_cmd(args: argparse.Namespace, ctx: CliContext) -> int:
    now = int(time.time())
    since = now - args.days * 86400
    lines = RefusalLog(ctx.engine).report(since)
    if args.json:
        print(escape_json_text(json.dumps(
            {"since": since, "until": now, "days": args.days,
             "lines": [line.to_dict() for line in lines]},
            ensure_ascii=False, indent=1,
        )))
        return 0
    ctx.out.print(Text(f"Refused outbound mail since {_stamp(since)} ({args.days} day"
                       f"{'s' if args.days != 1 else ''}):"))
    if not lines:
        ctx.out.print(Text("  none"))
        return 0
    for line in lines:
        ctx.out.print(Text(_report_line(line, now, args.lang)))
    return 0


def _report_line(line: ReportLine, now: int, lang: str) -> str:
    title = catalogue.category(line.category).title(lang)
    plural = "message" if line.messages == 1 else "messages"
    since = _clock(line.first, now)
    text = f"  {line.domain}: {title}, {line.messages} {plural} since {since}"
    if line.refusals != line.messages:
        text += f" ({line.refusals} refusals)"
    if line.last_reply:
        text += f"\n      last: {line.last_reply[:200]}"
        if line.last_host:
            text += f" [{line.last_host}]"
    return text


def categories_cmd(args: argparse.Namespace, ctx: CliContext) -> int:
    if args.json:
        print(json.dumps([
            {"id": c.id, "title_ko": c.title_ko, "title_en": c.title_en,
             "explanation_ko": c.explanation_ko, "explanation_en": c.explanation_en,
             "remedy_ko": c.remedy_ko, "remedy_en": c.remedy_en, "examples": list(c.examples)}
            for c in catalogue.CATEGORIES
        ], ensure_ascii=False, indent=1))
        return 0
    for entry in catalogue.CATEGORIES:
        ctx.out.print(Text(f"{entry.id}: {entry.title(args.lang)}", style="bold"))
        ctx.out.print(Text(f"  {entry.explanation(args.lang)}"))
        ctx.out.print(Text(f"  -> {entry.remedy(args.lang)}"))
        for example in entry.examples:
            ctx.out.print(Text(f"     e.g. {example}"))
    return 0


def _stamp(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _clock(seconds: int, now: int) -> str:
    """HH:MM UTC today, the date as well for an earlier day."""
    when = datetime.fromtimestamp(seconds, tz=UTC)
    if when.date() == datetime.fromtimestamp(now, tz=UTC).date():
        return when.strftime("%H:%M UTC")
    return when.strftime("%m-%d %H:%M UTC")

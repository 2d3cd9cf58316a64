"""`nmail queue ...`: look at and act on the outbound queue.

list (id, sender, recipients, attempts, next try, last error), show ID,
retry ID|--all, delete ID, bounce ID. The queue is shared through the
database, so these work whether or not `nmail serve` is running; a bounce
for a local sender is finished by the running server (it owns local
delivery).
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from nmail.cli.context import CliContext, CliError
from nmail.queue.errors import QueueEntryNotFound
from nmail.queue.outbound import OutboundQueue
from nmail.queue.queue_entry import QueueEntry


def register(commands: Any) -> None:
    p = commands.add_parser("queue", help="outbound mail queue: list, show, retry, delete, bounce")
    sub = p.add_subparsers(dest="queue_command", metavar="ACTION", required=True)

    lst = sub.add_parser("list", help="messages waiting to leave (and unreadable entries)")
    lst.set_defaults(handler=list_cmd)

    show = sub.add_parser("show", help="one entry: envelope, recipients, headers")
    show.add_argument("id", metavar="ID")
    show.set_defaults(handler=show_cmd)

    retry = sub.add_parser("retry", help="try an entry (or all of them) now")
    target = retry.add_mutually_exclusive_group(required=True)
    target.add_argument("id", metavar="ID", nargs="?")
    target.add_argument("--all", action="store_true", help="every queued entry")
    retry.set_defaults(handler=retry_cmd)

    delete = sub.add_parser("delete", help="remove an entry without notifying anyone")
    delete.add_argument("id", metavar="ID")
    delete.set_defaults(handler=delete_cmd)

    bounce = sub.add_parser("bounce", help="give up on an entry and notify its sender")
    bounce.add_argument("id", metavar="ID")
    bounce.set_defaults(handler=bounce_cmd)


def open_queue(ctx: CliContext) -> OutboundQueue:
    """The queue over the data directory's database and queue directory."""
    from nmail.directory import Directory

    directory = Directory(ctx.engine)
    return OutboundQueue(
        ctx.engine, ctx.config.queue_dir, ctx.config, is_local_domain=directory.is_hosted
    )


def _stamp(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _when(seconds: int | None) -> str:
    """A next-attempt time: '-' for none, 'now' when due."""
    if seconds is None:
        return "-"
    return "now" if seconds <= time.time() else _stamp(seconds)


def _short(text: str | None, width: int = 60) -> str:
    if not text:
        return ""
    return text if len(text) <= width else text[: width - 1] + "…"


def list_cmd(args: argparse.Namespace, ctx: CliContext) -> int:
    entries = open_queue(ctx).list_entries()
    if not entries:
        ctx.out.print("queue is empty")
        return 0
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    table.add_column("ID", no_wrap=True)  # ids are copied into other commands: keep whole
    table.add_column("Sender / recipients", overflow="fold", ratio=3)
    table.add_column("Tries", justify="right")
    table.add_column("Next try", overflow="fold")
    table.add_column("Last error", overflow="fold", ratio=2)
    for entry in entries:
        lines = [entry.message.sender or "<>"] + [f"  {r.address}" for r in entry.pending]
        next_try = _when(entry.next_attempt) if entry.state == "queued" else entry.state
        table.add_row(
            Text(entry.id), Text("\n".join(lines)), Text(str(entry.attempts)),
            Text(next_try), Text(_short(entry.last_error, 120)),
        )
    ctx.out.print(table)
    ctx.out.print(f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}", markup=False)
    return 0


def show_cmd(args: argparse.Namespace, ctx: CliContext) -> int:
    queue = open_queue(ctx)
    entry = _entry(queue, args.id)
    msg = entry.message
    facts = [
        ("ID", msg.id),
        ("Sender", msg.sender or "<>"),
        ("Size", f"{msg.size} bytes"),
        ("Queued", _stamp(msg.created_at)),
        ("State", entry.state),
        ("Client", " ".join(x for x in (msg.client_ip, msg.auth_user) if x) or "-"),
        ("Bounce", "yes" if msg.is_bounce else "no"),
        ("Body", str(entry.body_path) if entry.body_path else "(missing)"),
    ]
    for name, value in facts:
        ctx.out.print(Text(f"{name + ':':<9} {value}"))
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    for column in ("Recipient", "State", "Attempts", "Next try", "Remote host", "Last reply"):
        table.add_column(column, overflow="fold")
    for row in entry.recipients:
        table.add_row(
            Text(row.address), Text(row.state), Text(str(row.attempts)),
            Text(_when(row.next_attempt) if row.state == "queued" else "-"),
            Text(row.remote_host or "-"), Text(row.last_error or ""),
        )
    ctx.out.print(table)
    headers = _headers(entry)
    if headers:
        ctx.out.print(Text(headers))
    return 0


def retry_cmd(args: argparse.Namespace, ctx: CliContext) -> int:
    queue = open_queue(ctx)
    if args.all:
        count = queue.retry(None)
    else:
        _entry(queue, args.id)
        count = queue.retry(args.id)
    ctx.out.print(f"{count} recipient(s) will be tried now", markup=False)
    return 0


def delete_cmd(args: argparse.Namespace, ctx: CliContext) -> int:
    queue = open_queue(ctx)
    _entry(queue, args.id)
    queue.delete(args.id)
    ctx.out.print(f"deleted {args.id}", markup=False)
    return 0


def bounce_cmd(args: argparse.Namespace, ctx: CliContext) -> int:
    queue = open_queue(ctx)
    entry = _entry(queue, args.id)
    if not entry.pending:
        raise CliError(f"queue entry {args.id} has no recipient left to bounce")
    result = queue.bounce(args.id)
    if result.marked == 0:
        raise CliError(f"queue entry {args.id} is being delivered right now; try again shortly")
    if result.sent_now:
        ctx.out.print(f"bounced {args.id}: {result.marked} recipient(s), sender notified",
                      markup=False)
    else:
        ctx.out.print(
            f"bounced {args.id}: {result.marked} recipient(s); the running server sends"
            " the notice to the local sender", markup=False,
        )
    return 0


def _entry(queue: OutboundQueue, queue_id: str) -> QueueEntry:
    try:
        return queue.show(queue_id)
    except QueueEntryNotFound:
        raise CliError(f"no queue entry {queue_id!r} (see `nmail queue list`)") from None


def _headers(entry: QueueEntry, limit: int = 8192) -> str:
    if entry.body_path is None:
        return ""
    try:
        with entry.body_path.open("rb") as handle:
            head = handle.read(limit)
    except OSError:
        return ""
    end = head.find(b"\r\n\r\n")
    block = head if end < 0 else head[:end]
    return block.decode("utf-8", "replace").replace("\r\n", "\n")

"""Delivery status notifications: RFC 3464 multipart/report messages.

`build_dsn` writes the whole notice as bytes (CRLF): a human part in
Korean and English naming each recipient, the remote host and its exact
reply; a message/delivery-status part; and the original headers
(text/rfc822-headers), or the whole original when the sender asked for
RET=FULL (of a large one, its beginning: queue/notice_original.py).
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from email.utils import formatdate

from nmail.bounce import texts

ACTIONS = ("failed", "delayed", "relayed", "delivered")


@dataclass(frozen=True, slots=True)
class RecipientReport:
    """What the notice says about one recipient."""

    recipient: str
    action: str  # failed | delayed | relayed | delivered
    status: str  # RFC 3463, e.g. 5.1.1
    diagnostic: str | None = None  # the remote's reply, or our own reason
    remote_host: str | None = None
    last_attempt: float | None = None
    original_recipient: str | None = None  # ORCPT: "rfc822;user@example.com"
    will_retry_until: float | None = None


@dataclass(frozen=True, slots=True)
class DsnFacts:
    """The message the notice is about."""

    queue_id: str
    sender: str  # the original envelope sender: the notice goes to it
    arrival: float
    original: bytes  # the original message (CRLF)
    envid: str | None = None
    ret: str | None = None  # HDRS | FULL
    # RET=FULL of a large message: `original` is its beginning only, this the whole's size
    original_size: int | None = None


def build_dsn(
    facts: DsnFacts,
    reports: Sequence[RecipientReport],
    *,
    reporting_mta: str,
    now: float | None = None,
) -> bytes:
    """The complete notice, ready to deliver to facts.sender."""
    if not reports:
        raise ValueError("a delivery status notification needs at least one recipient")
    action = reports[0].action
    if any(rep.action not in ACTIONS for rep in reports):
        raise ValueError("unknown DSN action")
    when = time.time() if now is None else now
    boundary = f"=_nmail_{secrets.token_hex(12)}"
    # Everything that reaches a header line is cleaned: remote replies and
    # host names must not be able to add fields or lines of their own.
    reporting_mta = _ascii(reporting_mta)
    facts = replace(facts, queue_id=_ascii(facts.queue_id))
    reports = [_clean(rep) for rep in reports]
    subject = texts.SUBJECTS[action].format(id=facts.queue_id, domain=reporting_mta)
    full = (facts.ret or "").upper() == "FULL"

    headers = [
        f"From: Mail Delivery System <MAILER-DAEMON@{reporting_mta}>",
        f"To: <{_ascii(facts.sender)}>",
        f"Subject: {subject}",
        f"Date: {formatdate(when, localtime=False)}",
        f"Message-ID: <{facts.queue_id}.{secrets.token_hex(6)}@{reporting_mta}>",
        "MIME-Version: 1.0",
        "Auto-Submitted: auto-replied",
    ]
    original_id = _header(facts.original, b"message-id")
    if original_id:
        headers += [f"In-Reply-To: {original_id}", f"References: {original_id}"]
    if action == "failed":
        server = next((rep.remote_host for rep in reports if rep.remote_host), "-")
        headers.append(f"X-MailerError: Message = [{facts.queue_id}] Server = [{server}]")
    headers.append(
        "Content-Type: multipart/report; report-type=delivery-status;\r\n"
        f'\tboundary="{boundary}"'
    )

    human = _human_text(facts, reports, reporting_mta, full)
    status, status_type = _status_part(facts, reports, reporting_mta)
    parts = [
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(human.replace("\n", "\r\n").encode("utf-8")).replace(b"\n", b"\r\n"),
        f"Content-Type: {status_type}\r\n".encode("ascii")
        + (b"Content-Transfer-Encoding: 8bit\r\n" if status_type.startswith("message/global")
           else b"")
        + b"\r\n" + status,
        _original_part(facts.original, full),
    ]
    out = bytearray()
    out += ("\r\n".join(headers) + "\r\n\r\n").encode("utf-8")
    out += b"This is a MIME-encapsulated delivery status notification.\r\n"
    for part in parts:
        out += f"\r\n--{boundary}\r\n".encode("ascii") + part
        if not part.endswith(b"\r\n"):
            out += b"\r\n"
    out += f"\r\n--{boundary}--\r\n".encode("ascii")
    return bytes(out)


def _human_text(
    facts: DsnFacts, reports: Sequence[RecipientReport], mta: str, full: bool
) -> str:
    action = reports[0].action
    until = next((r.will_retry_until for r in reports if r.will_retry_until), None)
    lines = [texts.INTRO.format(mta=mta)]
    lines.append(texts.LEAD[action].format(until=_date(until) if until else "-"))
    if action == "failed":
        lines.append(texts.HEADLINE.format(id=facts.queue_id, domain=mta) + "\n")
    for rep in reports:
        block = texts.RECIPIENT_BLOCK.format(
            id=facts.queue_id, sender=facts.sender, rcpt=rep.recipient,
            server=rep.remote_host or "-",
        )
        lines.append(block)
        if rep.diagnostic:
            template = texts.REASON if action == "failed" else texts.LAST_REPLY
            lines.append(template.format(reason=rep.diagnostic))
    whole = facts.original_size or 0
    if full and whole > len(facts.original):
        lines.append(texts.ATTACHED_BEGINNING.format(
            quoted=_mib(len(facts.original)), size=_mib(whole)))
    else:
        lines.append(texts.ATTACHED_MESSAGE if full else texts.ATTACHED_HEADERS)
    return "\n".join(lines)


def _status_part(
    facts: DsnFacts, reports: Sequence[RecipientReport], mta: str
) -> tuple[bytes, str]:
    fields = [f"Reporting-MTA: dns; {mta}", f"X-Nmail-Queue-ID: {facts.queue_id}"]
    if facts.envid:
        fields.append(f"Original-Envelope-Id: {_ascii(facts.envid)}")
    fields.append(f"Arrival-Date: {_date(facts.arrival)}")
    utf8 = any(not rep.recipient.isascii() for rep in reports)
    for rep in reports:
        fields.append("")
        if rep.original_recipient:
            kind, sep, addr = rep.original_recipient.partition(";")
            value = f"{kind.strip()}; {addr.strip()}" if sep else f"rfc822; {kind.strip()}"
            fields.append(f"Original-Recipient: {value}")
        addr_type = "utf-8" if not rep.recipient.isascii() else "rfc822"
        fields.append(f"Final-Recipient: {addr_type}; {rep.recipient}")
        fields.append(f"Action: {rep.action}")
        fields.append(f"Status: {rep.status}")
        if rep.remote_host:
            fields.append(f"Remote-MTA: dns; {_ascii(rep.remote_host)}")
        if rep.diagnostic:
            fields.append(_diagnostic(rep.diagnostic))
        if rep.last_attempt is not None:
            fields.append(f"Last-Attempt-Date: {_date(rep.last_attempt)}")
        if rep.will_retry_until is not None:
            fields.append(f"Will-Retry-Until: {_date(rep.will_retry_until)}")
    body = ("\r\n".join(fields) + "\r\n").encode("utf-8")
    kind = "message/global-delivery-status" if utf8 else "message/delivery-status"
    return body, kind


def _clean(rep: RecipientReport) -> RecipientReport:
    return RecipientReport(
        recipient=_line(rep.recipient),
        action=rep.action,
        status=_ascii(rep.status),
        diagnostic=_line(rep.diagnostic) if rep.diagnostic else None,
        remote_host=_ascii(rep.remote_host) if rep.remote_host else None,
        last_attempt=rep.last_attempt,
        original_recipient=_ascii(rep.original_recipient) if rep.original_recipient else None,
        will_retry_until=rep.will_retry_until,
    )


def _line(text: str) -> str:
    """One line of printable text (non-ASCII letters kept, controls gone)."""
    cleaned = "".join(ch if ch.isprintable() else " " for ch in text)
    return " ".join(cleaned.split())


def _diagnostic(text: str) -> str:
    """Diagnostic-Code: an SMTP reply is typed smtp; our own words X-nmail."""
    clean = _ascii(text)
    kind = "smtp" if clean[:3].isdigit() else "X-nmail"
    return _fold(f"Diagnostic-Code: {kind}; {clean}")


def _original_part(original: bytes, full: bool) -> bytes:
    if full:
        return b"Content-Type: message/rfc822\r\n\r\n" + original
    end = original.find(b"\r\n\r\n")
    head = original if end < 0 else original[: end + 2]
    cte = b"" if head.isascii() else b"Content-Transfer-Encoding: 8bit\r\n"
    return b"Content-Type: text/rfc822-headers\r\n" + cte + b"\r\n" + head


def _header(message: bytes, name: bytes) -> str | None:
    end = message.find(b"\r\n\r\n")
    head = message if end < 0 else message[:end]
    for line in head.split(b"\r\n"):
        key, colon, value = line.partition(b":")
        if colon and key.strip().lower() == name:
            text = _ascii(value.decode("ascii", "replace").strip())
            return text if text.startswith("<") and text.endswith(">") else None
    return None


def _ascii(text: str) -> str:
    """One line of printable ASCII: what a header field may carry safely."""
    cleaned = "".join(ch if " " <= ch <= "~" else " " for ch in text)
    return " ".join(cleaned.split())


def _fold(line: str, width: int = 76) -> str:
    if len(line) <= width:
        return line
    out: list[str] = []
    current = ""
    for word in line.split(" "):
        if current and len(current) + 1 + len(word) > width:
            out.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    out.append(current)
    return "\r\n ".join(out)


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"


def _date(when: float) -> str:
    return formatdate(when, localtime=False)

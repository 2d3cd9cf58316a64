"""Reading a returned message: who failed, why, and which category that is.

`analyze(raw)` answers None for anything that is not a bounce (ordinary
mail, auto-replies, read receipts, success notices, a message that only
quotes a bounce) and a `BounceAnalysis` otherwise. Two sources, best
first: an RFC 3464 delivery-status part (every recipient, status,
remote MTA, diagnostic); the human text, for the servers that send none
or leave out the reply (text_scan.py). Each failed recipient is then
classified by the rule table (rules.py).

Whether a message without a delivery-status part is a bounce is decided
by who sent it and what it looks like: a mailer daemon (From, or the
empty Return-Path with a bounce subject) whose text names a failed
recipient, a reply or a bounce marker. A person's message that quotes a
bounce, or forwards one, does not qualify; neither does an auto-reply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from nmail.bounce.categories import UNKNOWN
from nmail.bounce.message_view import MessageView, read_message
from nmail.bounce.replies import reply_codes, status_class
from nmail.bounce.rules import classify
from nmail.bounce.status_fields import StatusRecipient, read_status
from nmail.bounce.text_scan import ADDRESS, FoundRecipient, TextScan, scan_text
from nmail.mime.dates import parse_date
from nmail.mime.headers import decode_header_value, parse_addresses
from nmail.mime.threads import first_message_id

_DAEMON_LOCAL = re.compile(r"^(?:mailer-?daemon|mail-?daemon|postmaster|mdaemon|bounces?|"
                           r"mail-?delivery|nobody-bounce)$", re.IGNORECASE)
_DAEMON_NAME = re.compile(r"mail delivery (?:system|subsystem|service)|mailer[- ]daemon|"
                          r"mail administrator|postmaster"
                          r"|메일 ?(?:전송|발송|배달) ?(?:시스템|관리자)",
                          re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|returned mail|mail returned|delivery (?:status notification|failure|failed"
    r"|has failed|report|problem)|mail delivery failed|failure notice|non[- ]?delivery"
    r"|could not be delivered|error sending message|returned to sender|delivery delayed"
    r"|메일 ?(?:발송|전송|전달|배달) ?(?:실패|불가|지연)|반송|(?:발송|전송) ?실패",
    re.IGNORECASE,
)
_REPLY_SUBJECT = re.compile(r"^\s*(?:re|fwd?|aw|wg|sv|회신|전달|답장)\s*(?:\[\d+\])?\s*[:：]",
                            re.IGNORECASE)
_AUTO_REPLY_SUBJECT = re.compile(
    r"out of (?:the )?office|automatic reply|auto(?:matic)?[- ]?(?:reply|response)|autoreply"
    r"|vacation|자동 ?응답|자동 ?회신|부재", re.IGNORECASE)
_MARKERS = re.compile(
    r"XMail bounce|qmail-send program|This is the mail system at host|mail delivery software"
    r"|permanent fatal errors|Transcript of session follows|Delivery has failed to these"
    r"|Delivery to the following recipient|wasn't delivered to|unable to deliver your message"
    r"|could not be delivered to one or more|message could not be delivered"
    r"|delivery to the following recipients? failed|The following address\(es\) failed"
    r"|메일을 (?:보낼|전달할|전송할|배달할) 수 없|전달되지 (?:못|않)|반송되었",
    re.IGNORECASE,
)
# What sent the bounce, for display and statistics: the first in this order
# with one of its words (lowercase) in the bounce. Plain substrings: this
# runs on every bounce and a regular expression per vendor cost more than
# the rest of the analysis.
_SERVERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("nmail", ("x-nmail-queue-id",)),
    ("xmail", ("xmail bounce", "[<01>] error sending message")),
    ("naver", ("naver.com", "네이버")),
    ("daum", ("daum.net", "hanmail.net", "kakao.com", "다음 메일", "다음메일", "카카오")),
    ("nate", ("nate.com", "네이트")),
    ("gmail", ("google.com", "gmail", "googlemail")),
    ("yahoo", ("yahoo",)),
    ("exchange", ("delivery has failed to these", "diagnostic information for administrators",
                  "microsoft exchange", "outlook.com", "resolver.", "microsoft outlook")),
    ("qmail", ("qmail-send program",)),
    ("postfix", ("this is the mail system at host", "postfix")),
    ("exim", ("mail delivery software", "the following address(es) failed", "exim")),
    ("sendmail", ("transcript of session follows", "permanent fatal errors", "sendmail")),
)
_ORIGINAL_SUBJECT = re.compile(r"^Subject:[ \t]*(.*(?:\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)
_ORIGINAL_ID = re.compile(r"^Message-ID:[ \t]*(<[^>\n]*>)", re.IGNORECASE | re.MULTILINE)
_SHOWN_TEXT = 4000  # characters of the human text kept for "unknown" display
_FAILING_ACTIONS = ("failed", "delayed")
_SUCCESS_ACTIONS = ("delivered", "relayed", "expanded")


@dataclass(frozen=True, slots=True)
class FailedRecipient:
    """One recipient the bounce reports, and why it failed."""

    address: str
    action: str  # failed | delayed
    code: int | None  # basic SMTP code (550), None when unknown
    status: str  # RFC 3463 enhanced status (5.1.1), "" when unknown
    remote_host: str  # "" when unknown
    diagnostic: str  # the remote server's reply (or the bounce's words), verbatim
    category: str  # a catalogue id

    @property
    def permanent(self) -> bool:
        """True unless the refusal is known to be temporary (or still being retried)."""
        return self.action != "delayed" and status_class(self.code, self.status) != "4"

    def to_dict(self) -> dict[str, Any]:
        return {
            "address": self.address, "action": self.action, "code": self.code,
            "status": self.status, "remote_host": self.remote_host,
            "diagnostic": self.diagnostic, "category": self.category,
            "permanent": self.permanent,
        }


@dataclass(frozen=True, slots=True)
class BounceAnalysis:
    """What a bounce says."""

    recipients: tuple[FailedRecipient, ...]  # may be empty: a bounce naming no one we could find
    source: str  # "dsn" (RFC 3464 part) or "text" (read from prose)
    server: str  # the software or provider that wrote it ("" when unknown)
    reporting_mta: str
    date: int  # Unix seconds: last attempt, arrival or the bounce's Date (0 if none)
    original_subject: str
    original_message_id: str
    text: str  # the bounce's human-readable text (bounded), for "unknown"

    @property
    def category(self) -> str:
        """The first recipient's category; "unknown" when none was found."""
        return self.recipients[0].category if self.recipients else UNKNOWN

    @property
    def delayed(self) -> bool:
        """Only a delay warning: the mail server is still trying."""
        return bool(self.recipients) and all(r.action == "delayed" for r in self.recipients)

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": self.category, "delayed": self.delayed, "source": self.source,
            "server": self.server, "reporting_mta": self.reporting_mta, "date": self.date,
            "original_subject": self.original_subject,
            "original_message_id": self.original_message_id,
            "recipients": [r.to_dict() for r in self.recipients],
            "text": self.text,
        }


def analyze(raw: bytes) -> BounceAnalysis | None:
    """The analysis of a returned message; None when `raw` is not a bounce."""
    view = read_message(raw)
    if view.report_type in ("disposition-notification", "feedback-report"):
        return None  # a read receipt or an abuse report
    status_part = view.report()
    dsn_recipients: list[StatusRecipient] = []
    reporting_mta = arrival = ""
    if status_part is not None:
        report = read_status(status_part)
        reporting_mta, arrival = report.reporting_mta, report.arrival_date
        dsn_recipients = [r for r in report.recipients if _failing(r) and _address_of(r)]
        if report.recipients and all(r.action in _SUCCESS_ACTIONS for r in report.recipients):
            return None  # a success notice
    has_report = status_part is not None
    if not dsn_recipients and not _sent_like_a_bounce(view, has_report):
        return None
    text = "\n\n".join(view.texts())
    scan = scan_text(text, _own_addresses(view))
    if not dsn_recipients and not _reads_like_a_bounce(view, has_report, text, scan):
        return None
    if dsn_recipients:
        recipients = _from_dsn(dsn_recipients, scan)
        source = "dsn"
    else:
        recipients = _from_text(scan, view)
        source = "text"
    subject, message_id = view.original()
    if not subject and not message_id and scan.original:
        subject, message_id = _original_in_text(scan.original)
    date = _date(dsn_recipients, arrival, view)
    return BounceAnalysis(
        recipients=tuple(recipients),
        source=source,
        server=_server(view, status_part or "", text),
        reporting_mta=reporting_mta,
        date=date,
        original_subject=subject,
        original_message_id=message_id,
        text=text[:_SHOWN_TEXT].strip(),
    )


def _failing(rcpt: StatusRecipient) -> bool:
    if rcpt.action:
        return rcpt.action in _FAILING_ACTIONS
    return rcpt.status[:1] in ("4", "5")  # no Action field: the status tells


def _address_of(rcpt: StatusRecipient) -> str:
    """Final-Recipient, else Original-Recipient: the first that is an address at all."""
    for value in (rcpt.final_recipient, rcpt.original_recipient):
        if "@" in value:
            return value
    return ""


def _sent_like_a_bounce(view: MessageView, has_report: bool) -> bool:
    """What the header says: a mailer daemon's or a report, not a person's reply.

    Checked before any text is decoded, so ordinary mail costs little.
    """
    subject = view.field(b"subject")
    if _REPLY_SUBJECT.match(subject):
        return False  # a person replying to or forwarding a bounce
    daemon = _from_daemon(view)
    if not daemon and (view.fields.get(b"x-autoreply") or view.fields.get(b"x-autorespond")
                       or _AUTO_REPLY_SUBJECT.search(subject)):
        return False
    null_sender = view.field(b"return-path").strip() in ("<>", "")
    return (daemon or has_report or view.report_type == "delivery-status"
            or b"x-failed-recipients" in view.fields
            or (_BOUNCE_SUBJECT.search(subject) is not None and null_sender
                and b"return-path" in view.fields))


def _reads_like_a_bounce(view: MessageView, has_report: bool, text: str, scan: TextScan) -> bool:
    """What the text says: a bounce marker, a failed recipient or a bounce subject."""
    if scan.xmail or _MARKERS.search(text[:20000]) is not None:
        return True
    subject = view.field(b"subject")
    return bool(scan.recipients) or _BOUNCE_SUBJECT.search(subject) is not None or has_report


def _from_daemon(view: MessageView) -> bool:
    raw = view.fields.get(b"from")
    if not raw:
        return False
    for name, address in parse_addresses(raw):
        local = address.rpartition("@")[0] if "@" in address else address
        if _DAEMON_LOCAL.match(local) or _DAEMON_NAME.search(name):
            return True
    return False


def _own_addresses(view: MessageView) -> frozenset[str]:
    """The bounce's own From/To: never a failed recipient (To is the original sender)."""
    out: set[str] = set()
    for name in (b"from", b"to"):
        raw = view.fields.get(name)
        if raw:
            out.update(address.lower() for _, address in parse_addresses(raw) if address)
    return frozenset(out)


def _from_dsn(rcpts: list[StatusRecipient], scan: TextScan) -> list[FailedRecipient]:
    by_address = {found.address.lower(): found for found in scan.recipients}
    out = []
    for rcpt in rcpts:
        address = _address_of(rcpt)
        found = by_address.get(address.lower())
        diagnostic = rcpt.diagnostic or (found.diagnostic if found else "") or (
            scan.diagnostic if len(rcpts) == 1 else "")
        remote = rcpt.remote_mta or (found.remote_host if found else "") or scan.remote_host
        codes = reply_codes(diagnostic)
        status = rcpt.status if _plausible_status(rcpt.status) else codes.status
        action = rcpt.action or ("delayed" if status.startswith("4") else "failed")
        out.append(FailedRecipient(
            address=address, action=action, code=codes.code, status=status,
            remote_host=remote, diagnostic=diagnostic,
            category=classify(codes.code, status, diagnostic),
        ))
    return out


def _from_text(scan: TextScan, view: MessageView) -> list[FailedRecipient]:
    found = list(scan.recipients)
    if not found:
        # Exim names them in a header even when its text is odd.
        header = view.field(b"x-failed-recipients")
        found = [FoundRecipient(a, scan.diagnostic, scan.remote_host)
                 for a in re.findall(ADDRESS, header)]
    out = []
    for item in found:
        codes = reply_codes(item.diagnostic)
        status = codes.status
        out.append(FailedRecipient(
            address=item.address,
            action="delayed" if _is_delay(view) else "failed",
            code=codes.code, status=status, remote_host=item.remote_host,
            diagnostic=item.diagnostic,
            category=classify(codes.code, status, item.diagnostic),
        ))
    return out


def _is_delay(view: MessageView) -> bool:
    subject = view.field(b"subject")
    return re.search(r"delay|지연|warning", subject, re.IGNORECASE) is not None


def _plausible_status(status: str) -> bool:
    return re.fullmatch(r"[245]\.\d{1,3}\.\d{1,3}", status) is not None


def _original_in_text(original: str) -> tuple[str, str]:
    head = original[:16384]
    subject = _ORIGINAL_SUBJECT.search(head)
    message_id = _ORIGINAL_ID.search(head)
    return (
        decode_header_value(subject.group(1)) if subject else "",
        first_message_id(message_id.group(1)) if message_id else "",
    )


def _date(rcpts: list[StatusRecipient], arrival: str, view: MessageView) -> int:
    for value in [r.last_attempt for r in rcpts] + [arrival]:
        if value:
            when = parse_date(value)
            if when:
                return when
    raw = view.fields.get(b"date")
    return parse_date(raw) if raw else 0


def _server(view: MessageView, status_part: str, text: str) -> str:
    haystack = "\n".join((view.field(b"from"), status_part[:2000], text[:4000])).lower()
    for name, words in _SERVERS:
        if any(word in haystack for word in words):
            return name
    return ""

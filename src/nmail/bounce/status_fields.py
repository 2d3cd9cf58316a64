"""The message/delivery-status part of an RFC 3464 report, read into fields.

The part is groups of header-like fields separated by blank lines: the
first about the message (Reporting-MTA, Arrival-Date), one per recipient
after it (Final-Recipient, Action, Status, Remote-MTA, Diagnostic-Code,
Last-Attempt-Date). Real reports break the rules (no blank line after
the message group, a recipient's fields spread over groups, folded
diagnostics, 8-bit text): a group is taken as a recipient's as soon as
it names a recipient, and everything is bounded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_RECIPIENTS = 200
_FIELD = re.compile(r"^([A-Za-z][A-Za-z0-9-]*)[ \t]*:[ \t]*(.*)$")
_TYPED = re.compile(r"^\s*[A-Za-z0-9-]+\s*;\s*(.*)$", re.DOTALL)  # "rfc822; user@example.com"


@dataclass(frozen=True, slots=True)
class StatusRecipient:
    """One recipient's fields (values as written, type prefixes removed)."""

    final_recipient: str
    original_recipient: str
    action: str  # lowercased
    status: str
    remote_mta: str
    diagnostic: str
    last_attempt: str


@dataclass(frozen=True, slots=True)
class StatusReport:
    """The message fields and every recipient's."""

    reporting_mta: str
    arrival_date: str
    recipients: tuple[StatusRecipient, ...]


def read_status(text: str) -> StatusReport:
    """Parse a delivery-status part (never raises)."""
    groups = _groups(text)
    message: dict[str, str] = {}
    recipients: list[StatusRecipient] = []
    for fields in groups:
        if "final-recipient" in fields or "original-recipient" in fields:
            if len(recipients) < MAX_RECIPIENTS:
                recipients.append(_recipient(fields))
        else:
            for key, value in fields.items():
                message.setdefault(key, value)
            # A recipient group split by a stray blank line: its tail joins it.
            if recipients and ("action" in fields or "status" in fields
                               or "diagnostic-code" in fields):
                recipients[-1] = _merged(recipients[-1], fields)
    return StatusReport(
        reporting_mta=_untyped(message.get("reporting-mta", "")),
        arrival_date=message.get("arrival-date", ""),
        recipients=tuple(recipients),
    )


def _groups(text: str) -> list[dict[str, str]]:
    """Field groups: blank-line separated, folded lines joined, first occurrence kept.

    A group that holds both message and recipient fields without a blank
    line between them (seen in the wild) is split where the recipient begins.
    """
    groups: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last: str | None = None
    for line in text.splitlines():
        if not line.strip():
            if current:
                groups.append(current)
            current, last = {}, None
            continue
        if line[:1] in (" ", "\t") and last is not None:
            current[last] = f"{current[last]} {line.strip()}"
            continue
        found = _FIELD.match(line)
        if found is None:
            continue
        key = found.group(1).lower()
        if key in ("final-recipient", "original-recipient") and _starts_recipient(current, key):
            groups.append(current)
            current = {}
        if key in current:
            last = None  # a repeated field: the first one counts
            continue
        current[key] = found.group(2).strip()
        last = key
        if len(groups) > MAX_RECIPIENTS + 2:
            break
    if current:
        groups.append(current)
    return groups


def _starts_recipient(current: dict[str, str], key: str) -> bool:
    """Whether `key` begins a new recipient although no blank line came before it."""
    if "reporting-mta" in current or "arrival-date" in current or "final-recipient" in current:
        return True
    return key == "original-recipient" and key in current


def _recipient(fields: dict[str, str]) -> StatusRecipient:
    return StatusRecipient(
        final_recipient=_address(fields.get("final-recipient", "")),
        original_recipient=_address(fields.get("original-recipient", "")),
        action=fields.get("action", "").strip().lower(),
        status=fields.get("status", "").strip().split(" ")[0],
        remote_mta=_untyped(fields.get("remote-mta", "")),
        diagnostic=_untyped(fields.get("diagnostic-code", "")),
        last_attempt=fields.get("last-attempt-date", ""),
    )


def _merged(rcpt: StatusRecipient, fields: dict[str, str]) -> StatusRecipient:
    return StatusRecipient(
        final_recipient=rcpt.final_recipient,
        original_recipient=rcpt.original_recipient,
        action=rcpt.action or fields.get("action", "").strip().lower(),
        status=rcpt.status or fields.get("status", "").strip().split(" ")[0],
        remote_mta=rcpt.remote_mta or _untyped(fields.get("remote-mta", "")),
        diagnostic=rcpt.diagnostic or _untyped(fields.get("diagnostic-code", "")),
        last_attempt=rcpt.last_attempt or fields.get("last-attempt-date", ""),
    )


def _untyped(value: str) -> str:
    """"dns; mx.example.com" -> "mx.example.com"; "smtp; 550 ..." -> "550 ..."."""
    found = _TYPED.match(value)
    return (found.group(1) if found else value).strip()


def _address(value: str) -> str:
    return _untyped(value).strip("<> \t")

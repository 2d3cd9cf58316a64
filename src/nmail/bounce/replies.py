"""Reading the codes out of a remote server's reply text.

A reply comes quoted in many ways: "550 5.1.1 <u@d>: User unknown",
"550-5.7.1 ...", Exchange's "#550 5.1.1 RESOLVER.ADR.RecipNotFound ##",
qmail's "Remote host said: 554 delivery error: ...", the seed's
"5.1.0 - Unknown address error 550-'...'" or XMail's bare "417 Temporary
delivery error". `reply_codes` finds the basic code (550) and the RFC 3463
enhanced status (5.1.1) wherever they are; either may be missing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A basic code: three digits starting 2, 4 or 5 standing alone (not part of
# an IP address, a longer number or a version), at the start of the text or
# after a space, '#', quote or parenthesis, followed by space, '-' or the end.
_BASIC = re.compile(r"(?:^|(?<=[\s#'\"(\[=:]))([245][0-5]\d)(?=[ \-]|$|['\"])")
# RFC 3463: class.subject.detail; subjects 0-7 are the defined ones, which
# keeps Yahoo's "[#4.16.5]" and software versions out.
_ENHANCED = re.compile(r"(?<![\d.])([245])\.([0-7])\.(\d{1,3})(?![\d.]\d)")
_SCAN_LIMIT = 2000  # characters: a reply's codes come early


@dataclass(frozen=True, slots=True)
class ReplyCodes:
    """The codes a reply carries ("" / None when it has none)."""

    code: int | None  # basic SMTP reply code, e.g. 550
    status: str  # enhanced status code, e.g. "5.1.1"


def reply_codes(text: str) -> ReplyCodes:
    """The basic and enhanced codes of one reply (the first of each that fits)."""
    head = text[:_SCAN_LIMIT]
    basic = _BASIC.search(head)
    code = int(basic.group(1)) if basic else None
    status = ""
    if basic is not None:
        # The enhanced code right after the basic one is the reply's own.
        after = _ENHANCED.match(head, basic.end(1) + 1)
        if after is not None and after.group(1) == basic.group(1)[0]:
            status = after.group(0)
    if not status:
        found = _ENHANCED.search(head)
        if found is not None and (code is None or found.group(1) == str(code)[0]):
            status = found.group(0)
    return ReplyCodes(code, status)


def status_class(code: int | None, status: str) -> str:
    """'4' temporary, '5' permanent, '2' success, '?' when nothing says."""
    if status[:1] in ("2", "4", "5"):
        return status[0]
    if code is not None:
        return str(code)[0]
    return "?"

"""Failed recipients in the free text of a bounce (no delivery-status part).

Postfix, Sendmail, Exim, qmail, Exchange, Gmail, Yahoo and the Korean
portals all write their failures as prose, but the prose has a shape: a
line that names the recipient (`<u@d>:`, an address alone on a line,
"Rcpt To: <u@d>", "받는 사람: u@d", "wasn't delivered to u@d"), then
the remote host and its reply until the next such line. So the scan is
one table of recipient-line patterns and one of host patterns, not a
parser per vendor; XMail's own machine-readable first line
(`[<00>] XMail bounce: Rcpt=[...];Error=[...]`) is read exactly. The
returned original starts at one of the usual "copy of the message"
markers: text after it is never searched for recipients.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SCAN_CHARS = 32 * 1024  # characters of the human text searched for recipients
MAX_FOUND = 100
_DIAGNOSTIC_CHARS = 1000

ADDRESS = r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?" \
          r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+"
_XMAIL = re.compile(r"^\[<00>\] XMail bounce: Rcpt=\[([^\]\r\n]*)\];Error=\[(.*)\]\s*$", re.M)

# Where the copy of the original message begins.
_ORIGINAL_MARKERS = re.compile(
    r"^[ \t]*(?:"
    r"-+ ?Below this line is a copy of the message"
    r"|-+ ?This is a copy of the message"
    r"|-+ ?(?:Original|Returned|Unsent) message"
    r"|-+ ?The header of the original message is following"
    r"|\[<05>\]"
    r"|Original message headers:?\s*$"
    r"|-+ ?원본 ?(?:메일|메시지)|(?:원본|원문) (?:메일|메시지)(?:의 헤더)?(?:입니다|를 첨부)"
    r")",
    re.IGNORECASE | re.MULTILINE,
)

# Lines that name a failed recipient; group "a" is the address.
_RECIPIENT_LINES = tuple(re.compile(pattern, re.IGNORECASE) for pattern in (
    rf"^\s*<(?P<a>{ADDRESS})>\s*(?::|\.\.\.|\(|$)",  # Postfix, qmail, Sendmail
    rf"^\s{{0,12}}(?P<a>{ADDRESS})\s*(?:\((?:{ADDRESS}|[^()]*)\))?\s*:?\s*$",  # Exim, Gmail, MS
    rf"^\s*(?:original-|final-)?(?:recipient(?: address(?:es)?)?|rcpt to|to|받는 ?(?:사람|분|이)"
    rf"|수신자|수신인|받는 ?주소)\s*[:：]?\s*<?(?P<a>{ADDRESS})>?",
    rf"(?:wasn't|was not|couldn't be|could not be|cannot be|can't be) delivered to "
    rf"<?(?P<a>{ADDRESS})",
    rf"(?:your )?message to <?(?P<a>{ADDRESS})>? (?:cannot|could not|couldn't|was not)",
    rf"^\s*(?:delivery to|failed recipient:?|undeliverable to)\s+<?(?P<a>{ADDRESS})",
    rf"<?(?P<a>{ADDRESS})>?\s*(?:님)?(?:에게|으로|로) (?:보낸|발송한|전송한|보내신)",
))

# The remote host, as the formats name it; group "h" is the host.
_HOST_PATTERNS = tuple(re.compile(pattern, re.IGNORECASE | re.MULTILINE) for pattern in (
    r"\bhost (?P<h>[A-Za-z0-9.-]+\.[A-Za-z]{2,}|\d[\d.]+)\s*\[[0-9a-f.:]+\]",   # Postfix, Exim
    r"while talking to (?P<h>[A-Za-z0-9.-]+?)\.?:",                            # Sendmail
    r"^\s*(?:Server|Remote[- ]?(?:host|server|MTA)|Generating server)\s*:\s*"
    r"<?(?P<h>[A-Za-z0-9.:-]+)",
    r"\bConnected to (?P<h>[\d.]+|[A-Za-z0-9.-]+) but",                        # qmail
    r"^(?P<h>[\d.]+) does not like recipient",                                 # qmail
    r"\b(?:mail )?server (?P<h>[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+) (?:said|replied|responded)",
))

# A reply a server gave: its code starts a diagnostic.
_REPLY_START = re.compile(
    r"(?:^|(?<=[\s#'\"(:]))(?:[45][0-5]\d(?=[ \-]|$)|[45]\.[0-7]\.\d{1,3}(?=\s))", re.M
)

# Words that introduce a reply without a code ("Remote host said: Mail loop detected").
_LEAD_IN = re.compile(r"(?:remote host said|the response was|remote server returned)\s*:?\s*'?",
                      re.IGNORECASE)
# Lines that end a reply early: qmail's sign-off.
_REPLY_END = re.compile(r"\n\s*(?:Giving up on|I'm not going to try again)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class FoundRecipient:
    """A recipient named in the text, with what its block says."""

    address: str
    diagnostic: str
    remote_host: str


@dataclass(frozen=True, slots=True)
class TextScan:
    """What the free text says."""

    recipients: tuple[FoundRecipient, ...]
    diagnostic: str  # the first reply in the whole text ("" when none)
    remote_host: str
    original: str  # the text from the original-message marker on ("" when none)
    xmail: bool


def scan_text(text: str, exclude: frozenset[str] = frozenset()) -> TextScan:
    """Recipients, replies and hosts in a bounce's human text (addresses in `exclude` skipped)."""
    text = text[:SCAN_CHARS]
    marker = _ORIGINAL_MARKERS.search(text)
    head, original = (text[:marker.start()], text[marker.start():]) if marker else (text, "")
    xmail = _read_xmail(head, exclude)
    if xmail:
        host = _host(head)
        return TextScan(tuple(FoundRecipient(a, d, host) for a, d in xmail),
                        xmail[0][1], host, original, True)
    lines = head.splitlines()
    starts: list[tuple[int, str]] = []
    seen: set[str] = set()
    for number, line in enumerate(lines):
        if line.startswith(">") and not line.startswith(">>>"):
            continue  # quoted text
        address = _recipient_in(line)
        if address is None:
            continue
        key = address.lower()
        if key in exclude:
            continue
        if key in seen:
            # The same recipient again (a transcript, a second mention): one block.
            continue
        seen.add(key)
        starts.append((number, address))
        if len(starts) >= MAX_FOUND:
            break
    general_host = _host(head)
    found: list[FoundRecipient] = []
    for index, (number, address) in enumerate(starts):
        stop = starts[index + 1][0] if index + 1 < len(starts) else len(lines)
        block_lines = lines[number:stop]
        block = "\n".join(block_lines)
        diagnostic = _reply(block) or _words(block_lines, address)
        found.append(FoundRecipient(address, diagnostic, _host(block) or general_host))
    return TextScan(tuple(found), _reply(head), general_host, original, False)


def _read_xmail(head: str, exclude: frozenset[str]) -> list[tuple[str, str]]:
    out = []
    for match in _XMAIL.finditer(head):
        address = match.group(1).strip().strip("<>")
        if address and address.lower() not in exclude:
            out.append((address, " ".join(match.group(2).split())[:_DIAGNOSTIC_CHARS]))
        if len(out) >= MAX_FOUND:
            break
    return out


def _recipient_in(line: str) -> str | None:
    if "@" not in line or len(line) > 400:
        return None
    for pattern in _RECIPIENT_LINES:
        match = pattern.search(line)
        if match is not None:
            return match.group("a")
    return None


def _reply(block: str) -> str:
    """The first 4xx/5xx reply in `block` (or what a lead-in introduces), to its paragraph end."""
    match = _REPLY_START.search(block)
    lead = _LEAD_IN.search(block)
    if match is None and lead is None:
        return ""
    start = match.start() if match is not None else lead.end() if lead is not None else 0
    end = block.find("\n\n", start)
    if end < 0:
        end = len(block)
    stop = _REPLY_END.search(block, start, end)
    if stop is not None:
        end = stop.start()
    paragraph = block[start:min(end, start + _DIAGNOSTIC_CHARS * 2)]
    reply = " ".join(paragraph.split()).rstrip(" #'")
    if reply.endswith(")") and reply.count(")") > reply.count("("):
        reply = reply[:-1]  # Sendmail's "(reason: 550 ...)"
    return reply[:_DIAGNOSTIC_CHARS]


def _words(lines: list[str], address: str) -> str:
    """The block's own words when it quotes no reply (portals, Domino): every line of it.

    The recipient's line loses the address; labels stay ("because:", "실패 사유 :"),
    since the words after them are the reason.
    """
    first = lines[0].replace(address, " ").strip(" <>:()\t") if lines else ""
    text = " ".join([first, *(line.strip() for line in lines[1:40])])
    return " ".join(text.split())[:_DIAGNOSTIC_CHARS]


def _host(text: str) -> str:
    for pattern in _HOST_PATTERNS:
        match = pattern.search(text)
        if match is not None:
            return match.group("h").rstrip(".")
    return ""

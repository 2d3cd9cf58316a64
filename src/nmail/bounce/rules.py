"""Which category a refusal falls in: an ordered table of codes and wordings.

Each rule is one line: a category, a condition on the codes and a pattern
for the text. The first rule whose condition and pattern both match wins,
so the table reads top down from the most specific wording to the bare
status codes, and a new provider's wording is one more line in the right
place. Order matters where wordings overlap: Naver's "filtered by RBL"
is an RBL listing before it is an IP block, the seed's "mail is denied,
by spam filter" is the recipient's own reject list before it is spam, and
"the maximum number of delivery attempts" with a more telling last error
(mailbox full) takes that error's category.

The condition is a regular expression matched at the start of the
refusal's key, "<class> <code> <status>": "5 550 5.1.1", "4 451 -",
"? - -" when nothing is known. "" matches every key; "[5?]" only refusals
not known to be temporary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nmail.bounce import categories as c
from nmail.bounce.catalogue import category_ids
from nmail.bounce.replies import status_class

_PERMANENT = "[5?]"  # not known to be temporary

# (category, condition on the key, pattern on the text). Patterns are
# case-insensitive; the text is one line (whitespace collapsed).
RULES: tuple[tuple[str, str, str], ...] = (
    # The recipient's own reject list (the seed files "by spam filter" here).
    (c.REJECT_LIST, "", r"reject ?list|registered as (a )?spammer|mail is denied, by spam filter"),
    (c.REJECT_LIST, "", r"blocked by (the )?recipient|recipient has blocked|sender (address )?"
                        r"(is )?(blocked|blacklisted) by (the )?(user|recipient)"),
    (c.REJECT_LIST, "", r"수신 ?거부|수신차단|차단한 (주소|사용자|발신자)"),
    # Block lists before IP blocks: Naver says both.
    (c.RBL, "", r"\brbl\b|dnsbl|\bdul\b|black ?list|block ?list|blocked using|spamhaus|spamcop"
                r"|barracuda|sorbs|mail-abuse|dsbl\.org|(?<!not )listed (at|on|in|by) "
                r"|banned sending ip"),
    # Large providers limiting this server's IP.
    (c.IP_BLOCKED, "", r"too many (e-?mails|messages|mails)|send(ing)? too (many|much)"
                       r"|ip ?\(?[\d.]*\)? is filtered|ip_control|cleanip|realip"),
    (c.IP_BLOCKED, "", r"\[#4\.16\.|\[tss?\d\d\]|unexpected volume|rate (limit|of unsolicited)"
                       r"|too many (concurrent )?(smtp )?connections|exceeded (the )?sending limit"
                       r"|(poor|bad|low) (ip |sender |sending )?reputation"
                       r"|\bccrt\b|server is busy ?\(rt\)"),
    (c.IP_BLOCKED, "", r"대량 ?(메일|발송)|발송량|발송 ?제한|ip.{0,20}차단"),
    # Content the receiver will not take.
    (c.VIRUS, "", r"virus|malware|infected|trojan|바이러스|악성 ?코드"),
    (c.ATTACHMENT, "", r"illegal attachment|attachment (type )?(is )?not allowed|banned (file"
                       r"|attachment)|blocked attachment|(file|attachment) type|executable"
                       r"|potential security issue|첨부 ?파일.{0,30}(허용|차단|거부|보낼 수)"),
    # Where the message goes (before "spam": a "mailbox full" bounce is never spam).
    (c.LOOP, "", r"mail ?loop|loop (was )?detected|too many hops|hop count|loops back to"
                 r"|routing loop|루프|순환"),
    (c.MAILBOX_FULL, "", r"exceeded storage allocation|mailbox (is |was )?(full|over)|over ?quota"
                         r"|quota (exceeded|full)|exceeds? (the )?quota"
                         r"|insufficient (system )?storage"
                         r"|(mailbox|inbox) has exceeded|mailbox size limit"),
    (c.MAILBOX_FULL, "", r"용량.{0,10}초과|(메일|편지)함.{0,10}(가득|꽉)"),
    (c.TOO_BIG, "", r"size exce|too (big|large)|exceeds? (the |fixed |our )*(maximum|max)"
                    r"|message length exceeds|message size|크기.{0,20}(초과|제한|커서)"),
    (c.DISABLED, "", r"account (is |has been )?(disabled|inactive|suspended|locked)|disabled or "
                     r"discontinued|inactive (mbox|mailbox|user|account)|suspended (user|account)"
                     r"|(mailbox|user|account) (is )?(disabled|inactive|suspended)|dormant"),
    (c.DISABLED, "", r"휴면|사용 ?중지|이용 ?정지|정지된 (계정|사용자|아이디)|해지된"),
    (c.NO_SUCH_USER, _PERMANENT, r"user ?unknown|unknown (user|recipient|local|address)"
                                 r"|no such (user|recipient|mailbox|address|account)"
                                 r"|mailbox (unavailable|not found|does not exist)"
                                 r"|does ?n[o']t (exist|have an? .{0,40}account)"
                                 r"|recip(ient)? ?not ?found|invalid recipient"
                                 r"|not a valid (mailbox|recipient|user)|unrouteable address"
                                 r"|addressee unknown|no mailbox here|account .{0,40}not exist"
                                 r"|not listed in (the )?(domino directory|public name)"
                                 r"|host or domain name not found|nxdomain|does not accept mail"),
    (c.NO_SUCH_USER, _PERMANENT, r"존재하지 않|없는 (아이디|사용자|계정|주소|메일 ?주소)"
                                 r"|주소를 찾을 수 없|잘못된 (메일 ?)?주소"),
    # Permission to send.
    (c.RELAY_DENIED, _PERMANENT, r"relay|authentication required"
                                 r"|not (allowed|permitted|authori[sz]ed)"
                                 r" to send|no permission|sender not authori[sz]ed|발송 ?권한"),
    (c.SPAM, "", r"spam|junk|unsolicited|content filter|message (was )?rejected|bulk mail|스팸"
                 r"|dmarc|\bspf\b|dkim|authentication checks|unauthenticated (e-?mail|sender)"),
    # Connection-level failures and "later" (XMail's words and the usual ones).
    (c.TEMPORARY, "", r"temporary delivery error|maximum number of delivery attempts"
                      r"|end of socket stream|invalid server address|bad server response"
                      r"|greylist|graylist|try (again )?later|timed? ?out|connection (refused"
                      r"|reset|closed|lost)|temporar|일시적|잠시 (후|뒤)"),
    # Bare status codes, when the words said nothing we know.
    (c.NO_SUCH_USER, r"[5?] \S+ [45]\.1\.(0|1|2|3|6|10)\b", ""),
    (c.DISABLED, r"[5?] \S+ [45]\.2\.1\b", ""),
    (c.MAILBOX_FULL, r"\S \S+ [45]\.2\.2\b", ""),
    (c.TOO_BIG, r"\S \S+ [45]\.(2\.3|3\.4)\b", ""),
    (c.LOOP, r"\S \S+ [45]\.4\.(6|14)\b", ""),
    (c.TEMPORARY, "4", ""),
)


@dataclass(frozen=True, slots=True)
class Rule:
    """One compiled line of the table."""

    category: str
    condition: re.Pattern[str] | None
    pattern: re.Pattern[str] | None


def compile_rules(table: tuple[tuple[str, str, str], ...]) -> tuple[Rule, ...]:
    """The table as compiled rules; an unknown category is a programming error."""
    known = set(category_ids())
    rules = []
    for category, condition, pattern in table:
        if category not in known:
            raise ValueError(f"rule for unknown category {category!r}")
        rules.append(Rule(
            category,
            re.compile(condition) if condition else None,
            re.compile(pattern, re.IGNORECASE) if pattern else None,
        ))
    return tuple(rules)


_COMPILED = compile_rules(RULES)
_MAX_TEXT = 4000  # characters of a diagnostic that the patterns read


def classify(code: int | None, status: str, text: str,
             rules: tuple[Rule, ...] = _COMPILED) -> str:
    """The category id of one refusal (basic code, enhanced status, reply text)."""
    key = f"{status_class(code, status)} {code if code is not None else '-'} {status or '-'}"
    line = " ".join(text[:_MAX_TEXT].split())
    for rule in rules:
        if rule.condition is not None and rule.condition.match(key) is None:
            continue
        if rule.pattern is not None and rule.pattern.search(line) is None:
            continue
        return rule.category
    return c.UNKNOWN

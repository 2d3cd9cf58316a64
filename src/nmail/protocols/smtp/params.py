"""ESMTP parameters of MAIL FROM and RCPT TO, and xtext (RFC 3461 4)."""

from __future__ import annotations

import re

from nmail.protocols.smtp.events import NO_MAIL_PARAMS, NO_RCPT_PARAMS, MailParams, RcptParams
from nmail.protocols.smtp.replies import CommandError, reply

_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*\Z")
_VALUE = re.compile(r"[\x21-\x3c\x3e-\x7e]+\Z")
_VALUE_UTF8 = re.compile(r"[\x21-\x3c\x3e-\x7e\u0080-\U0010ffff]+\Z")
_XTEXT = re.compile(r"(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})*\Z")
# What an xtext may not decode to: C0 controls (CR, LF, NUL...), DEL and C1.
_DECODED_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NOTIFY_WORDS = frozenset({"SUCCESS", "FAILURE", "DELAY"})
MAX_ENVID = 100  # RFC 3461 4.4


def _bad(text: str) -> CommandError:
    return CommandError(reply(501, "5.5.4", text))


def _unsupported(keyword: str) -> CommandError:
    return CommandError(reply(555, "5.5.4", f"Unsupported parameter {keyword}"))


def xtext_decode(text: str) -> str:
    """Decode RFC 3461 xtext ('+40' -> '@'); raise CommandError when malformed."""
    if not _XTEXT.match(text):
        raise _bad("Syntax error in parameter value (xtext)")
    if "+" not in text:
        return text
    raw = re.sub(r"\+([0-9A-F]{2})", lambda m: chr(int(m.group(1), 16)), text)
    # Refused here, at MAIL/RCPT: a value that would inject a line into a
    # DSN or the next hop's command must not get as far as end of data.
    if _DECODED_CONTROL.search(raw):
        raise _bad("Parameter value decodes to a control character")
    return raw


def split_params(text: str, *, esmtp: bool, utf8_values: bool) -> list[tuple[str, str | None]]:
    """Split 'KEY=VALUE KEY2' into (upper-case keyword, value or None), no duplicates."""
    if not text:
        return []
    if not esmtp:
        raise CommandError(reply(555, "5.5.4", "Parameters need EHLO, not HELO"))
    seen: set[str] = set()
    result: list[tuple[str, str | None]] = []
    value_pattern = _VALUE_UTF8 if utf8_values else _VALUE
    for item in text.split():
        keyword, eq, value = item.partition("=")
        if not _KEYWORD.match(keyword) or (eq and not value_pattern.match(value)):
            raise _bad(f"Syntax error in parameter {item[:40]!r}")
        keyword = keyword.upper()
        if keyword in seen:
            raise _bad(f"Duplicate parameter {keyword}")
        seen.add(keyword)
        result.append((keyword, value if eq else None))
    return result


def parse_mail_params(text: str, *, esmtp: bool) -> MailParams:
    """Parse the parameters after MAIL FROM:<...>."""
    if not text:
        return NO_MAIL_PARAMS
    items = split_params(text, esmtp=esmtp, utf8_values=False)
    size: int | None = None
    body: str | None = None
    smtputf8 = False
    ret: str | None = None
    envid: str | None = None
    auth: str | None = None
    for keyword, value in items:
        if keyword == "SIZE":
            if value is None or not value.isdigit() or len(value) > 20:
                raise _bad("Syntax: SIZE=<number of octets>")
            size = int(value)
        elif keyword == "BODY":
            upper = (value or "").upper()
            if upper not in ("7BIT", "8BITMIME"):
                raise _bad("Syntax: BODY=7BIT or BODY=8BITMIME")
            body = upper
        elif keyword == "SMTPUTF8":
            if value is not None:
                raise _bad("Syntax: SMTPUTF8 takes no value")
            smtputf8 = True
        elif keyword == "RET":
            upper = (value or "").upper()
            if upper not in ("FULL", "HDRS"):
                raise _bad("Syntax: RET=FULL or RET=HDRS")
            ret = upper
        elif keyword == "ENVID":
            if value is None:
                raise _bad("Syntax: ENVID=<xtext>")
            envid = xtext_decode(value)
            if len(envid) > MAX_ENVID:
                raise _bad("ENVID too long")
        elif keyword == "AUTH":
            if value is None:
                raise _bad("Syntax: AUTH=<mailbox> or AUTH=<>")
            auth = value if value == "<>" else xtext_decode(value)
        else:
            raise _unsupported(keyword)
    return MailParams(size=size, body=body, smtputf8=smtputf8, ret=ret, envid=envid, auth=auth)


def parse_rcpt_params(text: str, *, esmtp: bool, utf8: bool) -> RcptParams:
    """Parse the parameters after RCPT TO:<...>."""
    if not text:
        return NO_RCPT_PARAMS
    items = split_params(text, esmtp=esmtp, utf8_values=utf8)
    notify: tuple[str, ...] | None = None
    orcpt: str | None = None
    for keyword, value in items:
        if keyword == "NOTIFY":
            # ASCII only: in a UTF-8 transaction "\u017fuccess".upper() would be SUCCESS.
            text = value or ""
            words = tuple(w.upper() for w in text.split(",")) if text.isascii() else ()
            if words != ("NEVER",) and not (
                words and set(words) <= _NOTIFY_WORDS and len(set(words)) == len(words)
            ):
                raise _bad("Syntax: NOTIFY=NEVER or NOTIFY=SUCCESS,FAILURE,DELAY")
            notify = words
        elif keyword == "ORCPT":
            addr_type, semi, addr = (value or "").partition(";")
            if not semi or not _KEYWORD.match(addr_type) or not addr:
                raise _bad("Syntax: ORCPT=addr-type;address")
            # utf-8 addr-type (RFC 6533) uses its own escapes; keep it as sent.
            decoded = addr if addr_type.lower() == "utf-8" else xtext_decode(addr)
            if _DECODED_CONTROL.search(decoded):
                raise _bad("Parameter value decodes to a control character")
            orcpt = f"{addr_type};{decoded}"
        else:
            raise _unsupported(keyword)
    return RcptParams(notify=notify, orcpt=orcpt)

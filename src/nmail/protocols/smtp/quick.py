"""The commands almost every client sends, recognised by one regular expression.

The SMTP protocol object spent ~230k instructions per message (callgrind,
Python 3.11; bench/smtp_parse_instructions.py) reading, parsing and
answering HELO, MAIL, RCPT, DATA and QUIT, ~55k of them on each MAIL and
RCPT: the verb split off and upper-cased, the path split from its
parameters, the mailbox parsed with a dozen string calls and two regular
expressions; each C call costs 300-1,500 instructions in its argument
handling alone, a regex match ~1.8k before it looks at a character.

`QUICK_LINE` matches a whole command line of the forms that make nearly
all traffic, and nothing else:

    MAIL FROM:<local@domain> [SIZE=n [BODY=7BIT|8BITMIME] | BODY=... [SIZE=n]]
    MAIL FROM:<>             (the same parameters)
    RCPT TO:<local@domain>
    HELO name  /  EHLO name

verbs, FROM/TO and parameter names in any ASCII case, one space between
words and nothing after the last; the local part a dot-string of ASCII
atext of at most 64 characters, the domain lower-case ASCII labels of
RFC 1035 without a trailing dot, the path at most 254 characters. Every
line it matches, the full parser (commands.py, addresses.py, params.py)
reads alike: the same address (`local@domain` as sent, which the full
parser gives back for a lower-case domain) and parameters. One match
(~4.5-5.5k instructions) replaces that work: MAIL and RCPT ~55k -> ~25k
each with the events' and accepts' cheaper ways (events.py,
connection.py). tests/test_smtp_protocol_quick.py checks it line by line
against the full parser and session by session against a connection that
parses everything in full, on generated lines, hostile ones included.
Whatever it does not match, or matches in a state other than the one such
a line is usually sent in, goes to the full parser: the answers are the
same for any input.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from nmail.protocols.smtp import state as st
from nmail.protocols.smtp.addresses import MAX_DOMAIN
from nmail.protocols.smtp.commands import COMMANDS, SmtpCommands
from nmail.protocols.smtp.events import (
    NO_MAIL_PARAMS,
    NO_RCPT_PARAMS,
    MailFrom,
    MailParams,
    RcptTo,
)

# RFC 5322 atext, as addresses._DOT_STRING; possessive (nothing to give
# back: '.' and '@' are not atext), which saves sre its backtracking marks.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-]++"
# RFC 1035 labels in lower case only: addresses._DOMAIN's, lower-cased. Tried
# first as labels without a hyphen (one possessive run each, ~1k
# instructions a domain less), then in full.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?+"
_PLAIN_LABEL = r"[a-z0-9]{1,63}+"
_DOMAIN = rf"(?:{_PLAIN_LABEL}(?:\.{_PLAIN_LABEL})*+(?=>)|{_LABEL}(?:\.{_LABEL})*+)"
# A local part of at most 64 characters before the first '@'.
_MAILBOX = rf"(?=[^@]{{1,64}}@){_ATOM}(?:\.{_ATOM})*+@{_DOMAIN}"
# At most 254 characters up to the first '>' (RFC 5321 4.5.3.1.3: 256 with
# the brackets).
_PATH_LENGTH = r"(?=[^>]{0,254}>)"
_SIZE_VALUE = r"[Ss][Ii][Zz][Ee]=([0-9]{1,20})"
_BODY_VALUE = r"[Bb][Oo][Dd][Yy]=(7[Bb][Ii][Tt]|8[Bb][Ii][Tt][Mm][Ii][Mm][Ee])"
# Nothing, SIZE [BODY] or BODY [SIZE]; no parameters tried first.
_MAIL_PARAMS = (
    rf"(?:\Z| {_SIZE_VALUE}(?: {_BODY_VALUE})?\Z| {_BODY_VALUE}(?: {_SIZE_VALUE})?\Z)"
)
# EHLO names: addresses._HELO_DOMAIN (the length is checked by the caller).
_HELO_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"

QUICK_LINE = re.compile(
    rf"[Mm][Aa][Ii][Ll] [Ff][Rr][Oo][Mm]:<{_PATH_LENGTH}((?:{_MAILBOX})?)>{_MAIL_PARAMS}"
    rf"|[Rr][Cc][Pp][Tt] [Tt][Oo]:<{_PATH_LENGTH}({_MAILBOX})>\Z"
    rf"|([Hh][Ee][Ll][Oo]|[Ee][Hh][Ll][Oo]) ({_HELO_LABEL}(?:\.{_HELO_LABEL})*)\Z"
)
"""Groups: MAIL's path, SIZE, BODY, BODY (first), SIZE (after it); RCPT's path;
HELO or EHLO, and its name."""

# Whole lines that are a verb without argument, as clients send them: the
# handler at once, without rstrip, partition and upper (~2k instructions;
# the full dispatch gives these the same handler and an empty argument).
PLAIN_LINES: dict[str, Callable[[SmtpCommands, str], None]] = {
    spelling: COMMANDS[verb]
    for verb in ("DATA", "QUIT", "RSET", "NOOP")
    for spelling in (verb, verb.lower())
}


class QuickCommands(SmtpCommands):
    """SmtpCommands with the common lines taken without the full parser
    (SmtpCommands._dispatch, unchanged, for everything else)."""

    def _dispatch(self, line: str) -> None:
        if len(line) == 4:  # cheaper than a dict miss for the other lines
            handler = PLAIN_LINES.get(line)
            if handler is not None:
                handler(self, "")
                return
        quick = QUICK_LINE.match(line)
        if quick is None or not self._quick(quick.groups()):
            SmtpCommands._dispatch(self, line)

    def _quick(self, groups: tuple[str | None, ...]) -> bool:
        """Do what the verb's handler would do with a line QUICK_LINE matched,
        when the session is where such a line is usually sent; else do nothing
        and return False (the handler then answers it, errors included)."""
        mail, size, body, body_first, size_after, rcpt, greeting, name = groups
        state = self._state
        if rcpt is not None:
            if (state is not st.MAIL and state is not st.RCPT) or len(
                self._recipients
            ) >= self.options.max_recipients:
                return False
            self._rcpt_attempts += 1
            self._events.append(RcptTo(rcpt, NO_RCPT_PARAMS))
            return True
        if mail is not None:
            if state is not st.READY or (
                self.options.auth_required and self._auth_identity is None
            ):
                return False
            if size is None and body_first is None:
                self._events.append(MailFrom(mail, NO_MAIL_PARAMS))
                return True
            if not self._esmtp:
                return False  # 555: parameters need EHLO
            if body_first is not None:
                size, body = size_after, body_first
            params = MailParams(
                size=None if size is None else int(size),
                body=None if body is None else body.upper(),
            )
            if params.size is not None and params.size > self.options.max_message_size:
                return False
            self._events.append(MailFrom(mail, params))
            return True
        assert greeting is not None and name is not None
        if len(name) > MAX_DOMAIN:
            return False
        self._greeted(name, esmtp=greeting[0] in "Ee")
        return True

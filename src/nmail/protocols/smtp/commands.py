"""What each SMTP verb does to the session: state checks, parsing, replies, events."""

from __future__ import annotations

import functools
from collections.abc import Callable

from nmail.protocols.sasl import (
    MECHANISMS,
    Challenge,
    Credentials,
    SaslExchange,
    SaslFailure,
    SaslStep,
)
from nmail.protocols.smtp import replies as r
from nmail.protocols.smtp import state as st
from nmail.protocols.smtp.addresses import parse_helo_domain, parse_mailbox, split_path
from nmail.protocols.smtp.data import DataReader
from nmail.protocols.smtp.events import (
    Auth,
    AuthCredentials,
    Data,
    Ehlo,
    Expn,
    Helo,
    Help,
    MailFrom,
    Noop,
    ProtocolError,
    Quit,
    RcptTo,
    Rset,
    SaslResponse,
    StartTls,
    Vrfy,
)
from nmail.protocols.smtp.params import parse_mail_params, parse_rcpt_params
from nmail.protocols.smtp.replies import CommandError, Reply, reply
from nmail.protocols.smtp.session import SmtpSession

NEED_EHLO = reply(503, "5.5.1", "Send EHLO/HELO first")
# The events without fields: one of each serves every session (frozen).
_DATA = Data()
_RSET = Rset()
_NOOP = Noop()
_QUIT = Quit()
# HTTP request lines (as Postfix's smtpd_forbidden_commands): the session ends.
FORBIDDEN = frozenset({"GET", "POST", "PUT", "HEAD", "CONNECT", "OPTIONS"})


@functools.lru_cache(maxsize=64)
def _helo_wire(hostname: str) -> bytes:
    return reply(250, None, hostname).encode()


@functools.lru_cache(maxsize=256)
def _ehlo_wire(hostname: str, max_size: int, starttls: bool, auth: bool) -> bytes:
    """The EHLO reply's wire bytes: the same few variants for every connection of a listener."""
    lines = [
        hostname, "PIPELINING", f"SIZE {max_size}", "8BITMIME", "SMTPUTF8",
        "ENHANCEDSTATUSCODES", "DSN",
    ]
    if starttls:
        lines.append("STARTTLS")
    if auth:
        lines.append("AUTH " + " ".join(MECHANISMS))
    return Reply(250, None, tuple(lines)).encode()


class SmtpCommands(SmtpSession):
    """One handler per verb; each sends its reply and emits its event."""

    def _dispatch(self, line: str) -> None:
        verb, _, arg = line.rstrip(" \t").partition(" ")
        # Verbs are ASCII: upper() maps "\u017fTARTTLS" (long s) to STARTTLS.
        verb = verb.upper() if verb.isascii() else verb
        handler = COMMANDS.get(verb)
        if handler is None:
            if verb in FORBIDDEN:
                # A web client or proxy tricked into talking to us (cross-protocol
                # attacks): end it at once rather than answer every header line.
                self._send(r.NOT_A_PROXY)
                self._emit(ProtocolError(r.NOT_A_PROXY, closes=True))
                self._state = st.CLOSED
                self._buf.clear()
                return
            self._error(r.UNKNOWN_COMMAND)
            return
        handler(self, arg)

    def _cmd_ehlo(self, arg: str) -> None:
        self._greet(arg, esmtp=True)

    def _cmd_helo(self, arg: str) -> None:
        self._greet(arg, esmtp=False)

    def _greet(self, arg: str, *, esmtp: bool) -> None:
        try:
            domain = parse_helo_domain(arg)
        except CommandError as exc:
            self._error(exc.reply)
            return
        self._greeted(domain, esmtp=esmtp)

    def _greeted(self, domain: str, *, esmtp: bool) -> None:
        self._reset_transaction()
        self._helo = domain
        self._esmtp = esmtp
        self._state = st.READY
        options = self.options
        if not esmtp:
            self._out.append(_helo_wire(options.hostname))
            self._emit(Helo(domain))
            return
        self._out.append(_ehlo_wire(
            options.hostname, options.max_message_size, self.starttls_offered, self.auth_offered
        ))
        self._emit(Ehlo(domain))

    def _cmd_mail(self, arg: str) -> None:
        if self._state is st.CONNECTED:
            self._error(NEED_EHLO)
            return
        if self._state is not st.READY:
            self._error(reply(503, "5.5.1", "Sender already specified"))
            return
        if self.options.auth_required and self._auth_identity is None:
            self._error(r.AUTH_REQUIRED, counts=False)
            return
        if arg[:5].upper() != "FROM:":
            self._error(reply(501, "5.5.4", "Syntax: MAIL FROM:<address>"))
            return
        try:
            path, rest = split_path(arg[5:])
            params = parse_mail_params(rest, esmtp=self._esmtp)
            address = parse_mailbox(path, utf8=params.smtputf8, recipient=False) if path else ""
        except CommandError as exc:
            self._error(exc.reply)
            return
        if params.size is not None and params.size > self.options.max_message_size:
            self._error(r.MESSAGE_TOO_BIG, counts=False)
            return
        self._emit(MailFrom(address, params))

    def _cmd_rcpt(self, arg: str) -> None:
        if self._state is st.CONNECTED:
            self._error(NEED_EHLO)
            return
        if self._state is st.READY:
            self._error(reply(503, "5.5.1", "Need MAIL before RCPT"))
            return
        if arg[:3].upper() != "TO:":
            self._error(reply(501, "5.5.4", "Syntax: RCPT TO:<address>"))
            return
        if len(self._recipients) >= self.options.max_recipients:
            self._error(r.TOO_MANY_RECIPIENTS, counts=False)
            return
        utf8 = self._mail_params.smtputf8
        try:
            path, rest = split_path(arg[3:])
            params = parse_rcpt_params(rest, esmtp=self._esmtp, utf8=utf8)
            if path.lower() == "postmaster":
                address = self.options.postmaster_address or "postmaster"
            else:
                address = parse_mailbox(path, utf8=utf8, recipient=True)
        except CommandError as exc:
            self._error(exc.reply)
            return
        self._rcpt_attempts += 1
        self._emit(RcptTo(address, params))

    def _cmd_data(self, arg: str) -> None:
        if self._state is st.CONNECTED:
            self._error(NEED_EHLO)
        elif self._state is st.READY:
            self._error(reply(503, "5.5.1", "Need MAIL before DATA"))
        elif self._state is st.MAIL and self._rcpt_attempts:
            # RFC 2920 3.1: DATA pipelined after RCPTs that were all refused.
            self._error(reply(554, "5.5.1", "No valid recipients"), counts=False)
        elif self._state is st.MAIL:
            self._error(reply(503, "5.5.1", "Need RCPT before DATA"))
        elif arg:
            self._error(reply(501, "5.5.4", "Syntax: DATA takes no argument"))
        else:
            self._state = st.DATA
            self._data = DataReader(
                self.options.max_message_size, self._make_spill, self.options.spill_at
            )
            self._send(r.START_DATA)
            self._emit(_DATA)

    def _cmd_rset(self, arg: str) -> None:
        if arg:
            self._error(reply(501, "5.5.4", "Syntax: RSET takes no argument"))
            return
        self._reset_transaction()
        if self._state is not st.CONNECTED:
            self._state = st.READY
        self._send(r.OK)
        self._emit(_RSET)

    def _cmd_noop(self, arg: str) -> None:
        self._send(r.OK)
        self._emit(_NOOP)

    def _cmd_quit(self, arg: str) -> None:
        self._send(r.BYE)
        self._state = st.CLOSED
        self._buf.clear()
        self._emit(_QUIT)

    def _cmd_vrfy(self, arg: str) -> None:
        if not arg.strip():
            self._error(reply(501, "5.5.4", "Syntax: VRFY address"))
            return
        self._send(r.VRFY_REPLY)
        self._emit(Vrfy(arg.strip()))

    def _cmd_expn(self, arg: str) -> None:
        self._send(r.EXPN_REPLY)
        self._emit(Expn(arg.strip()))

    def _cmd_help(self, arg: str) -> None:
        self._send(r.HELP_REPLY)
        self._emit(Help(arg.strip()))

    def _cmd_starttls(self, arg: str) -> None:
        if arg:
            self._error(reply(501, "5.5.4", "Syntax: STARTTLS takes no argument"))
        elif self._tls_active:
            self._error(reply(503, "5.5.1", "TLS already active"))
        elif not self.options.starttls_available:
            self._error(reply(502, "5.5.1", "STARTTLS not available"))
        elif self._state is st.CONNECTED:
            self._error(NEED_EHLO)
        elif self._state is not st.READY:
            self._error(reply(503, "5.5.1", "STARTTLS not permitted during a mail transaction"))
        else:
            self._send(r.READY_FOR_TLS)
            # Whatever the client pipelined after STARTTLS came in plaintext and
            # must never be read as if it came over TLS (CVE-2021-38371 class).
            self._buf.clear()
            self._reset_transaction()
            self._helo = None
            self._esmtp = False
            self._auth_identity = None
            self._state = st.TLS_HANDSHAKE
            self._emit(StartTls())

    def _cmd_auth(self, arg: str) -> None:
        mechanism, _, initial = arg.strip().partition(" ")
        mechanism = mechanism.upper() if mechanism.isascii() else mechanism  # "pla\u0131n"
        if self._state is st.CONNECTED:
            self._error(NEED_EHLO)
        elif not self.options.auth_available:
            self._error(reply(502, "5.5.1", "AUTH not available"))
        elif self._auth_identity is not None:
            self._error(reply(503, "5.5.1", "Already authenticated"))
        elif self._state is not st.READY:
            self._error(reply(503, "5.5.1", "AUTH not permitted during a mail transaction"))
        elif not self.auth_offered:
            self._error(r.AUTH_NEEDS_TLS)
        elif not mechanism:
            self._error(reply(501, "5.5.4", "Syntax: AUTH mechanism [initial-response]"))
        elif mechanism not in MECHANISMS:
            self._error(reply(504, "5.5.4", "Unrecognized authentication type"))
        else:
            initial_response = initial.strip() or None
            self._emit(Auth(mechanism, initial_response))
            self._sasl = SaslExchange(mechanism)
            self._sasl_step(self._sasl.start(initial_response))

    def _sasl_line(self, text: str) -> None:
        self._emit(SaslResponse(text))
        assert self._sasl is not None
        self._sasl_step(self._sasl.feed(text))

    def _sasl_step(self, step: SaslStep) -> None:
        if isinstance(step, Challenge):
            self._state = st.AUTH
            self._send(reply(334, None, step.text))
            return
        mechanism = self._sasl.mechanism if self._sasl else ""
        self._end_sasl()
        if isinstance(step, Credentials):
            self._emit(AuthCredentials(mechanism, step.authzid, step.username, step.password))
        else:
            self._error(SASL_REFUSALS[step.reason])


SASL_REFUSALS = {
    SaslFailure.CANCELLED: r.AUTH_CANCELLED,
    SaslFailure.BAD_BASE64: r.AUTH_BAD_BASE64,
    SaslFailure.NOT_UTF8: reply(501, "5.5.2", "Credentials are not valid UTF-8"),
    SaslFailure.MALFORMED: reply(501, "5.5.2", "Malformed PLAIN credentials"),
    SaslFailure.EMPTY_USER_NAME: reply(501, "5.5.2", "Empty user name"),
}


COMMANDS: dict[str, Callable[[SmtpCommands, str], None]] = {
    "EHLO": SmtpCommands._cmd_ehlo,
    "HELO": SmtpCommands._cmd_helo,
    "MAIL": SmtpCommands._cmd_mail,
    "RCPT": SmtpCommands._cmd_rcpt,
    "DATA": SmtpCommands._cmd_data,
    "RSET": SmtpCommands._cmd_rset,
    "NOOP": SmtpCommands._cmd_noop,
    "QUIT": SmtpCommands._cmd_quit,
    "VRFY": SmtpCommands._cmd_vrfy,
    "EXPN": SmtpCommands._cmd_expn,
    "HELP": SmtpCommands._cmd_help,
    "STARTTLS": SmtpCommands._cmd_starttls,
    "AUTH": SmtpCommands._cmd_auth,
}

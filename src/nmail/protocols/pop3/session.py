"""The POP3 state machine (RFC 1939, 2449, 2595, 5034), with no I/O.

Use: feed the client's bytes to `receive_data`, then call `next_event` until
it returns None, acting on each event (see `events`) and reporting back;
after each step send what `data_to_send` returns. Every reply is formatted
here; the server only moves bytes and calls the mail store.
"""

from __future__ import annotations

from collections.abc import Callable

from nmail.protocols.pop3 import replies
from nmail.protocols.pop3.authorization import AuthorizationCommands
from nmail.protocols.pop3.core import AUTHORIZATION, CLOSED, GREETING, State, Wait
from nmail.protocols.pop3.events import Close, Event, Update
from nmail.protocols.pop3.lines import COMMAND_LINE_LIMIT, SASL_LINE_LIMIT, TOO_LONG
from nmail.protocols.pop3.transaction import TransactionCommands
from nmail.protocols.sasl import MECHANISMS

__all__ = ["GREETING", "Pop3Session", "State"]

_Handler = Callable[["Pop3Session", str], "Event | None"]
# Commands one next_event() call handles at most (see there).
MAX_AT_ONCE = 64


class Pop3Session(AuthorizationCommands, TransactionCommands):
    """One client connection's POP3 conversation.

    Pop3Session(tls_active=False, tls_available=False, plaintext_allowed=False,
    max_errors=10, fix_bare_lf=False); the greeting is the first output.
    """

    def next_event(self) -> Event | None:
        """Handle buffered commands until one needs the server; None: need more data.

        At most MAX_AT_ONCE commands are handled per call: past that it returns
        None with `more_buffered` True, and the caller calls again once other
        work had its turn (a flood of pipelined NOOPs is answered in slices).
        """
        if self._waiting is not None:
            raise RuntimeError(f"the {self._waiting.value} event has not been answered")
        self.more_buffered = False
        next_line = self._lines.next_line
        handled = 0
        while self.state is not CLOSED:
            if handled >= MAX_AT_ONCE:
                self.more_buffered = True
                return None
            handled += 1
            if self._sasl is not None:
                line = next_line(SASL_LINE_LIMIT)
                if line is None:
                    return None
                if line is TOO_LONG:
                    self._sasl = None
                    self._error(replies.err("Line too long"))
                    continue
                event = self._sasl_response(line)
            else:
                line = next_line(COMMAND_LINE_LIMIT)
                if line is None:
                    return None
                if line is TOO_LONG:
                    self._error(replies.err("Line too long"))
                    continue
                # The command, parsed here rather than in a method of its own:
                # this runs for every command, and a Python call costs a few
                # hundred instructions where a whole NOOP costs ~15k (callgrind).
                try:
                    text = line.decode()
                except UnicodeDecodeError:
                    self._error(replies.err("Command is not valid UTF-8"))
                    continue
                verb, _, argument = text.partition(" ")
                handlers = _AUTHORIZATION if self.state is AUTHORIZATION else _TRANSACTION
                # Clients send verbs in capitals: upper() only for the others,
                # and only for ASCII ones: keywords are ASCII, and Unicode case
                # mapping makes "\u017ftls" (long s) STLS and "qu\u0131t" QUIT.
                handler = handlers.get(verb)
                if handler is None:
                    if verb.isascii():
                        verb = verb.upper()
                        handler = handlers.get(verb)
                    if handler is None:
                        self._unknown(verb)
                        continue
                event = handler(self, argument)
            if event is not None:
                return event
        return Close()

    def _unknown(self, verb: str) -> None:
        if verb in _AUTHORIZATION or verb in _TRANSACTION:
            when = "after" if self.state is State.TRANSACTION else "before"
            self._error(replies.err(f"{verb} is not allowed {when} login"))
        elif verb.isascii() and verb.isalnum() and len(verb) <= 10:
            self._error(replies.err(f"Unknown command {verb}"))
        else:
            self._error(replies.err("Unknown command"))

    def _capa(self, argument: str) -> None:
        if not self._no_arguments("CAPA", argument):
            return
        caps = ["TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE"]
        if self.state is State.AUTHORIZATION:
            if self.tls_active or self.plaintext_allowed:
                caps += ["USER", "SASL " + " ".join(MECHANISMS)]
            if self.tls_available and not self.tls_active:
                caps.append("STLS")
        caps.append("IMPLEMENTATION nmail")
        self._send(replies.multiline("Capability list follows", caps))

    def _quit(self, argument: str) -> Event | None:
        if self.state is State.AUTHORIZATION:
            self._send(replies.ok("nmail POP3 server signing off"))
            self.state = State.CLOSED
            return Close()
        drop = self._drop()
        self.state = State.UPDATE
        self._waiting = Wait.UPDATE
        return Update(drop.deleted_entries(), drop.retrieved_entries())


_AUTHORIZATION: dict[str, _Handler] = {
    "CAPA": Pop3Session._capa,
    "USER": Pop3Session._user_command,
    "PASS": Pop3Session._pass_command,
    "AUTH": Pop3Session._auth,
    "STLS": Pop3Session._stls,
    "QUIT": Pop3Session._quit,
}
_TRANSACTION: dict[str, _Handler] = {
    "CAPA": Pop3Session._capa,
    "STAT": Pop3Session._stat,
    "LIST": Pop3Session._list,
    "UIDL": Pop3Session._uidl,
    "RETR": Pop3Session._retr,
    "TOP": Pop3Session._top,
    "DELE": Pop3Session._dele,
    "NOOP": Pop3Session._noop,
    "RSET": Pop3Session._rset,
    "QUIT": Pop3Session._quit,
}

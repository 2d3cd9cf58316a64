"""TRANSACTION-state commands (STAT, LIST, UIDL, RETR, TOP, DELE, NOOP, RSET) and
the results of message transfers and UPDATE."""

from __future__ import annotations

from nmail.protocols.pop3 import replies
from nmail.protocols.pop3.core import WAIT_MESSAGE, SessionCore, State, Wait
from nmail.protocols.pop3.events import Event, MaildropEntry, Retrieve, Revocation
from nmail.protocols.pop3.maildrop import MaildropError
from nmail.protocols.pop3.transfer import LEADING_DOT, MessageEncoder

_REVOKED = {
    Revocation.LOGIN_DISABLED: replies.err("Logins to this account were disabled, closing", "AUTH"),
    Revocation.DELETED: replies.err("This account was deleted, closing", "AUTH"),
    Revocation.REPLACED: replies.err(
        "This account was deleted and created again, closing", "AUTH"
    ),
}


class TransactionCommands(SessionCore):
    """Working on the maildrop once logged in."""

    def login_revoked(self, why: Revocation) -> None:
        """The account changed since the login: say why and close, committing nothing.

        Between commands, or instead of `update_finished` when the server found
        the account gone before removing anything.
        """
        if self.state is not State.TRANSACTION and self._waiting is not Wait.UPDATE:
            raise RuntimeError("login_revoked() outside TRANSACTION or UPDATE")
        if self._waiting not in (None, Wait.UPDATE):
            raise RuntimeError(f"the {self._waiting.value} event has not been answered")
        self._waiting = None
        self._send(_REVOKED[why])
        self.state = State.CLOSED

    def message_missing(self) -> None:
        """The message file is gone (deleted meanwhile by the webmail)."""
        self._expect(Wait.MESSAGE)
        assert self._retrieving is not None
        number = self._retrieving.number
        self._retrieving = None
        self._send(replies.err(f"message {number} no longer exists"))

    def message_begin(self) -> None:
        """The message is open: send the positive response line."""
        event = self._retrieving
        if self._waiting is not Wait.MESSAGE or event is None or self._encoder is not None:
            raise RuntimeError("message_begin() without a pending Retrieve")
        self._encoder = MessageEncoder(event.lines, fix_bare_lf=self.fix_bare_lf)
        if event.lines is None:
            self._send(replies.ok(f"{event.entry.size} octets"))
        else:
            self._send(replies.ok("Top of message follows"))

    def message_whole(self, data: bytes) -> None:
        """The whole file in one piece: message_begin, message_data, message_end at once."""
        event = self._retrieving
        if self._waiting is not WAIT_MESSAGE or event is None or self._encoder is not None:
            raise RuntimeError("message_whole() without a pending Retrieve")
        if event.lines is not None or self.fix_bare_lf:
            self.message_begin()
            self.message_data(data)
            self.message_end()
            return
        # The hot path of a mail download: _send() and stuff_whole() inlined
        # (a Python call is a few hundred instructions, by callgrind).
        entry = event.entry
        head = b"+OK %d octets\r\n" % entry.size
        if entry.dot_lines or len(data) != entry.size:
            # Known to need it, not known, or not the file the index described:
            # the scan (~17k instructions for 3 KB) that most messages skip.
            if data[:1] == b".":
                data = b"." + data
            data = LEADING_DOT.sub(b"\n..", data)
        if not data or data[-1] == 0x0A:
            tail = b".\r\n"
        else:
            tail = b"\n.\r\n" if data[-1] == 0x0D else b"\r\n.\r\n"
        self._out += (head, data, tail)
        self.pending_output += len(head) + len(data) + len(tail)
        assert self._maildrop is not None
        self._maildrop.retrieved(event.number)
        self._retrieving = None
        self._waiting = None

    def message_data(self, chunk: bytes) -> bool:
        """Add the next chunk of the file; False once TOP needs no more."""
        encoder = self._encoder
        if encoder is None:
            raise RuntimeError("message_data() before message_begin()")
        data = encoder.feed(chunk)
        if data:
            self._send(data)
        return not encoder.done

    def message_end(self) -> None:
        """The file is fully read: end the multi-line response."""
        encoder = self._encoder
        if encoder is None:
            raise RuntimeError("message_end() before message_begin()")
        self._send(encoder.finish())
        event = self._retrieving
        if event is not None and event.lines is None:
            self._drop().retrieved(event.number)
        self._encoder = None
        self._retrieving = None
        self._waiting = None

    def update_finished(self, ok: bool) -> None:
        """UPDATE is done (ok: every marked message was removed); the session ends."""
        self._expect(Wait.UPDATE)
        assert self._maildrop is not None
        if ok:
            left = self._maildrop.count
            self._send(replies.ok(f"nmail POP3 server signing off ({left} messages left)"))
        else:
            self._send(replies.err("Some deleted messages were not removed", "SYS/TEMP"))
        self.state = State.CLOSED

    def _one_message(self, verb: str, argument: str) -> tuple[int, MaildropEntry] | None:
        if not argument.isdigit():  # "RETR 12", the usual form, needs no split
            parts = argument.split()
            if len(parts) != 1:
                self._error(replies.err(f"Syntax: {verb} message-number"))
                return None
            argument = parts[0]
        drop = self._maildrop
        assert drop is not None
        try:
            return drop.lookup(argument)
        except MaildropError as exc:
            self._error(replies.err(str(exc)))
            return None

    def _stat(self, argument: str) -> None:
        if self._no_arguments("STAT", argument):
            drop = self._drop()
            self._send(b"+OK %d %d\r\n" % (drop.count, drop.size))

    # LIST and UIDL lines start with the message number, so never with a dot:
    # nothing to stuff, and the lines are formatted as bytes in one go
    # (replies.multiline's f-string, dot check and encode per line cost ~4.7k
    # instructions a line, by callgrind).
    def _list(self, argument: str) -> None:
        drop = self._drop()
        if argument and not argument.isspace():
            found = self._one_message("LIST", argument)
            if found:
                self._send(b"+OK %d %d\r\n" % (found[0], found[1].size))
            return
        head = b"+OK %d messages (%d octets)\r\n" % (drop.count, drop.size)
        lines = [b"%d %d\r\n" % (n, e.size) for n, e in drop.live()]
        self._send(b"".join((head, *lines, b".\r\n")))

    def _uidl(self, argument: str) -> None:
        drop = self._drop()
        if argument and not argument.isspace():
            found = self._one_message("UIDL", argument)
            if found:
                self._send(f"+OK {found[0]} {found[1].uidl}\r\n".encode())
            return
        lines = "".join([f"{n} {e.uidl}\r\n" for n, e in drop.live()])
        self._send(f"+OK Unique-ID listing follows\r\n{lines}.\r\n".encode())

    def _retr(self, argument: str) -> Event | None:
        found = self._one_message("RETR", argument)
        if found is None:
            return None
        # _retrieve() inlined: RETR is the command a download repeats.
        event = self._retrieving = Retrieve(found[0], found[1], None)
        self._encoder = None
        self._waiting = WAIT_MESSAGE
        return event

    def _top(self, argument: str) -> Event | None:
        parts = argument.split()
        if len(parts) != 2:
            self._error(replies.err("Syntax: TOP message-number lines"))
            return None
        if not (parts[1].isascii() and parts[1].isdigit()):
            self._error(replies.err(f"Invalid line count {parts[1][:20]!r}"))
            return None
        found = self._one_message("TOP", parts[0])
        if found is None:
            return None
        return self._retrieve(Retrieve(found[0], found[1], int(parts[1])))

    def _retrieve(self, event: Retrieve) -> Retrieve:
        self._retrieving = event
        self._encoder = None
        self._waiting = WAIT_MESSAGE
        return event

    def _dele(self, argument: str) -> None:
        found = self._one_message("DELE", argument)
        if found:
            self._drop().delete(found[0])
            self._send(b"+OK message %d deleted\r\n" % found[0])

    def _noop(self, argument: str) -> None:
        if not argument or self._no_arguments("NOOP", argument):
            self._send(b"+OK\r\n")

    def _rset(self, argument: str) -> None:
        if self._no_arguments("RSET", argument):
            drop = self._drop()
            drop.reset()
            self._send(replies.ok(f"maildrop has {drop.count} messages ({drop.size} octets)"))

"""SMTP replies: a code, an RFC 3463 enhanced status code and text lines."""

from __future__ import annotations

from dataclasses import dataclass

from nmail.policy.decision import Decision


@dataclass(frozen=True, slots=True)
class Reply:
    """One SMTP reply; several lines make a multi-line reply (RFC 5321 4.2.1)."""

    code: int
    enhanced: str | None
    lines: tuple[str, ...]

    def encode(self) -> bytes:
        """The reply as it goes on the wire, CRLF after every line."""
        prefix = f"{self.code} {self.enhanced} " if self.enhanced else f"{self.code} "
        if len(self.lines) == 1:
            return (prefix + self.lines[0] + "\r\n").encode("utf-8")
        cont = prefix.replace(" ", "-", 1)
        parts = [cont + line for line in self.lines[:-1]]
        parts.append(prefix + self.lines[-1])
        return ("\r\n".join(parts) + "\r\n").encode("utf-8")

    @property
    def text(self) -> str:
        return " ".join(self.lines)

    @property
    def is_error(self) -> bool:
        return self.code >= 400


class CommandError(ValueError):
    """A command argument that cannot be accepted, with the reply that says why."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.text)
        self.reply = reply


def reply(code: int, enhanced: str | None, text: str) -> Reply:
    """A one-line reply."""
    return Reply(code, enhanced, (text,))


def reply_from_decision(decision: Decision) -> Reply:
    """The reply that carries a policy decision (kept to one line, whatever its text)."""
    text = decision.text
    if "\r" in text or "\n" in text:
        text = " ".join(text.split())  # a line break would let the text forge replies
    return Reply(decision.code, decision.enhanced or None, (text,))


# Replies the protocol sends on its own; the texts are what clients and
# admins see, so they are fixed here rather than scattered.
OK = reply(250, "2.0.0", "OK")
BYE = reply(221, "2.0.0", "Bye")
SENDER_OK = reply(250, "2.1.0", "Sender OK")
RECIPIENT_OK = reply(250, "2.1.5", "Recipient OK")
START_DATA = reply(354, None, "End data with <CR><LF>.<CR><LF>")
MESSAGE_ACCEPTED = reply(250, "2.0.0", "Message accepted")
READY_FOR_TLS = reply(220, "2.0.0", "Ready to start TLS")
AUTH_OK = reply(235, "2.7.0", "Authentication successful")
AUTH_INVALID = reply(535, "5.7.8", "Authentication credentials invalid")
AUTH_CANCELLED = reply(501, "5.0.0", "Authentication cancelled")
AUTH_BAD_BASE64 = reply(501, "5.5.2", "Cannot decode response (invalid base64)")
AUTH_REQUIRED = reply(530, "5.7.0", "Authentication required")
AUTH_NEEDS_TLS = reply(538, "5.7.11", "Encryption required for requested authentication mechanism")
VRFY_REPLY = reply(252, "2.5.2", "Cannot VRFY user, but will accept message and attempt delivery")
EXPN_REPLY = reply(502, "5.5.1", "EXPN is not supported")
HELP_REPLY = reply(
    214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP STARTTLS AUTH"
)
LINE_TOO_LONG = reply(500, "5.5.2", "Line too long")
UNKNOWN_COMMAND = reply(500, "5.5.1", "Command unrecognized")
NOT_A_PROXY = reply(221, "2.7.0", "This is a mail server, not a web server or proxy")
SYNTAX_ERROR = reply(500, "5.5.2", "Syntax error")
TOO_MANY_ERRORS = reply(421, "4.7.0", "Too many errors")
TOO_MANY_RECIPIENTS = reply(452, "4.5.3", "Too many recipients")
MESSAGE_TOO_BIG = reply(552, "5.3.4", "Message size exceeds the server limit")
BARE_LINE_ENDING = reply(554, "5.6.0", "Message contains bare CR or LF (RFC 5321 2.3.8)")
TEXT_LINE_TOO_LONG = reply(
    554, "5.6.0", "Message contains a line longer than 1000 octets (RFC 5321 4.5.3.1.6)"
)
SERVICE_SHUTTING_DOWN = reply(421, "4.3.2", "Service shutting down")
IDLE_TIMEOUT = reply(421, "4.4.2", "Idle timeout, closing connection")
SESSION_TOO_LONG = reply(421, "4.4.2", "Session time limit reached, closing connection")
TOO_MANY_CONNECTIONS = reply(421, "4.7.0", "Too many connections from your address, try later")
SERVER_BUSY = reply(421, "4.3.2", "Too many connections, try again later")
LOCAL_ERROR = reply(451, "4.3.0", "Temporary local error")
NO_ROOM = reply(452, "4.3.1", "Insufficient system storage, try again later")

# The wire form of every reply above, computed once. Looked up by identity:
# these objects live as long as the module, so no other reply can share an id.
CONSTANT_WIRE: dict[int, bytes] = {
    id(value): value.encode() for value in list(globals().values()) if isinstance(value, Reply)
}

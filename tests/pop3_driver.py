"""Driving a Pop3Session as the server would, with an in-memory mail store."""

from __future__ import annotations

import base64

from nmail.protocols.pop3 import (
    Authenticate,
    Close,
    Event,
    MaildropEntry,
    Pop3Session,
    Retrieve,
    StartTls,
    Update,
)

MESSAGES = {
    1: b"Subject: one\r\n\r\nfirst body\r\n",
    2: b"Subject: two\r\nX: y\r\n\r\n.hidden dot\r\nline 2\r\nline 3\r\n",
    3: b"Subject: three\r\n\r\nthird\r\n",
}
ENTRIES = [MaildropEntry(uid, len(data), f"uidl-{uid}") for uid, data in MESSAGES.items()]


def plain(user: str, password: str, authz: str = "") -> str:
    return base64.b64encode(f"{authz}\0{user}\0{password}".encode()).decode()


class Client:
    """Drives a session the way the server does, with an in-memory 'mail store'."""

    def __init__(self, *, plaintext_allowed: bool = True, tls_available: bool = False,
                 tls_active: bool = False, max_errors: int = 10) -> None:
        self.session = Pop3Session(
            plaintext_allowed=plaintext_allowed, tls_available=tls_available,
            tls_active=tls_active, max_errors=max_errors,
        )
        self.events: list[Event] = []
        self.greeting = self.session.data_to_send()

    def send(self, data: bytes) -> bytes:
        """Feed bytes; answer events like a server would (logins always succeed)."""
        self.session.receive_data(data)
        while True:
            event = self.session.next_event()
            if event is None:
                if self.session.more_buffered:
                    continue  # a slice of a long pipeline: the server comes back too
                break
            self.events.append(event)
            if isinstance(event, Authenticate):
                self.session.login_accepted(ENTRIES)
            elif isinstance(event, Retrieve):
                self.session.message_begin()
                content = MESSAGES[event.entry.uid]
                for i in range(len(content)):  # one byte at a time: worst-case chunking
                    if not self.session.message_data(content[i : i + 1]):
                        break
                self.session.message_end()
            elif isinstance(event, StartTls):
                break
            elif isinstance(event, Update):
                self.session.update_finished(True)
            elif isinstance(event, Close):
                break
        return self.session.data_to_send()

    def cmd(self, line: str) -> bytes:
        return self.send(line.encode() + b"\r\n")

    def login(self) -> None:
        assert self.cmd("USER bob@example.com") == b"+OK Send your password\r\n"
        assert self.cmd("PASS secret pass").startswith(b"+OK Logged in, 3 messages")

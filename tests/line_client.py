"""A raw client socket that reads CRLF lines, for tests that speak SMTP and POP3
by hand (login throttles and floods: tests/test_login_wire.py, test_login_memory.py)."""

from __future__ import annotations

import base64
import socket


def plain(user: str, password: str) -> str:
    """An AUTH PLAIN response."""
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode("ascii")


class Line:
    """A raw client socket that reads CRLF lines."""

    def __init__(self, port: int, source: str = "127.0.0.1", timeout: float = 30.0) -> None:
        # Another loopback source address is another client to the throttle.
        self.timeout = timeout
        self.sock = socket.create_connection(
            ("127.0.0.1", port), timeout=timeout, source_address=(source, 0)
        )
        self.buffer = b""

    def read(self, timeout: float | None = None) -> bytes:
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def reply(self) -> bytes:
        """One SMTP reply (the last line of a multi-line one)."""
        line = self.read()
        while line[3:4] == b"-":
            line = self.read()
        return line

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode() + b"\r\n")

    def silent_for(self, seconds: float) -> bool:
        """Whether nothing arrives for `seconds`."""
        if self.buffer:
            return False
        self.sock.settimeout(seconds)
        try:
            chunk = self.sock.recv(4096)
        except TimeoutError:
            return True
        self.buffer += chunk
        return False

    def close(self) -> None:
        self.sock.close()

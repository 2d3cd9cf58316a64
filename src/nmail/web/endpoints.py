"""Where clients should connect: the public names and ports in use."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One client-facing service; `socket` is Thunderbird's word: SSL, STARTTLS or plain."""

    protocol: str  # "pop3" | "imap" | "smtp"
    port: int
    socket: str


@dataclass(frozen=True, slots=True)
class ClientEndpoints:
    hostname: str
    incoming: tuple[Endpoint, ...]
    outgoing: tuple[Endpoint, ...]


# Listener name -> how a client uses it. Port 25 is for other servers, not clients.
_ROLES = {
    "pop3s": ("pop3", "SSL", True),
    "pop3": ("pop3", "STARTTLS", True),
    "imaps": ("imap", "SSL", True),
    "imap": ("imap", "STARTTLS", True),
    "submissions": ("smtp", "SSL", False),
    "submission": ("smtp", "STARTTLS", False),
}
# Preference order within each direction: implicit TLS first (RFC 8314).
_ORDER = ("imaps", "imap", "pop3s", "pop3", "submissions", "submission")


def endpoints_for(hostname: str, ports: dict[str, int]) -> ClientEndpoints:
    """Build the client view from listener name -> public port."""
    incoming: list[Endpoint] = []
    outgoing: list[Endpoint] = []
    for name in _ORDER:
        if name not in ports:
            continue
        proto, sock, is_in = _ROLES[name]
        (incoming if is_in else outgoing).append(Endpoint(proto, ports[name], sock))
    return ClientEndpoints(hostname, tuple(incoming), tuple(outgoing))

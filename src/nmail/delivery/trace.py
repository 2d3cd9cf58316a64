"""Trace headers we prepend (Return-Path, Delivered-To, Received) and message ids."""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import math
import os
import re
import secrets
import time

from nmail.delivery.envelope import ClientInfo


class _IdTail:
    """The 8 hex after the time in a message id: a random start per process, then
    counting, so ids from one process never collide and ids from two processes
    (workers, nodes) collide only as rarely as random ones would, without asking
    the kernel for randomness per message."""

    def __init__(self) -> None:
        self.reseed()
        os.register_at_fork(after_in_child=self.reseed)

    def reseed(self) -> None:
        self._next = itertools.count(int.from_bytes(secrets.token_bytes(4), "big"))

    def take(self) -> str:
        return f"{next(self._next) & 0xFFFFFFFF:08x}"


_id_tail = _IdTail()


def new_message_id(clock: float | None = None) -> str:
    """A short, sortable, unique id for logs and the queue: 12 hex of time + 8 more."""
    now = int((clock if clock is not None else time.time()) * 1000)
    return f"{now:012x}{_id_tail.take()}"


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _safe(text: str) -> str:
    # Header values we build must never carry line breaks from client input.
    if text.isascii() and text.isprintable():
        return text  # no control: the substitution (~2.5k instructions) would change nothing
    return _CONTROL.sub(" ", text)


# The last second formatted (every message of that second shares it).
_last_date: tuple[int, str] = (-1, "")


def rfc5322_date(when: float) -> str:
    global _last_date
    second = math.floor(when)
    last = _last_date
    if last[0] == second:
        return last[1]
    stamp = dt.datetime.fromtimestamp(second, dt.UTC).astimezone()
    text = stamp.strftime("%a, %d %b %Y %H:%M:%S %z")
    _last_date = (second, text)
    return text


def received_header(
    client: ClientInfo,
    hostname: str,
    msg_id: str,
    recipient: str | None,
    when: float,
) -> bytes:
    """The Received: line for this hop (RFC 5321 4.4), CRLF folded."""
    head = _received_head(
        client.helo, client.ip, client.protocol, client.tls, client.auth_user, hostname
    )
    tail = f"\tid {msg_id}"
    if recipient:
        tail += f"\r\n\tfor <{_safe(recipient)}>"
    return f"{head}{tail}; {rfc5322_date(when)}\r\n".encode()


@functools.lru_cache(maxsize=256)  # a client's messages share it: -3.1k a message
def _received_head(
    helo: str, ip: str, protocol: str, tls: str | None, auth_user: str | None, hostname: str
) -> str:
    """The Received: lines before the id: who, by whom, how (each line with its CRLF)."""
    lines = [f"Received: from {_safe(helo) or 'unknown'} ([{_safe(ip)}])"]
    with_part = f"by {hostname} (nmail) with {protocol}"
    if tls:
        with_part += f" (using {_safe(tls)})"
    lines.append(f"\t{with_part}")
    if auth_user:
        lines.append(f"\t(authenticated as {_safe(auth_user)})")
    return "\r\n".join(lines) + "\r\n"


def return_path(sender: str) -> bytes:
    return f"Return-Path: <{_safe(sender)}>\r\n".encode()


def delivered_to(address: str) -> bytes:
    return f"Delivered-To: {_safe(address)}\r\n".encode()


def local_hostname() -> str:
    return os.uname().nodename

"""Trace headers we prepend (Return-Path, Delivered-To, Received) and message ids."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import time

from nmail.delivery.envelope import ClientInfo


def new_message_id(clock: float | None = None) -> str:
    """A short, sortable, unique id for logs and the queue: 12 hex of time + 8 random."""
    now = int((clock if clock is not None else time.time()) * 1000)
    return f"{now:012x}{secrets.token_hex(4)}"


def _safe(text: str) -> str:
    # Header values we build must never carry line breaks from client input.
    return "".join(ch if ch >= " " and ch != "\x7f" else " " for ch in text)


def rfc5322_date(when: float) -> str:
    stamp = dt.datetime.fromtimestamp(when, dt.UTC).astimezone()
    return stamp.strftime("%a, %d %b %Y %H:%M:%S %z")


def received_header(
    client: ClientInfo,
    hostname: str,
    msg_id: str,
    recipient: str | None,
    when: float,
) -> bytes:
    """The Received: line for this hop (RFC 5321 4.4), CRLF folded."""
    helo = _safe(client.helo) or "unknown"
    lines = [f"Received: from {helo} ([{_safe(client.ip)}])"]
    with_part = f"by {hostname} (nmail) with {client.protocol}"
    if client.tls:
        with_part += f" (using {_safe(client.tls)})"
    lines.append(f"\t{with_part}")
    if client.auth_user:
        lines.append(f"\t(authenticated as {_safe(client.auth_user)})")
    tail = f"\tid {msg_id}"
    if recipient:
        tail += f"\r\n\tfor <{_safe(recipient)}>"
    lines.append(f"{tail}; {rfc5322_date(when)}")
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def return_path(sender: str) -> bytes:
    return f"Return-Path: <{_safe(sender)}>\r\n".encode()


def delivered_to(address: str) -> bytes:
    return f"Delivered-To: {_safe(address)}\r\n".encode()


def local_hostname() -> str:
    return os.uname().nodename

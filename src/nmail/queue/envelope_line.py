"""The envelope written with a queued body, so a power loss cannot orphan it.

A queued message is acknowledged (250) once its body file and its rows are
committed. The rows live in SQL, whose last commits an OS crash can roll
back (SQLite WAL with synchronous=NORMAL; a PostgreSQL or MariaDB tuned for
speed); the body, flushed with its directory before the rows, survives. So
the body file carries its envelope on its first line, inside the same
flush: `#nmail-envelope <json>` CRLF, then the message. Recovery
(queue/recovery.py) rebuilds the rows of a body that has none.

JSON escapes every control character, so the line never holds a bare CR or
LF; the reader takes it only from the first line and only with the marker
(bodies written before this format start with a header, never with `#`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from nmail.queue.rows import MessageInfo, NewRecipient

MARKER = b"#nmail-envelope "
_VERSION = 1


class BadEnvelope(ValueError):
    """An envelope line that cannot be read back."""


def encode(message: MessageInfo, recipients: Sequence[NewRecipient]) -> bytes:
    """The first line of the body file (ending in CRLF)."""
    data = {
        "v": _VERSION,
        "sender": message.sender,
        "created_at": message.created_at,
        "is_bounce": message.is_bounce,
        "envid": message.dsn_envid,
        "ret": message.dsn_ret,
        "auth_user": message.auth_user,
        "client_ip": message.client_ip,
        "rcpts": [[r.address, r.domain, r.notify, r.orcpt] for r in recipients],
    }
    return MARKER + json.dumps(data, separators=(",", ":")).encode("ascii") + b"\r\n"


def split(data: bytes) -> tuple[bytes | None, bytes]:
    """(envelope line without its CRLF or None, the message) of a body file's bytes."""
    if not data.startswith(MARKER):
        return None, data
    end = data.find(b"\r\n")
    if end < 0:
        return None, data
    return data[len(MARKER) : end], data[end + 2 :]


def decode(line: bytes, queue_id: str, size: int) -> tuple[MessageInfo, list[NewRecipient]]:
    """The rows an envelope line stands for; BadEnvelope when it is not one of ours."""
    try:
        data: Any = json.loads(line)
        if not isinstance(data, dict) or data.get("v") != _VERSION:
            raise BadEnvelope("unknown envelope version")
        message = MessageInfo(
            id=queue_id,
            sender=_text(data["sender"]),
            size=size,
            created_at=int(data["created_at"]),
            is_bounce=bool(data["is_bounce"]),
            dsn_envid=_optional(data["envid"]),
            dsn_ret=_optional(data["ret"]),
            warned=False,
            auth_user=_optional(data["auth_user"]),
            client_ip=_optional(data["client_ip"]),
        )
        rcpts = [
            NewRecipient(_text(a), _text(d), _optional(n), _optional(o))
            for a, d, n, o in data["rcpts"]
        ]
    except (ValueError, KeyError, TypeError) as exc:
        raise BadEnvelope(f"unreadable envelope: {exc}") from None
    if not rcpts:
        raise BadEnvelope("envelope without recipients")
    return message, rcpts


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise BadEnvelope("expected text")
    return value


def _optional(value: object) -> str | None:
    return None if value is None else _text(value)

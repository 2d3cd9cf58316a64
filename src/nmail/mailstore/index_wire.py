"""The wire format between worker processes and the index writer process.

Frames are a 4-byte big-endian length and JSON: a request is a list of
prepared messages, a reply is ["ok", stored messages], ["gone", reason]
(a folder row vanished) or ["error", reason].
"""

from __future__ import annotations

import json
import socket
import struct
from pathlib import Path
from typing import Any

from nmail.mailstore.delivery_batch import PreparedMessage
from nmail.mailstore.indexrow import SUMMARY_KEYS
from nmail.mailstore.model import StoredMessage

LENGTH = struct.Struct(">I")
MAX_FRAME = 64 << 20


def frame(payload: object) -> bytes:
    data = json.dumps(payload, separators=(",", ":")).encode()
    return LENGTH.pack(len(data)) + data


def encode_items(items: list[PreparedMessage]) -> list[list[Any]]:
    return [
        [i.account_id, i.folder_id, str(i.folder_dir), str(i.tmp_path), i.base, i.size,
         i.flags_text, i.letters, i.in_new, i.internal_date,
         [i.columns[key] for key in SUMMARY_KEYS]]
        for i in items
    ]


def decode_items(data: Any) -> list[PreparedMessage]:
    out = []
    for row in data:
        (account_id, folder_id, folder_dir, tmp_path, base, size, flags_text, letters,
         in_new, internal_date, columns) = row
        if not isinstance(columns, list) or len(columns) != len(SUMMARY_KEYS):
            raise ValueError("bad columns")
        out.append(PreparedMessage(
            account_id=int(account_id), folder_id=int(folder_id), folder_dir=Path(folder_dir),
            tmp_path=Path(tmp_path), base=str(base), size=int(size), flags_text=str(flags_text),
            letters=str(letters), in_new=bool(in_new), internal_date=int(internal_date),
            columns=dict(zip(SUMMARY_KEYS, columns, strict=True)),
        ))
    return out


def encode_stored(stored: list[StoredMessage]) -> list[list[Any]]:
    return [[s.account_id, s.folder_id, s.uid, s.size, s.uidl, str(s.path)] for s in stored]


def decode_stored(data: Any) -> list[StoredMessage]:
    return [StoredMessage(int(a), int(f), int(u), int(n), str(uidl), Path(p))
            for a, f, u, n, uidl, p in data]


def recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks: list[bytes] = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            raise ConnectionError("the index writer closed the connection")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)

"""The wire format between worker processes and the index writer process.

Frames are a 4-byte big-endian length and a value in `marshal` format:
a request is a list of prepared messages (each a tuple of ints, strs and
bools) or one operation (a tuple, see operations.py); a reply is ("ok",
stored messages or an operation's result), ("gone", reason) (a folder row
vanished), ("refused", error class name, reason) (an operation the store
refused: model.STORE_ERRORS) or ("error", reason).

Why marshal: it is several times faster than JSON both ways, and the index
writer spends its time per message. It is NOT safe for data from anyone
else: it is no parser meant for hostile input, and a crafted value makes
it allocate whatever its counts claim (`loads` refuses only a top-level
count that cannot fit). It is used here only because both ends talk to
processes of their own user alone, checked with SO_PEERCRED when a
connection is made (index_service._accept, index_client._dial): they
could do anything the writer can anyway. Keep those checks. The format is
private to processes of one installation (same nmail, same Python), so it
carries no version.

A frame that does not decode or whose value is not of the expected shape
and types is a ValueError here; the writer then drops that connection.
"""

from __future__ import annotations

import marshal
import os
import socket
import struct
from collections.abc import Callable
from typing import Any, TypeVar

from nmail.mailstore.delivery_batch import PreparedMessage
from nmail.mailstore.indexrow import SUMMARY_KEYS
from nmail.mailstore.model import StoredMessage
from nmail.mailstore.operations import Operation, decode_operation

LENGTH = struct.Struct(">I")
_CREDS = struct.Struct("3i")  # struct ucred: pid, uid, gid
MAX_FRAME = 64 << 20

T = TypeVar("T")

# The types of a PreparedMessage's fields, exactly (bool is not int here).
_ITEM_TYPES = (int, int, str, str, str, int, str, str, bool, int, tuple)
_COLUMN_TYPES = frozenset((int, str, bool))
_STORED_TYPES = (int, int, int, int, str, str)
_new_item = PreparedMessage._make
# marshal's list, tuple, set and frozenset codes (with and without its ref flag):
# a 4-byte little-endian count follows.
_COUNTED = frozenset(bytes([code | ref]) for code in b"[(<>" for ref in (0, 0x80))


def frame(payload: Any) -> bytes:
    """A frame for `payload` (ValueError if it holds anything but plain values)."""
    data = marshal.dumps(payload)
    return LENGTH.pack(len(data)) + data


def loads(data: bytes) -> Any:
    """A frame's value; ValueError for anything that is not one."""
    if data[:1] in _COUNTED and int.from_bytes(data[1:5], "little") > len(data):
        # marshal would allocate what the count claims before finding the data
        # short: from a garbled frame (JSON, say), GBs and seconds of work.
        raise ValueError("bad frame (a count beyond its end)")
    try:
        # Only from processes of our own user: see the module's docstring.
        return marshal.loads(data)  # noqa: S302
    except Exception as exc:  # ValueError, EOFError, TypeError; MemoryError for huge counts
        raise ValueError(f"bad frame ({type(exc).__name__}: {exc})") from None


def read_frames(buffer: bytearray, decode: Callable[[Any], T]) -> list[T]:
    """The complete frames at the start of `buffer`, decoded and removed from it.

    ValueError for a frame over MAX_FRAME or one `decode` refuses.
    """
    out: list[T] = []
    start = 0
    available = len(buffer)
    while available - start >= LENGTH.size:
        (size,) = LENGTH.unpack_from(buffer, start)
        if size > MAX_FRAME:
            raise ValueError(f"frame of {size} bytes")
        end = start + LENGTH.size + size
        if available < end:
            break
        # A copy (one, through the memoryview): a view of `buffer` left alive (by an
        # exception's traceback, say) would keep the buffer from being resized.
        with memoryview(buffer) as view:
            data = bytes(view[start + LENGTH.size : end])
        out.append(decode(loads(data)))
        start = end
    if start:
        del buffer[:start]
    return out


def encode_items(items: list[PreparedMessage]) -> list[tuple[Any, ...]]:
    # marshal takes exact tuples only, not their subclasses.
    return [tuple(item) for item in items]


def decode_items(data: Any) -> list[PreparedMessage]:
    """A request's prepared messages; ValueError unless each is what encode_items makes."""
    if type(data) is not list:
        raise ValueError("a request is a list")
    out = []
    for row in data:
        if type(row) is not tuple or tuple(map(type, row)) != _ITEM_TYPES:
            raise ValueError("bad prepared message")
        columns = row[-1]
        if len(columns) != len(SUMMARY_KEYS) or not _COLUMN_TYPES.issuperset(map(type, columns)):
            raise ValueError("bad columns")
        out.append(_new_item(row))
    return out


def decode_request(data: Any) -> list[PreparedMessage] | Operation:
    """A request: a list of prepared messages (deliveries) or one operation tuple."""
    if type(data) is list:
        return decode_items(data)
    return decode_operation(data)


def encode_stored(stored: list[StoredMessage]) -> list[tuple[Any, ...]]:
    return [(s.account_id, s.folder_id, s.uid, s.size, s.uidl, s.file) for s in stored]


def decode_stored(data: Any) -> list[StoredMessage]:
    """An "ok" reply's stored messages; ValueError unless each is what encode_stored makes."""
    if type(data) is not list:
        raise ValueError("stored messages are a list")
    out = []
    for row in data:
        if type(row) is not tuple or tuple(map(type, row)) != _STORED_TYPES:
            raise ValueError("bad stored message")
        out.append(StoredMessage(*row))
    return out


def peer_uid(sock: socket.socket) -> int:
    """The user id of the process at the other end of a Unix socket (SO_PEERCRED)."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CREDS.size)
    return int(_CREDS.unpack(creds)[1])


def same_user(sock: socket.socket) -> bool:
    """Whether the other end runs as this process's user (then marshal is fine)."""
    return peer_uid(sock) == os.getuid()


def recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks: list[bytes] = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            raise ConnectionError("the index writer closed the connection")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)
